#pragma once

// multipart/form-data (RFC 7578, framed as RFC 2046 says) read as a stream:
// fed the body in chunks of any size, it calls back per part with the part's
// headers and then its bytes as they come, never holding more of a part than
// one chunk and a boundary's length. Pure: no Beast, no I/O.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace postd::http {

// The boundary of a `multipart/form-data; boundary=...` Content-Type (the
// parameter possibly quoted, 1 to 70 characters as RFC 2046 allows);
// nullopt for any other type or a missing or invalid boundary.
std::optional<std::string> multipart_boundary(std::string_view content_type);

struct multipart_part {
  std::string name;     // Content-Disposition's name
  std::string filename; // its filename; empty when none (a field)
  bool has_filename = false;
  std::string content_type; // as declared (never trusted for files)
};

class multipart_parser {
public:
  struct callbacks {
    // A part begins. Return false to stop the parse (error() says so).
    std::function<bool(const multipart_part&)> on_part;
    // More of the current part's bytes; false stops the parse.
    std::function<bool(std::string_view)> on_data;
    // The current part ended (all its bytes were given); false stops.
    std::function<bool()> on_part_end;
  };
  struct limits {
    std::size_t max_header_bytes = 8192; // one part's header block
    std::size_t max_parts = 64;
  };

  multipart_parser(std::string_view boundary, callbacks cb, limits l);
  multipart_parser(std::string_view boundary, callbacks cb)
      : multipart_parser(boundary, std::move(cb), limits{}) {}

  // Reads the next bytes of the body. False once the body is malformed or a
  // callback stopped the parse; everything fed after that is ignored.
  bool feed(std::string_view chunk);
  // The body ended: true iff it was whole (its closing boundary seen).
  bool finish();

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  // Whether a callback stopped the parse (rather than a malformed body).
  bool stopped() const { return stopped_; }

private:
  enum class state { preamble, after_delimiter, headers, data, epilogue };
  bool fail(std::string why);
  bool stop();
  // One step on buf_; false when it needs more input (or failed).
  bool step();
  bool parse_headers(std::string_view block);

  std::string delimiter_; // CRLF "--" boundary
  callbacks cb_;
  limits limits_;
  state state_ = state::preamble;
  std::string buf_;
  std::size_t parts_ = 0;
  std::string error_;
  bool stopped_ = false;
};

} // namespace postd::http
