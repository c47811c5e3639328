#pragma once

// rate_limit_store over Redis: hit_batch (redis_rate_limiter.hpp) run on a
// redis_connection (which reconnects and applies the one error policy).

#include "persistence/rate_limit_store.hpp"
#include "persistence/redis_connection.hpp"

namespace postd::persistence {

class redis_rate_limit_store final : public rate_limit_store {
public:
  redis_rate_limit_store(redis_connection_options redis,
                         rate_limit_settings limits)
      : redis_(std::move(redis)), limits_(std::move(limits)) {}

  const rate_limit_settings& limits() const override { return limits_; }
  std::vector<core::throttle_decision>
  hit_batch(const std::vector<std::string>& keys) override {
    return redis_.run([&](redis_client& r) {
      return persistence::hit_batch(r, limits_, keys);
    });
  }

private:
  redis_connection redis_;
  rate_limit_settings limits_;
};

} // namespace postd::persistence
