#pragma once

#include <chrono>
#include <memory>

#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "persistence/job_queue.hpp"
#include "persistence/post_store.hpp"

namespace postd::actors {

enum class monitored { queue, database };

struct monitor_settings {
  monitored what = monitored::queue;
  // The one it watches is used: the queue is made at start, the store
  // again after each failed check.
  persistence::job_queue_factory make_queue;
  persistence::post_store_factory make_store;
  std::chrono::milliseconds interval{500};
  std::shared_ptr<health_board> board;
};

struct monitor_state {
  std::unique_ptr<persistence::job_queue> queue;
  std::unique_ptr<persistence::post_store_api> db;
  static inline const char* name = "monitor";
};

// Probes one dependency on its own schedule, Redis (queue counts) or
// PostgreSQL (a ping), and publishes the result on the health board, so
// health requests never reach the dependencies. Runs detached in
// production (the probes block); one per dependency, so a hanging check stalls
// only its own.
monitor_actor::behavior_type
monitor(monitor_actor::stateful_pointer<monitor_state> self,
        monitor_settings settings);

} // namespace postd::actors
