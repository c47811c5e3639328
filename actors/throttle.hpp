#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <variant>

#include "actors/protocol.hpp"
#include "core/batch_queue.hpp"
#include "core/rate_limiter.hpp"
#include "persistence/rate_limit_store.hpp"

namespace postd::actors {

// How a throttle finds the enqueue actor for each allowed create: the one
// running now, or an invalid handle while it restarts (the create is then
// answered `unavailable` at once).
using enqueue_lookup = std::function<enqueue_actor()>;

struct throttle_settings {
  std::int64_t limit = 100;
  std::chrono::milliseconds ttl{60000};
};

struct throttle_state {
  core::rate_limiter limiter{100, std::chrono::milliseconds{60000}};
  static inline const char* name = "throttle";
};

// Decides each request against the per-key rate limit. Allowed creates go
// straight on to the enqueue actor (no extra hop back to the session);
// refused ones are answered at once.
throttle_actor::behavior_type
throttle(throttle_actor::stateful_pointer<throttle_state> self,
         throttle_settings settings, const enqueue_lookup& enqueue);

struct redis_throttle_settings {
  persistence::rate_limit_store_factory make_store; // holds the limits
  std::size_t max_batch = 512;                      // hits per round trip
};

struct redis_throttle_state {
  core::batch_queue<std::variant<create_request, throttle_request>> pending;
  std::unique_ptr<persistence::rate_limit_store> store;
  bool failing_open = false; // logged once per outage
  static inline const char* name = "redis_throttle";
};

// THROTTLE_STORE=redis: the same decisions, counted in Redis so that every
// postd instance shares one limit. Runs detached in production (hiredis
// blocks) and
// batches hits like the enqueue actor: one script call per round trip.
// While Redis is unreachable it lets requests through (fails open): the
// queue is in the same Redis, so creates answer 503 anyway, and reads of
// jobs and posts should not fail only because the limiter cannot count.
throttle_actor::behavior_type
redis_throttle(throttle_actor::stateful_pointer<redis_throttle_state> self,
               const redis_throttle_settings& settings,
               const enqueue_lookup& enqueue);

} // namespace postd::actors
