#pragma once

// job_queue over Redis: the Bull 4 scripts of bull_queue.hpp, run on a
// redis_connection (which reconnects and applies the one error policy).

#include "persistence/job_queue.hpp"
#include "persistence/redis_connection.hpp"

namespace postd::persistence {

class bull_job_queue final : public job_queue {
public:
  bull_job_queue(redis_connection_options redis, queue_keys keys)
      : redis_(std::move(redis)), keys_(std::move(keys)) {}

  const queue_keys& keys() const override { return keys_; }
  std::vector<add_result> add_jobs(const std::vector<job_request>& jobs,
                                   std::int64_t max_waiting,
                                   std::int64_t id_floor) override;
  int wait_replicas(int replicas, std::chrono::milliseconds timeout) override;
  std::uint64_t connections() const override { return redis_.connections(); }
  std::uint64_t ping() override;
  std::vector<bool> have_jobs(
      const std::vector<std::pair<std::string, std::string>>& jobs) override;
  std::vector<active_job>
  take_jobs(std::size_t max, const std::string& token,
            std::chrono::milliseconds lock_for,
            std::chrono::milliseconds block_for) override;
  std::vector<std::string> release_jobs(const std::vector<std::string>& job_ids,
                                        const std::string& token) override;
  std::vector<std::string> release_orphans(const std::vector<std::string>& held,
                                           const std::string& token) override;
  std::vector<std::string>
  extend_locks(const std::vector<std::string>& job_ids,
               const std::string& token,
               std::chrono::milliseconds lock_for) override;
  std::vector<std::string> complete_jobs(const std::vector<completion>& done,
                                         const std::string& token,
                                         std::int64_t keep_completed) override;
  std::vector<failure_outcome> fail_jobs(const std::vector<failure>& failed,
                                         const std::string& token,
                                         int backoff_ms,
                                         std::int64_t keep_failed) override;
  std::int64_t promote_delayed(std::int64_t now_ms) override;
  stalled_jobs recover_stalled(int max_stalled_count,
                               std::chrono::milliseconds interval,
                               std::int64_t keep_failed) override;
  job_counts count_jobs() override;
  replication_state replication() override;
  std::optional<job_info> get_job(const std::string& job_id) override;

private:
  redis_connection redis_;
  queue_keys keys_;
};

// For redis_connection_options::on_connect: logs, once per connection, what
// in the server's configuration can lose queued jobs (durability_warnings),
// so a Redis restarted with other settings is seen. A server that refuses
// INFO is noted at info level.
void warn_about_durability(redis_client& redis);

} // namespace postd::persistence
