#pragma once

// Attachments on disk, content-addressed: an upload is written to a
// temporary file in the storage folder as its bytes arrive (never whole in
// memory), hashed with SHA-256 on the way, recognised as an image by its
// first bytes, and renamed to `<sha256>.<ext>` once whole. The same image
// uploaded twice is one file.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/image.hpp"

namespace postd::core {

class file_upload {
public:
  enum class status {
    ok,
    too_large,    // past max_bytes: nothing more is written
    not_an_image, // its first bytes are none of the image signatures
    io_error,     // the disk refused (full, permissions): see error()
  };

  // A new upload into `dir` (created if missing), at most `max_bytes`.
  file_upload(std::filesystem::path dir, std::size_t max_bytes);
  ~file_upload(); // an upload not committed leaves no file behind
  file_upload(const file_upload&) = delete;
  file_upload& operator=(const file_upload&) = delete;

  // The next bytes. Once it answered anything but ok, it stays so.
  status write(std::string_view bytes);
  // The upload is whole: its stored name (`<sha256>.<ext>`), or the status
  // that refuses it (an empty or too short upload is not_an_image).
  status commit(std::string& stored_name);

  std::size_t size() const { return size_; }
  const std::string& error() const { return error_; }

private:
  status fail(status s, std::string why = {});
  status flush_head();

  std::filesystem::path dir_;
  std::size_t max_bytes_;
  std::filesystem::path temp_;
  int fd_ = -1;
  std::size_t size_ = 0;
  std::string head_; // the first bytes, until the type is known
  std::optional<core::image_type> type_;
  struct digest;
  std::unique_ptr<digest> sha_;
  status status_ = status::ok;
  std::string error_;
};

// Whether `name` is a stored file's name (`<64 hex>.<jpg|png|gif|webp>`):
// nothing else is ever served from the storage folder.
bool stored_file_name(std::string_view name);

} // namespace postd::core
