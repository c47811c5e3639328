#include "http/files.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file_store.hpp"
#include "core/image.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "http/errors.hpp"

namespace postd::http {

namespace {

// A stored file's bytes never change (its name is their digest).
constexpr const char* cache_forever = "public, max-age=31536000, immutable";

// An open file descriptor, closed on every way out.
struct open_file {
  int fd;
  explicit open_file(int f) : fd(f) {}
  ~open_file() {
    if (fd >= 0)
      ::close(fd);
  }
  open_file(const open_file&) = delete;
  open_file& operator=(const open_file&) = delete;
};

api_response not_found(std::string_view name) {
  return error_response(404, "File " + std::string(name) + " not found");
}

api_response unreadable(std::string_view name, const std::string& why) {
  log::error("cannot read a stored file", {{"file", name}, {"error", why}});
  return error_response(500, "File " + std::string(name) + " cannot be read");
}

// Whether If-None-Match `field` names the entity tag "<opaque>", by the weak
// comparison (RFC 9110 §13.1.2: W/ aside, the opaque tags are equal), or is
// `*`. A malformed list matches nothing from where it breaks.
bool none_match(std::string_view field, std::string_view opaque) {
  if (core::trim_ows(field) == "*")
    return true;
  for (;;) {
    while (!field.empty() && (field.front() == ' ' || field.front() == '\t' ||
                              field.front() == ','))
      field.remove_prefix(1);
    if (field.substr(0, 2) == "W/")
      field.remove_prefix(2);
    if (field.empty() || field.front() != '"')
      return false;
    // An opaque tag may hold commas, never a DQUOTE.
    auto close = field.find('"', 1);
    if (close == std::string_view::npos)
      return false;
    if (field.substr(1, close - 1) == opaque)
      return true;
    field.remove_prefix(close + 1);
  }
}

// A byte position: digits only, saturated at the largest uint64_t (as far
// past the end of any file); nullopt when empty or not digits.
std::optional<std::uint64_t> position(std::string_view digits) {
  if (digits.empty())
    return std::nullopt;
  constexpr auto max = std::numeric_limits<std::uint64_t>::max();
  std::uint64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9')
      return std::nullopt;
    auto d = static_cast<std::uint64_t>(c - '0');
    n = n > (max - d) / 10 ? max : n * 10 + d;
  }
  return n;
}

// What a Range field asks of a file of `size` bytes.
struct range_answer {
  enum kind_t { whole, part, unsatisfiable } kind = whole;
  std::uint64_t first = 0;
  std::uint64_t last = 0; // inclusive
};

// RFC 9110 §14.1.2 for one range-spec; a field that is not exactly one
// byte range (invalid, another unit, several ranges) asks for the whole
// file: a server may ignore Range (§14.2).
range_answer parse_range(std::string_view field, std::uint64_t size) {
  field = core::trim_ows(field);
  if (!core::istarts_with(field, "bytes="))
    return {};
  std::string_view spec;
  int specs = 0;
  for (auto set = field.substr(6); !set.empty();) {
    auto comma = set.find(',');
    // Empty list elements are allowed (RFC 9110 §5.6.1).
    if (auto element = core::trim_ows(set.substr(0, comma)); !element.empty()) {
      spec = element;
      ++specs;
    }
    set = comma == std::string_view::npos ? std::string_view{}
                                          : set.substr(comma + 1);
  }
  auto dash = spec.find('-');
  if (specs != 1 || dash == std::string_view::npos)
    return {};
  auto first = position(spec.substr(0, dash));
  auto last = position(spec.substr(dash + 1));
  if (dash == 0) { // a suffix: the last N bytes
    if (!last)
      return {};
    if (*last == 0 || size == 0)
      return {range_answer::unsatisfiable};
    return {range_answer::part, size - std::min(*last, size), size - 1};
  }
  if (!first || (dash + 1 < spec.size() && !last) || (last && *last < *first))
    return {};
  if (*first >= size)
    return {range_answer::unsatisfiable};
  return {range_answer::part, *first, std::min(last.value_or(size), size - 1)};
}

// `length` bytes of `fd` from `offset` into `out`; the reason when it
// cannot (read error, or the file ends sooner).
std::optional<std::string> read_at(int fd, std::uint64_t offset,
                                   std::uint64_t length, std::string& out) {
  try {
    out.assign(static_cast<std::size_t>(length), '\0');
  } catch (const std::exception& e) { // bad_alloc, length_error
    return std::string("cannot hold ") + std::to_string(length) +
           " bytes: " + e.what();
  }
  for (std::size_t done = 0; done < out.size();) {
    auto n = ::pread(fd, out.data() + done, out.size() - done,
                     static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::string("read: ") + std::strerror(errno);
    if (n == 0)
      return std::string("the file ended before its size");
    done += static_cast<std::size_t>(n);
  }
  return std::nullopt;
}

} // namespace

api_response serve_file(const std::filesystem::path& dir, std::string_view name,
                        const file_request& req) {
  if (!core::stored_file_name(name))
    return not_found(name);
  // Opened once and stat'ed by its descriptor: a file removed meanwhile is
  // either not found or read whole. O_NONBLOCK: a FIFO planted under a
  // stored name must not hang the open; it is no regular file, so 404.
  open_file file{::open((dir / name).c_str(),
                        O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW)};
  if (file.fd < 0) {
    if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
      return not_found(name);
    return unreadable(name, std::string("open: ") + std::strerror(errno));
  }
  struct stat st {};
  if (::fstat(file.fd, &st) != 0)
    return unreadable(name, std::string("fstat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode))
    return not_found(name);
  const auto size = static_cast<std::uint64_t>(st.st_size);

  api_response r;
  r.content_type =
      std::string(core::image_type_of_extension(name.substr(65))->content_type);
  const auto digest = name.substr(0, 64);
  r.headers = {{"ETag", "\"" + std::string(digest) + "\""},
               {"Cache-Control", cache_forever}};
  // If-None-Match is evaluated before Range (RFC 9110 §13.2.2).
  if (none_match(req.if_none_match, digest)) {
    r.status = 304;
    return r;
  }
  r.headers.emplace_back("Accept-Ranges", "bytes");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");

  auto range = req.head ? range_answer{} : parse_range(req.range, size);
  if (range.kind == range_answer::unsatisfiable) {
    auto e = error_response(416, "Range Not Satisfiable");
    e.headers = {{"Accept-Ranges", "bytes"},
                 {"Content-Range", "bytes */" + std::to_string(size)}};
    return e;
  }
  if (range.kind == range_answer::whole && size > 0)
    range.last = size - 1;
  const auto length = size == 0 ? 0 : range.last - range.first + 1;
  if (auto why = read_at(file.fd, range.first, length, r.body))
    return unreadable(name, *why);
  if (range.kind == range_answer::part) {
    r.status = 206;
    r.headers.emplace_back("Content-Range",
                           "bytes " + std::to_string(range.first) + "-" +
                               std::to_string(range.last) + "/" +
                               std::to_string(size));
  }
  return r;
}

} // namespace postd::http
