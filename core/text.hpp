#pragma once

// Small text helpers for protocol tokens (ASCII): header values, route
// segments, schemes.

#include <algorithm>
#include <cctype>
#include <string_view>

namespace postd::core {

// Whether `a` and `b` are the same but for the case of ASCII letters.
inline bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Whether `s` starts with `prefix`, the case of ASCII letters aside.
inline bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() &&
         iequals(s.substr(0, prefix.size()), prefix);
}

// `s` without the spaces and tabs around it (HTTP's optional whitespace).
inline std::string_view trim_ows(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t'; };
  while (!s.empty() && blank(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && blank(s.back()))
    s.remove_suffix(1);
  return s;
}

} // namespace postd::core
