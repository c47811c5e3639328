// Many instances (issue 14): three postd behind the deploy kit's nginx
// (deploy/nginx.conf), sharing the queue in Redis, the throttle
// (THROTTLE_STORE=redis) and PostgreSQL through PgBouncer, each with its own
// writers, TRUST_PROXY=true. Clients post unique contents through nginx,
// each with an Idempotency-Key, and retry what was not answered 202. For
// each fault (kill -9 of one instance, a rolling restart): every post
// answered 202 is exactly one row carrying its jobId, the queue drains, and
// the clients kept being answered 202 throughout. And the throttle's limit
// is one for all instances, per client address as nginx saw it.

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/auth.hpp"
#include "support/eventually.hpp"
#include "support/nginx_process.hpp"
#include "support/post_load.hpp"
#include "support/server_process.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

long long ms_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
}

unsigned readiness(int port) {
  try {
    return http_call(port, "GET", "/health/ready", {}, {}, 2s).status;
  } catch (const std::exception&) {
    return 0; // refused: no longer listening
  }
}

class MultiInstanceTest : public ::testing::Test {
protected:
  void SetUp() override {
    env_ = fault_env(postd_env(db_, queue_, load_secret));
    env_["THROTTLE_STORE"] = "redis";
    env_["TRUST_PROXY"] = "true";
    // Short job locks: a killed instance's jobs come back in seconds.
    env_["POSTD_FAULT_LOCK_MS"] = "2000";
    env_["SHUTDOWN_DELAY_MS"] = "1000";
    env_["SHUTDOWN_GRACE_MS"] = "5000";
    ASSERT_EQ(run_postd({"migrate"}, env_).exit_code, 0);
    for (int i = 0; i < 3; ++i)
      ports_.push_back(free_port());
    servers_.resize(3);
    for (std::size_t i = 0; i < 3; ++i)
      ASSERT_TRUE(start(i)) << servers_[i]->output();
    nginx_ = std::make_unique<private_nginx>(ports_);
  }

  // Starts instance i on its port (the one nginx knows it by).
  bool start(std::size_t i) {
    auto e = env_;
    e["PORT"] = std::to_string(ports_[i]);
    servers_[i] = std::make_unique<server_process>(e);
    return servers_[i]->wait_healthy(20s);
  }

  // One measured time, in the test's output.
  static void print(const std::string& what, long long ms) {
    std::cout << "[ multi    ] " << what << ": " << ms << " ms" << std::endl;
  }

  scratch_database db_;
  std::string queue_ = unique_name("mi");
  env_map env_;
  std::vector<int> ports_;
  std::vector<std::unique_ptr<server_process>> servers_;
  std::unique_ptr<private_nginx> nginx_;
};

// kill -9 of one instance mid-load: nginx sends new requests to the other
// two (a refused connection is passed on, the create was never read); the
// creates the killed one had read are answered 502 and retried by the
// clients with their keys; the jobs its writers held come back through the
// stalled check and the others write them.
TEST_F(MultiInstanceTest, AnInstanceKilledMidLoadLosesNothing) {
  load l{nginx_->port(), 3000};
  ASSERT_TRUE(l.wait_acked(800, 30s)) << l.summary();
  const auto fault = clock_type::now();
  EXPECT_EQ(servers_[1]->stop(SIGKILL), 128 + SIGKILL);
  const auto active = queue_counts(test_redis(), queue_).active;
  l.join();
  EXPECT_GE(l.acked(), l.target()) << l.summary();
  const auto first = l.first_ack_after(fault);
  ASSERT_TRUE(first) << l.summary();
  print("first 202 after the kill", ms_between(fault, *first));
  expect_exactly_once(db_.direct_url(), test_redis(), queue_, l, *servers_[0],
                      40s);
  std::cout << "[ multi    ] jobs active at the kill (any instance's): "
            << active << ", taken back by the others' stalled checks: "
            << metric_value(ports_[0], "postd_jobs_stalled_total") +
                   metric_value(ports_[2], "postd_jobs_stalled_total")
            << std::endl;
}

