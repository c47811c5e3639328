// The writer supervisor's restart policy: per-slot backoff that starts over
// after a healthy run, and an escalation that ends after a calm period.

#include <gtest/gtest.h>

#include "core/restart_policy.hpp"

using namespace postd::core;
using namespace std::chrono_literals;

namespace {
const restart_policy::clock::time_point t0{};

// Slot 0 crashes `times` times, each 10 ms after it started, having done
// nothing, and is started again after each delay; returns the time then.
restart_policy::clock::time_point crash_loop(restart_policy& p, int times) {
  auto now = t0;
  p.started(0, now);
  for (int i = 0; i < times; ++i) {
    now += 10ms;
    now += p.crashed(0, now).delay;
    p.started(0, now);
  }
  return now;
}
} // namespace

TEST(RestartPolicy, BacksOffWhileASlotKeepsCrashing) {
  restart_policy p{2, 100, 60s, 100ms, 1000ms};
  auto now = t0;
  p.started(0, now);
  std::vector<long long> delays;
  for (int i = 0; i < 6; ++i) {
    now += 50ms; // dies soon after each start
    auto d = p.crashed(0, now);
    delays.push_back(d.delay.count());
    now += d.delay;
    p.started(0, now);
  }
  EXPECT_EQ(delays, (std::vector<long long>{100, 200, 400, 800, 1000, 1000}));
  // The other slot has its own backoff.
  p.started(1, now);
  EXPECT_EQ(p.crashed(1, now + 1ms).delay, 100ms);
}

TEST(RestartPolicy, AHealthyRunStartsTheBackoffOver) {
  restart_policy p{1, 100, 60s, 100ms, 1000ms};
  auto now = crash_loop(p, 4);
  // Ran longer than the longest delay: the next crash is a new story.
  now += 1000ms;
  EXPECT_EQ(p.crashed(0, now).delay, 100ms);
  p.started(0, now + 100ms);
  // Just short of it: still backing off.
  EXPECT_EQ(p.crashed(0, now + 100ms + 999ms).delay, 200ms);
}

TEST(RestartPolicy, AWriterThatGotWorkDoneStartsTheBackoffOver) {
  restart_policy p{1, 100, 60s, 100ms, 1000ms};
  auto now = crash_loop(p, 3); // delays 100, 200, 400: nothing done
  // Crashed soon again, but after finishing a batch: an occasional fault,
  // not a crash loop; it comes back at once.
  EXPECT_EQ(p.crashed(0, now + 10ms, true).delay, 100ms);
  p.started(0, now + 110ms);
  EXPECT_EQ(p.crashed(0, now + 120ms, false).delay, 200ms);
}

TEST(RestartPolicy, EscalatesOverTheIntensityAndCalmsDownAfterAPeriod) {
  restart_policy p{1, 3, 10s};
  auto now = t0;
  p.started(0, now);
  for (int i = 0; i < 3; ++i) {
    now += 1s;
    EXPECT_FALSE(p.crashed(0, now).escalated) << i;
  }
  now += 1s;
  EXPECT_TRUE(p.crashed(0, now).escalated); // 4 within 10 s
  EXPECT_TRUE(p.escalated(now + 5s));
  // The first restart (at 1 s) leaves the window after 11 s: 3 remain.
  EXPECT_FALSE(p.escalated(t0 + 11s + 1ms));
  EXPECT_FALSE(p.escalated(t0 + 60s));
}
