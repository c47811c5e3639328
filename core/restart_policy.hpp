#pragma once

// How a supervisor decides when to restart a crashed child, as plain classes
// (tested without CAF, on a clock the test moves).

#include <chrono>
#include <deque>
#include <vector>

#include "core/backoff.hpp"

namespace postd::core {

// Erlang's restart intensity as a plain class: more than `max_restarts`
// within `period` means the children keep dying and the supervisor
// escalates.
class restart_intensity {
public:
  using clock = std::chrono::steady_clock;
  restart_intensity(int max_restarts, std::chrono::milliseconds period)
      : max_(max_restarts), period_(period) {}

  // Records a restart at `now`; true while within the limit.
  bool record(clock::time_point now) {
    times_.push_back(now);
    return within_limit(now);
  }
  // True when at most `max_restarts` restarts fall within the last period
  // (so an escalation ends once a whole period passed calmly).
  bool within_limit(clock::time_point now) {
    while (!times_.empty() && times_.front() + period_ < now)
      times_.pop_front();
    return static_cast<int>(times_.size()) <= max_;
  }
  std::chrono::milliseconds period() const { return period_; }

private:
  int max_;
  std::chrono::milliseconds period_;
  std::deque<clock::time_point> times_;
};

// When to restart which writer: each slot backs off exponentially while it
// keeps crashing without getting anything done, and starts over at the base
// delay once it finished work since its start or ran longer than the longest
// delay (it was healthy: the next crash is a new story, and an occasional
// crash does not slow the pool down more and more).
class restart_policy {
public:
  using clock = std::chrono::steady_clock;
  struct decision {
    std::chrono::milliseconds delay; // before the slot's writer starts again
    bool escalated;                  // the pool is over its restart intensity
  };

  restart_policy(
      int slots, int max_restarts, std::chrono::milliseconds period,
      std::chrono::milliseconds base = std::chrono::milliseconds{100},
      std::chrono::milliseconds cap = std::chrono::milliseconds{10000})
      : intensity_(max_restarts, period), cap_(cap),
        delays_(static_cast<std::size_t>(slots), backoff{base, cap}),
        started_(static_cast<std::size_t>(slots)) {}

  void started(int slot, clock::time_point now) {
    started_[static_cast<std::size_t>(slot)] = now;
  }
  decision crashed(int slot, clock::time_point now,
                   bool made_progress = false) {
    auto i = static_cast<std::size_t>(slot);
    if (made_progress || now - started_[i] >= cap_)
      delays_[i].reset();
    bool calm = intensity_.record(now);
    return {delays_[i].next(), !calm};
  }
  bool escalated(clock::time_point now) {
    return !intensity_.within_limit(now);
  }
  std::chrono::milliseconds period() const { return intensity_.period(); }

private:
  restart_intensity intensity_;
  std::chrono::milliseconds cap_;
  std::vector<backoff> delays_;
  std::vector<clock::time_point> started_;
};

} // namespace postd::core
