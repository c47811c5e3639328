#pragma once

// THROTTLE_STORE=redis: actors::rate_limiter's rate limit (the semantics of
// @nestjs/throttler 6) kept in Redis, so all postd instances share one limit
// per key. Time is the Redis server's clock, so instances whose clocks are
// skewed still agree. Every key expires on its own once it is idle.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/rate_limiter.hpp" // throttle_decision: a plain header, no CAF
#include "persistence/redis_client.hpp"

namespace postd::persistence {

struct rate_limit_settings {
  std::int64_t limit = 100;
  std::chrono::milliseconds ttl{60000};
  std::string key_prefix; // e.g. "<QUEUE_PREFIX>:throttle:"
};

// Counts one hit for each key, in order (a key repeated in the batch counts
// each time), in one round trip: one atomic script over the whole batch.
// Returns one decision per key. Throws std::invalid_argument for a ttl below
// 1 ms or a negative limit, redis_error when the connection failed (the
// client is then broken()) and redis_reply_error when Redis answered with an
// error (OOM, READONLY): the client stays usable.
std::vector<core::throttle_decision>
hit_batch(redis_client& redis, const rate_limit_settings& s,
          const std::vector<std::string>& keys);

// The Redis key holding `key`'s state: the prefix and a hex digest of the
// key, because keys made of client IPs and routes may hold any bytes and
// any length.
std::string rate_limit_key(const rate_limit_settings& s, std::string_view key);

} // namespace postd::persistence
