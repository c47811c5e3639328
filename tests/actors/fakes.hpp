#pragma once

// In-memory stand-ins for the queue, the post store and the rate-limit
// store, for the deterministic actor tests. Each fake is a view on a shared
// state the test owns, so the factories can hand an actor a new "connection"
// (as after a reconnect or a restart) over the same data, and the test can
// read what the actor did and break the service at any moment.

#include <algorithm>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "persistence/job_queue.hpp"
#include "persistence/post_store.hpp"
#include "persistence/rate_limit_store.hpp"

namespace postd::testing {

struct fake_queue_state {
  persistence::queue_keys keys;
  // Redis: down makes every call throw redis_error (as a lost connection).
  bool down = false;
  // Makes take_jobs / complete_jobs throw this (not a redis_error): the
  // writer crashes.
  std::string crash_on_take;
  std::string crash_on_complete;
  bool complete_fails = false; // complete_jobs throws redis_error
  // add_jobs: one status per job, in order (then `added`); ids count up.
  std::deque<persistence::add_status> statuses;
  std::int64_t next_id = 1;
  std::vector<std::int64_t> id_floors; // add_jobs's, per call
  std::vector<std::vector<persistence::job_request>> added; // per call
  // wait_replicas: how many replicas confirm (-1: WAIT throws redis_error,
  // as a connection lost after the add); the calls' arguments.
  int replicas_confirming = 0;
  core::replication_state replication; // what replication() answers
  // The recovery log's view: connections made (a test bumps it for a
  // reconnect), pings, and the postIds have_jobs reports gone.
  std::uint64_t connections = 1;
  int pings = 0;
  std::set<std::string> lost;
  std::vector<std::vector<std::pair<std::string, std::string>>> checked;
  // release_orphans: what it answers (once), and the held ids of each call.
  std::vector<std::string> orphans;
  std::vector<std::vector<std::string>> orphan_checks;
  std::vector<std::pair<int, std::chrono::milliseconds>> waits;
  // The writers' side.
  std::deque<core::active_job> waiting;                 // taken from the front
  std::vector<std::vector<core::completion>> completed; // per call
  std::vector<std::vector<core::failure>> failed;       // per call
  std::vector<std::vector<std::string>> released;       // per call
  std::vector<std::vector<std::string>> extended;       // per call
  int takes = 0;
  int queues_made = 0; // factory calls: one per actor start
};

class fake_queue final : public persistence::job_queue {
public:
  explicit fake_queue(std::shared_ptr<fake_queue_state> st)
      : st_(std::move(st)) {}

  const persistence::queue_keys& keys() const override { return st_->keys; }

