#include "actors/enqueue.hpp"

#include <algorithm>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"

namespace postd::actors {

namespace {

create_status to_status(persistence::add_status s) {
  switch (s) {
  case persistence::add_status::added:
    return create_status::queued;
  case persistence::add_status::duplicate:
    return create_status::duplicate;
  case persistence::add_status::queue_full:
    return create_status::queue_full;
  }
  return create_status::unavailable;
}

const char* status_name(create_status s) {
  switch (s) {
  case create_status::queued:
    return "queued";
  case create_status::duplicate:
    return "duplicate";
  case create_status::queue_full:
    return "queue full";
  case create_status::unavailable:
    return "unavailable";
  case create_status::throttled:
    return "throttled";
  case create_status::unconfirmed:
    return "unconfirmed";
  }
  return "unknown";
}

// At debug, one line per create the batch answered, with its trace.
void log_answer(const create_request& req, const std::string& job_id,
                const std::string& post_id, create_status status) {
  if (log::enabled(spdlog::level::debug))
    log::debug("enqueue", {{"actor", "enqueue"},
                           {"status", status_name(status)},
                           {"job_id", job_id},
                           {"post_id", post_id},
                           {"traceparent", req.post.traceparent}});
}

void answer_all(std::vector<create_request>& batch, create_status status) {
  for (auto& req : batch) {
    log_answer(req, {}, {}, status);
    req.reply(create_outcome{status, {}, req.throttle});
  }
}

// Whether ACK_REPLICAS replicas confirmed the batch just added (WAIT on the
// same connection). A lost connection confirms nothing.
bool replicas_confirmed(enqueue_state& st, const enqueue_settings& s,
                        std::size_t jobs) {
  int confirmed = 0;
  try {
    confirmed = st.queue->wait_replicas(s.ack_replicas, s.ack_timeout);
  } catch (const persistence::redis_error& e) {
    log::debug("redis wait failed",
               {{"actor", "enqueue"}, {"error", e.what()}});
  }
  if (confirmed >= s.ack_replicas)
    return true;
  metrics::process().wait_shortfalls.fetch_add(1, std::memory_order_relaxed);
  log::debug("replicas did not confirm a batch in time",
             {{"actor", "enqueue"},
              {"wanted", s.ack_replicas},
              {"confirmed", confirmed},
              {"jobs", jobs}});
  return false;
}

void publish_size(const ack_log& log) {
  auto& m = metrics::process();
  m.recovery_log_jobs.store(static_cast<std::int64_t>(log.jobs().size()),
                            std::memory_order_relaxed);
  m.recovery_log_bytes.store(static_cast<std::int64_t>(log.bytes()),
                             std::memory_order_relaxed);
}

struct recovered {
  std::size_t missing = 0;
  std::size_t added = 0;
};

// Checks jobs [first, last) of the log and adds again those missing, under
// their job id where no job holds it (a new master's counter may be behind
// it), else a new one; each call one HGET pipeline and at most one add
// script, like a batch.
recovered recover_some(enqueue_state& st, ack_log& log, std::size_t first,
                       std::size_t last) {
  auto& jobs = log.jobs();
  std::vector<std::pair<std::string, std::string>> ids;
  ids.reserve(last - first);
  for (auto i = first; i < last; ++i)
    ids.emplace_back(jobs[i].job_id, jobs[i].post_id);
  auto present = st.queue->have_jobs(ids);
  std::vector<acked_job*> missing;
  std::vector<persistence::job_request> again;
  for (auto i = first; i < last; ++i)
    if (i - first >= present.size() || !present[i - first]) {
      missing.push_back(&jobs[i]);
      again.push_back(jobs[i].request);
      again.back().job_id = jobs[i].job_id;
    }
  recovered out{missing.size(), 0};
  if (again.empty())
    return out;
  // Never refused as queue_full: these were acknowledged.
  auto results = st.queue->add_jobs(
      again, std::numeric_limits<std::int64_t>::max(), log.highest_id());
  for (std::size_t i = 0; i < missing.size() && i < results.size(); ++i) {
    out.added += results[i].status == persistence::add_status::added ? 1 : 0;
    missing[i]->job_id = results[i].job_id;
    log.note_id(results[i].job_id);
  }
  return out;
}

// After a new connection (the server may have lost what it took lately):
// the logged jobs it lacks are added again, with their postId, so each is
// still one row. A Redis error leaves the check for the next time.
void recover(enqueue_state& st, const enqueue_settings& s) {
  auto& log = *s.recovery;
  log.trim(ack_log::clock::now());
  publish_size(log);
  const auto connection = st.queue->connections();
  if (connection == log.checked_connection)
    return;
  if (log.empty()) {
    log.checked_connection = connection;
    return;
  }
  try {
    recovered total;
    auto& jobs = log.jobs();
    for (std::size_t first = 0; first < jobs.size(); first += s.max_batch) {
      auto part = recover_some(st, log, first,
                               std::min(jobs.size(), first + s.max_batch));
      total.missing += part.missing;
      total.added += part.added;
      metrics::process().jobs_recovered.fetch_add(part.added,
                                                  std::memory_order_relaxed);
    }
    // Checked against the connection it began on: if that one was lost
    // meanwhile, the next check runs again.
    log.checked_connection = connection;
    log::event(total.added > 0 ? spdlog::level::warn : spdlog::level::info,
               "acknowledged jobs checked on a new redis connection",
               {{"actor", "enqueue"},
                {"checked", jobs.size()},
                {"missing", total.missing},
                {"added_again", total.added}});
  } catch (const persistence::redis_error& e) {
    log::debug("recovery check failed",
               {{"actor", "enqueue"}, {"error", e.what()}});
  }
}

bool written(create_status s) {
  return s == create_status::queued || s == create_status::duplicate;
}

void flush(enqueue_state& st, const enqueue_settings& s) {
  auto batch = st.pending.take(s.max_batch);
  if (!batch.empty())
    metrics::process().enqueue_batch(batch.size());
  std::vector<persistence::job_request> jobs;
  std::vector<std::string> post_ids;
  jobs.reserve(batch.size());
  post_ids.reserve(batch.size());
  auto ts = core::epoch_ms();
  for (const auto& req : batch) {
    post_ids.push_back(req.post.post_id.empty() ? core::new_post_id()
                                                : req.post.post_id);
    jobs.push_back({job_data(req.post, post_ids.back()),
                    req.post.author,
                    req.post.idempotency_key,
                    s.attempts,
                    s.backoff_ms,
                    ts,
                    {}});
  }
  try {
    // The connection logs the outage (once) and counts the error.
    st.faults.strike("enqueue fault before the redis add");
    // New ids stay above those this instance answered for (a failover may
    // have set the counter back).
    auto results = st.queue->add_jobs(
        jobs, s.max_waiting, s.recovery ? s.recovery->highest_id() : 0);
    st.faults.strike("enqueue fault after the redis add");
    std::vector<create_status> statuses;
    statuses.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
      statuses.push_back(i < results.size() ? to_status(results[i].status)
                                            : create_status::unavailable);
    // A duplicate's first job may not be on the replicas either.
    if (s.ack_replicas > 0 && std::ranges::any_of(statuses, written) &&
        !replicas_confirmed(st, s, batch.size()))
      for (auto& status : statuses)
        if (written(status))
          status = create_status::unconfirmed;
    const auto now = ack_log::clock::now();
    std::size_t pushed_out = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto id = i < results.size() ? results[i].job_id : std::string{};
      // Only jobs this batch added: a duplicate's first job (and its
      // postId) is not ours to add again.
      if (s.recovery && statuses[i] == create_status::queued)
        pushed_out += s.recovery->record({now, id, post_ids[i], jobs[i]});
      else if (s.recovery && statuses[i] == create_status::unconfirmed)
        s.recovery->note_id(id);
      log_answer(batch[i], id, post_ids[i], statuses[i]);
      batch[i].reply(
          create_outcome{statuses[i], std::move(id), batch[i].throttle});
    }
    if (pushed_out > 0) {
      metrics::process().recovery_log_dropped.fetch_add(
          pushed_out, std::memory_order_relaxed);
      if (now - st.full_warned > std::chrono::minutes{1}) {
        st.full_warned = now;
        log::warn("the recovery log is full: acknowledged jobs forgotten "
                  "before RECOVERY_LOG_MS (see RECOVERY_LOG_MAX_MB)",
                  {{"actor", "enqueue"},
                   {"max_mb", s.recovery->bytes() >> 20U},
                   {"dropped", s.recovery->dropped()}});
      }
    }
  } catch (const persistence::redis_error& e) {
    log::debug(
        "redis add failed",
        {{"actor", "enqueue"}, {"error", e.what()}, {"jobs", batch.size()}});
    answer_all(batch, create_status::unavailable);
  }
}

} // namespace

