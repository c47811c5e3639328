// W3C trace context end to end: every answer carries a traceparent (the
// caller's trace with postd's own span, or a new trace when none or a
// malformed one came), a create's job data carries it to Redis, and the log
// lines about the request and its job (enqueue, write, retry) name it.

#include <chrono>
#include <regex>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "http/auth.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/redis_client.hpp"
#include "support/eventually.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

constexpr const char* secret = "trace-secret";
constexpr const char* caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr const char* caller_header =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

const std::regex traceparent_form{"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]"};

std::string trace_id(const std::string& traceparent) {
  return traceparent.substr(3, 32);
}
std::string span_id(const std::string& traceparent) {
  return traceparent.substr(36, 16);
}

struct TraceTest : ::testing::Test {
  scratch_database db;
  std::string queue = unique_name("tr");
  persistence::redis_client redis{test_redis()};

  TraceTest() {
    auto r = run_postd({"migrate"}, env());
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ~TraceTest() override {
    redis.command({"EVAL",
                   "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                   "redis.call('DEL', k) end",
                   "0", "bull:" + queue + ":*"});
  }
  env_map env() const {
    auto e = postd_env(db, queue, secret);
    e["LOG_LEVEL"] = "debug";
    e["LOG_FORMAT"] = "json";
    return e;
  }
  static http_result create(int port, const std::string& content,
                            const std::string& traceparent) {
    std::map<std::string, std::string> headers{
        {"Authorization",
         "Bearer " + http::token_verifier{secret}.issue("author-1", 600s)},
        {"Content-Type", "application/json"}};
    if (!traceparent.empty())
      headers["traceparent"] = traceparent;
    return http_call(port, "POST", "/v1/post/create",
                     json{{"content", content}}.dump(), headers);
  }
  std::string job_trace(const std::string& job_id) {
    auto r = redis.command({"HGET", "bull:" + queue + ":" + job_id, "data"});
    auto d = json::parse(persistence::reply_string(r.get()), nullptr, false);
    return d.is_object() && d["traceparent"].is_string()
               ? d["traceparent"].get<std::string>()
               : std::string{};
  }
  // The server's log lines (LOG_FORMAT json) with `msg` and `traceparent`.
  static int lines(const server_process& server, const std::string& msg,
                   const std::string& traceparent) {
    int n = 0;
    std::istringstream in{server.output()};
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_object() && j.value("msg", "") == msg &&
          j.value("traceparent", "") == traceparent)
        ++n;
    }
    return n;
  }
};

} // namespace

// The caller's trace goes on with postd's own span: the answer, the job's
// data and the logs of the request, its enqueue and its write all carry it.
TEST_F(TraceTest, ACallersTraceIsContinuedToTheRow) {
  START_SERVER(server, env());
  // Only the enqueue actor's batch, so the write comes after.
  auto r = create(server.port(), "traced post", caller_header);
  ASSERT_EQ(r.status, 202U) << r.body;
  auto answered = r.headers["traceparent"];
  ASSERT_TRUE(std::regex_match(answered, traceparent_form)) << answered;
  EXPECT_EQ(trace_id(answered), caller_trace);
  EXPECT_NE(span_id(answered), "00f067aa0ba902b7");
  EXPECT_EQ(answered.substr(53), "01");

  auto job = json::parse(r.body)["jobId"].get<std::string>();
  EXPECT_TRUE(eventually(
      [&] { return lines(server, "job written", answered) == 1; }, 10s))
      << server.output();
  EXPECT_EQ(lines(server, "request", answered), 1) << server.output();
  EXPECT_EQ(lines(server, "enqueue", answered), 1) << server.output();
  // KEEP_COMPLETED keeps the job's hash: its data still has the trace.
  EXPECT_EQ(job_trace(job), answered);
}

// No traceparent: a new trace, sampled; on every route, not only creates.
TEST_F(TraceTest, AbsentMeansANewTraceOnEveryAnswer) {
  START_SERVER(server, env());
  auto a = create(server.port(), "untraced post", "");
  auto b = create(server.port(), "another untraced post", "");
  ASSERT_EQ(a.status, 202U) << a.body;
  for (const auto& h : {a.headers["traceparent"], b.headers["traceparent"]}) {
    EXPECT_TRUE(std::regex_match(h, traceparent_form)) << h;
    EXPECT_EQ(h.substr(53), "01");
  }
  EXPECT_NE(trace_id(a.headers["traceparent"]),
            trace_id(b.headers["traceparent"]));
  auto job = json::parse(a.body)["jobId"].get<std::string>();
  EXPECT_EQ(job_trace(job), a.headers["traceparent"]);
  for (const char* target : {"/health", "/health/live", "/metrics", "/nowhere"})
    EXPECT_TRUE(std::regex_match(
        http_call(server.port(), "GET", target).headers["traceparent"],
        traceparent_form))
        << target;
}

// A malformed traceparent is not passed on: a new trace replaces it (and a
// request with two is as one with a malformed one).
TEST_F(TraceTest, AMalformedOneIsReplacedByANewTrace) {
  START_SERVER(server, env());
  for (const char* bad :
       {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "nonsense"}) {
    auto r = create(server.port(), std::string("post with ") + bad, bad);
    ASSERT_EQ(r.status, 202U) << r.body;
    auto h = r.headers["traceparent"];
    EXPECT_TRUE(std::regex_match(h, traceparent_form)) << bad << " -> " << h;
    EXPECT_NE(trace_id(h), caller_trace) << bad;
    EXPECT_NE(trace_id(h), "00000000000000000000000000000000") << bad;
  }
}

// A job the writer cannot write is retried with a warning that names the
// trace its data carries (here an old-shaped job missing its content).
TEST_F(TraceTest, ARetryIsLoggedWithTheJobsTrace) {
  persistence::queue_keys keys;
  keys.name = queue;
  auto data = json{{"userId", "author-1"}, {"traceparent", caller_header}};
  persistence::job_request j{data.dump(), "author-1", "", 3, 60000, 0, {}};
  persistence::add_jobs(redis, keys, {j}, 1000000);
  START_SERVER(server, env());
  EXPECT_TRUE(eventually(
      [&] { return lines(server, "job will be retried", caller_header) == 1; },
      10s))
      << server.output();
}