// A rolling restart as an orchestrator does it: SIGTERM one instance at a
// time, its readiness fails first while it still serves
// (SHUTDOWN_DELAY_MS), it drains and exits 0, and it comes back on its
// port before the next one goes. The load through nginx never stops.
TEST_F(MultiInstanceTest, ARollingRestartLosesNothing) {
  load l{nginx_->port(), 1'000'000, 4, 5ms};
  ASSERT_TRUE(l.wait_acked(300, 30s)) << l.summary();
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    const auto acked_before = l.acked();
    const auto signalled = clock_type::now();
    servers_[i]->signal(SIGTERM);
    EXPECT_TRUE(eventually([&] { return readiness(ports_[i]) == 503; }, 1s))
        << "instance " << i << " still ready after SIGTERM";
    EXPECT_EQ(servers_[i]->stop(0, 20s), 0) << servers_[i]->output();
    print("instance " + std::to_string(i) + " drained and exited",
          ms_between(signalled, clock_type::now()));
    ASSERT_TRUE(start(i)) << servers_[i]->output();
    ASSERT_TRUE(l.wait_acked(l.acked() + 100, 10s)) << l.summary();
    EXPECT_GT(l.acked(), acked_before + 100) << "the load stalled";
  }
  l.stop();
  l.join();
  std::cout << "[ multi    ] " << l.summary() << std::endl;
  expect_exactly_once(db_.direct_url(), test_redis(), queue_, l, *servers_[0],
                      40s);
}

// THROTTLE_STORE=redis: THROTTLE_LIMIT per window for a client, whichever
// instance nginx picks; a client is the address nginx saw (X-Forwarded-For
// set by nginx, read with TRUST_PROXY=true), not what it claims.
TEST_F(MultiInstanceTest, TheThrottleIsOneLimitAcrossInstances) {
  // Restarted with a limit, a prefix of the test's own (the throttle's keys
  // are per prefix, IP and route).
  env_["THROTTLE_LIMIT"] = "30";
  env_["THROTTLE_TTL"] = "60000";
  env_["QUEUE_PREFIX"] = unique_name("mt");
  for (std::size_t i = 0; i < servers_.size(); ++i) {
    servers_[i]->stop(SIGKILL); // idle: nothing to drain
    ASSERT_TRUE(start(i)) << servers_[i]->output();
  }
  const auto token = http::token_verifier{load_secret}.issue("throttled", 600s);
  // statuses of `n` creates from `source`, claiming `claimed` as the
  // client's address.
  auto creates = [&](const std::string& source, int n,
                     const std::string& claimed) {
    std::map<unsigned, int> out;
    for (int i = 0; i < n; ++i) {
      std::map<std::string, std::string> headers{
          {"Authorization", "Bearer " + token},
          {"Content-Type", "application/json"}};
      if (!claimed.empty())
        headers["X-Forwarded-For"] = claimed;
      auto r = http_call(
          nginx_->port(), "POST", "/v1/post/create",
          nlohmann::json{{"content", source + " " + std::to_string(i)}}.dump(),
          headers, 10s, source);
      ++out[r.status];
    }
    return out;
  };
  // 90 from one client, spread by nginx over the three instances: each
  // would allow 30 on its own.
  EXPECT_EQ(creates("127.0.0.1", 90, ""),
            (std::map<unsigned, int>{{202, 30}, {429, 60}}));
  // Claiming another address changes nothing: nginx sets the header.
  EXPECT_EQ(creates("127.0.0.1", 5, "10.1.2.3"),
            (std::map<unsigned, int>{{429, 5}}));
  // Another client (another loopback address) has a limit of its own.
  EXPECT_EQ(creates("127.0.0.2", 40, ""),
            (std::map<unsigned, int>{{202, 30}, {429, 10}}));

  // nginx did spread them: every instance answered some.
  std::ifstream log{nginx_->access_log_path()};
  std::set<std::string> upstreams;
  for (std::string line; std::getline(log, line);) {
    auto entry = nlohmann::json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("request", "").starts_with("POST"))
      upstreams.insert(entry.value("upstream", ""));
  }
  EXPECT_EQ(upstreams.size(), 3u);
}

} // namespace
