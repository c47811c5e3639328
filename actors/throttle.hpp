#pragma once

#include <chrono>
#include <cstdint>

#include "actors/protocol.hpp"
#include "actors/rate_limiter.hpp"

namespace postd::actors {

struct throttle_settings {
  std::int64_t limit = 100;
  std::chrono::milliseconds ttl{60000};
};

struct throttle_state {
  rate_limiter limiter{100, std::chrono::milliseconds{60000}};
  static inline const char* name = "throttle";
};

// Decides each request against the per-key rate limit. Allowed creates go
// straight on to the enqueue actor (no extra hop back to the session);
// refused ones are answered at once.
throttle_actor::behavior_type
throttle(throttle_actor::stateful_pointer<throttle_state> self,
         throttle_settings settings, enqueue_actor enqueue);

} // namespace postd::actors