  std::vector<persistence::add_result>
  add_jobs(const std::vector<persistence::job_request>& jobs, std::int64_t,
           std::int64_t id_floor) override {
    reachable();
    st_->added.push_back(jobs);
    st_->id_floors.push_back(id_floor);
    st_->next_id = std::max<std::int64_t>(st_->next_id, id_floor + 1);
    std::vector<persistence::add_result> out;
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      auto s = persistence::add_status::added;
      if (!st_->statuses.empty()) {
        s = st_->statuses.front();
        st_->statuses.pop_front();
      }
      if (s == persistence::add_status::queue_full)
        out.push_back({s, {}});
      else if (!jobs[i].job_id.empty())
        out.push_back({s, jobs[i].job_id});
      else
        out.push_back({s, std::to_string(st_->next_id++)});
    }
    return out;
  }
  std::uint64_t connections() const override { return st_->connections; }
  std::uint64_t ping() override {
    reachable();
    ++st_->pings;
    return st_->connections;
  }
  std::vector<bool> have_jobs(
      const std::vector<std::pair<std::string, std::string>>& jobs) override {
    reachable();
    st_->checked.push_back(jobs);
    std::vector<bool> out;
    for (const auto& [job_id, post_id] : jobs)
      out.push_back(st_->lost.count(post_id) == 0);
    return out;
  }
  int wait_replicas(int replicas, std::chrono::milliseconds timeout) override {
    reachable();
    st_->waits.emplace_back(replicas, timeout);
    if (st_->replicas_confirming < 0)
      throw persistence::redis_error("fake redis: connection reset");
    return std::min(replicas, st_->replicas_confirming);
  }
  std::vector<core::active_job> take_jobs(std::size_t max, const std::string&,
                                          std::chrono::milliseconds,
                                          std::chrono::milliseconds) override {
    reachable();
    ++st_->takes;
    if (!st_->crash_on_take.empty())
      throw std::runtime_error(st_->crash_on_take);
    std::vector<core::active_job> out;
    while (!st_->waiting.empty() && out.size() < max) {
      out.push_back(st_->waiting.front());
      st_->waiting.pop_front();
    }
    return out;
  }
  std::vector<std::string> release_jobs(const std::vector<std::string>& ids,
                                        const std::string&) override {
    reachable();
    st_->released.push_back(ids);
    return ids;
  }
  std::vector<std::string> release_orphans(const std::vector<std::string>& held,
                                           const std::string&) override {
    reachable();
    st_->orphan_checks.push_back(held);
    return std::exchange(st_->orphans, {});
  }
  std::vector<std::string> extend_locks(const std::vector<std::string>& ids,
                                        const std::string&,
                                        std::chrono::milliseconds) override {
    reachable();
    st_->extended.push_back(ids);
    return {};
  }
  std::vector<std::string> complete_jobs(const std::vector<core::completion>& d,
                                         const std::string&,
                                         std::int64_t) override {
    reachable();
    if (st_->complete_fails)
      throw persistence::redis_error("fake redis: connection reset");
    if (!st_->crash_on_complete.empty())
      throw std::runtime_error(st_->crash_on_complete);
    st_->completed.push_back(d);
    return {};
  }
  std::vector<persistence::failure_outcome>
  fail_jobs(const std::vector<core::failure>& f, const std::string&, int,
            std::int64_t) override {
    reachable();
    st_->failed.push_back(f);
    return std::vector<persistence::failure_outcome>(
        f.size(), persistence::failure_outcome::failed);
  }
  std::int64_t promote_delayed(std::int64_t) override {
    reachable();
    return 0;
  }
  persistence::stalled_jobs recover_stalled(int, std::chrono::milliseconds,
                                            std::int64_t) override {
    reachable();
    return {};
  }
  core::job_counts count_jobs() override {
    reachable();
    core::job_counts c;
    c.waiting = static_cast<std::int64_t>(st_->waiting.size());
    return c;
  }
  core::replication_state replication() override {
    reachable();
    return st_->replication;
  }
  std::optional<core::job_info> get_job(const std::string&) override {
    reachable();
    return std::nullopt;
  }

private:
  void reachable() const {
    if (st_->down)
      throw persistence::redis_error("fake redis: connection refused");
  }
  std::shared_ptr<fake_queue_state> st_;
};

// A factory that makes a new Fake over the shared state at each call (a new
// "connection", as after a reconnect or a restart) and counts the calls in
// `made`, a member of that state.
template <class Fake, class State>
auto counting_factory(std::shared_ptr<State> st, int& made) {
  return [st, &made] {
    ++made;
    return std::make_unique<Fake>(st);
  };
}

inline persistence::job_queue_factory
fake_queue_factory(std::shared_ptr<fake_queue_state> st) {
  return counting_factory<fake_queue>(st, st->queues_made);
}

struct fake_database {
  bool down = false;              // every call: a lost connection
  std::set<std::string> rejected; // contents refused as the rows' fault
  std::vector<core::new_post> rows;
  int inserts = 0;          // insert_posts calls, failed ones included
  int key_purges = 0;       // forget_keys calls
  bool purge_fails = false; // forget_keys: the table is missing (retryable)
  int stores_made = 0;      // connections made
};

