#pragma once

// The post queue in Redis, in Bull 4's key layout (SPEC §5), so Bull's own
// tools and Node workers can share it. Every state change is one Lua script.
// Every function throws redis_error when the connection failed (the client is
// then broken()) and redis_reply_error when Redis answered with an error
// (OOM, READONLY, a wrongly typed key): the client stays usable.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/job.hpp"
#include "persistence/redis_client.hpp"

namespace postd::persistence {

using core::active_job;
using core::completion;
using core::failure;
using core::job_counts;
using core::job_info;
using core::replication_state;

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
  // Empty: the next id of the queue's counter. Set (the recovery log adding
  // again a job a new master lacks): that id, unless a job holds it.
  std::string job_id;
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
// is written (`paused` counts too). The idempotency key is
// <base>idem:<author>:<key> (':' and '%' in the author percent-encoded)
// holding the first job's id for 24 h. The id counter is first raised to
// `id_floor` (and past every wanted id given), so that ids a failover took
// back from the counter are not given again to other posts.
std::vector<add_result> add_jobs(redis_client& redis, const queue_keys& keys,
                                 const std::vector<job_request>& jobs,
                                 std::int64_t max_waiting,
                                 std::int64_t id_floor = 0);

// Moves up to `max` jobs from the right end of `wait` onto `active`, each
// locked with `token` for `lock_for` (Bull's moveToActive). When `wait` is
// empty, blocks up to `block_for` (BRPOPLPUSH) for the first one; an empty
// result means nothing arrived in time (block_for <= 0: never blocks). Ids
// whose hash is gone are dropped from `active` and not returned.
std::vector<active_job> take_jobs(redis_client& redis, const queue_keys& keys,
                                  std::size_t max, const std::string& token,
                                  std::chrono::milliseconds lock_for,
                                  std::chrono::milliseconds block_for);

// Gives back jobs `token` took but will not finish (Bull's stalled check,
// at once): each whose lock is ours or gone goes from active to the right
// end of wait (paused when the queue is), in taken order, its lock released.
// Returns the ids given back; the others are someone else's now.
std::vector<std::string> release_jobs(redis_client& redis,
                                      const queue_keys& keys,
                                      const std::vector<std::string>& job_ids,
                                      const std::string& token);

// After a new connection (a failover): the jobs of active locked with
// `token` but not in `held` (the worker finished or gave them back on the
// old master, which did not pass that on) go back to wait now, as
// release_jobs gives them back. Returns their ids.
std::vector<std::string> release_orphans(redis_client& redis,
                                         const queue_keys& keys,
                                         const std::vector<std::string>& held,
                                         const std::string& token);

// Re-arms the locks `token` holds on these jobs; returns the ids whose lock
// was lost (another worker or the stalled check took them).
std::vector<std::string> extend_locks(redis_client& redis,
                                      const queue_keys& keys,
                                      const std::vector<std::string>& job_ids,
                                      const std::string& token,
                                      std::chrono::milliseconds lock_for);

// Moves jobs held by `token` from active to completed (finishedOn,
// returnvalue, lock released), deletes the hash of removeOnComplete jobs,
// trims `completed` to its newest keep_completed entries (deleting the
// trimmed jobs' hashes). Returns the ids whose lock was lost; those are left
// untouched. As in Bull, a job's own opts.removeOnComplete wins (true:
// delete at once, a number or {count}: keep that many); keep_completed < 0
// keeps all, 0 keeps none.
// How many completed jobs a job's opts ask to keep (Bull's keepJobs):
// removeOnComplete true is 0, a number or {count} is that many ({age} is not
// supported), anything else is `keep_default`.
std::int64_t completed_to_keep(const std::string& opts,
                               std::int64_t keep_default);

std::vector<std::string> complete_jobs(redis_client& redis,
                                       const queue_keys& keys,
                                       const std::vector<completion>& done,
                                       const std::string& token,
                                       std::int64_t keep_completed);

enum class failure_outcome { retried, failed, lock_lost };

// For each job held by `token`: attemptsMade+1; if attempts remain, moves it
// to `delayed` with exponential backoff round((2^attemptsMade - 1) *
// backoff_ms); otherwise to `failed` with failedReason (trimmed to
// keep_failed; < 0 keeps all). As a Node worker would, a job whose opts carry
// their own `backoff` (number, fixed or exponential) uses that instead, and
// opts.removeOnFail is honoured. A zero delay goes straight back to `wait`.
std::vector<failure_outcome> fail_jobs(redis_client& redis,
                                       const queue_keys& keys,
                                       const std::vector<failure>& failed,
                                       const std::string& token, int backoff_ms,
                                       std::int64_t keep_failed);

// Moves delayed jobs whose time has come back to `wait` (or `paused`), at most
// 1000 per call; returns how many. now_ms <= 0 uses the Redis server's clock.
std::int64_t promote_delayed(redis_client& redis, const queue_keys& keys,
                             std::int64_t now_ms);

// For each (job id, postId): whether the job's hash is there and its data
// carries that postId (after a failover or a reset, the id may name another
// job, or none). One pipeline of HGETs.
std::vector<bool>
have_jobs(redis_client& redis, const queue_keys& keys,
          const std::vector<std::pair<std::string, std::string>>& jobs);

// All counts in one MULTI/EXEC, as Bull's getJobCounts computes them.
job_counts count_jobs(redis_client& redis, const queue_keys& keys);

// One job as Bull's Job.fromId + getState see it; nullopt if no hash. The
// state is "stuck" when the job is in no list or set (as Bull reports it).
std::optional<job_info> get_job(redis_client& redis, const queue_keys& keys,
                                const std::string& job_id);

struct stalled_jobs {
  std::vector<std::string> failed;   // stalled more than max_stalled_count
  std::vector<std::string> requeued; // back at the right end of `wait`
};

// Bull's stalled-job check (moveStalledJobsToWait), at most once per
// `interval` across all workers (the `stalled-check` key): jobs marked at the
// previous check and still without a lock go back to `wait`, or to `failed`
// once stalled more than max_stalled_count times; then every job in `active`
// is marked for the next check. Recovers the jobs of a worker that died.
stalled_jobs recover_stalled(redis_client& redis, const queue_keys& keys,
                             int max_stalled_count,
                             std::chrono::milliseconds interval,
                             std::int64_t keep_failed);

// What in a Redis server's INFO text (all sections) can lose queued jobs,
// one sentence each: an eviction policy other than noeviction (Redis drops
// keys when full) and no AOF (a crash loses every job since the last
// snapshot, or all of them). Empty when none or when INFO lacks the fields.
std::vector<std::string> durability_warnings(std::string_view info);

// The same for the server behind `redis` (one INFO round trip).
std::vector<std::string> durability_warnings(redis_client& redis);

// The role and the replicas in INFO replication's text: each replica's
// address, state and lag (its offset behind master_repl_offset, and the
// seconds since it last acknowledged). Missing fields stay empty or zero.
replication_state parse_replication(std::string_view info);

// The same for the server behind `redis` (INFO replication).
replication_state replication(redis_client& redis);

} // namespace postd::persistence
