#pragma once

// The body of a multipart/form-data create, read as it arrives: a `content`
// field and up to `max_files` parts named `files`, each streamed into the
// storage folder (core::file_upload) and never held whole in memory.
// Any refusal is the answer to send (Nest's error shape), decided as soon as
// the bytes show it, so the rest of the body need not be read.

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_store.hpp"
#include "http/api_types.hpp"
#include "http/multipart.hpp"

namespace postd::http {

struct upload_limits {
  std::size_t max_files = 4;
  std::size_t max_file_bytes = std::size_t{5} << 20;
  std::size_t max_content_chars = 10000;
};

// What a whole, accepted form holds.
struct create_form {
  std::string content; // not yet validated (api::finish_upload does)
  bool has_content = false;
  std::vector<std::string> stored; // stored names (`<sha256>.<ext>`), in order
};

class form_reader {
public:
  form_reader(std::string_view boundary, std::filesystem::path storage_dir,
              upload_limits limits);

  // The next bytes of the body; false once refused (refusal() says how).
  bool feed(std::string_view bytes);
  // The body ended: commits the files (each fsynced and renamed: it
  // blocks, so not on an I/O thread) and answers whether the form was
  // accepted (else refusal() says how).
  bool finish();

  const std::optional<api_response>& refusal() const { return refusal_; }
  create_form& form() { return form_; }
  // The largest body this form can be: every file and the content at their
  // limits, with room for the parts' headers and boundaries.
  static std::size_t max_body_bytes(const upload_limits& limits);

private:
  enum class part_kind { content, file, ignored };
  bool on_part(const multipart_part& part);
  bool on_data(std::string_view bytes);
  bool on_part_end();
  bool refuse(api_response r);
  // True when `s` is ok; else refuses the form with its answer.
  bool file_ok(core::file_upload::status s);

  std::filesystem::path dir_;
  upload_limits limits_;
  multipart_parser parser_;
  part_kind kind_ = part_kind::ignored;
  std::unique_ptr<core::file_upload> file_; // the part being read
  // The files read whole, committed by finish().
  std::vector<std::unique_ptr<core::file_upload>> read_;
  std::size_t files_ = 0;
  create_form form_;
  std::optional<api_response> refusal_;
};

} // namespace postd::http
