// Query strings, page cursors and the limit of GET /v1/post
// (http/query.hpp, http/api.cpp). Each input is read four ways:
//  - as a request target: parse_query's map, percent-encoded again, parses
//    back to the same map;
//  - as a cursor: one that decodes is exactly the one encode_cursor makes;
//  - as the makings of a post: encode_cursor then decode_cursor gives back
//    its keyset position;
//  - as the query of GET /v1/post through the API: a valid answer, and a
//    page the backend is asked for only with a limit of 1..100 (+1).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <string>
#include <string_view>

#include "api_invariants.hpp"
#include "check.hpp"
#include "fake_backend.hpp"
#include "http/api.hpp"
#include "http/query.hpp"

namespace {

using namespace postd;

std::string percent_encoded(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    char esc[4];
    std::snprintf(esc, sizeof esc, "%%%02X", c);
    out += esc;
  }
  return out;
}

void query_round_trip(std::string_view target) {
  auto params = http::parse_query(target);
  if (!params)
    return;
  bool raw_nul = target.find('\0') != std::string_view::npos;
  std::string again = "/v1/post?";
  for (const auto& [name, value] : *params) {
    if (!raw_nul)
      FUZZ_CHECK(name.find('\0') == std::string::npos &&
                 value.find('\0') == std::string::npos);
    if (name.empty() && value.empty())
      continue; // "=" alone: nothing to write back
    again += percent_encoded(name) + "=" + percent_encoded(value) + "&";
  }
  auto back = http::parse_query(again);
  if (raw_nul)
    return; // %00 is refused, a raw NUL is not: cannot compare
  FUZZ_CHECK(back);
  params->erase("");
  back->erase("");
  FUZZ_CHECK(*back == *params);
}

void cursor_round_trip(std::string_view cursor) {
  auto at = http::decode_cursor(cursor);
  if (!at)
    return;
  std::string lower(cursor);
  for (auto& c : lower)
    if (c >= 'A' && c <= 'F')
      c = static_cast<char>(c - 'A' + 'a');
  FUZZ_CHECK(http::encode_cursor(*at) == lower);
}

// A post the database could hold: a millisecond timestamp from year 1 to
// 9999 and an id of 1..128 characters without control characters.
void post_round_trip(std::string_view in) {
  std::uint64_t raw = 0;
  std::memcpy(&raw, in.data(), std::min(in.size(), sizeof raw));
  in.remove_prefix(std::min(in.size(), sizeof raw));
  constexpr std::int64_t first = -62135596800; // 0001-01-01T00:00:00Z
  constexpr std::int64_t last = 253402300799;  // 9999-12-31T23:59:59Z
  auto t = static_cast<std::time_t>(
      first + static_cast<std::int64_t>(raw % std::uint64_t(last - first + 1)));
  std::tm tm{};
  FUZZ_CHECK(gmtime_r(&t, &tm) != nullptr);
  char at[64];
  std::snprintf(at, sizeof at, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec, static_cast<int>((raw >> 48) % 1000));
  core::post p;
  p.created_at = at;
  for (unsigned char c : in)
    if (c >= 0x20 && c != 0x7f && p.id.size() < 128)
      p.id += static_cast<char>(c);
  if (p.id.empty())
    p.id = "a";
  auto back = http::decode_cursor(http::encode_cursor(p));
  FUZZ_CHECK(back && back->created_at == p.created_at && back->id == p.id);
}

struct harness {
  fuzz::fake_backend backend;
  http::api api{http::api_settings{}, http::token_verifier{"fuzz-secret"},
                backend};
};

void list_posts(std::string_view query) {
  static harness h;
  h.backend.reset(std::hash<std::string_view>{}(query));
  http::api_request req;
  req.method = "GET";
  req.target = "/v1/post?" + std::string(query);
  req.peer_ip = "10.1.2.3";
  int answers = 0;
  h.api.handle(std::move(req), [&](http::api_response r) {
    ++answers;
    fuzz::check_response(r);
  });
  FUZZ_CHECK(answers == 1);
  if (h.backend.last_limit)
    FUZZ_CHECK(*h.backend.last_limit >= 2 && *h.backend.last_limit <= 101);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  query_round_trip(in);
  cursor_round_trip(in);
  post_round_trip(in);
  list_posts(in);
  return 0;
}