class fake_store final : public persistence::post_store_api {
public:
  explicit fake_store(std::shared_ptr<fake_database> db) : db_(std::move(db)) {}

  // Like the real store, idempotent on the id and on the author's key
  // (without its 24 h: the actor tests run in fake time).
  core::insert_outcome
  insert_posts(const std::vector<core::new_post>& rows) override {
    ++db_->inserts;
    reachable();
    for (const auto& r : rows)
      if (db_->rejected.count(r.content) > 0)
        throw core::store_error("value rejected: " + r.content, false);
    core::insert_outcome out;
    for (const auto& r : rows) {
      auto holder =
          std::find_if(db_->rows.begin(), db_->rows.end(), [&](const auto& x) {
            return !r.idempotency_key.empty() && x.author_id == r.author_id &&
                   x.idempotency_key == r.idempotency_key;
          });
      if (holder != db_->rows.end() && holder->id != r.id) {
        out.earlier.emplace(r.id, holder->id);
        continue;
      }
      bool known = std::any_of(db_->rows.begin(), db_->rows.end(),
                               [&](const auto& x) { return x.id == r.id; });
      if (!known) {
        db_->rows.push_back(r);
        ++out.inserted;
      }
    }
    return out;
  }
  std::size_t forget_keys(std::int64_t queued_before_ms) override {
    reachable();
    ++db_->key_purges;
    if (db_->purge_fails)
      throw core::store_error("relation \"PostIdempotencyKey\" does not exist",
                              true);
    std::size_t n = 0;
    for (auto& r : db_->rows)
      if (!r.idempotency_key.empty() && r.queued_at_ms < queued_before_ms) {
        r.idempotency_key.clear();
        ++n;
      }
    return n;
  }
  std::optional<core::post> find_post(const std::string&) override {
    reachable();
    return std::nullopt;
  }
  std::optional<core::post> find_post_by_job(const std::string&,
                                             const std::string&) override {
    reachable();
    return std::nullopt;
  }
  std::vector<core::post>
  posts_by_author(const std::string&, std::size_t,
                  const std::optional<core::post>&) override {
    reachable();
    return {};
  }
  void ping() override { reachable(); }

private:
  void reachable() const {
    if (db_->down)
      throw core::store_error("fake database: connection lost", true);
  }
  std::shared_ptr<fake_database> db_;
};

inline persistence::post_store_factory
fake_store_factory(std::shared_ptr<fake_database> db) {
  return counting_factory<fake_store>(db, db->stores_made);
}

// Counts hits per key with no window at all: enough to see which decisions
// the actor passes on, and what it does when the store is down.
struct fake_rate_state {
  persistence::rate_limit_settings limits{2, std::chrono::milliseconds{60000},
                                          "bull:throttle:"};
  bool down = false;
  std::map<std::string, std::int64_t> hits;
  std::vector<std::vector<std::string>> calls; // keys per hit_batch
};

class fake_rate_limit_store final : public persistence::rate_limit_store {
public:
  explicit fake_rate_limit_store(std::shared_ptr<fake_rate_state> st)
      : st_(std::move(st)) {}
  const persistence::rate_limit_settings& limits() const override {
    return st_->limits;
  }
  std::vector<core::throttle_decision>
  hit_batch(const std::vector<std::string>& keys) override {
    if (st_->down)
      throw persistence::redis_error("fake redis: connection refused");
    st_->calls.push_back(keys);
    std::vector<core::throttle_decision> out;
    for (const auto& k : keys) {
      auto n = ++st_->hits[k];
      bool ok = n <= st_->limits.limit;
      out.push_back({ok, st_->limits.limit,
                     std::max<std::int64_t>(0, st_->limits.limit - n), 60,
                     ok ? 0 : 60});
    }
    return out;
  }

private:
  std::shared_ptr<fake_rate_state> st_;
};

} // namespace postd::testing
