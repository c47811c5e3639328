// ACK_REPLICAS against a real master and replica on loopback: a create is
// answered 202 only once the replica has it (one WAIT per batch); with the
// replica hung (SIGSTOP) it is answered 503 with its jobId within
// ACK_TIMEOUT_MS, and a retry with the same Idempotency-Key once the replica
// is back gets 202 with that same jobId (one post, not two). /health/queue
// shows the replication, /metrics the shortfalls.

#include <chrono>
#include <string>

#include <gtest/gtest.h>
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
using json = nlohmann::json;

namespace {

constexpr const char* secret = "replica-secret";

struct ReplicaAckTest : ::testing::Test {
  scratch_database db;
  std::string queue = unique_name("ack");
  private_redis master;

  env_map env(int ack_replicas) {
    auto e = postd_env(db, queue, secret);
    master.serve(e);
    e["ACK_REPLICAS"] = std::to_string(ack_replicas);
    e["ACK_TIMEOUT_MS"] = "200";
    e["WRITERS"] = "0"; // the jobs stay in Redis
    return e;
  }

  static http_result create(int port, const std::string& content) {
    static const auto token = http::token_verifier{secret}.issue("ann", 600s);
    return http_call(port, "POST", "/v1/post/create",
                     json{{"content", content}}.dump(),
                     {{"Authorization", "Bearer " + token},
                      {"Content-Type", "application/json"},
                      {"Idempotency-Key", content}},
                     5s);
  }

  std::string job_id(const http_result& r) {
    auto b = json::parse(r.body, nullptr, false);
    return b.is_object() && b["jobId"].is_string()
               ? b["jobId"].get<std::string>()
               : std::string{};
  }
};

} // namespace

TEST_F(ReplicaAckTest, A202WaitsForTheReplicaAndA503CarriesTheJobId) {
  private_redis replica{
      {"replicaof 127.0.0.1 " + std::to_string(master.port())}};
  auto e = env(1);
  ASSERT_EQ(run_postd({"migrate"}, e).exit_code, 0);
  START_SERVER(server, e);
  // The replica syncs first (until then nothing is confirmed).
  http_result first;
  ASSERT_TRUE(eventually(
      [&] {
        first = create(server.port(), "while the replica is up");
        return first.status == 202;
      },
      20s))
      << first.status << " " << first.body;
  persistence::redis_client on_replica{replica.options()};
  EXPECT_TRUE(eventually([&] {
    return persistence::reply_integer(
               on_replica
                   .command({"EXISTS", "bull:" + queue + ":" + job_id(first)})
                   .get()) == 1;
  }));

  // /health/queue shows the replica online.
  ASSERT_TRUE(eventually([&] {
    auto h = http_call(server.port(), "GET", "/health/queue");
    auto b = json::parse(h.body, nullptr, false);
    return h.status == 200 && b.contains("replication") &&
           b["replication"]["role"] == "master" &&
           b["replication"]["replicasOnline"] == 1 &&
           b["replication"]["ackReplicas"] == 1;
  }));

  replica.pause();
  auto start = std::chrono::steady_clock::now();
  auto unconfirmed = create(server.port(), "while the replica hangs");
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(unconfirmed.status, 503U) << unconfirmed.body;
  auto b = json::parse(unconfirmed.body);
  const auto id = b.value("jobId", std::string{});
  EXPECT_FALSE(id.empty()) << unconfirmed.body;
  EXPECT_EQ(b.value("mayHaveBeenQueued", false), true);
  EXPECT_EQ(b.value("statusCode", 0), 503);
  EXPECT_EQ(unconfirmed.headers["retry-after"], "1");
  EXPECT_LT(took, 2s); // ACK_TIMEOUT_MS is 200
  EXPECT_GT(metric_value(server.port(), "postd_redis_wait_shortfalls_total"),
            0);

  replica.resume();
  // The same Idempotency-Key: the same job, confirmed now.
  http_result retry;
  ASSERT_TRUE(eventually(
      [&] {
        retry = create(server.port(), "while the replica hangs");
        return retry.status == 202;
      },
      20s))
      << retry.status << " " << retry.body;
  EXPECT_EQ(job_id(retry), id);
  persistence::redis_client on_master{master.options()};
  EXPECT_EQ(persistence::reply_integer(
                on_master.command({"LLEN", "bull:" + queue + ":wait"}).get()),
            2);
}

TEST_F(ReplicaAckTest, WithoutAReplicaNothingIsAcknowledged) {
  auto e = env(1);
  ASSERT_EQ(run_postd({"migrate"}, e).exit_code, 0);
  START_SERVER(server, e);
  auto r = create(server.port(), "no replica at all");
  EXPECT_EQ(r.status, 503U) << r.body;
  EXPECT_FALSE(job_id(r).empty()) << r.body;
}

TEST_F(ReplicaAckTest, WithoutAckReplicasHealthKeepsItsShape) {
  auto e = env(0);
  ASSERT_EQ(run_postd({"migrate"}, e).exit_code, 0);
  START_SERVER(server, e);
  EXPECT_EQ(create(server.port(), "master alone").status, 202U);
  auto h = http_call(server.port(), "GET", "/health/queue");
  EXPECT_FALSE(json::parse(h.body).contains("replication")) << h.body;
}
