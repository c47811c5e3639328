// The writer on the deterministic scheduler with an in-memory queue and
// store: a batch is taken, written with one insert and completed; while the
// database is down the batch stays held (locks kept alive) and is retried
// with backoff on the simulated clock, using up no attempt; a job whose data
// or row is bad fails alone.

#define CAF_SUITE writer
#include "actors/enqueue.hpp"
#include "actors/writer.hpp"
#include "core/metrics.hpp"
#include "services_fixture.hpp"

using namespace postd;
using namespace std::chrono_literals;

namespace {

core::active_job job(const std::string& id, const std::string& content,
                     const std::string& post_id) {
  return {id,
          "create-post",
          actors::job_data({"alice", content, ""}, post_id),
          "{}",
          0,
          1700000000000};
}

struct fixture : testing::services_fixture {
  actors::writer_actor writer;

  ~fixture() override {
    // The writer loops on itself; stop it before the fixture drains.
    if (writer) {
      anon_send_exit(writer, caf::exit_reason::user_shutdown);
      sched.run();
    }
  }

  void spawn_writer(std::chrono::milliseconds linger = 0ms,
                    std::function<bool()> rows_awaited = {}) {
    actors::writer_settings s;
    s.make_queue = testing::fake_queue_factory(queue);
    s.make_store = testing::fake_store_factory(db);
    s.batch = 10;
    s.block_for = 0ms;
    s.linger = linger;
    s.rows_awaited = std::move(rows_awaited);
    writer = sys.spawn(actors::writer, s);
  }
  // Runs until the writer has taken `n` times (it loops on itself).
  void run_until_takes(int n) {
    for (int i = 0; i < 100 && queue->takes < n; ++i)
      sched.run_once();
    CAF_REQUIRE_EQUAL(queue->takes, n);
  }
  std::vector<std::string> row_ids() const {
    std::vector<std::string> ids;
    for (const auto& r : db->rows)
      ids.push_back(r.id);
    return ids;
  }
};

std::vector<std::string> ids_of(const std::vector<core::completion>& c) {
  std::vector<std::string> ids;
  for (const auto& x : c)
    ids.push_back(x.job_id);
  return ids;
}

// "job id: reason" of each failure.
std::vector<std::string> reasons_of(const std::vector<core::failure>& f) {
  std::vector<std::string> out;
  for (const auto& x : f)
    out.push_back(x.job_id + ": " + x.reason);
  return out;
}

using strings = std::vector<std::string>;

} // namespace

CAF_TEST_FIXTURE_SCOPE(writer_tests, fixture)

CAF_TEST(takes a batch writes it with one insert and completes it) {
  queue->waiting = {job("1", "one", "p-1"), job("2", "two", "p-2"),
                    job("3", "three", "p-3")};
  auto completed_before = metrics::process().jobs_completed.load();
  spawn_writer();
  run_until_takes(1);
  CAF_CHECK_EQUAL(db->inserts, 1);
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1", "p-2", "p-3"}));
  CAF_CHECK_EQUAL(db->rows[1].content, "two");
  CAF_CHECK_EQUAL(db->rows[1].author_id, "alice");
  CAF_CHECK_EQUAL(db->rows[1].job_id, "2");
  CAF_REQUIRE_EQUAL(queue->completed.size(), 1u);
  CAF_CHECK_EQUAL(ids_of(queue->completed[0]), (strings{"1", "2", "3"}));
  CAF_CHECK_EQUAL(queue->completed[0][0].return_value, R"({"postId":"p-1"})");
  CAF_CHECK(queue->failed.empty());
  CAF_CHECK_EQUAL(metrics::process().jobs_completed.load() - completed_before,
                  3u);
  // An empty queue: the next round takes nothing and writes nothing.
  run_until_takes(2);
  CAF_CHECK_EQUAL(db->inserts, 1);
  CAF_CHECK_EQUAL(queue->completed.size(), 1u);
}

CAF_TEST(a batch short of full lingers before the next take a full one not ) {
  for (int i = 1; i <= 12; ++i) {
    auto n = std::to_string(i);
    queue->waiting.push_back(job(n, "post " + n, "p-" + n));
  }
  spawn_writer(50ms);
  run_until_takes(2); // ten (full: at once), then two
  CAF_CHECK_EQUAL(db->inserts, 2);
  CAF_CHECK_EQUAL(db->rows.size(), 12u);
  // Two of ten: no take until the linger passed.
  sched.run();
  CAF_CHECK_EQUAL(queue->takes, 2);
  sched.advance_time(49ms);
  sched.run();
  CAF_CHECK_EQUAL(queue->takes, 2);
  sched.advance_time(1ms);
  run_until_takes(3);
}

