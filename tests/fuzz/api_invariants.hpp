#pragma once

// What every answer of http::api must satisfy, whatever the request.

#include <string_view>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "http/api_types.hpp"
#include "http/query.hpp"

namespace postd::fuzz {

// Text that goes into a header line as it is: no CR, LF or NUL (no
// response splitting).
inline bool header_safe(std::string_view s) {
  return s.find_first_of(std::string_view("\r\n\0", 3)) ==
         std::string_view::npos;
}

inline void check_response(const http::api_response& r) {
  FUZZ_CHECK(r.status >= 200 && r.status <= 599);
  FUZZ_CHECK(header_safe(r.content_type));
  for (const auto& [name, value] : r.headers)
    FUZZ_CHECK(!name.empty() && header_safe(name) && header_safe(value));
  if (std::string_view(r.content_type).starts_with("application/json")) {
    auto body = nlohmann::json::parse(r.body, nullptr, false);
    FUZZ_CHECK(!body.is_discarded());
    // A cursor the API hands out is one it takes back.
    if (body.is_object() && body.contains("nextCursor") &&
        body["nextCursor"].is_string())
      FUZZ_CHECK(http::decode_cursor(body["nextCursor"].get<std::string>()));
  }
}

} // namespace postd::fuzz
