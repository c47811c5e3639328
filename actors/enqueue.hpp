#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

#include "actors/ack_log.hpp"
#include "actors/protocol.hpp"
#include "actors/supervisor.hpp"
#include "core/batch_queue.hpp"
#include "core/fault.hpp"
#include "persistence/job_queue.hpp"

namespace postd::actors {

struct enqueue_settings {
  persistence::job_queue_factory make_queue;
  int attempts = 3;
  int backoff_ms = 1000;
  std::int64_t max_waiting = 1000000;
  std::size_t max_batch = 512; // jobs per script call
  // ACK_REPLICAS, ACK_TIMEOUT_MS: after each batch's add, WAIT for that many
  // replicas (0: none); jobs not confirmed in time are answered unconfirmed.
  int ack_replicas = 0;
  std::chrono::milliseconds ack_timeout{100};
  // The fault API's board (FAULTS=on; none in production): its
  // enqueue_crash_rate is the chance a batch throws a crash-like exception
  // (half before the add script, half after Redis took the jobs and before
  // anyone is answered).
  std::shared_ptr<const core::fault_board> faults;
  // Counts the batches answered (its supervisor's, fresh at each start).
  progress_counter progress;
  // The jobs answered 202 lately (nullptr: none kept). After every new
  // Redis connection those it lacks are added again; with jobs in it, the
  // connection is checked every recovery_check even without creates.
  std::shared_ptr<ack_log> recovery;
  std::chrono::milliseconds recovery_check{1000};
};

// Builds Bull's `data` for a post, in the old service's shape, plus its
// `postId` (the row's id, so a job written twice is still one row) and its
// `idempotencyKey` if any (written with the row, so a retry that Redis
// queued again, having lost the key, is still one row).
std::string job_data(const create_post& post, const std::string& post_id);

struct enqueue_state {
  core::batch_queue<create_request> pending;
  std::unique_ptr<persistence::job_queue> queue;
  core::fault_injector faults; // enqueue_crash_rate's dice
  // When the log last said that the recovery log is full (once a minute).
  std::chrono::steady_clock::time_point full_warned;
  static inline const char* name = "enqueue";
};

// Batches creates into Redis. Runs detached in production (hiredis blocks). A
// flush is queued behind the requests already in the mailbox, so each round
// trip carries everything that arrived during the previous one: no timers, low
// latency when idle, big batches under load. Replies only after Redis
// answered; a Redis failure answers `unavailable` (nothing acknowledged),
// and while the connection backs off, batches fail fast the same way.
enqueue_actor::behavior_type
enqueue(enqueue_actor::stateful_pointer<enqueue_state> self,
        const enqueue_settings& settings);

} // namespace postd::actors
