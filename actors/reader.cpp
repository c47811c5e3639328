#include "actors/reader.hpp"

#include <optional>

#include <nlohmann/json.hpp>

#include "core/describe_job.hpp"
#include "core/ids.hpp"
#include "core/log.hpp"

namespace postd::actors {

namespace {

job_lookup lookup_job(reader_state& st, const reader_settings& s,
                      const job_query& q) {
  auto job = st.queue->get_job(q.job_id);
  std::optional<core::post> row;
  bool need_row =
      !job || (job->state == "completed" &&
               core::post_id_of_return_value(job->return_value).empty());
  if (need_row) {
    // The job's own post first: after Redis lost its state, the author's
    // rows with this jobId may belong to an earlier job of the same number.
    if (job)
      if (auto data = nlohmann::json::parse(job->data, nullptr, false);
          data.is_object())
        row = st.store(s).find_post(core::post_id_of_job(
            data, st.queue->keys().base(), job->id, job->timestamp_ms));
    if (!row)
      row = st.store(s).find_post_by_job(q.job_id, q.author);
  }
  return core::describe_job(q.author, job, row);
}

// How long a replica that failed is skipped for the primary.
constexpr std::chrono::seconds replica_pause{5};

// `read` on the replica (DATABASE_READ_URL); on the primary when there is
// none, when the replica fails (its connection dropped, tried again after
// replica_pause), or when `found` says the replica's answer may be behind.
template <class Read, class Found>
auto on_replica(reader_state& st, const reader_settings& s, Read read,
                Found found) {
  const auto now = std::chrono::steady_clock::now();
  if (s.make_read_store && now >= st.replica_retry_at) {
    try {
      if (!st.replica)
        st.replica = s.make_read_store();
      auto answer = read(*st.replica);
      if (st.replica_failing)
        log::info("read replica available again", {{"actor", "reader"}});
      st.replica_failing = false;
      if (found(answer))
        return answer;
    } catch (const core::store_error& e) {
      st.replica.reset();
      st.replica_retry_at = now + replica_pause;
      log::event(st.replica_failing ? spdlog::level::debug
                                    : spdlog::level::warn,
                 "read replica failed: reading the primary",
                 {{"actor", "reader"}, {"error", e.what()}});
      st.replica_failing = true;
    }
  }
  return read(st.store(s));
}

posts_page find_posts(reader_state& st, const reader_settings& s,
                      const posts_query& q) {
  posts_page page;
  page.outcome = posts_page::result::found;
  if (!q.post_id.empty()) {
    // A replica a little behind may lack a post its author just saw
    // completed: not found there is asked of the primary.
    auto p = on_replica(
        st, s,
        [&](persistence::post_store_api& db) {
          return db.find_post(q.post_id);
        },
        [](const std::optional<core::post>& p) { return p.has_value(); });
    if (p)
      page.items.push_back(std::move(*p));
    else
      page.outcome = posts_page::result::not_found;
  } else {
    page.items = on_replica(
        st, s,
        [&](persistence::post_store_api& db) {
          return db.posts_by_author(q.author_id, q.limit, q.after);
        },
        [](const auto&) { return true; });
  }
  return page;
}

// Replies with what `lookup` finds or, when Redis or PostgreSQL failed, with
// `unavailable`. A lost database connection is dropped, to be made again by
// the next query; the Redis connection decided whether to keep itself.
template <class Query, class Lookup>
void answer(reader_state& st, const reader_settings& s, Query& q, Lookup lookup,
            std::string_view failed, nlohmann::json fields) {
  if (s.progress)
    s.progress->fetch_add(1, std::memory_order_relaxed);
  try {
    q.reply(lookup());
    return;
  } catch (const persistence::redis_error& e) {
    fields["error"] = e.what();
  } catch (const core::store_error& e) {
    if (e.connection_lost())
      st.db.reset();
    fields["error"] = e.what();
  }
  log::warn(failed, fields);
  using answer_type = decltype(lookup());
  answer_type unavailable;
  unavailable.outcome = answer_type::result::unavailable;
  q.reply(std::move(unavailable));
}

} // namespace

reader_actor::behavior_type
reader(reader_actor::stateful_pointer<reader_state> self,
       const reader_settings& settings) {
  self->state.queue = settings.make_queue();
  self->state.faults =
      core::fault_injector{settings.faults, core::fault::reader_crash_rate};
  return {
      [self, settings](job_query& q) {
        auto& st = self->state;
        st.faults.strike("reader fault");
        answer(st, settings, q, [&] { return lookup_job(st, settings, q); },
               "job lookup failed", {{"job_id", q.job_id}});
      },
      [self, settings](posts_query& q) {
        auto& st = self->state;
        st.faults.strike("reader fault");
        answer(
            st, settings, q, [&] { return find_posts(st, settings, q); },
            "post lookup failed", nlohmann::json::object());
      },
  };
}

} // namespace postd::actors
