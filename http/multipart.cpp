#include "http/multipart.hpp"

#include <algorithm>
#include <cctype>
#include <utility>
#include <vector>

#include "core/text.hpp"

namespace postd::http {

namespace {

constexpr std::string_view crlf = "\r\n";

// RFC 2046 bchars: digits, letters and '()+_,-./:=? and space (not last).
bool valid_boundary(std::string_view b) {
  constexpr std::string_view other = "'()+_,-./:=? ";
  return !b.empty() && b.size() <= 70 && b.back() != ' ' &&
         std::all_of(b.begin(), b.end(), [&](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
                  (c >= 'A' && c <= 'Z') ||
                  other.find(c) != std::string_view::npos;
         });
}

// A parameter list `; a=b; c="d"` as (lower-cased name, value) pairs, the
// quoted values unescaped; nullopt when malformed.
std::optional<std::vector<std::pair<std::string, std::string>>>
parameters(std::string_view rest) {
  std::vector<std::pair<std::string, std::string>> out;
  while (true) {
    rest = core::trim_ows(rest);
    if (rest.empty())
      return out;
    if (rest.front() != ';')
      return std::nullopt;
    rest = core::trim_ows(rest.substr(1));
    if (rest.empty())
      return out; // a trailing ';' is tolerated
    auto eq = rest.find('=');
    if (eq == std::string_view::npos)
      return std::nullopt;
    std::string name{core::trim_ows(rest.substr(0, eq))};
    std::transform(name.begin(), name.end(), name.begin(), [](char c) {
      return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    });
    rest = core::trim_ows(rest.substr(eq + 1));
    std::string value;
    if (!rest.empty() && rest.front() == '"') {
      std::size_t i = 1;
      for (; i < rest.size() && rest[i] != '"'; ++i) {
        if (rest[i] == '\\' && i + 1 < rest.size())
          ++i;
        value += rest[i];
      }
      if (i >= rest.size())
        return std::nullopt; // unterminated
      rest = rest.substr(i + 1);
    } else {
      auto end = rest.find(';');
      value = std::string(core::trim_ows(rest.substr(0, end)));
      rest =
          end == std::string_view::npos ? std::string_view{} : rest.substr(end);
    }
    if (name.empty())
      return std::nullopt;
    out.emplace_back(std::move(name), std::move(value));
  }
}

} // namespace

std::optional<std::string> multipart_boundary(std::string_view content_type) {
  auto semi = content_type.find(';');
  if (!core::iequals(core::trim_ows(content_type.substr(0, semi)),
                     "multipart/form-data") ||
      semi == std::string_view::npos)
    return std::nullopt;
  auto params = parameters(content_type.substr(semi));
  if (!params)
    return std::nullopt;
  for (const auto& [name, value] : *params)
    if (name == "boundary")
      return valid_boundary(value) ? std::optional<std::string>{value}
                                   : std::nullopt;
  return std::nullopt;
}

multipart_parser::multipart_parser(std::string_view boundary, callbacks cb,
                                   limits l)
    : delimiter_("\r\n--" + std::string(boundary)), cb_(std::move(cb)),
      limits_(l),
      // A body may open with its first boundary, without the CRLF every
      // later delimiter has: read it as if one came first.
      buf_(crlf) {}

bool multipart_parser::fail(std::string why) {
  if (error_.empty())
    error_ = std::move(why);
  buf_.clear();
  return false;
}

bool multipart_parser::stop() {
  stopped_ = true;
  return fail("stopped");
}

bool multipart_parser::feed(std::string_view chunk) {
  if (failed())
    return false;
  if (state_ == state::epilogue)
    return true; // after the closing boundary: ignored
  buf_.append(chunk);
  while (step()) {
  }
  return !failed();
}

bool multipart_parser::finish() {
  if (failed())
    return false;
  if (state_ != state::epilogue)
    return fail("the body ended before its closing boundary");
  return true;
}

bool multipart_parser::step() {
  switch (state_) {
  case state::preamble:
  case state::data: {
    auto at = buf_.find(delimiter_);
    auto keep = delimiter_.size() - 1; // may be a delimiter's beginning
    auto emit = at != std::string::npos
                    ? at
                    : (buf_.size() > keep ? buf_.size() - keep : 0);
    if (state_ == state::data && emit > 0 &&
        !cb_.on_data(std::string_view{buf_}.substr(0, emit)))
      return stop();
    if (at == std::string::npos) {
      buf_.erase(0, emit);
      return false;
    }
    buf_.erase(0, at + delimiter_.size());
    if (state_ == state::data && !cb_.on_part_end())
      return stop();
    state_ = state::after_delimiter;
    return true;
  }
  case state::after_delimiter: {
    // "--": the closing delimiter; else optional padding, then CRLF.
    if (buf_.size() < 2)
      return false;
    if (buf_.compare(0, 2, "--") == 0) {
      if (parts_ == 0)
        return fail("the body has no part");
      state_ = state::epilogue;
      buf_.clear();
      return false;
    }
    // The same verdict whatever the chunks: the padding is judged by its
    // length alone, and only once it is known to be whole.
    constexpr std::size_t max_padding = 1024;
    auto pad = buf_.find_first_not_of(" \t");
    if ((pad == std::string::npos ? buf_.size() : pad) > max_padding)
      return fail("a boundary line is too long");
    if (pad == std::string::npos || buf_.size() < pad + 2)
      return false;
    if (buf_.compare(pad, 2, crlf) != 0)
      return fail("a boundary is followed by something else than CRLF");
    buf_.erase(0, pad + 2);
    if (++parts_ > limits_.max_parts)
      return fail("more than " + std::to_string(limits_.max_parts) + " parts");
    state_ = state::headers;
    return true;
  }
  case state::headers: {
    // An empty header block is just its CRLF.
    std::size_t end = buf_.compare(0, 2, crlf) == 0 ? 0 : buf_.find("\r\n\r\n");
    // Waits while the block may still end within the limit (its CRLF CRLF
    // possibly cut after any of its first three bytes).
    if (end == std::string::npos)
      return buf_.size() < limits_.max_header_bytes + 4
                 ? false
                 : fail("a part's headers exceed " +
                        std::to_string(limits_.max_header_bytes) + " bytes");
    if (end > limits_.max_header_bytes)
      return fail("a part's headers exceed " +
                  std::to_string(limits_.max_header_bytes) + " bytes");
    if (!parse_headers(std::string_view{buf_}.substr(0, end)))
      return false;
    buf_.erase(0, end == 0 ? 2 : end + 4);
    state_ = state::data; // a delimiter right away is an empty part
    return true;
  }
  case state::epilogue:
    buf_.clear();
    return false;
  }
  return false;
}

bool multipart_parser::parse_headers(std::string_view block) {
  multipart_part part;
  bool disposition = false;
  while (!block.empty()) {
    auto eol = block.find(crlf);
    auto line = block.substr(0, eol);
    block = eol == std::string_view::npos ? std::string_view{}
                                          : block.substr(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0)
      return fail("a part header is not `name: value`");
    auto name = line.substr(0, colon);
    auto value = core::trim_ows(line.substr(colon + 1));
    if (core::iequals(name, "Content-Disposition")) {
      auto semi = value.find(';');
      if (!core::iequals(core::trim_ows(value.substr(0, semi)), "form-data"))
        return fail("a part is not form-data");
      auto params =
          parameters(semi == std::string_view::npos ? std::string_view{}
                                                    : value.substr(semi));
      if (!params)
        return fail("a part's Content-Disposition is malformed");
      for (auto& [key, v] : *params)
        if (key == "name") {
          part.name = std::move(v);
        } else if (key == "filename") {
          part.filename = std::move(v);
          part.has_filename = true;
        }
      disposition = true;
    } else if (core::iequals(name, "Content-Type")) {
      part.content_type = std::string(value);
    }
  }
  if (!disposition)
    return fail("a part has no Content-Disposition");
  if (!cb_.on_part(part))
    return stop();
  return true;
}

} // namespace postd::http
