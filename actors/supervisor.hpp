#pragma once

// One-for-one supervision, as in Erlang/OTP: a supervisor starts its
// children, restarts any that dies abnormally after a per-child backoff, and
// escalates (reports, keeps restarting at the longest backoff) when more
// restarts than allowed fall within a period. The writer pool and the root of
// postd's actors (throttle, enqueue, readers, monitors, the writer pool) are
// both this actor with different children.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "actors/health_board.hpp"
#include "actors/protocol.hpp"
#include "core/restart_policy.hpp"

namespace postd::actors {

// A child as its start function made it.
struct started_child {
  caf::actor handle;
  // Whether it got work done since it started: a crash after progress
  // restarts without backing off further. Empty: never counts as progress.
  std::function<bool()> made_progress;
};

// A child's count of the work it finished (batches, queries), fresh at each
// start: a crash after progress is restarted without backing off further.
using progress_counter = std::shared_ptr<std::atomic<std::uint64_t>>;

// A start function for a child whose settings count finished work in
// `.progress`: each start hands its child a fresh counter.
template <class Settings, class Spawn>
auto counting_start(Settings settings, Spawn spawn) {
  return [settings = std::move(settings),
          spawn = std::move(spawn)](caf::actor_system& sys) {
    auto s = settings;
    auto done = std::make_shared<std::atomic<std::uint64_t>>(0);
    s.progress = done;
    return started_child{caf::actor_cast<caf::actor>(spawn(sys, s)),
                         [done] { return *done > 0; }};
  };
}

struct child_spec {
  std::string name; // in logs, /metrics and /health
  // Spawns the child (detached if it blocks); the supervisor monitors it.
  std::function<started_child(caf::actor_system&)> start;
  // Optional: after each start, with the new handle (e.g. to publish it where
  // senders find it), and after it died or stopped (to withdraw it, so
  // senders answer 503 at once instead of writing into a dead mailbox).
  std::function<void(const caf::actor&)> on_start;
  std::function<void()> on_stop;
};

struct supervisor_settings {
  std::string name = "supervisor"; // in logs
  std::vector<child_spec> children;
  int max_restarts = 10;
  std::chrono::milliseconds period{60000};
  // Called after every start, crash and stop of a child, and when an
  // escalation begins or ends.
  std::function<void(const supervisor_status&)> report;
};

struct supervisor_state {
  std::vector<caf::actor> children; // by index; invalid while restarting
  std::vector<std::function<bool()>> progress;
  std::vector<long long> restarts_of;
  std::unordered_map<caf::actor_addr, std::size_t> index_of;
  core::restart_policy policy{0, 10, std::chrono::milliseconds{60000}};
  long long restarts = 0;
  bool escalated = false;
  static inline const char* name = "supervisor";
};

// Starts every child in order. A child that exits normally is not restarted
// (it was asked to stop); an exit message (shutdown) stops every child and
// then the supervisor. While escalated, checks ten times a period whether a
// whole period passed calmly.
supervisor_actor::behavior_type
supervisor(supervisor_actor::stateful_pointer<supervisor_state> self,
           const supervisor_settings& settings);

} // namespace postd::actors
