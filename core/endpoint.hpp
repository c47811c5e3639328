#pragma once

// A host and port, and lists of them as settings spell them
// ("host:port,host:port", REDIS_SENTINELS). Pure: no I/O.

#include <string>
#include <string_view>
#include <vector>

namespace postd::core {

struct endpoint {
  std::string host;
  int port = 0;

  // "host:port", an IPv6 host in brackets.
  std::string to_string() const;
  bool operator==(const endpoint&) const = default;
};

// "host:port,host:port,..." (an IPv6 host in brackets, "[::1]:26379"; spaces
// around entries ignored). Empty text: no endpoints. Throws
// std::invalid_argument naming the bad entry.
std::vector<endpoint> parse_endpoints(std::string_view text);

} // namespace postd::core
