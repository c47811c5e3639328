#pragma once

// The rate limit of @nestjs/throttler 6, as a plain class: per key, a
// sliding window of `limit` hits per `ttl` (each hit expires ttl after it
// was made); the hit over the limit blocks the key for `block` (one window),
// during which hits are not counted; when the block ends the count restarts.
// X-RateLimit-Reset is the throttler's own per-key window end, renewed when
// it has passed.

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>

namespace postd::core {

struct throttle_decision {
  bool allowed = true;
  std::int64_t limit = 0;
  std::int64_t remaining = 0;
  std::int64_t reset_s = 0;       // X-RateLimit-Reset
  std::int64_t retry_after_s = 0; // Retry-After, when refused
};

class rate_limiter {
public:
  using clock = std::chrono::steady_clock;

  rate_limiter(std::int64_t limit, std::chrono::milliseconds ttl);

  throttle_decision hit(const std::string& key, clock::time_point now);

  // Forgets keys with no live hits, no block and an ended window, so memory
  // stays bounded by the keys seen within one window.
  void sweep(clock::time_point now);

  std::size_t keys() const { return entries_.size(); }

private:
  // Hits made within one slot of time share a counter, so a key costs at
  // most slots_per_window entries however high the limit.
  struct slot {
    clock::time_point start;
    std::int64_t count;
  };
  struct entry {
    std::deque<slot> hits;
    std::int64_t total = 0;
    clock::time_point window_end;
    clock::time_point blocked_until;
    bool blocked = false;
  };
  static constexpr int slots_per_window = 64;

  void expire_hits(entry& e, clock::time_point now) const;
  void add_hit(entry& e, clock::time_point now) const;

  std::int64_t limit_;
  std::chrono::milliseconds ttl_;
  std::chrono::nanoseconds slot_width_;
  std::unordered_map<std::string, entry> entries_;
};

} // namespace postd::core
