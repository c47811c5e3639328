#include "actors/enqueue.hpp"

#include <algorithm>

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

void answer_all(std::vector<create_request>& batch, create_status status) {
  for (auto& req : batch)
    req.reply(create_outcome{status, {}, req.throttle});
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

bool written(create_status s) {
  return s == create_status::queued || s == create_status::duplicate;
}

void flush(enqueue_state& st, const enqueue_settings& s) {
  auto batch = st.pending.take(s.max_batch);
  std::vector<persistence::job_request> jobs;
  jobs.reserve(batch.size());
  auto ts = core::epoch_ms();
  for (const auto& req : batch)
    jobs.push_back({job_data(req.post, core::new_post_id()), req.post.author,
                    req.post.idempotency_key, s.attempts, s.backoff_ms, ts});
  try {
    // The connection logs the outage (once) and counts the error.
    st.faults.strike("enqueue fault before the redis add");
    auto results = st.queue->add_jobs(jobs, s.max_waiting);
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
    for (std::size_t i = 0; i < batch.size(); ++i) {
      auto id = i < results.size() ? results[i].job_id : std::string{};
      batch[i].reply(
          create_outcome{statuses[i], std::move(id), batch[i].throttle});
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
  return R"({"postData":{"content":)" + quoted(post.content) +
         R"(},"userId":)" + quoted(post.author) +
         R"(,"fileUrls":[],"postId":)" + quoted(post_id) + "}";
}

enqueue_actor::behavior_type
enqueue(enqueue_actor::stateful_pointer<enqueue_state> self,
        const enqueue_settings& settings) {
  self->state.queue = settings.make_queue();
  self->state.faults = core::fault_injector{settings.fault_rate / 2};
  return {
      [self](create_request& req) {
        if (self->state.pending.push(std::move(req)))
          self->send(self, flush_atom::value);
      },
      [self, settings](flush_atom) {
        flush(self->state, settings);
        if (settings.progress)
          settings.progress->fetch_add(1, std::memory_order_relaxed);
        if (self->state.pending.reschedule())
          self->send(self, flush_atom::value);
      },
  };
}

} // namespace postd::actors
