// The orphan sweep against a real PostgreSQL (through PgBouncer, migrated)
// and Redis: a stored file goes only when it is old, no pending job may name
// it and no row holds its URL; old temporary files go; nothing else is ever
// touched; a failing Redis or PostgreSQL removes nothing.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>
#include <sys/stat.h>

#include "core/clock.hpp"
#include "persistence/file_sweep.hpp"
#include "persistence/migrations.hpp"
#include "persistence/sql.hpp"
#include "support/test_env.hpp"

namespace postd::persistence {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::unique_name;

constexpr std::int64_t minute = 60'000;
constexpr std::int64_t hour = 60 * minute;

// A stored file's name: 64 hex digits of `c` and an image extension.
std::string stored(char c, const char* ext = ".png") {
  return std::string(64, c) + ext;
}

// What the sweep's owner would hold: the one reconnecting connection.
redis_connection_options connection_to(redis_options redis) {
  redis_connection_options o;
  o.redis = std::move(redis);
  o.owner = "file_sweep";
  return o;
}

class FileSweepTest : public ::testing::Test {
protected:
  FileSweepTest() {
    migrate(db_.direct_url(), embedded_migrations());
    options_.dir = dir_;
    options_.queue.name = unique_name("sweep");
    options_.database.url = db_.pgbouncer_url();
    fs::create_directories(dir_);
  }

  ~FileSweepTest() override {
    fs::remove_all(dir_);
    redis_client r{testing::test_redis()};
    std::string cursor = "0";
    do {
      auto page = r.command({"SCAN", cursor, "MATCH",
                             options_.queue.base() + "*", "COUNT", "1000"});
      cursor = reply_string(page->element[0]);
      for (std::size_t i = 0; i < page->element[1]->elements; ++i)
        r.command({"DEL", reply_string(page->element[1]->element[i])});
    } while (cursor != "0");
  }

  // A file in the folder, last modified `age_ms` ago.
  void file(const std::string& name, std::int64_t age_ms) {
    std::ofstream(dir_ / name) << "bytes of " << name;
    const auto mtime = core::epoch_ms() - age_ms;
    const timespec times[2] = {{0, UTIME_OMIT},
                               {mtime / 1000, (mtime % 1000) * 1'000'000}};
    ASSERT_EQ(::utimensat(AT_FDCWD, (dir_ / name).c_str(), times, 0), 0);
  }
  bool exists(const std::string& name) const { return fs::exists(dir_ / name); }

  // A "Post" row whose images hold these URLs.
  void post(const std::vector<std::string>& images) {
    pqxx::connection conn{db_.direct_url()};
    pqxx::work tx{conn};
    tx.exec_params(R"sql(
      INSERT INTO "Post" (id, content, "authorId", images, "updatedAt")
      VALUES (gen_random_uuid()::text, 'x', 'u1',
              ARRAY(SELECT jsonb_array_elements_text($1::jsonb)), now()))sql",
                   nlohmann::json(images).dump());
    tx.commit();
  }

  // A job with this timestamp in `state` (wait, active, paused: lists;
  // delayed: a zset), pushed at the left (the newest end) of a list.
  void job(const std::string& id, const std::string& state,
           const std::string& timestamp) {
    redis_.command({"HSET", options_.queue.base() + id, "timestamp", timestamp,
                    "name", "create-post"});
    if (state == "delayed")
      redis_.command({"ZADD", options_.queue.key(state), "1", id});
    else
      redis_.command({"LPUSH", options_.queue.key(state), id});
  }
  void job(const std::string& id, const std::string& state,
           std::int64_t age_ms) {
    job(id, state, std::to_string(core::epoch_ms() - age_ms));
  }
  void finish(const std::string& id) {
    for (const char* list : {"wait", "active", "paused"})
      redis_.command({"LREM", options_.queue.key(list), "0", id});
    redis_.command({"ZREM", options_.queue.key("delayed"), id});
  }

  sweep_report sweep(std::string_view resume_after = {}) {
    redis_connection redis{connection_to(testing::test_redis())};
    auto report = sweep_orphan_files(options_, redis, resume_after);
    EXPECT_EQ(report.failed, 0u) << report.error;
    return report;
  }

  testing::scratch_database db_;
  fs::path dir_ = fs::temp_directory_path() / unique_name("postd-sweep");
  file_sweep_options options_;
  redis_client redis_{testing::test_redis()};
};

