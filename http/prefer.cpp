#include "http/prefer.hpp"

#include <algorithm>
#include <charconv>

#include "core/text.hpp"

namespace postd::http {

namespace {

// The next comma-separated element of `rest`, outside quoted strings.
std::string_view next_element(std::string_view& rest) {
  bool quoted = false;
  std::size_t i = 0;
  for (; i < rest.size(); ++i) {
    if (rest[i] == '"')
      quoted = !quoted;
    else if (rest[i] == '\\' && quoted)
      ++i;
    else if (rest[i] == ',' && !quoted)
      break;
  }
  auto element = rest.substr(0, i);
  rest = i < rest.size() ? rest.substr(i + 1) : std::string_view{};
  return element;
}

} // namespace

std::optional<int> prefer_wait(std::string_view prefer) {
  while (!prefer.empty()) {
    auto element = next_element(prefer);
    auto preference = core::trim_ows(element.substr(0, element.find(';')));
    auto eq = preference.find('=');
    if (eq == std::string_view::npos ||
        !core::iequals(core::trim_ows(preference.substr(0, eq)), "wait"))
      continue;
    auto value = core::trim_ows(preference.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
      value = value.substr(1, value.size() - 2);
    // delta-seconds: digits only; a huge number is as good as the cap.
    if (value.empty() || !std::all_of(value.begin(), value.end(), [](char c) {
          return c >= '0' && c <= '9';
        }))
      return std::nullopt;
    long long seconds = max_prefer_wait_seconds;
    if (value.size() <= 6)
      std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (seconds <= 0)
      return std::nullopt;
    return static_cast<int>(
        std::min<long long>(seconds, max_prefer_wait_seconds));
  }
  return std::nullopt;
}

} // namespace postd::http
