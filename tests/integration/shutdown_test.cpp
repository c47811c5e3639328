// SIGTERM, as orchestrators send it: postd stops accepting, closes idle
// connections, answers every request it has read (202, or 503 when it
// cannot), stops its actors and waits for them, then exits 0.

#include <atomic>
#include <csignal>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "http/auth.hpp"
#include "support/eventually.hpp"
#include "support/raw_client.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

const std::string secret = "shutdown-secret";

struct ShutdownTest : ::testing::Test {
  scratch_database db;
  std::string queue = unique_name("sq");

  env_map env() const {
    auto e = postd_env(db, queue, secret);
    e["THROTTLE_LIMIT"] = "1000000"; // a load from one IP, not a rate test
    return e;
  }

  long long rows_with(const std::string& content) {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    return tx
        .exec_params1(R"(SELECT count(*) FROM "Post" WHERE content = $1)",
                      content)[0]
        .as<long long>();
  }
};

// What one keep-alive client saw of each create it wrote whole.
struct client_log {
  std::mutex mu;
  std::map<std::string, unsigned> answered; // content -> status
  std::set<std::string> closed_unanswered;  // written, then EOF or reset
  int last_answers_closing = 0;             // answers saying Connection: close
};

void send_creates(int port, int t, client_log& log) {
  const auto token =
      http::token_verifier{secret}.issue("sd" + std::to_string(t), 600s);
  try {
    raw_client c{port, 10s};
    for (int i = 0;; ++i) {
      const auto content = "sd " + std::to_string(t) + "/" + std::to_string(i);
      try {
        c.send(raw_request("POST", "/v1/post/create",
                           {{"Authorization", "Bearer " + token},
                            {"Content-Type", "application/json"},
                            {"Idempotency-Key", "key " + content}},
                           nlohmann::json{{"content", content}}.dump()));
      } catch (const std::exception&) {
        return; // not written whole: nothing to check
      }
      auto r = c.try_read_response();
      std::lock_guard lock{log.mu};
      if (!r) {
        log.closed_unanswered.insert(content);
        return;
      }
      log.answered[content] = r->status;
      if (r->headers["connection"] == "close") {
        ++log.last_answers_closing;
        return;
      }
    }
  } catch (const std::exception&) {
    // Connecting failed: postd no longer listens.
  }
}

} // namespace

// Eight keep-alive clients send creates as fast as they are answered;
// SIGTERM comes mid-load. Every request written whole is answered (202 or
// 503) or its connection is closed before postd read a byte of it: such a
// post must never become a row, while each 202 becomes exactly one (a second
// postd drains what the first left queued). postd exits 0.
TEST_F(ShutdownTest, SigtermUnderLoadAnswersOrNeverReadsEachRequest) {
  auto e = env();
  ASSERT_EQ(run_postd({"migrate"}, e).exit_code, 0);
  client_log log;
  {
    START_SERVER(server, e);
    std::vector<std::thread> clients;
    for (int t = 0; t < 8; ++t)
      clients.emplace_back(
          [&, t, port = server.port()] { send_creates(port, t, log); });
    ASSERT_TRUE(eventually(
        [&] {
          std::lock_guard lock{log.mu};
          return log.answered.size() >= 500;
        },
        20s));
    auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
    for (auto& c : clients)
      c.join();
    auto out = server.output();
    EXPECT_NE(out.find(R"("msg":"stopped")"), std::string::npos) << out;
  }
  std::map<unsigned, int> statuses;
  for (const auto& [content, status] : log.answered)
    ++statuses[status];
  std::cout << "[ shutdown ] " << log.answered.size()
            << " answered (202: " << statuses[202] << ", 503: " << statuses[503]
            << "), " << log.closed_unanswered.size() << " closed unanswered, "
            << log.last_answers_closing << " answers with Connection: close"
            << std::endl;
  EXPECT_EQ(statuses[202] + statuses[503],
            static_cast<int>(log.answered.size()));

  // A second postd writes whatever the first left in the queue.
  START_SERVER(drainer, e);
  pqxx::connection conn{db.direct_url()};
  auto total_rows = [&] {
    pqxx::work tx{conn};
    return tx.exec1(R"(SELECT count(*) FROM "Post")")[0].as<long long>();
  };
  EXPECT_TRUE(eventually(
      [&] { return total_rows() >= static_cast<long long>(statuses[202]); },
      30s));
  std::this_thread::sleep_for(1s); // anything more would show up by now
  for (const auto& [content, status] : log.answered)
    if (status == 202)
      EXPECT_EQ(rows_with(content), 1) << content;
    else
      EXPECT_LE(rows_with(content), 1) << content; // 503: maybe queued
  for (const auto& content : log.closed_unanswered)
    EXPECT_EQ(rows_with(content), 0)
        << content << ": closed unanswered, yet postd had read it";
  EXPECT_EQ(drainer.stop(SIGTERM), 0) << drainer.output();
}

