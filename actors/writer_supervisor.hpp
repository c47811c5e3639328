#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <unordered_map>
#include <vector>

#include "actors/backoff.hpp"
#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "actors/writer.hpp"

namespace postd::actors {

// Erlang's restart intensity as a plain class: more than `max_restarts`
// within `period` means the children keep dying and the supervisor
// escalates.
class restart_intensity {
public:
  using clock = std::chrono::steady_clock;
  restart_intensity(int max_restarts, std::chrono::milliseconds period)
      : max_(max_restarts), period_(period) {}

  // Records a restart at `now`; true while within the limit.
  bool record(clock::time_point now) {
    times_.push_back(now);
    while (!times_.empty() && times_.front() + period_ < now)
      times_.pop_front();
    return static_cast<int>(times_.size()) <= max_;
  }

private:
  int max_;
  std::chrono::milliseconds period_;
  std::deque<clock::time_point> times_;
};

struct writer_supervisor_settings {
  int writers = 4;
  writer_settings writer;
  int max_restarts = 10;
  std::chrono::milliseconds period{60000};
  std::shared_ptr<health_board> board;
};

struct writer_supervisor_state {
  std::vector<writer_actor> children; // by slot; invalid while restarting
  std::unordered_map<caf::actor_addr, int> slots;
  restart_intensity intensity{10, std::chrono::milliseconds{60000}};
  std::vector<backoff> delays;
  long long restarts = 0;
  bool escalated = false;
  static inline const char* name = "writer_supervisor";
};

// Runs WRITERS writer actors, restarting any that dies abnormally after a
// per-slot backoff. Too many restarts in a period escalate: logged once and
// reported `down` on /health until the pool calms down. An exit message
// (shutdown) stops every writer first.
writer_supervisor_actor::behavior_type writer_supervisor(
    writer_supervisor_actor::stateful_pointer<writer_supervisor_state> self,
    writer_supervisor_settings settings);

} // namespace postd::actors
