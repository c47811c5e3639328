#pragma once

// The monitor's latest view of queue and database, read by HTTP threads for
// /health and /health/queue without a message round trip (a probe never
// touches Redis or PostgreSQL).

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/job.hpp"

namespace postd::actors {

struct dependency_status {
  bool up = false;
  std::string message; // why it is down
  double latency_ms = 0;
};

// Each dependency is checked by its own monitor actor, so a check that hangs
// (PostgreSQL down behind PgBouncer holds a query up to its timeouts) makes
// only that dependency's part stale.
struct health_view {
  std::chrono::steady_clock::time_point taken_at{};    // queue's last check
  std::chrono::steady_clock::time_point database_at{}; // database's last
  dependency_status database{false, "not checked yet", 0};
  dependency_status queue{false, "not checked yet", 0};
  core::job_counts counts;
  core::replication_state replication; // the queue's Redis, same check
};

// What a supervisor reports after each start, crash and stop of a child.
struct child_status {
  std::string name; // e.g. "enqueue", "reader-1", "writer-3"
  bool running = false;
  long long restarts = 0;
};

struct supervisor_status {
  std::vector<child_status> children;
  long long restarts = 0;
  bool escalated = false; // more restarts within a period than allowed
};

struct writer_pool_status {
  int writers = 0;
  int running = 0;
  long long restarts = 0;
  bool escalated = false;
};

class health_board {
public:
  void publish_queue(dependency_status queue, core::job_counts counts,
                     core::replication_state replication,
                     std::chrono::steady_clock::time_point at) {
    update([&](health_view& v) {
      v.queue = std::move(queue);
      v.counts = counts;
      v.replication = std::move(replication);
      v.taken_at = at;
    });
  }
  void publish_database(dependency_status database,
                        std::chrono::steady_clock::time_point at) {
    update([&](health_view& v) {
      v.database = std::move(database);
      v.database_at = at;
    });
  }
  std::shared_ptr<const health_view> view() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return view_;
  }
  void publish_writers(writer_pool_status s) {
    std::lock_guard<std::mutex> guard{mtx_};
    writers_ = s;
  }
  writer_pool_status writers() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return writers_;
  }
  // The root supervisor's children (throttle, enqueue, readers, monitors,
  // the writer pool's supervisor).
  void publish_services(supervisor_status s) {
    std::lock_guard<std::mutex> guard{mtx_};
    services_ = std::move(s);
  }
  supervisor_status services() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return services_;
  }

private:
  // Copy on write: readers keep the view they got, unchanged.
  template <class F> void update(F&& change) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto next = std::make_shared<health_view>(*view_);
    change(*next);
    view_ = std::move(next);
  }

  mutable std::mutex mtx_;
  std::shared_ptr<const health_view> view_ =
      std::make_shared<const health_view>();
  writer_pool_status writers_;
  supervisor_status services_;
};

} // namespace postd::actors
