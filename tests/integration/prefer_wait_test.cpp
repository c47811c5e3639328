// Prefer: wait=N on POST /v1/post/create end to end: 201 with the post when
// a writer persists it in time (woken by the writer, not by polling), the
// usual 202 after about N seconds while PostgreSQL is down, and every post
// still one row.

#include <chrono>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "support/pg_process.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr const char* secret = "prefer-secret";

struct PreferWaitTest : ::testing::Test {
  std::string queue = unique_name("pw");

  env_map env(const std::string& database_url) const {
    auto redis = test_redis();
    return {{"DATABASE_URL", database_url},
            {"REDIS_HOST", redis.host},
            {"REDIS_PORT", std::to_string(redis.port)},
            {"JWT_SECRET", secret},
            {"QUEUE_NAME", queue},
            {"WRITERS", "2"},
            {"LOG_LEVEL", "info"}};
  }
  static void migrate(const env_map& e) {
    auto r = run_postd({"migrate"}, e);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  static http_result create(int port, const std::string& content,
                            const std::string& prefer) {
    std::map<std::string, std::string> headers{
        {"Authorization",
         "Bearer " + http::token_verifier{secret}.issue("author-1", 600s)},
        {"Content-Type", "application/json"}};
    if (!prefer.empty())
      headers["Prefer"] = prefer;
    return http_call(port, "POST", "/v1/post/create",
                     json{{"content", content}}.dump(), headers, 20s);
  }
  static long long rows(const std::string& url, const std::string& content) {
    pqxx::connection conn{url};
    pqxx::work tx{conn};
    return tx
        .exec_params1(R"(SELECT count(*) FROM "Post" WHERE content = $1)",
                      content)[0]
        .as<long long>();
  }
};

} // namespace

TEST_F(PreferWaitTest, PersistedInTimeIs201WithThePost) {
  scratch_database db;
  auto e = env(db.pgbouncer_url());
  migrate(e);
  START_SERVER(server, e);
  auto started = std::chrono::steady_clock::now();
  auto r = create(server.port(), "waited for", "wait=5");
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.status, 201U) << r.body;
  auto post = json::parse(r.body);
  EXPECT_EQ(post["content"], "waited for");
  EXPECT_EQ(post["authorId"], "author-1");
  EXPECT_TRUE(post["createdAt"].is_string());
  EXPECT_EQ(post["images"], json::array());
  auto id = post["id"].get<std::string>();
  EXPECT_EQ(r.headers["location"], "/v1/post/" + id);
  EXPECT_EQ(r.headers["preference-applied"], "wait=5");
  // Woken by the writer that committed it: far sooner than the wait.
  EXPECT_LT(took, 3s);
  // The post is there, and only once.
  auto got = http_call(server.port(), "GET", "/v1/post/" + id);
  ASSERT_EQ(got.status, 200U) << got.body;
  EXPECT_EQ(json::parse(got.body)["createdAt"], post["createdAt"]);
  EXPECT_EQ(rows(db.direct_url(), "waited for"), 1);
  // Without Prefer: the usual 202, no preference applied.
  auto plain = create(server.port(), "not waited for", "");
  EXPECT_EQ(plain.status, 202U) << plain.body;
  EXPECT_EQ(plain.headers.count("preference-applied"), 0U);
}

TEST_F(PreferWaitTest, WhilePostgresIsDownIt202sAfterTheWait) {
  private_postgres pg;
  auto e = env(pg.pgbouncer_url());
  migrate(e);
  START_SERVER(server, e);
  pg.stop();
  auto started = std::chrono::steady_clock::now();
  auto r = create(server.port(), "waited for in vain", "wait=1");
  auto took = std::chrono::steady_clock::now() - started;
  ASSERT_EQ(r.status, 202U) << r.body;
  EXPECT_EQ(r.headers["preference-applied"], "wait=1");
  EXPECT_FALSE(json::parse(r.body)["jobId"].get<std::string>().empty());
  EXPECT_GE(took, 1s);
  EXPECT_LT(took, 3s);
  // The 202 holds: once PostgreSQL is back the post is written, once.
  pg.start();
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (rows(pg.direct_url(), "waited for in vain") == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(200ms);
  EXPECT_EQ(rows(pg.direct_url(), "waited for in vain"), 1);
}

// A wait longer than REQUEST_TIMEOUT_MS is not cut short by it.
TEST_F(PreferWaitTest, TheWaitOutlastsTheRequestTimeout) {
  private_postgres pg;
  auto e = env(pg.pgbouncer_url());
  e["REQUEST_TIMEOUT_MS"] = "500";
  migrate(e);
  START_SERVER(server, e);
  pg.stop();
  auto started = std::chrono::steady_clock::now();
  auto r = create(server.port(), "a long wait", "wait=2");
  EXPECT_EQ(r.status, 202U) << r.body;
  EXPECT_GE(std::chrono::steady_clock::now() - started, 2s);
  pg.start();
}
