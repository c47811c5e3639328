#include "persistence/bull_job_queue.hpp"

#include "core/log.hpp"

namespace postd::persistence {

std::vector<add_result>
bull_job_queue::add_jobs(const std::vector<job_request>& jobs,
                         std::int64_t max_waiting, std::int64_t id_floor) {
  return redis_.run([&](redis_client& r) {
    return persistence::add_jobs(r, keys_, jobs, max_waiting, id_floor);
  });
}

int bull_job_queue::wait_replicas(int replicas,
                                  std::chrono::milliseconds timeout) {
  return redis_.run([&](redis_client& r) {
    // WAIT blocks for up to `timeout`: the socket waits that long too.
    auto limit = r.options().command_timeout;
    r.set_timeout(limit + timeout);
    auto reply = r.command(
        {"WAIT", std::to_string(replicas), std::to_string(timeout.count())});
    r.set_timeout(limit);
    if (reply_is_error(reply.get()))
      throw redis_reply_error("WAIT: " + reply_string(reply.get()));
    return static_cast<int>(reply_integer(reply.get()));
  });
}

std::uint64_t bull_job_queue::ping() {
  redis_.run([](redis_client& r) {
    auto reply = r.command({"PING"});
    if (reply_is_error(reply.get()))
      throw redis_reply_error("PING: " + reply_string(reply.get()));
  });
  return redis_.connections();
}

std::vector<bool> bull_job_queue::have_jobs(
    const std::vector<std::pair<std::string, std::string>>& jobs) {
  return redis_.run(
      [&](redis_client& r) { return persistence::have_jobs(r, keys_, jobs); });
}

std::vector<active_job>
bull_job_queue::take_jobs(std::size_t max, const std::string& token,
                          std::chrono::milliseconds lock_for,
                          std::chrono::milliseconds block_for) {
  return redis_.run([&](redis_client& r) {
    return persistence::take_jobs(r, keys_, max, token, lock_for, block_for);
  });
}

std::vector<std::string>
bull_job_queue::release_jobs(const std::vector<std::string>& job_ids,
                             const std::string& token) {
  return redis_.run([&](redis_client& r) {
    return persistence::release_jobs(r, keys_, job_ids, token);
  });
}

std::vector<std::string>
bull_job_queue::release_orphans(const std::vector<std::string>& held,
                                const std::string& token) {
  return redis_.run([&](redis_client& r) {
    return persistence::release_orphans(r, keys_, held, token);
  });
}

std::vector<std::string>
bull_job_queue::extend_locks(const std::vector<std::string>& job_ids,
                             const std::string& token,
                             std::chrono::milliseconds lock_for) {
  return redis_.run([&](redis_client& r) {
    return persistence::extend_locks(r, keys_, job_ids, token, lock_for);
  });
}

std::vector<std::string>
bull_job_queue::complete_jobs(const std::vector<completion>& done,
                              const std::string& token,
                              std::int64_t keep_completed) {
  return redis_.run([&](redis_client& r) {
    return persistence::complete_jobs(r, keys_, done, token, keep_completed);
  });
}

std::vector<failure_outcome>
bull_job_queue::fail_jobs(const std::vector<failure>& failed,
                          const std::string& token, int backoff_ms,
                          std::int64_t keep_failed) {
  return redis_.run([&](redis_client& r) {
    return persistence::fail_jobs(r, keys_, failed, token, backoff_ms,
                                  keep_failed);
  });
}

std::int64_t bull_job_queue::promote_delayed(std::int64_t now_ms) {
  return redis_.run([&](redis_client& r) {
    return persistence::promote_delayed(r, keys_, now_ms);
  });
}

stalled_jobs bull_job_queue::recover_stalled(int max_stalled_count,
                                             std::chrono::milliseconds interval,
                                             std::int64_t keep_failed) {
  return redis_.run([&](redis_client& r) {
    return persistence::recover_stalled(r, keys_, max_stalled_count, interval,
                                        keep_failed);
  });
}

replication_state bull_job_queue::replication() {
  return redis_.run(
      [&](redis_client& r) { return persistence::replication(r); });
}

job_counts bull_job_queue::count_jobs() {
  return redis_.run(
      [&](redis_client& r) { return persistence::count_jobs(r, keys_); });
}

std::optional<job_info> bull_job_queue::get_job(const std::string& job_id) {
  return redis_.run(
      [&](redis_client& r) { return persistence::get_job(r, keys_, job_id); });
}

void warn_about_durability(redis_client& redis) {
  try {
    for (const auto& w : durability_warnings(redis))
      log::warn(w);
  } catch (const redis_reply_error& e) {
    log::info("cannot check Redis's eviction policy and persistence",
              {{"error", e.what()}}); // INFO renamed or not allowed
  }
}

} // namespace postd::persistence
