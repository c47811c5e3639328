#pragma once

// The post queue in Redis, in Bull 4's key layout (SPEC §5), so Bull's own
// tools and Node workers can share it. Every state change is one Lua script.

#include "persistence/redis_client.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace postd::persistence {

struct queue_keys {
  std::string prefix = "bull";
  std::string name = "post-creation";

  // "<prefix>:<name>:" — the job hash of id 7 is base() + "7".
  std::string base() const { return prefix + ":" + name + ":"; }
  std::string key(std::string_view suffix) const {
    return base() + std::string(suffix);
  }
};

// The job name the old NestJS service used; Node workers dispatch on it.
inline constexpr std::string_view create_post_job_name = "create-post";

struct job_request {
  std::string data;            // Bull's `data` field (JSON text)
  std::string author;          // scopes the idempotency key
  std::string idempotency_key; // empty: none
  int attempts = 3;
  int backoff_ms = 1000;
  std::int64_t timestamp_ms = 0;
};

enum class add_status { added, duplicate, queue_full };

struct add_result {
  add_status status;
  std::string job_id; // empty when queue_full
};

// Adds a batch of jobs in one script call (one round trip). A job whose
// idempotency key (same author) was seen within 24 h is not added again:
// its first job id comes back as `duplicate`. While `wait` holds
// max_waiting jobs or more, jobs come back `queue_full` and nothing of them
// is written.
std::vector<add_result> add_jobs(redis_client& redis, const queue_keys& keys,
                                 const std::vector<job_request>& jobs,
                                 std::int64_t max_waiting);

struct active_job {
  std::string id;
  std::string name;
  std::string data;
  std::string opts;
  int attempts_made = 0;
  std::int64_t timestamp_ms = 0;
};

// Moves up to `max` jobs from the right end of `wait` onto `active`, each
// locked with `token` for `lock_for` (Bull's moveToActive). When `wait` is
// empty, blocks up to `block_for` (BRPOPLPUSH) for the first one; an empty
// result means nothing arrived in time.
std::vector<active_job> take_jobs(redis_client& redis, const queue_keys& keys,
                                  std::size_t max, const std::string& token,
                                  std::chrono::milliseconds lock_for,
                                  std::chrono::milliseconds block_for);

// Re-arms the locks `token` holds on these jobs; returns the ids whose lock
// was lost (another worker or the stalled check took them).
std::vector<std::string> extend_locks(redis_client& redis,
                                      const queue_keys& keys,
                                      const std::vector<std::string>& job_ids,
                                      const std::string& token,
                                      std::chrono::milliseconds lock_for);

struct completion {
  std::string job_id;
  std::string return_value; // JSON text stored as `returnvalue`
};

// Moves jobs held by `token` from active to completed (finishedOn,
// returnvalue, lock released), deletes the hash of removeOnComplete jobs,
// trims `completed` to its newest keep_completed entries (deleting the
// trimmed jobs' hashes). Returns the ids whose lock was lost.
std::vector<std::string> complete_jobs(redis_client& redis,
                                       const queue_keys& keys,
                                       const std::vector<completion>& done,
                                       const std::string& token,
                                       std::int64_t keep_completed);

struct failure {
  std::string job_id;
  std::string reason;
};

enum class failure_outcome { retried, failed, lock_lost };

// For each job held by `token`: attemptsMade+1; if attempts remain, moves it
// to `delayed` with exponential backoff round((2^attemptsMade - 1) *
// backoff_ms); otherwise to `failed` with failedReason (trimmed to
// keep_failed).
std::vector<failure_outcome> fail_jobs(redis_client& redis,
                                       const queue_keys& keys,
                                       const std::vector<failure>& failed,
                                       const std::string& token, int backoff_ms,
                                       std::int64_t keep_failed);

// Moves delayed jobs whose time has come back to `wait`; returns how many.
std::int64_t promote_delayed(redis_client& redis, const queue_keys& keys,
                             std::int64_t now_ms);

struct job_counts {
  std::int64_t waiting = 0;
  std::int64_t active = 0;
  std::int64_t completed = 0;
  std::int64_t failed = 0;
  std::int64_t delayed = 0;
  std::int64_t paused = 0;
};

// All counts in one MULTI/EXEC, as Bull's getJobCounts computes them.
job_counts count_jobs(redis_client& redis, const queue_keys& keys);

struct job_info {
  std::string id;
  std::string state; // waiting|active|delayed|completed|failed|paused
  std::string data;
  std::string return_value;
  std::string failed_reason;
  int attempts_made = 0;
};

// One job as Bull's Job.fromId + getState see it; nullopt if no hash.
std::optional<job_info> get_job(redis_client& redis, const queue_keys& keys,
                                const std::string& job_id);

} // namespace postd::persistence
