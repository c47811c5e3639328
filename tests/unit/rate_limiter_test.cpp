#include <gtest/gtest.h>

#include "core/rate_limiter.hpp"

using namespace std::chrono_literals;
using postd::core::rate_limiter;

namespace {
const auto t0 = rate_limiter::clock::time_point{} + 1000s;
}

TEST(RateLimiter, AllowsUpToTheLimitThenBlocksForOneWindow) {
  rate_limiter rl{3, 1000ms};
  for (int i = 0; i < 3; ++i) {
    auto d = rl.hit("k", t0 + i * 1ms);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 3);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.reset_s, 1);
  }
  auto refused = rl.hit("k", t0 + 10ms);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1);
  // Still blocked although the first hits have expired: the block lasts a
  // window.
  EXPECT_FALSE(rl.hit("k", t0 + 1005ms).allowed);
  auto after = rl.hit("k", t0 + 1011ms);
  EXPECT_TRUE(after.allowed);
  EXPECT_EQ(after.remaining, 2);
}

TEST(RateLimiter, WindowSlides) {
  rate_limiter rl{2, 1000ms};
  EXPECT_TRUE(rl.hit("k", t0).allowed);
  EXPECT_TRUE(rl.hit("k", t0 + 600ms).allowed);
  // The first hit expired at t0+1000: one slot free again, no block.
  auto d = rl.hit("k", t0 + 1100ms);
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_FALSE(rl.hit("k", t0 + 1200ms).allowed);
}

TEST(RateLimiter, KeysAreIndependent) {
  rate_limiter rl{1, 1000ms};
  EXPECT_TRUE(rl.hit("a", t0).allowed);
  EXPECT_TRUE(rl.hit("b", t0).allowed);
  EXPECT_FALSE(rl.hit("a", t0).allowed);
}

TEST(RateLimiter, SweepDropsIdleKeysSoMemoryStaysBounded) {
  rate_limiter rl{5, 1000ms};
  for (int i = 0; i < 10000; ++i)
    rl.hit("ip" + std::to_string(i), t0);
  EXPECT_EQ(rl.keys(), 10000u);
  rl.sweep(t0 + 500ms);
  EXPECT_EQ(rl.keys(), 10000u);
  rl.sweep(t0 + 1001ms);
  EXPECT_EQ(rl.keys(), 0u);
}

TEST(RateLimiter, HugeLimitsCostBoundedMemoryPerKey) {
  rate_limiter rl{1'000'000'000, 60000ms};
  for (int i = 0; i < 200000; ++i)
    ASSERT_TRUE(rl.hit("k", t0 + i * 100us).allowed);
  auto d = rl.hit("k", t0 + 20s);
  EXPECT_EQ(d.remaining, 1'000'000'000 - 200001);
}

TEST(RateLimiter, ResetIsTheRemainingWindowRoundedUp) {
  rate_limiter rl{10, 60000ms};
  rl.hit("k", t0);
  EXPECT_EQ(rl.hit("k", t0 + 30500ms).reset_s, 30);
  EXPECT_EQ(rl.hit("k", t0 + 59999ms).reset_s, 1);
  // Past the window the throttler starts a new one.
  EXPECT_EQ(rl.hit("k", t0 + 60000ms).reset_s, 60);
}