TEST_F(FileSweepTest, OnlyOldUnreferencedStoredFilesAndOldTemporariesGo) {
  file(stored('a'), 2 * hour);             // an orphan
  file(stored('b', ".jpg"), 2 * hour);     // a row holds it
  file(stored('c', ".webp"), 10 * minute); // recent
  file(".upload-old", 2 * hour);           // a crashed upload
  file(".upload-new", 1 * minute);         // an upload under way
  file(".sweep-" + stored('d'), 2 * hour); // a crashed sweep's
  file("notes.txt", 100 * hour);
  file(std::string(64, 'e') + ".txt", 100 * hour);
  fs::create_directories(dir_ / stored('f')); // not a plain file
  post({"/v1/files/" + stored('b', ".jpg"), "/v1/files/elsewhere.png"});
  post({"/v1/files/" + stored('a') + "x"}); // another name

  auto report = sweep();
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(report.examined, 6u);
  EXPECT_EQ(report.removed, 3u);
  EXPECT_EQ(report.kept_referenced, 1u);
  EXPECT_EQ(report.kept_young, 2u);
  EXPECT_EQ(report.kept_pending, 0u);
  EXPECT_EQ(report.resume_after, "");
  EXPECT_FALSE(exists(stored('a')));
  EXPECT_TRUE(exists(stored('b', ".jpg")));
  EXPECT_TRUE(exists(stored('c', ".webp")));
  EXPECT_FALSE(exists(".upload-old"));
  EXPECT_TRUE(exists(".upload-new"));
  EXPECT_FALSE(exists(".sweep-" + stored('d')));
  EXPECT_TRUE(exists("notes.txt"));
  EXPECT_TRUE(exists(std::string(64, 'e') + ".txt"));
  EXPECT_TRUE(fs::is_directory(dir_ / stored('f')));

  report = sweep(); // nothing more to do
  EXPECT_EQ(report.removed, 0u);
  EXPECT_EQ(report.examined, 3u);
}

TEST_F(FileSweepTest, AnEmptyOrMissingFolderIsNoError) {
  EXPECT_EQ(sweep().error, "");
  fs::remove_all(dir_);
  auto report = sweep();
  EXPECT_EQ(report.error, "");
  EXPECT_EQ(report.examined, 0u);
}