// The old service's shape, key order included (SPEC), then postd's own
// field (old workers ignore it). Written directly: only the strings need
// JSON's escaping.
std::string job_data(const create_post& post, const std::string& post_id) {
  auto quoted = [](const std::string& s) {
    return nlohmann::json(s).dump(-1, ' ', false,
                                  nlohmann::json::error_handler_t::replace);
  };
  std::string urls;
  for (const auto& url : post.file_urls)
    urls.append(urls.empty() ? "" : ",").append(quoted(url));
  auto data = R"({"postData":{"content":)" + quoted(post.content) +
              R"(},"userId":)" + quoted(post.author) + R"(,"fileUrls":[)" +
              urls + R"(],"postId":)" + quoted(post_id);
  if (!post.idempotency_key.empty())
    data += R"(,"idempotencyKey":)" + quoted(post.idempotency_key);
  if (!post.traceparent.empty())
    data += R"(,"traceparent":)" + quoted(post.traceparent);
  return data + "}";
}

enqueue_actor::behavior_type
enqueue(enqueue_actor::stateful_pointer<enqueue_state> self,
        const enqueue_settings& settings) {
  self->state.queue = settings.make_queue();
  self->state.faults = core::fault_injector{
      settings.faults, core::fault::enqueue_crash_rate, 0.5};
  if (settings.recovery) {
    // A new queue's first connection is checked (connections() 1).
    settings.recovery->checked_connection = 0;
    self->send(self, tick_atom::value);
  }
  return {
      [self](create_request& req) {
        if (self->state.pending.push(std::move(req)))
          self->send(self, flush_atom::value);
      },
      [self, settings](tick_atom) {
        if (!settings.recovery)
          return;
        // Idle or not: with jobs to protect, reach Redis so a reconnect
        // (and the check after it) does not wait for the next create.
        if (!settings.recovery->empty()) {
          try {
            self->state.queue->ping();
          } catch (const persistence::redis_error&) {
            // The connection logs it; the next tick tries again.
          }
        }
        recover(self->state, settings);
        self->delayed_send(self, settings.recovery_check, tick_atom::value);
      },
      [self, settings](flush_atom) {
        flush(self->state, settings);
        if (settings.recovery)
          recover(self->state, settings);
        if (settings.progress)
          settings.progress->fetch_add(1, std::memory_order_relaxed);
        if (self->state.pending.reschedule())
          self->send(self, flush_atom::value);
      },
  };
}

} // namespace postd::actors
