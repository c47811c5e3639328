#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "actors/writer.hpp"
#include "core/restart_policy.hpp"

namespace postd::actors {

struct writer_supervisor_settings {
  int writers = 4;
  writer_settings writer;
  int max_restarts = 10;
  std::chrono::milliseconds period{60000};
  std::shared_ptr<health_board> board;
  // Writers block (hiredis, libpqxx): each runs on its own thread. Tests
  // spawn them on the (deterministic) scheduler instead.
  bool detached = true;
};

struct writer_supervisor_state {
  std::vector<writer_actor> children; // by slot; invalid while restarting
  // Per slot: batches its current writer finished (fresh at each start).
  std::vector<std::shared_ptr<std::atomic<std::uint64_t>>> progress;
  std::unordered_map<caf::actor_addr, int> slots;
  core::restart_policy policy{0, 10, std::chrono::milliseconds{60000}};
  long long restarts = 0;
  bool escalated = false;
  static inline const char* name = "writer_supervisor";
};

// Runs WRITERS writer actors, restarting any that dies abnormally after a
// per-slot backoff (restart_policy). Too many restarts in a period
// escalate: logged once and reported `down` on /health until a whole period
// passed without too many (checked ten times a period). An exit message
// (shutdown) stops every writer first.
writer_supervisor_actor::behavior_type writer_supervisor(
    writer_supervisor_actor::stateful_pointer<writer_supervisor_state> self,
    const writer_supervisor_settings& settings);

} // namespace postd::actors
