#pragma once

// The queue operations the actors use, as an interface: bull_job_queue
// implements them over Redis in Bull 4's layout (see bull_queue.hpp for what
// each one does); actor tests use an in-memory fake. A queue is bound to one
// set of keys. Every operation throws redis_error when Redis could not be
// reached or answered with an error (nothing of the call is then known to
// have happened).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "persistence/bull_queue.hpp"

namespace postd::persistence {

class job_queue {
public:
  virtual ~job_queue() = default;

  virtual const queue_keys& keys() const = 0;

  // The enqueue actor (bull_queue.hpp's add_jobs).
  virtual std::vector<add_result> add_jobs(const std::vector<job_request>& jobs,
                                           std::int64_t max_waiting,
                                           std::int64_t id_floor) = 0;

  // After add_jobs, on the same connection: Redis's WAIT for `replicas`
  // replicas to confirm every write made on it so far, at most `timeout`;
  // returns how many did.
  virtual int wait_replicas(int replicas,
                            std::chrono::milliseconds timeout) = 0;
  // The enqueue actor's recovery log: connections made so far (no I/O), a
  // PING (connecting if needed; returns connections()), and which of the
  // (job id, postId) pairs are still there.
  virtual std::uint64_t connections() const = 0;
  virtual std::uint64_t ping() = 0;
  virtual std::vector<bool>
  have_jobs(const std::vector<std::pair<std::string, std::string>>& jobs) = 0;
  // The writers.
  virtual std::vector<active_job>
  take_jobs(std::size_t max, const std::string& token,
            std::chrono::milliseconds lock_for,
            std::chrono::milliseconds block_for) = 0;
  virtual std::vector<std::string>
  release_jobs(const std::vector<std::string>& job_ids,
               const std::string& token) = 0;
  virtual std::vector<std::string>
  release_orphans(const std::vector<std::string>& held,
                  const std::string& token) = 0;
  virtual std::vector<std::string>
  extend_locks(const std::vector<std::string>& job_ids,
               const std::string& token,
               std::chrono::milliseconds lock_for) = 0;
  virtual std::vector<std::string>
  complete_jobs(const std::vector<completion>& done, const std::string& token,
                std::int64_t keep_completed) = 0;
  virtual std::vector<failure_outcome>
  fail_jobs(const std::vector<failure>& failed, const std::string& token,
            int backoff_ms, std::int64_t keep_failed) = 0;
  virtual std::int64_t promote_delayed(std::int64_t now_ms) = 0;
  virtual stalled_jobs recover_stalled(int max_stalled_count,
                                       std::chrono::milliseconds interval,
                                       std::int64_t keep_failed) = 0;

  // The monitor and the readers.
  virtual job_counts count_jobs() = 0;
  virtual replication_state replication() = 0;
  virtual std::optional<job_info> get_job(const std::string& job_id) = 0;
};

// Each call makes a queue with its own connection: an actor calls it once
// at start, so a restarted actor starts on a fresh connection.
using job_queue_factory = std::function<std::unique_ptr<job_queue>()>;

} // namespace postd::persistence
