#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/connections.hpp"
#include "actors/protocol.hpp"
#include "actors/supervisor.hpp"
#include "core/backoff.hpp"
#include "core/fault.hpp"
#include "core/job.hpp"

namespace postd::actors {

struct writer_settings : connection_factories {
  std::size_t batch = 256;
  // WRITER_NICE: a detached writer's thread gives way to the HTTP and
  // enqueue threads (core::lower_this_thread); 0 leaves it as it is.
  int nice = 0;
  // WRITER_LINGER_MS: after a batch short of `batch`, the wait before the
  // next take (fewer, larger transactions while the queue is shallow; a
  // full batch takes again at once). 0: no wait.
  std::chrono::milliseconds linger{0};
  // Whether a create waits for its row (Prefer: wait) now: no linger then,
  // the row is someone's answer. None: nobody waits.
  std::function<bool()> rows_awaited;
  int backoff_ms = 1000;
  std::int64_t keep_completed = 1000;
  std::int64_t keep_failed = 10000;
  std::chrono::milliseconds lock_for{30000};
  std::chrono::milliseconds block_for{1000};
  // Bull's stalled check: jobs whose lock expired (their worker died) go back
  // to `wait`, at most once per stalled_interval across all instances.
  std::chrono::milliseconds stalled_interval{30000};
  int max_stalled_count = 1;
  // The fault API's board (FAULTS=on; none in production): its
  // writer_crash_rate is the chance persisting a batch throws a crash-like
  // exception (not a Redis/PostgreSQL error, so the writer actor dies and
  // its supervisor restarts it) before or after the database write.
  std::shared_ptr<const core::fault_board> faults;
  // Counts the batches this writer finished (a fresh counter from its
  // supervisor at each start: a writer that made progress is restarted
  // without backing off further).
  progress_counter progress;
  // Told each batch's completions once their jobs are completed (their
  // post_id and row_id): wakes the creates waiting for them (Prefer: wait);
  // none: nobody waits.
  std::function<void(const std::vector<core::completion>&)> on_persisted;
};

struct writer_state : connections {
  std::vector<persistence::active_job> held; // taken, not yet finished
  std::string token;
  // The queue's connection (job_queue::connections()) last checked for
  // jobs locked with our token that we do not hold.
  std::uint64_t checked_connection = 0;
  std::chrono::steady_clock::time_point next_stalled_check{};
  std::chrono::steady_clock::time_point next_promote{};
  std::chrono::steady_clock::time_point next_key_purge{};
  bool degraded = false; // lost Redis or PostgreSQL, retrying
  core::backoff retry{std::chrono::milliseconds{100},
                      std::chrono::milliseconds{5000}};
  core::fault_injector faults; // writer_crash_rate's dice
  static inline const char* name = "writer";
};

// Takes up to `batch` jobs from the queue, writes them to PostgreSQL in one
// transaction and completes them, over and over. Runs detached in
// production (hiredis and libpqxx block). A lost Redis or PostgreSQL connection
// is retried with capped backoff while the batch stays held (its locks kept
// alive), so an outage never uses up a job's attempts.
writer_actor::behavior_type
writer(writer_actor::stateful_pointer<writer_state> self,
       const writer_settings& settings);

} // namespace postd::actors
