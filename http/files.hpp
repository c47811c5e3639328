#pragma once

// GET and HEAD /v1/files/<name>: the stored attachments, served from the
// storage folder. A stored file is named by its SHA-256, so its bytes never
// change: the digest is a strong ETag and the answer is cached for good.
// Conditional (If-None-Match) and single-range (Range) requests are honoured
// as RFC 9110 §13 and §14 describe them.

#include <filesystem>
#include <string>
#include <string_view>

#include "http/api_types.hpp"

namespace postd::http {

struct file_request {
  // HEAD: the same answer, body included (the session strips it and keeps
  // its Content-Length), but Range is ignored, as RFC 9110 §14.2 requires
  // for any method but GET.
  bool head = false;
  // The fields as received, "" when absent (an empty field means nothing
  // either). Several If-None-Match fields may be joined by ", "; several
  // Range fields may not (that is no single range, and is ignored).
  std::string if_none_match;
  std::string range;
};

// Answers GET/HEAD /v1/files/<name> from the folder `dir`: 200 with the
// file, 206 with the range asked for, 304 when If-None-Match names it, 416
// for a range past its end, 404 for a name that is no stored file's (nothing
// else is ever opened) or a file that is not there, 500 when it cannot be
// read. Never throws.
api_response serve_file(const std::filesystem::path& dir, std::string_view name,
                        const file_request& req);

} // namespace postd::http
