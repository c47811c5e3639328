#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/postgres.hpp"
#include "persistence/redis_client.hpp"

namespace postd::actors {

enum class monitored { queue, database };

struct monitor_settings {
  monitored what = monitored::queue;
  persistence::redis_options redis;
  std::string database_url;
  persistence::queue_keys keys;
  std::chrono::milliseconds interval{500};
  std::shared_ptr<health_board> board;
};

struct monitor_state {
  std::optional<persistence::redis_client> redis;
  std::unique_ptr<persistence::post_store> db;
  static inline const char* name = "monitor";
};

// Probes one dependency on its own schedule, Redis (queue counts) or
// PostgreSQL (a ping), and publishes the result on the health board, so
// health requests never reach the dependencies. Runs detached (the probes
// block); one per dependency, so a hanging check stalls only its own.
monitor_actor::behavior_type
monitor(monitor_actor::stateful_pointer<monitor_state> self,
        monitor_settings settings);

} // namespace postd::actors
