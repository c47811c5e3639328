#include "persistence/faulty_stores.hpp"

#include <utility>

#include "persistence/redis_client.hpp"

namespace postd::persistence {
namespace {

using core::fault;

class faulty_job_queue final : public job_queue {
public:
  faulty_job_queue(std::unique_ptr<job_queue> inner,
                   std::shared_ptr<const core::fault_board> board)
      : inner_(std::move(inner)), board_(std::move(board)),
        errors_(board_, fault::enqueue_error_rate) {}

  const queue_keys& keys() const override { return inner_->keys(); }
  std::uint64_t connections() const override { return inner_->connections(); }

  std::vector<add_result> add_jobs(const std::vector<job_request>& jobs,
                                   std::int64_t max_waiting,
                                   std::int64_t id_floor) override {
    delay();
    if (errors_.roll())
      throw redis_reply_error("injected enqueue error (fault API)");
    return inner_->add_jobs(jobs, max_waiting, id_floor);
  }
  int wait_replicas(int replicas, std::chrono::milliseconds timeout) override {
    delay();
    return inner_->wait_replicas(replicas, timeout);
  }
  std::uint64_t ping() override {
    delay();
    return inner_->ping();
  }
  std::vector<bool> have_jobs(
      const std::vector<std::pair<std::string, std::string>>& jobs) override {
    delay();
    return inner_->have_jobs(jobs);
  }
  std::vector<active_job>
  take_jobs(std::size_t max, const std::string& token,
            std::chrono::milliseconds lock_for,
            std::chrono::milliseconds block_for) override {
    delay();
    return inner_->take_jobs(max, token, lock_for, block_for);
  }
  std::vector<std::string> release_jobs(const std::vector<std::string>& job_ids,
                                        const std::string& token) override {
    delay();
    return inner_->release_jobs(job_ids, token);
  }
  std::vector<std::string> release_orphans(const std::vector<std::string>& held,
                                           const std::string& token) override {
    delay();
    return inner_->release_orphans(held, token);
  }
  std::vector<std::string>
  extend_locks(const std::vector<std::string>& job_ids,
               const std::string& token,
               std::chrono::milliseconds lock_for) override {
    delay();
    return inner_->extend_locks(job_ids, token, lock_for);
  }
  std::vector<std::string> complete_jobs(const std::vector<completion>& done,
                                         const std::string& token,
                                         std::int64_t keep_completed) override {
    delay();
    return inner_->complete_jobs(done, token, keep_completed);
  }
  std::vector<failure_outcome> fail_jobs(const std::vector<failure>& failed,
                                         const std::string& token,
                                         int backoff_ms,
                                         std::int64_t keep_failed) override {
    delay();
    return inner_->fail_jobs(failed, token, backoff_ms, keep_failed);
  }
  std::int64_t promote_delayed(std::int64_t now_ms) override {
    delay();
    return inner_->promote_delayed(now_ms);
  }
  stalled_jobs recover_stalled(int max_stalled_count,
                               std::chrono::milliseconds interval,
                               std::int64_t keep_failed) override {
    delay();
    return inner_->recover_stalled(max_stalled_count, interval, keep_failed);
  }
  job_counts count_jobs() override {
    delay();
    return inner_->count_jobs();
  }
  replication_state replication() override {
    delay();
    return inner_->replication();
  }
  std::optional<job_info> get_job(const std::string& job_id) override {
    delay();
    return inner_->get_job(job_id);
  }

private:
  void delay() const { board_->delay(fault::redis_delay_ms); }

  std::unique_ptr<job_queue> inner_;
  std::shared_ptr<const core::fault_board> board_;
  core::fault_injector errors_;
};

class faulty_post_store final : public post_store_api {
public:
  faulty_post_store(std::unique_ptr<post_store_api> inner,
                    std::shared_ptr<const core::fault_board> board)
      : inner_(std::move(inner)), board_(std::move(board)),
        errors_(board_, fault::writer_error_rate) {}

  core::insert_outcome
  insert_posts(const std::vector<core::new_post>& rows) override {
    delay();
    if (errors_.roll())
      throw core::store_error("injected database error (fault API)",
                              /*connection_lost=*/true);
    return inner_->insert_posts(rows);
  }
  std::size_t forget_keys(std::int64_t queued_before_ms) override {
    delay();
    return inner_->forget_keys(queued_before_ms);
  }
  std::optional<core::post> find_post(const std::string& id) override {
    delay();
    return inner_->find_post(id);
  }
  std::optional<core::post>
  find_post_by_job(const std::string& job_id,
                   const std::string& author_id) override {
    delay();
    return inner_->find_post_by_job(job_id, author_id);
  }
  std::vector<core::post>
  posts_by_author(const std::string& author_id, std::size_t limit,
                  const std::optional<core::post>& after) override {
    delay();
    return inner_->posts_by_author(author_id, limit, after);
  }
  void ping() override {
    delay();
    inner_->ping();
  }

private:
  void delay() const { board_->delay(fault::db_delay_ms); }

  std::unique_ptr<post_store_api> inner_;
  std::shared_ptr<const core::fault_board> board_;
  core::fault_injector errors_;
};

} // namespace

job_queue_factory with_faults(job_queue_factory make,
                              std::shared_ptr<const core::fault_board> board) {
  if (!board)
    return make;
  return [make = std::move(make), board = std::move(board)] {
    return std::unique_ptr<job_queue>(
        std::make_unique<faulty_job_queue>(make(), board));
  };
}

post_store_factory with_faults(post_store_factory make,
                               std::shared_ptr<const core::fault_board> board) {
  if (!board || !make)
    return make;
  return [make = std::move(make), board = std::move(board)] {
    return std::unique_ptr<post_store_api>(
        std::make_unique<faulty_post_store>(make(), board));
  };
}

} // namespace postd::persistence
