// The recovery log end to end: Redis restarts without persistence (as a
// failover to a replica that missed the last writes would look to postd: a
// new connection to a server without them). postd, on its new connection,
// finds the jobs it acknowledged gone and adds them again with their
// postIds, idle or not; none is doubled. Without the log all 20 are lost.

#include <chrono>
#include <map>
#include <string>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "http/auth.hpp"
#include "support/eventually.hpp"
#include "support/redis_process.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

constexpr const char* secret = "recovery-secret";

// The content -> postId of every job waiting on the server at `r`.
std::map<std::string, std::string> waiting_posts(const private_redis& r,
                                                 const std::string& queue) {
  persistence::redis_client c{r.options()};
  std::map<std::string, std::string> found;
  auto ids = c.command({"LRANGE", "bull:" + queue + ":wait", "0", "-1"});
  for (std::size_t i = 0; i < ids->elements; ++i) {
    auto data = c.command(
        {"HGET",
         "bull:" + queue + ":" + persistence::reply_string(ids->element[i]),
         "data"});
    auto d = nlohmann::json::parse(persistence::reply_string(data.get()),
                                   nullptr, false);
    if (d.is_object())
      found.emplace(d["postData"]["content"].get<std::string>(),
                    d["postId"].get<std::string>());
  }
  return found;
}

} // namespace

TEST(RecoveryLogTest, AnIdleInstanceAddsAgainWhatARestartedRedisLost) {
  private_redis redis{{"appendonly no", "save \"\""}};
  scratch_database db;
  const auto queue = unique_name("recover");
  auto env = postd_env(db, queue, secret);
  redis.serve(env);
  env["WRITERS"] = "0"; // the jobs stay in Redis, to be found there
  ASSERT_EQ(run_postd({"migrate"}, env).exit_code, 0);
  START_SERVER(server, env);
  const auto token = http::token_verifier{secret}.issue("ann", 600s);
  for (int i = 0; i < 20; ++i) {
    const auto content = "acknowledged " + std::to_string(i);
    auto r = http_call(server.port(), "POST", "/v1/post/create",
                       nlohmann::json{{"content", content}}.dump(),
                       {{"Authorization", "Bearer " + token},
                        {"Content-Type", "application/json"},
                        {"Idempotency-Key", content}});
    ASSERT_EQ(r.status, 202U) << r.body;
  }
  const auto before = waiting_posts(redis, queue);
  ASSERT_EQ(before.size(), 20u);

  redis.stop();
  redis.start(); // empty: no AOF, no RDB
  ASSERT_TRUE(waiting_posts(redis, queue).empty());
  // No create comes: the actor's tick reconnects and checks by itself.
  std::map<std::string, std::string> after;
  EXPECT_TRUE(eventually(
      [&] {
        after = waiting_posts(redis, queue);
        return after.size() >= before.size();
      },
      15s))
      << after.size() << " of 20 back; " << server.output();
  EXPECT_EQ(after, before) << "the same posts, each once, with their postIds";
  EXPECT_EQ(metric_value(server.port(), "postd_jobs_recovered_total"), 20);
  EXPECT_NE(server.output().find("acknowledged jobs checked on a new redis "
                                 "connection"),
            std::string::npos);

  // A reconnect to a server that kept them checks and adds nothing.
  persistence::redis_client admin{redis.options()};
  admin.command({"CLIENT", "KILL", "TYPE", "normal"}); // all but this one
  const auto checks = [&] {
    std::size_t n = 0;
    const auto out = server.output();
    for (auto at = out.find("acknowledged jobs checked");
         at != std::string::npos;
         at = out.find("acknowledged jobs checked", at + 1))
      ++n;
    return n;
  };
  EXPECT_TRUE(eventually([&] { return checks() >= 2; }, 15s))
      << server.output();
  EXPECT_EQ(waiting_posts(redis, queue), before);
  EXPECT_EQ(metric_value(server.port(), "postd_jobs_recovered_total"), 20);
}
