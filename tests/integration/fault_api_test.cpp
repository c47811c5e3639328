// The fault API for testers (FAULTS=on, /admin/faults) on a running postd:
// off by default, refused without its token, and each fault doing to the
// server what its name says, then clearing.

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "support/eventually.hpp"
#include "support/post_load.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "fault-api-secret";

struct FaultApiTest : ::testing::Test {
  scratch_database db;
  std::string queue = unique_name("fa");

  env_map env(env_map settings = {}) const {
    settings.merge(fault_env(postd_env(db, queue, secret)));
    return settings;
  }
  void migrate() {
    auto r = run_postd({"migrate"}, env());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  }
  static http_result admin(int port, const std::string& method,
                           const std::string& body = {},
                           const std::string& token = test_admin_token) {
    return http_call(port, method, "/admin/faults", body,
                     {{"Authorization", "Bearer " + token},
                      {"Content-Type", "application/json"}});
  }
  static http_result create(int port, const std::string& content,
                            std::chrono::milliseconds timeout = 10s) {
    auto token = http::token_verifier{secret}.issue("author-1", 600s);
    return http_call(port, "POST", "/v1/post/create",
                     nlohmann::json{{"content", content}}.dump(),
                     {{"Authorization", "Bearer " + token},
                      {"Content-Type", "application/json"},
                      {"Idempotency-Key", content}},
                     timeout);
  }
  long long rows() const {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    return tx.exec1(R"(SELECT count(*) FROM "Post")")[0].as<long long>();
  }
};

} // namespace

// Without FAULTS=on every /admin route is unknown (404, whatever the token)
// and /metrics names no fault.
TEST_F(FaultApiTest, OffByDefaultEveryAdminRouteIsNotFound) {
  START_SERVER(server, env());
  for (const char* method : {"GET", "PUT", "DELETE"})
    EXPECT_EQ(admin(server.port(), method, R"({"db_delay_ms":5})").status, 404u)
        << method;
  EXPECT_EQ(
      metric_value(server.port(), R"(postd_fault_active{fault="db_delay_ms"})"),
      -1);
}

// FAULTS=on without a long enough ADMIN_TOKEN: postd does not start.
TEST_F(FaultApiTest, FaultsOnWithoutATokenDoesNotStart) {
  auto r =
      run_postd({"serve"}, env({{"FAULTS", "on"}, {"ADMIN_TOKEN", ""}}), 20s);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("postd: ADMIN_TOKEN: ", 0), 0u) << r.err;
}

// A short token is taken, with a warning naming the risk.
TEST_F(FaultApiTest, AShortTokenWorksWithAWarning) {
  START_SERVER(server, env({{"FAULTS", "on"}, {"ADMIN_TOKEN", "short"}}));
  EXPECT_NE(server.output().find("ADMIN_TOKEN is short"), std::string::npos)
      << server.output();
  EXPECT_EQ(admin(server.port(), "GET", "", "short").status, 200u);
  EXPECT_EQ(admin(server.port(), "GET", "", "shorter").status, 401u);
}

// With the API on: a warning at start, 401 without the token, faults set,
// shown (also in /metrics) and cleared by themselves after `for`.
TEST_F(FaultApiTest, SetShownInMetricsAndClearedAfterItsTime) {
  START_SERVER(server, with_fault_api(env()));
  EXPECT_NE(server.output().find("the fault API is on"), std::string::npos)
      << server.output();
  EXPECT_EQ(server.output().find("ADMIN_TOKEN is short"), std::string::npos)
      << server.output();
  auto refused = admin(server.port(), "PUT", R"({"db_delay_ms":5})", "wrong");
  EXPECT_EQ(refused.status, 401u) << refused.body;
  EXPECT_EQ(admin(server.port(), "GET").body, R"({"faults":{}})");

  auto set =
      admin(server.port(), "PUT", R"({"writer_crash_rate":0.5,"for":1.5})");
  ASSERT_EQ(set.status, 200u) << set.body;
  EXPECT_EQ(metric_value(server.port(),
                         R"(postd_fault_active{fault="writer_crash_rate"})"),
            1);
  EXPECT_EQ(
      metric_value(server.port(), R"(postd_fault_active{fault="db_delay_ms"})"),
      0);
  EXPECT_TRUE(eventually(
      [&] { return admin(server.port(), "GET").body == R"({"faults":{}})"; },
      5s));
  EXPECT_EQ(metric_value(server.port(),
                         R"(postd_fault_active{fault="writer_crash_rate"})"),
            0);
  auto bad = admin(server.port(), "PUT", R"({"writer_crash_rate":2})");
  EXPECT_EQ(bad.status, 400u) << bad.body;
}

