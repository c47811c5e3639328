#pragma once

// The jobs this instance answered 202 in the last seconds, kept so that
// after a new Redis connection (a failover to a replica that missed them, a
// restart that lost its last writes) the enqueue actor can check them on the
// server it reaches now and add again those it lacks, with the same postId:
// one row either way. Bounded by age and by count; it outlives a restart of
// the enqueue actor (the runtime owns it). One user at a time.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>

#include "persistence/bull_queue.hpp"

namespace postd::actors {

struct acked_job {
  std::chrono::steady_clock::time_point at;
  std::string job_id;  // where it was added (updated when added again)
  std::string post_id; // in request.data
  persistence::job_request request;
};

class ack_log {
public:
  using clock = std::chrono::steady_clock;

  ack_log(std::chrono::milliseconds window, std::size_t max_jobs)
      : window_(window), max_jobs_(max_jobs) {}

  void record(acked_job job) {
    jobs_.push_back(std::move(job));
    if (jobs_.size() > max_jobs_) {
      jobs_.pop_front();
      ++dropped_;
    }
  }
  // Forgets what is older than the window.
  void trim(clock::time_point now) {
    while (!jobs_.empty() && now - jobs_.front().at > window_)
      jobs_.pop_front();
  }

  std::deque<acked_job>& jobs() noexcept { return jobs_; }
  bool empty() const noexcept { return jobs_.empty(); }
  // Acknowledged jobs forgotten before their time (over max_jobs).
  std::uint64_t dropped() const noexcept { return dropped_; }

  // The connection (job_queue::connections()) whose server was last checked
  // against the log; a different one is checked again.
  std::uint64_t checked_connection = 0;

private:
  std::chrono::milliseconds window_;
  std::size_t max_jobs_;
  std::deque<acked_job> jobs_;
  std::uint64_t dropped_ = 0;
};

} // namespace postd::actors
