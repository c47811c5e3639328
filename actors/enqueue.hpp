#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "actors/protocol.hpp"
#include "core/backoff.hpp"
#include "core/batch_queue.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/redis_client.hpp"

namespace postd::actors {

struct enqueue_settings {
  persistence::redis_options redis;
  persistence::queue_keys keys;
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
  std::optional<persistence::redis_client> redis;
  core::backoff reconnect{std::chrono::milliseconds{100},
                          std::chrono::milliseconds{5000}};
  std::chrono::steady_clock::time_point next_connect{};
  bool outage = false; // warned already: further failed attempts at debug
  static inline const char* name = "enqueue";
};

// Batches creates into Redis. Runs detached (hiredis blocks). A flush is
// queued behind the requests already in the mailbox, so each round trip
// carries everything that arrived during the previous one: no timers, low
// latency when idle, big batches under load. Replies only after Redis
// answered; a Redis failure answers `unavailable` (nothing acknowledged).
enqueue_actor::behavior_type
enqueue(enqueue_actor::stateful_pointer<enqueue_state> self,
        enqueue_settings settings);

} // namespace postd::actors
