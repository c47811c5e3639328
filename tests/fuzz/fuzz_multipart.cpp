// libFuzzer: multipart/form-data bodies through the streaming parser. The
// first byte picks a chunk size; the rest is the body. Properties: no crash
// or leak, no part's data holds the delimiter, and the parse (its parts,
// their bytes, success or failure) is the same fed whole or in chunks.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "check.hpp"
#include "http/multipart.hpp"

namespace {

struct outcome {
  std::vector<std::string> names;
  std::vector<std::string> data;
  bool ok = false;
  bool operator==(const outcome&) const = default;
};

outcome parse(std::string_view body, std::size_t chunk) {
  outcome o;
  postd::http::multipart_parser p{
      "b0undary",
      {[&](const postd::http::multipart_part& h) {
         o.names.push_back(h.name + "|" + h.filename + "|" + h.content_type);
         o.data.emplace_back();
         return true;
       },
       [&](std::string_view d) {
         o.data.back().append(d);
         return true;
       },
       [] { return true; }},
      {.max_header_bytes = 256, .max_parts = 8}};
  bool fed = true;
  for (std::size_t i = 0; i < body.size() && fed; i += chunk)
    fed = p.feed(body.substr(i, chunk));
  o.ok = fed && p.finish();
  return o;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  if (size == 0)
    return 0;
  std::size_t chunk = 1 + data[0] % 64;
  std::string_view body{reinterpret_cast<const char*>(data) + 1, size - 1};
  auto whole = parse(body, body.size() + 1);
  auto chunked = parse(body, chunk);
  FUZZ_CHECK(whole == chunked);
  if (whole.ok)
    for (const auto& d : whole.data)
      FUZZ_CHECK(d.find("\r\n--b0undary") == std::string::npos);
  return 0;
}
