#pragma once

// The writer pool: WRITERS writer actors under a supervisor.

#include <chrono>
#include <memory>

#include "actors/health_board.hpp"
#include "actors/supervisor.hpp"
#include "actors/writer.hpp"

namespace postd::actors {

struct writer_supervisor_settings {
  int writers = 4;
  writer_settings writer;
  int max_restarts = 10;
  std::chrono::milliseconds period{60000};
  std::shared_ptr<health_board> board; // writers running, restarts
  // Writers block (hiredis, libpqxx): each runs on its own thread. Tests
  // spawn them on the (deterministic) scheduler instead.
  bool detached = true;
};

// The supervisor's children: writer-0 .. writer-(WRITERS-1), each given a
// fresh batch counter at every start (a writer that finished a batch since
// its start is restarted without backing off further). Reports to the board
// as the pool's status (/health shows it when escalated; /metrics counts).
supervisor_settings writer_pool(const writer_supervisor_settings& s);

// The writer pool's supervisor (supervisor() with writer_pool()).
supervisor_actor::behavior_type
writer_supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
                  const writer_supervisor_settings& settings);

} // namespace postd::actors
