#include "actors/writer.hpp"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "core/persist_batch.hpp"
#include "core/thread_priority.hpp"

namespace postd::actors {

namespace {

using clock = std::chrono::steady_clock;

// Redis connects on demand (the queue's connection); PostgreSQL here.
void connect(writer_state& st, const writer_settings& s) {
  if (!st.db) {
    st.db = s.make_store();
    log::info("database connected", {{"actor", "writer"}});
  }
}

// Keeps the held jobs' locks alive; drops those another worker took over.
void refresh_locks(writer_state& st, const writer_settings& s) {
  std::vector<std::string> ids;
  for (const auto& j : st.held)
    ids.push_back(j.id);
  auto lost = st.queue->extend_locks(ids, st.token, s.lock_for);
  if (lost.empty())
    return;
  std::erase_if(st.held, [&](const persistence::active_job& j) {
    return std::find(lost.begin(), lost.end(), j.id) != lost.end();
  });
}

// On a connection to another server (a failover): the jobs there locked
// with our token that we do not hold (finished or given back on the old
// master, which did not pass that on) go back to wait now, not after their
// locks expire. Taken again, each is still one row (its postId).
void release_orphans(writer_state& st) {
  const auto connection = st.queue->connections();
  if (connection == st.checked_connection)
    return;
  std::vector<std::string> held;
  held.reserve(st.held.size());
  for (const auto& j : st.held)
    held.push_back(j.id);
  auto back = st.queue->release_orphans(held, st.token);
  st.checked_connection = connection;
  if (!back.empty())
    log::warn("jobs locked by this writer on a new redis server given back",
              {{"actor", "writer"}, {"jobs", back}});
}

// Cheap to call often: the script itself runs the check once per interval
// across every writer of every instance (Bull's `stalled-check` key).
void check_stalled(writer_state& st, const writer_settings& s,
                   clock::time_point now) {
  if (now < st.next_stalled_check)
    return;
  st.next_stalled_check =
      now + std::min<std::chrono::milliseconds>(std::chrono::seconds{5},
                                                s.stalled_interval);
  auto stalled = st.queue->recover_stalled(s.max_stalled_count,
                                           s.stalled_interval, s.keep_failed);
  metrics::process().jobs_stalled.fetch_add(stalled.requeued.size() +
                                                stalled.failed.size(),
                                            std::memory_order_relaxed);
  if (!stalled.requeued.empty() || !stalled.failed.empty())
    log::warn("stalled jobs recovered",
              {{"requeued", stalled.requeued}, {"failed", stalled.failed}});
}

// The posts' Idempotency-Keys matter for 24 h after their job was queued;
// a week leaves room for a queue that took days to drain. Each writer
// forgets the older ones after its first round and hourly (one indexed
// DELETE).
constexpr std::chrono::hours key_lifetime{24 * 7};
constexpr std::chrono::hours key_purge_interval{1};

// Housekeeping, never a reason to stop writing: a failure (a database not
// migrated yet, a lost connection the next insert will meet anyway) waits
// for the next interval.
void forget_old_keys(writer_state& st, clock::time_point now) {
  if (now < st.next_key_purge)
    return;
  st.next_key_purge = now + key_purge_interval;
  const auto before =
      core::epoch_ms() -
      std::chrono::duration_cast<std::chrono::milliseconds>(key_lifetime)
          .count();
  try {
    if (auto n = st.db->forget_keys(before); n > 0)
      log::info("old idempotency keys forgotten",
                {{"actor", "writer"}, {"keys", n}});
  } catch (const core::store_error& e) {
    log::debug("old idempotency keys not forgotten this time",
               {{"actor", "writer"}, {"error", e.what()}});
  }
}

// At debug, a line per job written, with its trace (the request's).
void log_written(const std::vector<core::completion>& done) {
  if (!log::enabled(spdlog::level::debug))
    return;
  for (const auto& c : done)
    log::debug("job written", {{"actor", "writer"},
                               {"job_id", c.job_id},
                               {"result", c.return_value},
                               {"traceparent", c.traceparent}});
}

// A job the batch could not write: retried later (delayed) or failed for
// good; either way a warning an operator can follow by its trace.
void log_failed(const core::failure& f, persistence::failure_outcome o) {
  const char* outcome = o == persistence::failure_outcome::retried ? "retried"
                        : o == persistence::failure_outcome::failed
                            ? "failed"
                            : "lock lost";
  log::warn(o == persistence::failure_outcome::retried ? "job will be retried"
                                                       : "job failed",
            {{"actor", "writer"},
             {"job_id", f.job_id},
             {"reason", f.reason},
             {"outcome", outcome},
             {"traceparent", f.traceparent}});
}

// One take -> write -> complete round: how many jobs it took (0: the queue
// was empty).
std::size_t work_once(writer_state& st, const writer_settings& s,
                      clock::time_point now) {
  connect(st, s);
  release_orphans(st);
  if (st.held.empty()) {
    check_stalled(st, s, now);
    // Retries wait a second or more: promoting due ones every 100 ms is on
    // time, and keeps a script per batch off Redis under load.
    if (now >= st.next_promote) {
      st.next_promote = now + std::chrono::milliseconds{100};
      st.queue->promote_delayed(core::epoch_ms());
    }
    st.held = st.queue->take_jobs(s.batch, st.token, s.lock_for, s.block_for);
    if (st.held.empty()) {
      forget_old_keys(st, now);
      return 0;
    }
    metrics::process().batch(st.held.size());
  } else {
    refresh_locks(st, s);
  }
  st.faults.strike("writer fault before the database write");
  auto result =
      core::persist_batch(st.held, st.queue->keys().base(),
                          [&](const std::vector<core::new_post>& rows) {
                            return st.db->insert_posts(rows);
                          });
  st.faults.strike("writer fault after the database write");
  auto& counts = metrics::process();
  if (!result.completed.empty()) {
    auto lost =
        st.queue->complete_jobs(result.completed, st.token, s.keep_completed);
    counts.jobs_completed.fetch_add(result.completed.size() - lost.size(),
                                    std::memory_order_relaxed);
    log_written(result.completed);
    if (s.on_persisted)
      s.on_persisted(result.completed);
  }
  if (!result.failed.empty()) {
    auto outcomes = st.queue->fail_jobs(result.failed, st.token, s.backoff_ms,
                                        s.keep_failed);
    for (std::size_t i = 0; i < result.failed.size(); ++i) {
      auto o = i < outcomes.size() ? outcomes[i]
                                   : persistence::failure_outcome::lock_lost;
      if (o == persistence::failure_outcome::retried)
        counts.jobs_retried.fetch_add(1, std::memory_order_relaxed);
      else if (o == persistence::failure_outcome::failed)
        counts.jobs_failed.fetch_add(1, std::memory_order_relaxed);
      log_failed(result.failed[i], o);
    }
  }
  auto taken = st.held.size();
  st.held.clear();
  forget_old_keys(st, now); // after the batch, which it must not hold up
  if (s.progress)
    s.progress->fetch_add(1, std::memory_order_relaxed);
  return taken;
}

// On the way out: jobs held for a retry go back to the queue now, not when
// their locks expire (SIGTERM leaves nothing locked).
void release_held(writer_state& st) {
  if (st.held.empty())
    return;
  std::vector<std::string> ids;
  for (const auto& j : st.held)
    ids.push_back(j.id);
  try {
    auto back = st.queue->release_jobs(ids, st.token);
    log::info("writer gave its jobs back",
              {{"released", back.size()}, {"held", ids.size()}});
  } catch (const persistence::redis_error& e) {
    log::warn("writer could not give its jobs back; the stalled check will",
              {{"error", e.what()}, {"held", ids.size()}});
  }
  st.held.clear();
}

} // namespace

writer_actor::behavior_type
writer(writer_actor::stateful_pointer<writer_state> self,
       const writer_settings& settings) {
  // A detached actor's function runs on its own thread: the writer's.
  if (settings.nice > 0) {
    if (auto failed = core::lower_this_thread(settings.nice); !failed.empty())
      log::warn("writer keeps its thread's priority", {{"error", failed}});
  }
  self->state.token = core::random_uuid();
  // Half the injected faults strike before the insert, half after it
  // committed and before the jobs are completed (the rows exist, the jobs
  // are still active).
  self->state.faults = core::fault_injector{
      settings.faults, core::fault::writer_crash_rate, 0.5};
  self->state.queue = settings.make_queue();
  self->set_exit_handler([self](const caf::exit_msg& em) {
    release_held(self->state);
    self->quit(em.reason);
  });
  // A crash (an exception the retry below does not handle) gives the held
  // jobs back at once, like SIGTERM: left locked, they would come back only
  // through the stalled check, and a job caught in two crashes would be
  // failed as "stalled more than allowable limit" instead of written.
  self->set_exception_handler(
      [self](caf::scheduled_actor* ptr, std::exception_ptr& x) {
        release_held(self->state);
        return caf::scheduled_actor::default_exception_handler(ptr, x);
      });
  self->send(self, work_atom::value);
  return {
      [self, settings](work_atom) {
        auto& st = self->state;
        try {
          auto taken = work_once(st, settings, self->clock().now());
          st.retry.reset();
          if (st.degraded)
            log::info("writer resumed", {{"held", st.held.size()}});
          st.degraded = false;
          // A batch short of full: the queue is shallow, and taking again
          // at once would persist the next few jobs at a transaction (and
          // two scripts) each. Lingering lets the next batch fill (an empty
          // take already blocked for block_for), unless a create waits for
          // its row.
          if (taken > 0 && taken < settings.batch &&
              settings.linger.count() > 0 &&
              !(settings.rows_awaited && settings.rows_awaited()))
            self->delayed_send(self, settings.linger, work_atom::value);
          else
            self->send(self, work_atom::value);
          return;
        } catch (const persistence::redis_error& e) {
          // The connection warned (once per outage) and counted it.
          log::event(st.degraded ? spdlog::level::debug : spdlog::level::info,
                     "writer lost redis",
                     {{"error", e.what()}, {"held", st.held.size()}});
        } catch (const core::store_error& e) {
          metrics::process().db_errors.fetch_add(1, std::memory_order_relaxed);
          st.db.reset();
          log::event(st.degraded ? spdlog::level::debug : spdlog::level::warn,
                     "writer lost database",
                     {{"error", e.what()}, {"held", st.held.size()}});
        }
        st.degraded = true;
        self->delayed_send(self, st.retry.next(), work_atom::value);
      },
  };
}

} // namespace postd::actors
