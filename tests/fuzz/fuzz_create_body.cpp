// The body of POST /v1/post/create (http/validation.hpp). Whatever the
// bytes: valid, or refused with at least one reason, never both; a valid
// body's content is 1..max characters of UTF-8 without NUL, and survives
// parse -> serialise -> parse unchanged.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "http/validation.hpp"

namespace {

using namespace postd::http;

constexpr std::size_t production_max = 10000; // MAX_CONTENT_CHARS' default
constexpr std::size_t short_max = 8;

void check(const validation_result& v, std::size_t max_chars) {
  FUZZ_CHECK(v.body.has_value() != !v.messages.empty());
  if (!v.body)
    return;
  const auto& content = v.body->content;
  auto chars = utf8_length(content);
  FUZZ_CHECK(chars >= 1 && chars <= max_chars);
  FUZZ_CHECK(content.find('\0') == std::string::npos);
  // Valid UTF-8: nlohmann's strict dump throws otherwise (the fuzzer
  // reports the exception).
  auto again = validate_create_body(nlohmann::json{{"content", content}}.dump(),
                                    max_chars);
  FUZZ_CHECK(again.body && again.body->content == content);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data,
                                      std::size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto wide = validate_create_body(body, production_max);
  check(wide, production_max);
  auto narrow = validate_create_body(body, short_max);
  check(narrow, short_max);
  // A lower limit only refuses more.
  if (narrow.body)
    FUZZ_CHECK(wide.body && wide.body->content == narrow.body->content);
  // The request's other checks see the same bytes as header values.
  if (valid_idempotency_key(body))
    FUZZ_CHECK(!body.empty() && body.size() <= 255);
  std::string upper(body);
  for (auto& c : upper)
    if (c >= 'a' && c <= 'z')
      c = static_cast<char>(c - 'a' + 'A');
  FUZZ_CHECK(is_json_content_type(body) == is_json_content_type(upper));
  return 0;
}