// An idle keep-alive connection is closed at SIGTERM at once, not after
// HTTP_READ_TIMEOUT_MS, and a new connection is refused; postd exits 0
// without waiting out its grace period.
TEST_F(ShutdownTest, IdleConnectionsCloseAtOnce) {
  auto e = env();
  e["HTTP_READ_TIMEOUT_MS"] = "60000";
  e["SHUTDOWN_GRACE_MS"] = "30000";
  START_SERVER(server, e);
  raw_client idle{server.port(), 10s};
  idle.send(raw_request("GET", "/health/live"));
  EXPECT_EQ(idle.read_response().status, 200u);
  auto started = std::chrono::steady_clock::now();
  std::thread stopper([&] { EXPECT_EQ(server.stop(SIGTERM), 0); });
  EXPECT_TRUE(idle.closed_by_peer(3s));
  stopper.join();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s) << server.output();
}

namespace {

unsigned readiness(int port) {
  try {
    return http_call(port, "GET", "/health/ready", {}, {}, 2s).status;
  } catch (const std::exception&) {
    return 0; // refused: no longer listening
  }
}

} // namespace

// SHUTDOWN_DELAY_MS: readiness fails at once, but new connections are still
// accepted and creates still queued until the delay is over; then the drain
// as usual, and exit 0.
TEST_F(ShutdownTest, TheDelayKeepsServingWhileReadinessFails) {
  auto e = env();
  e["SHUTDOWN_DELAY_MS"] = "3000";
  ASSERT_EQ(run_postd({"migrate"}, e).exit_code, 0);
  START_SERVER(server, e);
  const int port = server.port();
  ASSERT_EQ(readiness(port), 200u);
  const auto token = http::token_verifier{secret}.issue("delay", 600s);
  auto create = [&](const std::string& content) {
    return http_call(port, "POST", "/v1/post/create",
                     nlohmann::json{{"content", content}}.dump(),
                     {{"Authorization", "Bearer " + token},
                      {"Content-Type", "application/json"}})
        .status;
  };
  const auto signalled = std::chrono::steady_clock::now();
  server.signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return readiness(port) == 503; }, 2s))
      << server.output();
  EXPECT_EQ(create("after the signal"), 202u) << server.output();
  EXPECT_EQ(http_call(port, "GET", "/health/live").status, 200u);
  EXPECT_TRUE(eventually([&] { return readiness(port) == 0; }, 10s));
  EXPECT_GE(std::chrono::steady_clock::now() - signalled, 2500ms);
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
  START_SERVER(drainer, env()); // what the first left queued, if anything
  EXPECT_TRUE(
      eventually([&] { return rows_with("after the signal") == 1; }, 10s));
}

// A second SIGTERM ends the delay: an operator who wants it gone now.
TEST_F(ShutdownTest, ASecondSignalCutsTheDelayShort) {
  auto e = env();
  e["SHUTDOWN_DELAY_MS"] = "600000";
  START_SERVER(server, e);
  const int port = server.port();
  server.signal(SIGTERM);
  ASSERT_TRUE(eventually([&] { return readiness(port) == 503; }, 2s))
      << server.output();
  const auto second = std::chrono::steady_clock::now();
  EXPECT_EQ(server.stop(SIGTERM), 0) << server.output();
  EXPECT_LT(std::chrono::steady_clock::now() - second, 15s);
}