CAF_TEST(no linger while a create waits for its row) {
  for (int i = 1; i <= 12; ++i) {
    auto n = std::to_string(i);
    queue->waiting.push_back(job(n, "post " + n, "p-" + n));
  }
  spawn_writer(50ms, [] { return true; });
  run_until_takes(3); // ten, two, then the next take at once
  CAF_CHECK_EQUAL(db->rows.size(), 12u);
}

CAF_TEST(a lost database keeps the batch held and retries with backoff) {
  queue->waiting = {job("1", "one", "p-1"), job("2", "two", "p-2")};
  db->down = true;
  spawn_writer();
  run_until_takes(1);
  sched.run();
  CAF_CHECK_EQUAL(db->inserts, 1);
  CAF_CHECK(queue->completed.empty());
  CAF_CHECK(queue->failed.empty()); // no attempt used up
  CAF_CHECK(queue->released.empty());
  CAF_CHECK(!sched.has_job()); // waiting for its retry timer, not spinning
  // The first retry comes after 100 ms, not before.
  CAF_CHECK_EQUAL(advance(99ms), 0u);
  CAF_CHECK_EQUAL(advance(1ms), 1u);
  sched.run();
  CAF_CHECK_EQUAL(db->inserts, 2);
  CAF_CHECK_EQUAL(queue->takes, 1); // the same batch, not a new one
  CAF_REQUIRE_EQUAL(queue->extended.size(), 1u);
  CAF_CHECK_EQUAL(queue->extended[0], (strings{"1", "2"})); // locks kept
  CAF_CHECK(queue->failed.empty());
  // The next after 200 ms: the backoff doubles.
  CAF_CHECK_EQUAL(advance(199ms), 0u);
  db->down = false;
  CAF_CHECK_EQUAL(advance(1ms), 1u);
  run_until_takes(2);
  CAF_CHECK_EQUAL(db->inserts, 3);
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1", "p-2"}));
  CAF_REQUIRE_EQUAL(queue->completed.size(), 1u);
  CAF_CHECK_EQUAL(ids_of(queue->completed[0]), (strings{"1", "2"}));
  CAF_CHECK(queue->failed.empty());
  // A connection per failure, made anew each retry.
  CAF_CHECK_EQUAL(db->stores_made, 3);
}

CAF_TEST(a job with bad data or a rejected row fails alone) {
  queue->waiting = {job("1", "good", "p-1"),
                    {"2", "create-post", "not json", "{}", 0, 0},
                    job("3", "rejected", "p-3"),
                    job("4", "fine", "p-4")};
  db->rejected = {"rejected"};
  spawn_writer();
  run_until_takes(1);
  // One insert for the batch, refused on the data; then row by row.
  CAF_CHECK_EQUAL(db->inserts, 1 + 3);
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1", "p-4"}));
  CAF_REQUIRE_EQUAL(queue->completed.size(), 1u);
  CAF_CHECK_EQUAL(ids_of(queue->completed[0]), (strings{"1", "4"}));
  CAF_REQUIRE_EQUAL(queue->failed.size(), 1u);
  CAF_CHECK_EQUAL(reasons_of(queue->failed[0]),
                  (strings{"2: job data is not a JSON object",
                           "3: value rejected: rejected"}));
}

CAF_TEST(redis lost after the insert : the retry writes again as one row) {
  queue->waiting = {job("1", "one", "p-1")};
  queue->complete_fails = true;
  spawn_writer();
  run_until_takes(1);
  sched.run();
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1"})); // committed
  CAF_CHECK(queue->completed.empty());
  CAF_CHECK(queue->failed.empty());
  queue->complete_fails = false;
  CAF_CHECK_EQUAL(advance(100ms), 1u);
  sched.run_once();
  // The held job is written again (idempotent: still one row), then done.
  CAF_CHECK_EQUAL(db->inserts, 2);
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1"}));
  CAF_REQUIRE_EQUAL(queue->completed.size(), 1u);
  CAF_CHECK_EQUAL(ids_of(queue->completed[0]), (strings{"1"}));
  CAF_CHECK_EQUAL(queue->takes, 1);
}

