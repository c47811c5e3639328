// A job written twice is one row: the writer's persist step against real
// Redis (Bull's scripts) and PostgreSQL (through PgBouncer). The second
// write comes from what really hands a job out again: a crash between COMMIT
// and complete (the job given back, or its lock expired and the stalled
// check requeued it), and a failed attempt retried later. postd's own jobs
// carry their post id; an old producer's job (no "postId") gets the same
// derived id on every attempt.

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "actors/enqueue.hpp"
#include "core/ids.hpp"
#include "core/persist_batch.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/migrations.hpp"
#include "persistence/postgres.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace std::chrono_literals;

namespace {

class WriterBatchTest : public ::testing::Test {
protected:
  WriterBatchTest() {
    keys_.name = postd::testing::unique_name("wb");
    persistence::migrate(db_.direct_url(), persistence::embedded_migrations());
  }
  ~WriterBatchTest() override {
    redis_.command({"EVAL",
                    "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                    "redis.call('DEL', k) end",
                    "0", keys_.base() + "*"});
  }

  std::string add(const std::string& data) {
    persistence::job_request j{data, "author-1", "", 3, 1000, 0, {}};
    return persistence::add_jobs(redis_, keys_, {j}, 1000000).at(0).job_id;
  }
  std::vector<persistence::active_job> take(const std::string& token,
                                            std::chrono::milliseconds lock) {
    return persistence::take_jobs(redis_, keys_, 10, token, lock, 0ms);
  }
  core::batch_result persist(const std::vector<core::active_job>& j) {
    return core::persist_batch(j, keys_.base(),
                               [&](const std::vector<core::new_post>& rows) {
                                 return store_.insert_posts(rows);
                               });
  }
  // content -> rows holding it; the id of the last one.
  std::pair<long long, std::string> rows(const std::string& content) {
    pqxx::connection conn{db_.direct_url()};
    pqxx::nontransaction tx{conn};
    auto r = tx.exec_params(R"(SELECT count(*), max(id) FROM "Post"
                               WHERE content = $1)",
                            content);
    return {r[0][0].as<long long>(), r[0][1].as<std::string>("")};
  }

  postd::testing::scratch_database db_;
  persistence::post_store store_{db_.pgbouncer_url()};
  persistence::redis_client redis_{postd::testing::test_redis()};
  persistence::queue_keys keys_;
};

std::string data(const std::string& content, const std::string& post_id) {
  nlohmann::json d{{"postData", {{"content", content}}},
                   {"userId", "author-1"},
                   {"fileUrls", nlohmann::json::array()}};
  if (!post_id.empty())
    d["postId"] = post_id;
  return d.dump();
}

TEST_F(WriterBatchTest, AJobGivenBackAfterItsCommitIsOneRow) {
  const auto post_id = core::new_post_id();
  add(data("given back", post_id));
  auto first = take("writer-a", 30s);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(persist(first).completed.size(), 1u);
  // The writer crashed before completing: its supervisor gives the job back.
  ASSERT_EQ(persistence::release_jobs(redis_, keys_, {first[0].id}, "writer-a")
                .size(),
            1u);
  auto second = take("writer-b", 30s);
  ASSERT_EQ(second.size(), 1u);
  auto result = persist(second);
  ASSERT_EQ(result.completed.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(result.completed[0].return_value)["postId"],
            post_id);
  EXPECT_EQ(rows("given back"), std::make_pair(1LL, post_id));
}

TEST_F(WriterBatchTest, AStalledJobTakenAgainIsOneRow) {
  add(data("stalled", core::new_post_id()));
  auto first = take("writer-a", 100ms); // its worker dies with the lock
  ASSERT_EQ(first.size(), 1u);
  persist(first);
  // Bull's stalled check: the first run marks, the next (lock gone) requeues.
  persistence::recover_stalled(redis_, keys_, 1, 10ms, 1000);
  std::this_thread::sleep_for(150ms);
  auto stalled = persistence::recover_stalled(redis_, keys_, 1, 10ms, 1000);
  ASSERT_EQ(stalled.requeued.size(), 1u);
  auto second = take("writer-b", 30s);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(persist(second).completed.size(), 1u);
  EXPECT_EQ(rows("stalled").first, 1);
}

// An old producer's job: no "postId". Written, then its attempt failed
// (e.g. the complete was lost and the job counted as failed), retried:
// the same derived id, one row.
TEST_F(WriterBatchTest, AnOldProducersJobRetriedAfterAFailedAttemptIsOneRow) {
  const auto job_id = add(data("old producer", ""));
  auto first = take("writer-a", 30s);
  ASSERT_EQ(first.size(), 1u);
  persist(first);
  auto outcome = persistence::fail_jobs(
      redis_, keys_, {{job_id, "attempt failed after the write"}}, "writer-a",
      1000, 1000);
  ASSERT_EQ(outcome.at(0), persistence::failure_outcome::retried);
  // Its backoff (1 s) has passed: the writers' promotion moves it to wait.
  auto later = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch() + 5s)
                   .count();
  ASSERT_EQ(persistence::promote_delayed(redis_, keys_, later), 1);
  auto second = take("writer-b", 30s);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].attempts_made, 1);
  EXPECT_EQ(persist(second).completed.size(), 1u);
  const auto expected =
      core::legacy_post_id(keys_.base(), job_id, second[0].timestamp_ms);
  EXPECT_EQ(rows("old producer"), std::make_pair(1LL, expected));
}

// The split brain of a failover: the old master queued a create (its
// answer lost or a 503) and a writer wrote it; the new master never got it,
// nor its Idempotency-Key, so the client's retry is queued again with a new
// post id. The row is still one, the retry's job completes with its postId
// (what the job-status route answers) and the row carries the retry's jobId.
TEST_F(WriterBatchTest, ARetryQueuedAgainAfterRedisLostItsKeyIsOneRow) {
  const actors::create_post create{"author-1", "retried", "key-1"};
  auto add_create = [&] {
    persistence::job_request j{actors::job_data(create, core::new_post_id()),
                               create.author,
                               create.idempotency_key,
                               3,
                               1000,
                               0,
                               {}};
    return persistence::add_jobs(redis_, keys_, {j}, 1000000).at(0);
  };
  ASSERT_EQ(add_create().status, persistence::add_status::added);
  auto first = take("writer-a", 30s);
  ASSERT_EQ(first.size(), 1u);
  const auto first_post =
      nlohmann::json::parse(persist(first).completed.at(0).return_value)
          .at("postId")
          .get<std::string>();
  redis_.command({"DEL", keys_.base() + "idem:author-1:key-1"});

  auto retry = add_create();
  ASSERT_EQ(retry.status, persistence::add_status::added);
  auto second = take("writer-b", 30s);
  ASSERT_EQ(second.size(), 1u);
  auto result = persist(second);
  ASSERT_EQ(result.completed.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(result.completed[0].return_value)["postId"],
            first_post);
  EXPECT_EQ(rows("retried"), std::make_pair(1LL, first_post));
  EXPECT_EQ(store_.find_post(first_post)->job_id, retry.job_id);
}

} // namespace
