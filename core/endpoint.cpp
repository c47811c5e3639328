#include "core/endpoint.hpp"

#include <charconv>
#include <stdexcept>

namespace postd::core {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

endpoint parse_endpoint(std::string_view entry) {
  auto bad = [&](const char* why) {
    std::string what{"'"};
    what.append(entry).append("': ").append(why).append(
        " (expected host:port)");
    return std::invalid_argument(what);
  };
  std::string_view host;
  std::string_view port;
  if (entry.starts_with('[')) {
    auto close = entry.find(']');
    if (close == std::string_view::npos || close + 1 >= entry.size() ||
        entry[close + 1] != ':')
      throw bad("an IPv6 host is written [address]:port");
    host = entry.substr(1, close - 1);
    port = entry.substr(close + 2);
  } else {
    auto colon = entry.rfind(':');
    if (colon == std::string_view::npos)
      throw bad("no port");
    host = entry.substr(0, colon);
    port = entry.substr(colon + 1);
    if (host.find(':') != std::string_view::npos)
      throw bad("an IPv6 host is written [address]:port");
  }
  if (host.empty())
    throw bad("no host");
  int number = 0;
  auto [end, ec] =
      std::from_chars(port.data(), port.data() + port.size(), number);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() ||
      number < 1 || number > 65535)
    throw bad("the port must be a number from 1 to 65535");
  return {std::string(host), number};
}

} // namespace

std::string endpoint::to_string() const {
  const bool ipv6 = host.find(':') != std::string::npos;
  std::string out;
  if (ipv6)
    out += '[';
  out += host;
  if (ipv6)
    out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

std::vector<endpoint> parse_endpoints(std::string_view text) {
  std::vector<endpoint> out;
  if (trim(text).empty())
    return out;
  std::size_t from = 0;
  while (true) {
    auto comma = text.find(',', from);
    auto entry = trim(text.substr(from, comma == std::string_view::npos
                                            ? std::string_view::npos
                                            : comma - from));
    if (entry.empty())
      throw std::invalid_argument(
          "an empty entry (expected host:port,host:port,...)");
    out.push_back(parse_endpoint(entry));
    if (comma == std::string_view::npos)
      break;
    from = comma + 1;
  }
  return out;
}

} // namespace postd::core
