#pragma once

// Validation of client input, as the old service's class-validator DTOs
// (whitelist + forbidNonWhitelisted) reported it.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postd::http {

struct create_body {
  std::string content;
};

struct validation_result {
  std::optional<create_body> body;   // set when valid
  std::vector<std::string> messages; // why not, otherwise
};

// Parses and checks `{"content": "..."}`: a JSON object with exactly one
// member, `content`, a string of 1..max_chars Unicode characters (not
// bytes), valid UTF-8 and without NUL (PostgreSQL text cannot hold it).
validation_result validate_create_body(std::string_view body,
                                       std::size_t max_chars);

// Checks a post's content, however it came (a JSON string, a form field):
// valid UTF-8, 1..max_chars characters, no NUL.
validation_result validate_content(std::string_view content,
                                   std::size_t max_chars);

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
// surrogates, nothing past U+10FFFF).
bool valid_utf8(std::string_view s);

// Number of Unicode code points in valid UTF-8 text.
std::size_t utf8_length(std::string_view s);

// True for 1..255 printable ASCII characters (an Idempotency-Key).
bool valid_idempotency_key(std::string_view key);

// True for application/json (any parameters, any case).
bool is_json_content_type(std::string_view content_type);

} // namespace postd::http
