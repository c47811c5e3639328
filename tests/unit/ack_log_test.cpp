// The recovery log's bounds (by age and by memory) and the highest job id
// it has seen.

#include <gtest/gtest.h>

#include "actors/ack_log.hpp"

using postd::actors::ack_log;
using namespace std::chrono_literals;

namespace {

postd::actors::acked_job job(ack_log::clock::time_point at,
                             const std::string& id,
                             std::size_t content_bytes = 0) {
  postd::persistence::job_request r;
  r.data = std::string(content_bytes, 'x');
  return {at, id, "post-" + id, r};
}

constexpr std::size_t big = 1000; // one job's content, for the memory bound

} // namespace

TEST(AckLog, ForgetsWhatIsOlderThanItsWindow) {
  ack_log log{30s, 1U << 20U};
  const auto t0 = ack_log::clock::now();
  log.record(job(t0, "1"));
  log.record(job(t0 + 10s, "2"));
  log.record(job(t0 + 20s, "3"));
  log.trim(t0 + 30s);
  EXPECT_EQ(log.jobs().size(), 3u); // exactly 30 s old: kept
  log.trim(t0 + 35s);
  ASSERT_EQ(log.jobs().size(), 2u);
  EXPECT_EQ(log.jobs().front().job_id, "2");
  log.trim(t0 + 60s);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(log.dropped(), 0u);
}

TEST(AckLog, KeepsAtMostItsBytesAndCountsWhatItDropped) {
  // Room for two jobs of `big` bytes, not three.
  ack_log log{30s, 2 * (big + 400)};
  const auto t0 = ack_log::clock::now();
  EXPECT_EQ(log.record(job(t0, "1", big)), 0u);
  EXPECT_EQ(log.record(job(t0, "2", big)), 0u);
  EXPECT_EQ(log.record(job(t0, "3", big)), 1u);
  ASSERT_EQ(log.jobs().size(), 2u);
  EXPECT_EQ(log.jobs().front().job_id, "2");
  EXPECT_EQ(log.dropped(), 1u);
  EXPECT_LE(log.bytes(), 2 * (big + 400));
  // One large job pushes out as many as it needs, never itself.
  EXPECT_EQ(log.record(job(t0, "4", 3 * big)), 2u);
  ASSERT_EQ(log.jobs().size(), 1u);
  EXPECT_EQ(log.dropped(), 3u);
  log.trim(t0 + 31s);
  EXPECT_EQ(log.bytes(), 0u);
}

TEST(AckLog, RemembersTheHighestNumericJobIdEvenAfterForgettingIt) {
  ack_log log{30s, 1U << 20U};
  const auto t0 = ack_log::clock::now();
  EXPECT_EQ(log.highest_id(), 0);
  log.record(job(t0, "41"));
  log.record(job(t0, "7"));
  log.note_id("not-a-number");
  log.note_id("12x");
  EXPECT_EQ(log.highest_id(), 41);
  log.trim(t0 + 31s);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(log.highest_id(), 41);
}
