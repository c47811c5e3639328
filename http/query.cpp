#include "http/query.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "core/hex.hpp"

namespace postd::http {

namespace {

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out += ' ';
    } else if (c == '%') {
      auto byte = core::from_hex(in.substr(i + 1, 2));
      if (!byte || byte->size() != 1 || byte->front() == '\0')
        return std::nullopt;
      out += *byte;
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

// "YYYY-MM-DDTHH:MM:SS.mmmZ" naming a real instant (no 30 February).
bool valid_timestamp(const std::string& s) {
  if (s.size() != 24)
    return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    bool digit = s[i] >= '0' && s[i] <= '9';
    char want = "dddd-dd-ddTdd:dd:dd.dddZ"[i];
    if (want == 'd' ? !digit : s[i] != want)
      return false;
  }
  auto num = [&](std::size_t at, std::size_t len) {
    return std::stoi(s.substr(at, len));
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(5, 2) - 1;
  tm.tm_mday = num(8, 2);
  tm.tm_hour = num(11, 2);
  tm.tm_min = num(14, 2);
  tm.tm_sec = num(17, 2);
  std::tm back = tm;
  std::time_t t = timegm(&back); // normalizes out-of-range fields
  std::tm check{};
  gmtime_r(&t, &check);
  return num(0, 4) >= 1 && check.tm_year == tm.tm_year &&
         check.tm_mon == tm.tm_mon && check.tm_mday == tm.tm_mday &&
         check.tm_hour == tm.tm_hour && check.tm_min == tm.tm_min &&
         check.tm_sec == tm.tm_sec;
}

} // namespace

std::optional<std::map<std::string, std::string>>
parse_query(std::string_view target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string_view::npos)
    return out;
  auto query = target.substr(q + 1);
  if (auto hash = query.find('#'); hash != std::string_view::npos)
    query = query.substr(0, hash);
  while (!query.empty()) {
    auto amp = query.find('&');
    auto pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{}
                                          : query.substr(amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    auto value =
        percent_decode(eq == std::string_view::npos ? std::string_view{}
                                                    : pair.substr(eq + 1));
    if (!name || !value)
      return std::nullopt;
    out.emplace(std::move(*name), std::move(*value));
  }
  return out;
}

std::string encode_cursor(const core::post& last) {
  return core::to_hex(last.created_at + "|" + last.id);
}

std::optional<core::post> decode_cursor(std::string_view cursor) {
  if (cursor.empty() || cursor.size() % 2 != 0 ||
      cursor.size() > std::size_t{2} * 160)
    return std::nullopt;
  auto decoded = core::from_hex(cursor);
  if (!decoded)
    return std::nullopt;
  const std::string& plain = *decoded;
  auto bar = plain.find('|');
  if (bar == std::string::npos)
    return std::nullopt;
  core::post at;
  at.created_at = plain.substr(0, bar);
  at.id = plain.substr(bar + 1);
  bool id_ok = !at.id.empty() && at.id.size() <= 128 &&
               std::none_of(at.id.begin(), at.id.end(), [](char c) {
                 return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
               });
  if (!id_ok || !valid_timestamp(at.created_at))
    return std::nullopt;
  return at;
}

} // namespace postd::http