// enqueue_error_rate 1: every create fails as if Redis refused the add
// (503, nothing queued); cleared, creates are queued again.
TEST_F(FaultApiTest, EnqueueErrorsAnswer503UntilCleared) {
  migrate();
  START_SERVER(server, with_fault_api(env()));
  ASSERT_EQ(admin(server.port(), "PUT", R"({"enqueue_error_rate":1})").status,
            200u);
  for (int i = 0; i < 5; ++i) {
    auto r = create(server.port(), "refused-" + std::to_string(i));
    EXPECT_EQ(r.status, 503u) << r.body;
  }
  EXPECT_EQ(queue_counts(test_redis(), queue).wait +
                queue_counts(test_redis(), queue).active,
            0);
  ASSERT_EQ(admin(server.port(), "DELETE").status, 200u);
  auto r = create(server.port(), "accepted");
  EXPECT_EQ(r.status, 202u) << r.body;
}

// redis_delay_ms: each Redis call waits that long first, so a create (an
// add, at least) takes at least as long; cleared, creates are quick again.
TEST_F(FaultApiTest, RedisDelaySlowsEveryCreate) {
  migrate();
  START_SERVER(server, with_fault_api(env()));
  ASSERT_EQ(admin(server.port(), "PUT", R"({"redis_delay_ms":400})").status,
            200u);
  auto started = std::chrono::steady_clock::now();
  auto r = create(server.port(), "slow");
  EXPECT_EQ(r.status, 202u) << r.body;
  EXPECT_GE(std::chrono::steady_clock::now() - started, 400ms);
  ASSERT_EQ(admin(server.port(), "DELETE").status, 200u);
  // A call that began its wait before the DELETE (the enqueue actor's
  // recovery-log ping, say) may still hold the next create once; after it,
  // creates are quick.
  int quick = 0;
  EXPECT_TRUE(eventually(
      [&] {
        started = std::chrono::steady_clock::now();
        EXPECT_EQ(
            create(server.port(), "quick " + std::to_string(quick++)).status,
            202u);
        return std::chrono::steady_clock::now() - started < 400ms;
      },
      5s));
}

// writer_error_rate 1: every write fails as a database that cannot serve
// does; the writers hold their jobs (none failed, none written) and, once
// the fault is cleared, write each exactly once.
TEST_F(FaultApiTest, WriterErrorsHoldJobsUntilClearedThenEachIsOneRow) {
  migrate();
  START_SERVER(server, with_fault_api(env()));
  ASSERT_EQ(admin(server.port(), "PUT", R"({"writer_error_rate":1})").status,
            200u);
  constexpr int n = 20;
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(create(server.port(), "held-" + std::to_string(i)).status, 202u);
  std::this_thread::sleep_for(2s); // the writers fail and retry meanwhile
  EXPECT_EQ(rows(), 0);
  auto held = queue_counts(test_redis(), queue);
  EXPECT_EQ(held.wait + held.active + held.delayed, n) << held.str();
  EXPECT_EQ(held.failed, 0) << held.str();

  ASSERT_EQ(admin(server.port(), "DELETE").status, 200u);
  EXPECT_TRUE(eventually([&] { return rows() == n; }, 30s)) << rows();
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(rows(), n);
  EXPECT_EQ(queue_counts(test_redis(), queue).failed, 0);
}
