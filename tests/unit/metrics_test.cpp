// The Prometheus registry: series appear once counted, histograms are
// cumulative with +Inf, _sum and _count, and every line parses.

#include <map>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "core/metrics.hpp"

using namespace postd::metrics;
using namespace std::chrono_literals;

namespace {

// name{labels} -> value, for every sample line; fails on a malformed line.
std::map<std::string, double> samples(const std::string& text) {
  static const std::regex sample{
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})?) ([-+0-9.eE]+|\+Inf)$)"};
  std::map<std::string, double> out;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0)
      continue;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(line, m, sample)) << line;
    if (!m.empty())
      out[m[1]] = std::stod(m[4]);
  }
  return out;
}

} // namespace

TEST(Metrics, RequestsAreCountedByRouteMethodAndStatus) {
  registry r;
  r.label_routes({"/v1/post/create", "/health", "other"});
  r.request(0, method::post, 202, 2ms);
  r.request(0, method::post, 202, 20ms);
  r.request(0, method::post, 429, 1ms);
  r.request(2, method_of("PATCH"), 418, 1ms);
  r.request(99, method::get, 200, 1ms); // past the table: "other"
  const auto s = samples(r.render({}));
  EXPECT_EQ(
      (s.at(
          R"(http_requests_total{route="/v1/post/create",method="POST",status="202"})")),
      2);
  EXPECT_EQ(
      (s.at(
          R"(http_requests_total{route="/v1/post/create",method="POST",status="429"})")),
      1);
  EXPECT_EQ(
      (s.at(
          R"(http_requests_total{route="other",method="other",status="other"})")),
      1);
  EXPECT_EQ(
      (s.at(R"(http_requests_total{route="other",method="GET",status="200"})")),
      1);
  EXPECT_EQ(s.at("postd_throttled_total"), 1);
  // Cumulative buckets: 2 ms is under 2.5 ms, 20 ms under 25 ms.
  const std::string h =
      R"(http_request_duration_seconds_bucket{route="/v1/post/create",status="202",le=)";
  EXPECT_EQ(s.at(h + R"("0.001"})"), 0);
  EXPECT_EQ(s.at(h + R"("0.0025"})"), 1);
  EXPECT_EQ(s.at(h + R"("0.025"})"), 2);
  EXPECT_EQ(s.at(h + R"("+Inf"})"), 2);
  EXPECT_EQ(
      (s.at(
          R"(http_request_duration_seconds_count{route="/v1/post/create",status="202"})")),
      2);
  EXPECT_NEAR(
      (s.at(
          R"(http_request_duration_seconds_sum{route="/v1/post/create",status="202"})")),
      0.022, 1e-9);
  // Never counted: no series.
  EXPECT_EQ(
      s.count(
          R"(http_requests_total{route="/health",method="GET",status="200"})"),
      0u);
}

TEST(Metrics, JobsWritersAndProcess) {
  registry r;
  r.jobs_completed += 5;
  r.jobs_retried += 2;
  r.batch(3);
  r.batch(256);
  r.enqueue_batch(1);
  r.enqueue_batch(1);
  r.enqueue_batch(40);
  registry::snapshot snap;
  snap.queue_known = true;
  snap.waiting = 7;
  snap.writer_restarts = 4;
  snap.writers_running = 3;
  const auto s = samples(r.render(snap));
  EXPECT_EQ(s.at("postd_jobs_completed_total"), 5);
  EXPECT_EQ(s.at("postd_jobs_retried_total"), 2);
  EXPECT_EQ(s.at("postd_jobs_failed_total"), 0);
  EXPECT_EQ(s.at(R"(postd_queue_jobs{state="waiting"})"), 7);
  EXPECT_EQ(s.at("postd_writer_restarts_total"), 4);
  EXPECT_EQ(s.at("postd_writers_running"), 3);
  EXPECT_EQ(s.at(R"(postd_writer_batch_size_bucket{le="4"})"), 1);
  EXPECT_EQ(s.at(R"(postd_writer_batch_size_bucket{le="256"})"), 2);
  EXPECT_EQ(s.at("postd_writer_batch_size_count"), 2);
  EXPECT_EQ(s.at(R"(postd_enqueue_batch_size_bucket{le="1"})"), 2);
  EXPECT_EQ(s.at(R"(postd_enqueue_batch_size_bucket{le="32"})"), 2);
  EXPECT_EQ(s.at(R"(postd_enqueue_batch_size_bucket{le="64"})"), 3);
  EXPECT_EQ(s.at("postd_enqueue_batch_size_sum"), 42);
  EXPECT_EQ(s.at("postd_enqueue_batch_size_count"), 3);
  EXPECT_GT(s.at("process_resident_memory_bytes"), 1e6);
  EXPECT_GE(s.at("postd_uptime_seconds"), 0);
  EXPECT_EQ(s.at(R"(postd_dependency_up{dependency="redis"})"), 0)
      << "not fresh";
  // Without a fresh queue view, no made-up depths.
  EXPECT_EQ(samples(r.render({})).count(R"(postd_queue_jobs{state="waiting"})"),
            0u);
}
