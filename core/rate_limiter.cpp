#include "core/rate_limiter.hpp"

#include <algorithm>

namespace postd::core {

namespace {

// Seconds until `t`, rounded up, as the throttler reports them.
std::int64_t seconds_until(rate_limiter::clock::time_point t,
                           rate_limiter::clock::time_point now) {
  auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count();
  return ms <= 0 ? 0 : (ms + 999) / 1000;
}

} // namespace

rate_limiter::rate_limiter(std::int64_t limit, std::chrono::milliseconds ttl)
    : limit_(limit), ttl_(ttl),
      slot_width_(std::max<std::chrono::nanoseconds>(
          std::chrono::nanoseconds{1},
          std::chrono::nanoseconds(ttl) / slots_per_window)) {}

void rate_limiter::expire_hits(entry& e, clock::time_point now) const {
  while (!e.hits.empty() && e.hits.front().start + ttl_ <= now) {
    e.total -= e.hits.front().count;
    e.hits.pop_front();
  }
}

void rate_limiter::add_hit(entry& e, clock::time_point now) const {
  if (!e.hits.empty() && now - e.hits.back().start < slot_width_)
    ++e.hits.back().count;
  else
    e.hits.push_back({now, 1});
  ++e.total;
}

throttle_decision rate_limiter::hit(const std::string& key,
                                    clock::time_point now) {
  auto [it, fresh] = entries_.try_emplace(key);
  entry& e = it->second;
  if (fresh || e.window_end <= now)
    e.window_end = now + ttl_;
  expire_hits(e, now);
  if (!e.blocked)
    add_hit(e, now);
  if (!e.blocked && e.total > limit_) {
    e.blocked = true;
    e.blocked_until = now + ttl_;
  }
  if (e.blocked && e.blocked_until <= now) {
    e.blocked = false;
    e.hits.clear();
    e.total = 0;
    add_hit(e, now);
  }
  throttle_decision d;
  d.allowed = !e.blocked;
  d.limit = limit_;
  d.remaining = std::max<std::int64_t>(0, limit_ - e.total);
  d.reset_s = seconds_until(e.window_end, now);
  d.retry_after_s = e.blocked ? seconds_until(e.blocked_until, now) : 0;
  return d;
}

void rate_limiter::sweep(clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    entry& e = it->second;
    expire_hits(e, now);
    bool idle = e.total == 0 && (!e.blocked || e.blocked_until <= now) &&
                e.window_end <= now;
    it = idle ? entries_.erase(it) : std::next(it);
  }
}

} // namespace postd::core
