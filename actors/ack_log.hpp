#pragma once

// The jobs this instance answered 202 in the last seconds, kept so that
// after a new Redis connection (a failover to a replica that missed them, a
// restart that lost its last writes) the enqueue actor can check them on the
// server it reaches now and add again those it lacks, with the same postId
// and, where no job holds it, the same job id: one row either way. Bounded
// by age and by memory; it outlives a restart of the enqueue actor (the
// runtime owns it). One user at a time.

#include <charconv>
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

  ack_log(std::chrono::milliseconds window, std::size_t max_bytes)
      : window_(window), max_bytes_(max_bytes) {}

  // Keeps `job`; returns how many older jobs it pushed out (over max_bytes).
  std::size_t record(acked_job job) {
    note_id(job.job_id);
    bytes_ += size_of(job);
    jobs_.push_back(std::move(job));
    std::size_t pushed_out = 0;
    while (bytes_ > max_bytes_ && jobs_.size() > 1) {
      pop();
      ++pushed_out;
    }
    dropped_ += pushed_out;
    return pushed_out;
  }
  // Forgets what is older than the window.
  void trim(clock::time_point now) {
    while (!jobs_.empty() && now - jobs_.front().at > window_)
      pop();
  }
  // A job id this instance was given: new ids must stay above it even on a
  // master whose counter a failover took back (add_jobs's id_floor).
  void note_id(const std::string& job_id) {
    std::int64_t id = 0;
    const auto* end = job_id.data() + job_id.size();
    if (std::from_chars(job_id.data(), end, id).ptr == end && id > highest_id_)
      highest_id_ = id;
  }

  std::deque<acked_job>& jobs() noexcept { return jobs_; }
  const std::deque<acked_job>& jobs() const noexcept { return jobs_; }
  bool empty() const noexcept { return jobs_.empty(); }
  std::size_t bytes() const noexcept { return bytes_; }
  // Acknowledged jobs forgotten before their time (over max_bytes).
  std::uint64_t dropped() const noexcept { return dropped_; }
  std::int64_t highest_id() const noexcept { return highest_id_; }

  // The connection (job_queue::connections()) whose server was last checked
  // against the log; a different one is checked again.
  std::uint64_t checked_connection = 0;

private:
  // The memory a job holds, roughly: its strings and its node (not its
  // id, which a recovery may change, and short ids live in the string).
  static std::size_t size_of(const acked_job& j) {
    return sizeof(acked_job) + j.post_id.size() + j.request.data.size() +
           j.request.author.size() + j.request.idempotency_key.size();
  }
  void pop() {
    bytes_ -= size_of(jobs_.front());
    jobs_.pop_front();
  }

  std::chrono::milliseconds window_;
  std::size_t max_bytes_;
  std::deque<acked_job> jobs_;
  std::size_t bytes_ = 0;
  std::uint64_t dropped_ = 0;
  std::int64_t highest_id_ = 0;
};

} // namespace postd::actors
