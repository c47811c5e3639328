#pragma once

// Where THROTTLE_STORE=redis counts hits, as an interface: redis_rate_limit_
// store implements it (redis_rate_limiter.hpp's script); actor tests use a
// fake.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/rate_limiter.hpp"
#include "persistence/redis_rate_limiter.hpp"

namespace postd::persistence {

class rate_limit_store {
public:
  virtual ~rate_limit_store() = default;
  // One decision per key, in order; throws redis_error when it cannot count.
  virtual std::vector<core::throttle_decision>
  hit_batch(const std::vector<std::string>& keys) = 0;
  // What it counts against; also what the throttle answers while it cannot
  // count (it fails open).
  virtual const rate_limit_settings& limits() const = 0;
};

using rate_limit_store_factory =
    std::function<std::unique_ptr<rate_limit_store>()>;

} // namespace postd::persistence
