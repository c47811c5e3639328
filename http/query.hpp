#pragma once

// Query strings and the opaque cursor of GET /v1/post.

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "core/post.hpp"

namespace postd::http {

// The parameters of a request target's query string, percent-decoded ('+'
// is a space); the first occurrence of a name wins. nullopt when the query
// is malformed: a bad %-escape, or a NUL once decoded.
std::optional<std::map<std::string, std::string>>
parse_query(std::string_view target);

// A page cursor names the last post of the previous page by its keyset
// position ("createdAt", id), hex-encoded so clients treat it as opaque.
std::string encode_cursor(const core::post& last);
// nullopt unless `cursor` is exactly what encode_cursor makes: hex of
// "YYYY-MM-DDTHH:MM:SS.mmmZ|<id>" with a real UTC time and a 1..128 character
// id without control characters.
std::optional<core::post> decode_cursor(std::string_view cursor);

} // namespace postd::http
