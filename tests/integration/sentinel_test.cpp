// Redis Sentinel discovery against real processes on loopback: the resolver
// asks the sentinels in order and moves the one that answered first, names
// what each said when none knows the master, ROLE refuses a replica, and a
// postd given only REDIS_SENTINELS queues on the master, then follows it
// through a SENTINEL FAILOVER (the old master, demoted, answers READONLY).

#include <chrono>
#include <string>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "http/auth.hpp"
#include "persistence/redis_connection.hpp"
#include "persistence/sentinel.hpp"
#include "support/eventually.hpp"
#include "support/redis_process.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "sentinel-secret";

// A master with one replica, and one sentinel watching them (quorum 1).
struct SentinelTest : ::testing::Test {
  private_redis master;
  private_redis replica{
      {"replicaof 127.0.0.1 " + std::to_string(master.port())}};
  private_sentinel sentinel{master.port()};

  void SetUp() override {
    // The sentinel learns the replica from the master's INFO (every 10 s,
    // and at once on start): a failover needs it known.
    ASSERT_TRUE(eventually(
        [&] {
          auto c = sentinel.client();
          auto r = c.command({"SENTINEL", "replicas", "mymaster"});
          return r->type == REDIS_REPLY_ARRAY && r->elements == 1;
        },
        20s))
        << "the sentinel never saw the replica";
  }

  // A planned failover, done: the sentinel names the replica, and the old
  // master has been turned into a replica (until then it still takes
  // writes, for ~10 s on Redis 7.0).
  bool switch_master() {
    return sentinel.failover() &&
           eventually(
               [&] {
                 return sentinel.master() == replica.endpoint() &&
                        master.role() == "slave";
               },
               20s);
  }
};

} // namespace

TEST_F(SentinelTest, AsksInOrderAndAsksTheOneThatAnsweredFirstFromThenOn) {
  const persistence::redis_endpoint nobody{"127.0.0.1", free_port()};
  persistence::sentinel_resolver resolver{
      {{nobody, sentinel.endpoint()}, "mymaster", ""}, 1000ms};
  EXPECT_EQ(resolver.master(), master.endpoint());
  ASSERT_EQ(resolver.sentinels().size(), 2u);
  EXPECT_EQ(resolver.sentinels().front(), sentinel.endpoint());
  EXPECT_EQ(resolver.master(), master.endpoint());
}

TEST_F(SentinelTest, NamesWhatEachSentinelSaidWhenNoneKnowsTheMaster) {
  const persistence::redis_endpoint nobody{"127.0.0.1", free_port()};
  persistence::sentinel_resolver resolver{
      {{sentinel.endpoint(), nobody}, "nosuch", ""}, 1000ms};
  try {
    resolver.master();
    FAIL() << "resolved a master nobody knows";
  } catch (const persistence::redis_error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("does not know master 'nosuch'"), std::string::npos)
        << what;
    EXPECT_NE(what.find(nobody.to_string() + ": redis"), std::string::npos)
        << what;
  }
}

TEST_F(SentinelTest, RoleRefusesAReplicaAndTakesTheMaster) {
  persistence::redis_client to_replica{replica.options()};
  EXPECT_THROW(persistence::require_master(to_replica),
               persistence::redis_reply_error);
  EXPECT_FALSE(to_replica.broken());
  persistence::redis_client to_master{master.options()};
  EXPECT_NO_THROW(persistence::require_master(to_master));
}

TEST_F(SentinelTest, AConnectionFollowsTheMasterThroughAFailover) {
  persistence::redis_connection_options o;
  o.sentinel = {{sentinel.endpoint()}, "mymaster", ""};
  o.timeout = 1000ms;
  o.reconnect_base = o.reconnect_cap = 0ms;
  o.owner = "test";
  persistence::redis_connection conn{o};
  conn.run([](persistence::redis_client& c) { c.command({"SET", "k", "1"}); });
  EXPECT_EQ(conn.address(), master.endpoint());

  ASSERT_TRUE(switch_master()) << "no failover";
  // The first write after it reaches the demoted master (READONLY, which
  // drops the connection); the next asks the sentinel again.
  ASSERT_TRUE(eventually(
      [&] {
        try {
          conn.run([](persistence::redis_client& c) {
            auto r = c.command({"SET", "k", "2"});
            if (r->type == REDIS_REPLY_ERROR)
              throw persistence::redis_reply_error(
                  persistence::reply_string(r.get()));
          });
          return true;
        } catch (const persistence::redis_error&) {
          return false;
        }
      },
      10s));
  EXPECT_EQ(conn.address(), replica.endpoint());
  persistence::redis_client new_master{replica.options()};
  EXPECT_EQ(persistence::reply_string(new_master.command({"GET", "k"}).get()),
            "2");
}

TEST_F(SentinelTest,
       PostdQueuesOnTheMasterTheSentinelsNameAndFollowsAFailover) {
  scratch_database db;
  const auto queue = unique_name("sentinel");
  auto env = postd_env(db, queue, secret);
  env["REDIS_HOST"] = "192.0.2.1"; // unused: the sentinels say where
  env["REDIS_SENTINELS"] = "127.0.0.1:" + std::to_string(free_port()) + "," +
                           sentinel.endpoint().to_string();
  env["REDIS_TIMEOUT_MS"] = "1000";
  env["WRITERS"] = "0"; // the jobs stay in Redis, to be found there
  ASSERT_EQ(run_postd({"migrate"}, env).exit_code, 0);
  START_SERVER(server, env);

  const auto token = http::token_verifier{secret}.issue("ann", 600s);
  auto create = [&](const std::string& content) {
    return http_call(server.port(), "POST", "/v1/post/create",
                     nlohmann::json{{"content", content}}.dump(),
                     {{"Authorization", "Bearer " + token},
                      {"Content-Type", "application/json"},
                      {"Idempotency-Key", content}},
                     5s);
  };
  auto job_on = [&](const private_redis& r, const std::string& body) {
    auto id = nlohmann::json::parse(body)["jobId"].get<std::string>();
    persistence::redis_client c{r.options()};
    return persistence::reply_integer(
               c.command({"EXISTS", "bull:" + queue + ":" + id}).get()) == 1;
  };

  auto before = create("before the failover");
  ASSERT_EQ(before.status, 202U) << before.body;
  EXPECT_TRUE(job_on(master, before.body));

  ASSERT_TRUE(switch_master()) << "no failover";

  // Creates meanwhile may be answered 503 (never a 202 not on the master);
  // within seconds they are queued on the new one.
  http_result after;
  ASSERT_TRUE(eventually(
      [&] {
        after = create("after the failover");
        return after.status == 202;
      },
      15s))
      << after.status << " " << after.body;
  EXPECT_TRUE(job_on(replica, after.body));
  EXPECT_NE(server.output().find("redis master from sentinel"),
            std::string::npos);
}

TEST(SentinelSetting, ABadListStopsPostdWithExit2) {
  for (const auto* bad :
       {"127.0.0.1", "127.0.0.1:0", "::1:26379", "a:1,,b:2"}) {
    SCOPED_TRACE(bad);
    auto r = run_postd({"serve"},
                       {{"REDIS_SENTINELS", bad},
                        {"JWT_SECRET", "x"},
                        {"DATABASE_URL", "postgresql://u@127.0.0.1/d"}},
                       20s);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("REDIS_SENTINELS"), std::string::npos) << r.err;
  }
}
