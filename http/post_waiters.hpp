#pragma once

// Creates that asked to wait (`Prefer: wait=N`) until their post is
// persisted. A writer that completed jobs names their posts; each waiting
// request is woken by that, or by its own timer: one timer and one map entry
// per waiting request, all on one thread of this object's, never a thread or
// a polling loop each. Within this instance only: a post another instance's
// writer persisted is answered when its wait ends.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "core/job.hpp"

namespace postd::http {

class post_waiters {
public:
  // Called once: with the id of the row that stands for the post (its own,
  // or an earlier post's with the same Idempotency-Key), or with nullopt
  // when `within` passed first. On this object's thread.
  using done_fn = std::function<void(std::optional<std::string>)>;

  post_waiters();
  ~post_waiters(); // stop()s
  post_waiters(const post_waiters&) = delete;
  post_waiters& operator=(const post_waiters&) = delete;

  // Ends every wait now (their `done` with nullopt: the usual 202), and
  // stops the thread; later awaits end at once. At shutdown, once no writer
  // runs, while the API their callbacks reach is still there.
  void stop();
  // Waits for `post_id` to be persisted, at most `within`.
  void await(const std::string& post_id, std::chrono::milliseconds within,
             done_fn done);

  // Writers: these jobs' posts are persisted (each completion's post_id,
  // and the row_id that stands for it). Cheap when nobody waits.
  void persisted(const std::vector<core::completion>& done);

  // Stops waiting for `post_id`: its waiters are dropped uncalled.
  void cancel(const std::string& post_id);

  // Requests waiting now (for tests and metrics).
  std::size_t waiting() const;

private:
  struct waiter;
  // Wakes the waiter (erased from the map first, so it runs once).
  void finish(const std::shared_ptr<waiter>& w, std::optional<std::string> id);

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type>
      work_;
  mutable std::mutex mtx_;
  std::unordered_multimap<std::string, std::shared_ptr<waiter>> waiting_;
  std::thread thread_;
  bool stopped_ = false; // under mtx_
};

} // namespace postd::http
