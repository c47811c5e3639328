// The recovery log's bounds: by age and by count.

#include <gtest/gtest.h>

#include "actors/ack_log.hpp"

using postd::actors::ack_log;
using namespace std::chrono_literals;

namespace {

postd::actors::acked_job job(ack_log::clock::time_point at,
                             const std::string& id) {
  return {at, id, "post-" + id, {}};
}

} // namespace

TEST(AckLog, ForgetsWhatIsOlderThanItsWindow) {
  ack_log log{30s, 100};
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

TEST(AckLog, KeepsAtMostItsCountAndCountsWhatItDropped) {
  ack_log log{30s, 2};
  const auto t0 = ack_log::clock::now();
  for (const auto* id : {"1", "2", "3"})
    log.record(job(t0, id));
  ASSERT_EQ(log.jobs().size(), 2u);
  EXPECT_EQ(log.jobs().front().job_id, "2");
  EXPECT_EQ(log.dropped(), 1u);
}
