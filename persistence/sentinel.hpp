#pragma once

// Redis Sentinel discovery, after redis.io's client spec: ask the sentinels
// in order for the master's address (SENTINEL get-master-addr-by-name), move
// the first one that answered to the front, then check with ROLE that the
// address really is a master before using it. hiredis 0.14 has none of this.

#include <chrono>
#include <string>
#include <vector>

#include "core/endpoint.hpp"
#include "persistence/redis_client.hpp"

namespace postd::persistence {

using redis_endpoint = core::endpoint;

struct sentinel_options {
  std::vector<redis_endpoint> sentinels; // empty: Sentinel is not used
  std::string master_name = "mymaster";  // REDIS_SENTINEL_NAME
  std::string password;                  // REDIS_SENTINEL_PASSWORD
};

class sentinel_resolver {
public:
  // `timeout`: connect and reply timeout for each sentinel asked.
  sentinel_resolver(sentinel_options opts, std::chrono::milliseconds timeout);

  // The master's address as the first sentinel that knows it says; that
  // sentinel is asked first from then on. Throws redis_error, naming what
  // each sentinel answered, when none does.
  redis_endpoint master();

  const std::vector<redis_endpoint>& sentinels() const noexcept {
    return opts_.sentinels;
  }
  const std::string& master_name() const noexcept { return opts_.master_name; }

private:
  sentinel_options opts_;
  std::chrono::milliseconds timeout_;
};

// Throws redis_reply_error unless ROLE on `client` answers "master" (a
// sentinel's answer may be stale during a failover: the spec's check).
void require_master(redis_client& client);

} // namespace postd::persistence
