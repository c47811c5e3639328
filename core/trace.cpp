#include "core/trace.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>

namespace postd::core {

namespace {

constexpr std::size_t trace_id_digits = 32;
constexpr std::size_t parent_id_digits = 16;
constexpr std::size_t v00_length = 55; // 2 + 1 + 32 + 1 + 16 + 1 + 2

bool lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == '0'; });
}

// `digits` random lower-case hex digits, never all zero. Trace ids need
// uniqueness, not secrecy: a per-thread generator seeded once from the OS,
// no system call per request.
std::string random_hex(std::size_t digits) {
  thread_local std::mt19937_64 generate{[] {
    std::random_device os;
    std::seed_seq seed{os(), os(), os(), os(), os(), os(), os(), os()};
    return std::mt19937_64{seed};
  }()};
  static constexpr std::array<char, 16> hex{'0', '1', '2', '3', '4', '5',
                                            '6', '7', '8', '9', 'a', 'b',
                                            'c', 'd', 'e', 'f'};
  std::string out(digits, '0');
  while (all_zero(out))
    for (std::size_t i = 0; i < digits; i += 16) {
      auto bits = generate();
      for (std::size_t j = i; j < std::min(digits, i + 16); ++j, bits >>= 4)
        out[j] = hex[bits & 0xf];
    }
  return out;
}

} // namespace

std::string trace_context::header() const {
  std::string out;
  out.reserve(v00_length);
  out.append("00-").append(trace_id).append(1, '-').append(parent_id);
  out.append(1, '-').append(flags);
  return out;
}

std::optional<trace_context> parse_traceparent(std::string_view h) {
  // Optional whitespace around a header value is the HTTP layer's to strip;
  // Beast keeps none, so anything here is part of the value.
  if (h.size() < v00_length || h[2] != '-' || h[35] != '-' || h[52] != '-')
    return std::nullopt;
  auto version = h.substr(0, 2);
  auto trace_id = h.substr(3, trace_id_digits);
  auto parent_id = h.substr(36, parent_id_digits);
  auto flags = h.substr(53, 2);
  if (!lower_hex(version) || version == "ff" || !lower_hex(trace_id) ||
      !lower_hex(parent_id) || !lower_hex(flags) || all_zero(trace_id) ||
      all_zero(parent_id))
    return std::nullopt;
  // Version 00 has nothing after the flags; a later version may add fields,
  // each after a '-'.
  if (version == "00" ? h.size() != v00_length
                      : h.size() > v00_length && h[v00_length] != '-')
    return std::nullopt;
  return trace_context{std::string(trace_id), std::string(parent_id),
                       std::string(flags)};
}

trace_context continue_trace(std::string_view incoming) {
  if (auto caller = parse_traceparent(incoming)) {
    caller->parent_id = random_hex(parent_id_digits);
    // Only the sampled bit is defined for version 00; a later version's
    // other bits are not ours to pass on as 00's.
    auto last = caller->flags.back();
    auto value = last <= '9' ? last - '0' : last - 'a' + 10;
    caller->flags = value & 1 ? "01" : "00";
    return *caller;
  }
  return {random_hex(trace_id_digits), random_hex(parent_id_digits), "01"};
}

} // namespace postd::core
