#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "actors/protocol.hpp"
#include "core/batch_queue.hpp"
#include "persistence/job_queue.hpp"

namespace postd::actors {

struct enqueue_settings {
  persistence::job_queue_factory make_queue;
  int attempts = 3;
  int backoff_ms = 1000;
  std::int64_t max_waiting = 1000000;
  std::size_t max_batch = 512; // jobs per script call
};

// Builds Bull's `data` for a post, in the old service's shape, plus its
// `postId` (the row's id, so a job written twice is still one row).
std::string job_data(const create_post& post, const std::string& post_id);

struct enqueue_state {
  core::batch_queue<create_request> pending;
  std::unique_ptr<persistence::job_queue> queue;
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
