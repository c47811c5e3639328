#pragma once

#include <chrono>
#include <memory>

#include "actors/connections.hpp"
#include "actors/health_board.hpp"
#include "actors/protocol.hpp"

namespace postd::actors {

enum class monitored { queue, database };

// Of the factories, the one for what it watches is used: the queue's at
// start, the store's again after each failed check.
struct monitor_settings : connection_factories {
  monitored what = monitored::queue;
  std::chrono::milliseconds interval{500};
  std::shared_ptr<health_board> board;
};

struct monitor_state {
  connections watched; // only the one it watches is made
  static inline const char* name = "monitor";
};

// Probes one dependency on its own schedule, Redis (queue counts) or
// PostgreSQL (a ping), and publishes the result on the health board, so
// health requests never reach the dependencies. Runs detached in
// production (the probes block); one per dependency, so a hanging check stalls
// only its own.
monitor_actor::behavior_type
monitor(monitor_actor::stateful_pointer<monitor_state> self,
        const monitor_settings& settings);

} // namespace postd::actors