// Its upload was stored just before the job was queued: the file is older
// than min_age, but the job may still name it.
TEST_F(FileSweepTest, AJobStillPendingKeepsWhatWasUploadedForIt) {
  for (const char* state : {"wait", "active", "paused", "delayed"}) {
    SCOPED_TRACE(state);
    file(stored('a'), 2 * hour);
    file(stored('b'), 5 * hour); // before any pending job (less the margin)
    job("7", state, 2 * hour - 20'000);

    auto report = sweep();
    EXPECT_EQ(report.error, "");
    EXPECT_EQ(report.kept_pending, 1u);
    EXPECT_EQ(report.removed, 1u);
    EXPECT_TRUE(exists(stored('a')));
    EXPECT_FALSE(exists(stored('b')));

    finish("7"); // written (a row would hold it) or failed for good
    report = sweep();
    EXPECT_EQ(report.kept_pending, 0u);
    EXPECT_EQ(report.removed, 1u);
    EXPECT_FALSE(exists(stored('a')));
  }
}

// A retried job goes back to the newest end of wait with its first
// timestamp: the oldest job is not always at the tail.
TEST_F(FileSweepTest, EveryPendingJobCountsNotOnlyTheTails) {
  file(stored('a'), 2 * hour);
  job("1", "wait", 1 * minute);
  job("2", "wait", 2 * hour - 20'000); // retried: not at the tail
  job("3", "wait", 2 * minute);
  job("4", "active", 3 * minute);
  job("5", "active", 1 * minute);
  auto report = sweep();
  EXPECT_EQ(report.kept_pending, 1u);
  EXPECT_TRUE(exists(stored('a')));
}

TEST_F(FileSweepTest, ReadsThePendingJobsAtOnce) {
  const std::size_t max = 100;
  EXPECT_EQ(read_pending_jobs(redis_, options_.queue, max).count, 0);
  EXPECT_FALSE(read_pending_jobs(redis_, options_.queue, max).oldest_ms);

  job("1", "wait", "1000");
  job("2", "active", "900");
  job("3", "delayed", "800");
  job("4", "paused", "1100");
  auto p = read_pending_jobs(redis_, options_.queue, max);
  EXPECT_EQ(p.count, 4);
  EXPECT_EQ(p.oldest_ms, 800);

  redis_.command({"LPUSH", options_.queue.key("wait"), "5"}); // hash gone
  p = read_pending_jobs(redis_, options_.queue, max);
  EXPECT_EQ(p.count, 5);
  EXPECT_EQ(p.oldest_ms, 800);

  job("6", "wait", "not a number"); // counts as the oldest possible
  EXPECT_EQ(read_pending_jobs(redis_, options_.queue, max).oldest_ms, 0);

  // More than max: counted, not read.
  p = read_pending_jobs(redis_, options_.queue, 5);
  EXPECT_EQ(p.count, 6);
  EXPECT_FALSE(p.oldest_ms);
}

TEST_F(FileSweepTest, ABacklogLargerThanMaxPendingSkipsTheRound) {
  file(stored('a'), 5 * hour);
  options_.max_pending = 2;
  for (const char* id : {"1", "2", "3"})
    job(id, "wait", 1 * minute);
  auto report = sweep();
  EXPECT_NE(report.error.find("3 jobs pending"), std::string::npos)
      << report.error;
  EXPECT_EQ(report.removed, 0u);
  EXPECT_TRUE(exists(stored('a')));
}

TEST_F(FileSweepTest, NothingIsRemovedWhenRedisOrPostgresFails) {
  file(stored('a'), 5 * hour);
  {
    redis_options nowhere = testing::test_redis();
    nowhere.host = "127.0.0.1";
    nowhere.port = 1; // nothing listens there
    redis_connection redis{connection_to(nowhere)};
    auto report = sweep_orphan_files(options_, redis, stored('0'));
    EXPECT_TRUE(report.error.starts_with("Redis: ")) << report.error;
    EXPECT_EQ(report.resume_after, stored('0')); // the same round again
    EXPECT_TRUE(exists(stored('a')));
  }
  options_.database.url = "postgresql://postgres@127.0.0.1:1/nowhere";
  auto report = sweep();
  EXPECT_TRUE(report.error.starts_with("PostgreSQL: ")) << report.error;
  EXPECT_EQ(report.removed, 0u);
  EXPECT_TRUE(exists(stored('a')));
}

// Files in use stay round after round; the next round goes on after them,
// so the orphans behind them are reached.
TEST_F(FileSweepTest, EachRoundGoesOnWhereTheLastStopped) {
  for (char c : {'1', '2', '3', '4'}) {
    file(stored(c), 2 * hour);
    post({"/v1/files/" + stored(c)});
  }
  file(stored('a'), 2 * hour);
  file(stored('b'), 2 * hour);
  options_.max_files = 4;

  auto first = sweep();
  EXPECT_EQ(first.examined, 4u);
  EXPECT_EQ(first.kept_referenced, 4u);
  EXPECT_EQ(first.resume_after, stored('4'));
  auto second = sweep(first.resume_after);
  EXPECT_EQ(second.examined, 2u);
  EXPECT_EQ(second.removed, 2u);
  EXPECT_EQ(second.resume_after, "");
  EXPECT_FALSE(exists(stored('a')));
  EXPECT_FALSE(exists(stored('b')));
  EXPECT_EQ(sweep().examined, 4u); // from the start again
}

TEST_F(FileSweepTest, ManyFilesAreLookedUpInBatches) {
  options_.lookup_batch = 7;
  for (char c : std::string("0123456789abcdef")) {
    file(stored(c), 2 * hour);
    if (c >= 'a')
      post({"/v1/files/" + stored(c)});
  }
  auto report = sweep();
  EXPECT_EQ(report.kept_referenced, 6u);
  EXPECT_EQ(report.removed, 10u);
}

// Rows written under an earlier PUBLIC_FILES_URL still hold their files.
TEST_F(FileSweepTest, EveryUrlPrefixHoldsItsFiles) {
  options_.url_prefixes = {"/v1/files/", "https://cdn.example/f/"};
  file(stored('a'), 2 * hour);
  file(stored('b'), 2 * hour);
  post({"https://cdn.example/f/" + stored('a')});
  auto report = sweep();
  EXPECT_EQ(report.kept_referenced, 1u);
  EXPECT_TRUE(exists(stored('a')));
  EXPECT_FALSE(exists(stored('b')));
}

// The planner's own choice, with fresh statistics: each URL is an index
// probe of "Post_images_idx", not a scan of "Post".
TEST_F(FileSweepTest, TheLookupUsesTheImagesIndex) {
  pqxx::connection conn{db_.direct_url()};
  pqxx::nontransaction tx{conn};
  tx.exec(R"sql(
    INSERT INTO "Post" (id, content, "authorId", images, "updatedAt")
    SELECT 'p' || g, 'x', 'a' || (g % 100),
           CASE WHEN g % 3 = 0 THEN ARRAY[]::text[]
                ELSE ARRAY['/v1/files/' || md5(g::text) || '.png'] END, now()
    FROM generate_series(1, 30000) AS g;
    ANALYZE "Post";)sql");
  const auto urls =
      nlohmann::json{"/v1/files/" + stored('a'), "/v1/files/" + stored('b')}
          .dump();
  std::string plan;
  for (const auto& row : tx.exec_params(std::string("EXPLAIN (COSTS OFF) ") +
                                            sql::referenced_file_urls,
                                        urls))
    plan += row[0].as<std::string>() + "\n";
  EXPECT_NE(plan.find("Post_images_idx"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("Seq Scan on \"Post\""), std::string::npos) << plan;
}

} // namespace
} // namespace postd::persistence
