#include "http/validation.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include <nlohmann/json.hpp>

namespace postd::http {

std::size_t utf8_length(std::string_view s) {
  return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool valid_idempotency_key(std::string_view key) {
  return !key.empty() && key.size() <= 255 &&
         std::all_of(key.begin(), key.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7E; });
}

bool is_json_content_type(std::string_view content_type) {
  auto type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ')
    type.remove_suffix(1);
  while (!type.empty() && type.front() == ' ')
    type.remove_prefix(1);
  constexpr std::string_view json = "application/json";
  return type.size() == json.size() &&
         std::equal(type.begin(), type.end(), json.begin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

validation_result validate_create_body(std::string_view body,
                                       std::size_t max_chars) {
  validation_result r;
  // nlohmann's parser rejects ill-formed UTF-8 inside strings.
  auto doc = nlohmann::json::parse(body, nullptr, false);
  if (doc.is_discarded()) {
    r.messages.emplace_back(
        "request body is not valid JSON (or not valid UTF-8)");
    return r;
  }
  if (!doc.is_object()) {
    r.messages.emplace_back("request body must be a JSON object");
    return r;
  }
  for (const auto& [key, value] : doc.items())
    if (key != "content")
      r.messages.emplace_back("property " + key + " should not exist");
  auto it = doc.find("content");
  if (it == doc.end() || !it->is_string()) {
    if (it != doc.end() && !it->is_null())
      r.messages.emplace_back("content must be a string");
    else
      r.messages.insert(r.messages.end(), {"content must not be empty",
                                           "content must be a string"});
    return r;
  }
  auto content = validate_content(it->get_ref<const std::string&>(), max_chars);
  if (r.messages.empty())
    return content;
  r.messages.insert(r.messages.end(), content.messages.begin(),
                    content.messages.end());
  return r;
}

validation_result validate_content(std::string_view content,
                                   std::size_t max_chars) {
  validation_result r;
  if (!valid_utf8(content)) {
    r.messages.emplace_back("content must be valid UTF-8");
    return r;
  }
  auto chars = utf8_length(content);
  if (chars == 0)
    r.messages.emplace_back("content must not be empty");
  if (chars > max_chars)
    r.messages.emplace_back("content must be shorter than or equal to " +
                            std::to_string(max_chars) + " characters");
  if (content.find('\0') != std::string_view::npos)
    r.messages.emplace_back("content must not contain NUL characters");
  if (r.messages.empty())
    r.body = create_body{std::string(content)};
  return r;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1FU;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0FU;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07U;
    } else {
      return false; // a continuation byte first, an overlong lead, or > F4
    }
    if (s.size() - i <= n)
      return false;
    for (std::size_t k = 1; k <= n; ++k) {
      auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0U) != 0x80U)
        return false;
      cp = (cp << 6) | (cc & 0x3FU);
    }
    // Overlong forms, UTF-16 surrogates and past U+10FFFF are not UTF-8.
    if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
      return false;
    i += n + 1;
  }
  return true;
}

} // namespace postd::http