CAF_TEST(each new redis connection gives back what our token locked there) {
  queue->waiting = {job("1", "one", "p-1"), job("2", "two", "p-2")};
  db->down = true; // the batch stays held
  spawn_writer();
  run_until_takes(1);
  sched.run();
  // Its first connection was checked, before it held anything.
  CAF_REQUIRE_EQUAL(queue->orphan_checks.size(), 1u);
  CAF_CHECK(queue->orphan_checks[0].empty());
  // The same connection: not checked again.
  CAF_CHECK_EQUAL(advance(100ms), 1u);
  sched.run_once();
  CAF_CHECK_EQUAL(queue->orphan_checks.size(), 1u);
  // A failover: the new master is asked, naming the jobs still held.
  queue->connections = 2;
  queue->orphans = {"7"};
  advance(std::chrono::milliseconds{5000});
  sched.run_once();
  CAF_REQUIRE_EQUAL(queue->orphan_checks.size(), 2u);
  CAF_CHECK_EQUAL(queue->orphan_checks[1], (strings{"1", "2"}));
  CAF_CHECK(queue->completed.empty());
}

CAF_TEST(a crash gives the held jobs back at once) {
  queue->waiting = {job("1", "one", "p-1"), job("2", "two", "p-2")};
  queue->crash_on_complete = "boom";
  spawn_writer();
  run_until_takes(1);
  sched.run();
  CAF_REQUIRE_EQUAL(queue->released.size(), 1u);
  CAF_CHECK_EQUAL(queue->released[0], (strings{"1", "2"}));
  CAF_CHECK(queue->completed.empty());
  writer = actors::writer_actor{}; // it is gone
}

CAF_TEST(shutdown gives the held jobs back) {
  queue->waiting = {job("1", "one", "p-1"), job("2", "two", "p-2")};
  db->down = true;
  spawn_writer();
  run_until_takes(1);
  sched.run();
  anon_send_exit(writer, caf::exit_reason::user_shutdown);
  sched.run();
  CAF_REQUIRE_EQUAL(queue->released.size(), 1u);
  CAF_CHECK_EQUAL(queue->released[0], (strings{"1", "2"}));
  writer = actors::writer_actor{};
}

// Two jobs of one create (its retry queued again by a Redis that lost the
// Idempotency-Key): one row, and both jobs answer its postId.
CAF_TEST(a retry with the same key completes with the earlier post) {
  auto keyed = [](const std::string& id, const std::string& post_id) {
    return core::active_job{id,
                            "create-post",
                            actors::job_data({"alice", "same", "k-1"}, post_id),
                            "{}",
                            0,
                            1700000000000};
  };
  queue->waiting = {keyed("1", "p-1"), keyed("2", "p-2")};
  spawn_writer();
  run_until_takes(1);
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1"}));
  CAF_REQUIRE_EQUAL(queue->completed.size(), 1u);
  CAF_CHECK_EQUAL(ids_of(queue->completed[0]), (strings{"1", "2"}));
  CAF_CHECK_EQUAL(queue->completed[0][1].return_value, R"({"postId":"p-1"})");
}

// A failed purge (a database not migrated yet) is not a lost database: the
// writer neither reconnects nor backs off for it.
CAF_TEST(a failed key purge does not stop the writer) {
  queue->waiting = {job("1", "one", "p-1")};
  db->purge_fails = true;
  spawn_writer();
  run_until_takes(3);
  CAF_CHECK_EQUAL(db->key_purges, 1);
  CAF_CHECK_EQUAL(db->stores_made, 1);
  CAF_CHECK_EQUAL(row_ids(), (strings{"p-1"}));
}

// Old keys are forgotten once at the start, then hourly, not per batch.
CAF_TEST(old idempotency keys are forgotten at the start then hourly) {
  queue->waiting = {job("1", "one", "p-1")};
  spawn_writer();
  run_until_takes(3);
  CAF_CHECK_EQUAL(db->key_purges, 1);
  sched.advance_time(std::chrono::hours{1});
  run_until_takes(4);
  CAF_CHECK_EQUAL(db->key_purges, 2);
}

CAF_TEST_FIXTURE_SCOPE_END()
