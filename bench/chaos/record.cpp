#include "record.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <istream>
#include <ostream>

namespace postd::chaos {
namespace {

constexpr const char* header =
    "sent_ms,answered_ms,post,number,status,job_id,error";

// Splits a line of RFC 4180 CSV into its fields: quoted fields may hold
// commas and doubled quotes. A quoted field spanning lines is refused.
std::vector<std::string> split_csv(const std::string& line, int number) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c != '"')
        fields.back() += c;
      else if (i + 1 < line.size() && line[i + 1] == '"')
        fields.back() += '"', ++i;
      else
        quoted = false;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  if (quoted)
    throw record_error(number, "an unclosed quote");
  return fields;
}

int to_int(const std::string& field, int number, const char* what) {
  int value = 0;
  auto [end, ec] =
      std::from_chars(field.data(), field.data() + field.size(), value);
  if (ec != std::errc{} || end != field.data() + field.size())
    throw record_error(number, std::string("bad ") + what + " '" + field + "'");
  return value;
}

void require_plain(const std::string& field, const char* what) {
  if (field.find_first_of(",\"\r\n") != std::string::npos)
    throw std::invalid_argument(std::string("chaos record: ") + what +
                                " holds a comma, quote or line break");
}

} // namespace

double field_number(const std::string& field, int line, const char* what) {
  try {
    std::size_t used = 0;
    double value = std::stod(field, &used);
    if (used == field.size() && std::isfinite(value))
      return value;
  } catch (const std::exception&) {
  }
  throw record_error(line, std::string("bad ") + what + " '" + field + "'");
}

void write_header(std::ostream& out) {
  out << header << '\n';
}

void write_attempt(std::ostream& out, const attempt& a) {
  require_plain(a.post, "post");
  require_plain(a.job_id, "job_id");
  require_plain(a.error, "error");
  // Milliseconds to the microsecond, whatever the stream was set to.
  std::array<char, 64> times{};
  std::snprintf(times.data(), times.size(), "%.3f,%.3f", a.sent_ms,
                a.answered_ms);
  out << times.data() << ',' << a.post << ',' << a.number << ',' << a.status
      << ',' << a.job_id << ',' << a.error << '\n';
}

std::vector<attempt> read_attempts(std::istream& in) {
  std::vector<attempt> attempts;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (number == 1) {
      if (line != header)
        throw record_error(number,
                           std::string("expected the header '") + header + "'");
      continue;
    }
    if (line.empty())
      continue;
    auto f = split_csv(line, number);
    if (f.size() != 7)
      throw record_error(number, "expected 7 fields, found " +
                                     std::to_string(f.size()));
    attempt a;
    a.sent_ms = field_number(f[0], number, "sent_ms");
    a.answered_ms = field_number(f[1], number, "answered_ms");
    a.post = f[2];
    a.number = to_int(f[3], number, "number");
    a.status = to_int(f[4], number, "status");
    a.job_id = f[5];
    a.error = f[6];
    if (a.post.empty())
      throw record_error(number, "an empty post");
    attempts.push_back(std::move(a));
  }
  if (number == 0)
    throw record_error(1, "an empty file (no header)");
  return attempts;
}

std::vector<row> read_rows(std::istream& in) {
  std::vector<row> rows;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.empty())
      continue;
    auto f = split_csv(line, number);
    if (f.size() != 3)
      throw record_error(number, "expected 3 fields (content, jobId, id), "
                                 "found " +
                                     std::to_string(f.size()));
    rows.push_back({f[0], f[1], f[2]});
  }
  return rows;
}

} // namespace postd::chaos
