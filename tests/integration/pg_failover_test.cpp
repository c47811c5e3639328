// PostgreSQL failover and read replicas (issue 14). First: a primary and a
// synchronous streaming standby on loopback, postd on a multi-host DATABASE_URL
// (target_session_attrs=read-write, libpq's failover). Mid-load the primary
// stops at once (SIGQUIT: its "immediate" shutdown, as a crashed machine)
// and the standby is promoted, as pg_auto_failover or Patroni would: every
// 202 is exactly one row carrying its jobId, and the writers reach the new
// primary by themselves. Prints the time from the fault to the first row
// written on the new primary and to the queue drained.

#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "support/eventually.hpp"
#include "support/pg_process.hpp"
#include "support/post_load.hpp"
#include "support/server_process.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

long long ms_since(clock_type::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock_type::now() - t)
      .count();
}

long long rows_on(const std::string& url) {
  pqxx::connection conn{url};
  pqxx::work tx{conn};
  return tx.exec1(R"(SELECT count(*) FROM "Post")")[0].as<long long>();
}

// postd's environment for these tests: the shared Redis, a queue of the
// test's own, the load's JWT secret, a short connect timeout (a stopped
// server is passed over quickly), then `settings`; migrated.
env_map migrated_env(const std::string& queue, env_map settings) {
  settings.merge(fault_env({{"REDIS_HOST", test_redis().host},
                            {"REDIS_PORT", std::to_string(test_redis().port)},
                            {"JWT_SECRET", load_secret},
                            {"QUEUE_NAME", queue},
                            {"DB_CONNECT_TIMEOUT_MS", "1000"}}));
  auto m = run_postd({"migrate"}, settings);
  EXPECT_EQ(m.exit_code, 0) << m.out << m.err;
  return settings;
}

} // namespace

TEST(PostgresFailoverTest, PrimaryLostAndStandbyPromotedMidLoadKeepsEveryPost) {
  private_postgres primary{/*crash_safe=*/true};
  private_standby standby{primary};
  ASSERT_TRUE(standby.make_synchronous()) << "the standby never became sync";
  const std::string queue = unique_name("pgfo");
  const std::string url =
      "postgresql://postgres@127.0.0.1:" + std::to_string(primary.port()) +
      ",127.0.0.1:" + std::to_string(standby.port()) + "/" +
      primary.database() + "?target_session_attrs=read-write";
  const auto e = migrated_env(queue, {{"DATABASE_URL", url},
                                      {"WRITERS", "2"},
                                      {"HTTP_THREADS", "2"},
                                      {"LOG_LEVEL", "info"}});
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();

  load l{server.port(), 3000, 4, 2ms};
  ASSERT_TRUE(l.wait_acked(500, 30s)) << l.summary();
  const std::string standby_url =
      private_postgres::url_to(standby.port(), primary.database());
  ASSERT_TRUE(eventually([&] { return rows_on(standby_url) > 0; }, 20s))
      << "no row written before the fault";
  const auto fault_at = clock_type::now();
  primary.signal_all("QUIT");
  standby.promote();
  std::cout << "[ pg fail  ] primary stopped (immediate), standby promoted in "
            << ms_since(fault_at) << " ms" << std::endl;
  const auto rows_at_promotion = rows_on(standby_url);
  EXPECT_TRUE(
      eventually([&] { return rows_on(standby_url) > rows_at_promotion; }, 30s))
      << "no row written on the new primary; " << server.output();
  std::cout << "[ pg fail  ] first row on the new primary "
            << ms_since(fault_at) << " ms after the fault" << std::endl;
  l.join();
  // Every 202 one row, on the new primary (it has all the old one
  // committed: synchronous replication).
  expect_exactly_once(standby_url, test_redis(), queue, l, server);
  std::cout << "[ pg fail  ] drained " << ms_since(fault_at)
            << " ms after the fault" << std::endl;
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
}

// DATABASE_READ_URL on a streaming standby: the post routes read there. With
// its replay paused, a new post is missing from the author's page (read on
// the standby) yet found by its id (not found there: the primary is
// asked); once it replays, the page has it; with the standby stopped, both
// are read from the primary.
TEST(ReadReplicaTest, PostsAreReadOnTheReplicaAndFallBackToThePrimary) {
  private_postgres primary;
  private_standby standby{primary};
  const std::string queue = unique_name("rr");
  const std::string standby_url =
      private_postgres::url_to(standby.port(), primary.database());
  const auto e = migrated_env(queue, {{"DATABASE_URL", primary.direct_url()},
                                      {"DATABASE_READ_URL", standby_url},
                                      {"WRITERS", "1"}});
  server_process server{e};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();
  const std::string token =
      http::token_verifier{load_secret}.issue("reader", 600s);
  const std::map<std::string, std::string> auth{
      {"Authorization", "Bearer " + token}};

  // Creates `content` and waits until its job completed; its post id.
  auto create = [&](const std::string& content) {
    auto r = http_call(server.port(), "POST", "/v1/post/create",
                       nlohmann::json{{"content", content}}.dump(),
                       {{"Authorization", "Bearer " + token},
                        {"Content-Type", "application/json"}});
    EXPECT_EQ(r.status, 202u) << r.body;
    const auto job = nlohmann::json::parse(r.body)["jobId"].get<std::string>();
    std::string post_id;
    EXPECT_TRUE(eventually(
        [&] {
          auto s =
              http_call(server.port(), "GET", "/v1/post/jobs/" + job, {}, auth);
          auto body = nlohmann::json::parse(s.body, nullptr, false);
          if (s.status != 200 || !body.contains("postId"))
            return false;
          post_id = body["postId"].get<std::string>();
          return true;
        },
        10s))
        << server.output();
    return post_id;
  };
  std::string last_page;
  auto page_has = [&](const std::string& content) {
    auto r =
        http_call(server.port(), "GET", "/v1/post?authorId=reader", {}, auth);
    EXPECT_EQ(r.status, 200u) << r.body;
    last_page = r.body;
    const auto page = nlohmann::json::parse(r.body);
    for (const auto& item : page["items"])
      if (item["content"] == content)
        return true;
    return false;
  };
  auto found_by_id = [&](const std::string& id) {
    return http_call(server.port(), "GET", "/v1/post/" + id, {}, auth).status;
  };

  const auto first = create("first");
  ASSERT_TRUE(eventually([&] { return page_has("first"); }, 10s))
      << last_page << server.output();
  EXPECT_EQ(found_by_id(first), 200u);

  {
    pqxx::connection conn{standby_url};
    pqxx::nontransaction tx{conn};
    tx.exec("SELECT pg_wal_replay_pause()");
  }
  const auto second = create("second");
  EXPECT_EQ(found_by_id(second), 200u) << "not on the replica: the primary";
  EXPECT_FALSE(page_has("second")) << "the page is the paused replica's";
  EXPECT_TRUE(page_has("first"));
  {
    pqxx::connection conn{standby_url};
    pqxx::nontransaction tx{conn};
    tx.exec("SELECT pg_wal_replay_resume()");
  }
  EXPECT_TRUE(eventually([&] { return page_has("second"); }, 10s));

  standby.stop();
  EXPECT_EQ(found_by_id(second), 200u) << server.output();
  EXPECT_TRUE(page_has("second")) << server.output();
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
  EXPECT_NE(server.output().find("read replica failed: reading the primary"),
            std::string::npos);
}
