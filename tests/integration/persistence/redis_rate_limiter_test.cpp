#include <algorithm>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include "persistence/redis_rate_limiter.hpp"
#include "support/test_env.hpp"

// The in-memory limiter's tests (tests/unit/rate_limiter_test.cpp) on the
// Redis server's clock, so with real short windows. Every wait is placed at
// least 100 ms from the boundary it tests, bounded by times taken before and
// after the calls, so a slow machine does not flip a result. Every key
// expires within its test's ttl: nothing to clean up.

namespace postd::persistence {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

long long num(redis_client& r, const redis_command& cmd) {
  return reply_integer(r.command(cmd).get());
}

std::string str(redis_client& r, const redis_command& cmd) {
  return reply_string(r.command(cmd).get());
}

class RedisRateLimiter : public ::testing::Test {
protected:
  rate_limit_settings settings(std::int64_t limit,
                               std::chrono::milliseconds ttl) const {
    return {limit, ttl, prefix_};
  }
  core::throttle_decision hit(const rate_limit_settings& s,
                              const std::string& key) {
    auto d = hit_batch(redis_, s, {key});
    EXPECT_EQ(d.size(), 1u);
    return d.at(0);
  }

  redis_client redis_{testing::test_redis()};
  std::string prefix_ = testing::unique_name("rl") + ":throttle:";
};

TEST_F(RedisRateLimiter, AllowsUpToTheLimitThenBlocksForOneWindow) {
  auto s = settings(3, 600ms);
  const auto start = clock::now();
  for (int i = 0; i < 3; ++i) {
    auto d = hit(s, "k");
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.limit, 3);
    EXPECT_EQ(d.remaining, 2 - i);
    EXPECT_EQ(d.reset_s, 1);
    EXPECT_EQ(d.retry_after_s, 0);
  }
  const auto counted = clock::now();
  std::this_thread::sleep_until(start + 250ms);
  const auto blocking = clock::now();
  auto refused = hit(s, "k");
  const auto blocked = clock::now();
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.remaining, 0);
  EXPECT_EQ(refused.retry_after_s, 1);
  // Still blocked although the first hits have expired: the block lasts a
  // window.
  std::this_thread::sleep_until(counted + 700ms);
  EXPECT_FALSE(hit(s, "k").allowed);
  ASSERT_LT(clock::now(), blocking + 600ms) << "too slow to test the block";
  std::this_thread::sleep_until(blocked + 700ms);
  auto after = hit(s, "k");
  EXPECT_TRUE(after.allowed);
  EXPECT_EQ(after.remaining, 2);
}

TEST_F(RedisRateLimiter, WindowSlides) {
  auto s = settings(2, 600ms);
  const auto start = clock::now();
  EXPECT_TRUE(hit(s, "k").allowed);
  const auto first = clock::now();
  std::this_thread::sleep_until(start + 300ms);
  const auto second = clock::now();
  EXPECT_TRUE(hit(s, "k").allowed);
  // The first hit has expired, the second has not: one hit free, no block.
  std::this_thread::sleep_until(first + 700ms);
  auto d = hit(s, "k");
  EXPECT_TRUE(d.allowed);
  EXPECT_EQ(d.remaining, 0);
  EXPECT_FALSE(hit(s, "k").allowed);
  ASSERT_LT(clock::now(), second + 600ms) << "too slow to test the window";
}

TEST_F(RedisRateLimiter, KeysAreIndependent) {
  auto s = settings(1, 1000ms);
  EXPECT_TRUE(hit(s, "a").allowed);
  EXPECT_TRUE(hit(s, "b").allowed);
  EXPECT_FALSE(hit(s, "a").allowed);
  // Another prefix (another deployment) is another limit.
  auto other = s;
  other.key_prefix += "other:";
  EXPECT_TRUE(hit(other, "a").allowed);
}

TEST_F(RedisRateLimiter, ResetIsTheRemainingWindowRoundedUp) {
  auto s = settings(10, 1500ms);
  const auto start = clock::now();
  auto first = hit(s, "k");
  const auto made = clock::now();
  EXPECT_EQ(first.reset_s, 2);
  EXPECT_EQ(first.remaining, 9);
  std::this_thread::sleep_until(start + 800ms);
  auto mid = hit(s, "k");
  EXPECT_EQ(mid.reset_s, 1);
  EXPECT_EQ(mid.remaining, 8);
  ASSERT_LT(clock::now(), start + 1400ms) << "too slow to test the reset";
  // Past the window a new one starts; the first hit has expired.
  std::this_thread::sleep_until(made + 1600ms);
  auto next = hit(s, "k");
  EXPECT_EQ(next.reset_s, 2);
  EXPECT_EQ(next.remaining, 8);
}

TEST_F(RedisRateLimiter, RetryAfterIsTheRemainingBlockRoundedUp) {
  auto s = settings(1, 1500ms);
  EXPECT_EQ(hit(s, "k").retry_after_s, 0);
  const auto start = clock::now();
  auto refused = hit(s, "k");
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.limit, 1);
  EXPECT_EQ(refused.retry_after_s, 2);
  std::this_thread::sleep_until(start + 800ms);
  auto later = hit(s, "k");
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.retry_after_s, 1);
  ASSERT_LT(clock::now(), start + 1400ms) << "too slow to test the block";
}

TEST_F(RedisRateLimiter, HugeLimitsCostBoundedStoragePerKey) {
  auto s = settings(1'000'000'000, 300ms);
  struct call {
    clock::time_point before, after;
  };
  std::vector<call> calls;
  core::throttle_decision d;
  const auto end = clock::now() + 450ms;
  while (clock::now() < end) {
    const auto before = clock::now();
    d = hit(s, "k");
    calls.push_back({before, clock::now()});
    ASSERT_TRUE(d.allowed);
  }
  // 8 bytes for each of 3 numbers and at most 64 slots of 2.
  const auto bytes = num(redis_, {"STRLEN", rate_limit_key(s, "k")});
  EXPECT_LE(bytes, 8 * (3 + 2 * 64));
  EXPECT_GE(bytes, 8 * (3 + 2 * 16)) << "hits should spread over slots";
  // The last hit counts those made less than a window before it, but for
  // hits merged into a slot up to ttl/64 (4.7 ms) older: bounds from the
  // times around each call, with 50 ms to spare.
  const auto& last = calls.back();
  const auto surely_live =
      std::count_if(calls.begin(), calls.end(), [&](auto& c) {
        return c.before > last.after - s.ttl + 50ms;
      });
  const auto maybe_live =
      std::count_if(calls.begin(), calls.end(),
                    [&](auto& c) { return c.after > last.before - s.ttl; });
  EXPECT_GE(s.limit - d.remaining, surely_live);
  EXPECT_LE(s.limit - d.remaining, maybe_live);
  std::cout << "[          ] " << calls.size() << " hits on one key, "
            << s.limit - d.remaining << " in the last window, " << bytes
            << " bytes\n";
}

TEST_F(RedisRateLimiter, TwoInstancesShareOneLimit) {
  redis_client other{testing::test_redis()};
  auto s = settings(4, 1000ms);
  for (int i = 0; i < 4; ++i) {
    auto d = hit_batch(i % 2 == 0 ? redis_ : other, s, {"k"}).at(0);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 3 - i);
  }
  EXPECT_FALSE(hit_batch(other, s, {"k"}).at(0).allowed);
  auto d = hit(s, "k");
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.retry_after_s, 1);
}

TEST_F(RedisRateLimiter, AKeyRepeatedInABatchCountsEachTime) {
  auto s = settings(2, 1000ms);
  auto d = hit_batch(redis_, s, {"k", "k", "j", "k"});
  ASSERT_EQ(d.size(), 4u);
  EXPECT_TRUE(d[0].allowed);
  EXPECT_EQ(d[0].remaining, 1);
  EXPECT_TRUE(d[1].allowed);
  EXPECT_EQ(d[1].remaining, 0);
  EXPECT_TRUE(d[2].allowed);
  EXPECT_EQ(d[2].remaining, 1);
  EXPECT_FALSE(d[3].allowed);
  EXPECT_EQ(d[3].retry_after_s, 1);
  EXPECT_FALSE(hit(s, "k").allowed);
  EXPECT_TRUE(hit(s, "j").allowed);
}

TEST_F(RedisRateLimiter, KeysExpireFromRedisAfterTheirWindow) {
  auto s = settings(5, 300ms);
  const std::string key = rate_limit_key(s, "k");
  hit(s, "k");
  const auto made = clock::now();
  EXPECT_EQ(num(redis_, {"EXISTS", key}), 1);
  const auto ttl = num(redis_, {"PTTL", key});
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 300);
  std::this_thread::sleep_until(made + 400ms);
  EXPECT_EQ(num(redis_, {"EXISTS", key}), 0);
}

TEST_F(RedisRateLimiter, ABlockedKeyLivesUntilItsBlockEnds) {
  auto s = settings(1, 300ms);
  const std::string key = rate_limit_key(s, "k");
  const auto start = clock::now();
  hit(s, "k");
  std::this_thread::sleep_until(start + 150ms);
  EXPECT_FALSE(hit(s, "k").allowed);
  const auto blocked = clock::now();
  // The window ends in <= 150 ms, the block in ~300 ms: the key must last.
  EXPECT_GT(num(redis_, {"PTTL", key}), 200);
  std::this_thread::sleep_until(blocked + 400ms);
  EXPECT_EQ(num(redis_, {"EXISTS", key}), 0);
}

TEST_F(RedisRateLimiter, ABatchOf500KeysIsOneCall) {
  auto s = settings(2, 2000ms);
  std::vector<std::string> keys;
  redis_command exists{"EXISTS"};
  for (int i = 0; i < 500; ++i) {
    keys.push_back("10.0." + std::to_string(i / 256) + "." +
                   std::to_string(i % 256) + "|POST /v1/post");
    exists.push_back(rate_limit_key(s, keys.back()));
  }
  for (int round = 0; round < 3; ++round) {
    auto d = hit_batch(redis_, s, keys);
    ASSERT_EQ(d.size(), keys.size());
    for (const auto& one : d) {
      ASSERT_EQ(one.allowed, round < 2) << "round " << round;
      ASSERT_EQ(one.remaining, round < 2 ? 1 - round : 0);
    }
  }
  EXPECT_EQ(num(redis_, exists), 500);
}

TEST_F(RedisRateLimiter, KeysMayHoldAnyBytes) {
  auto s = settings(1, 1000ms);
  const std::vector<std::string> keys{
      std::string("a\0b", 3),     std::string("a\0c", 3),
      "\r\n*1\r\n$4\r\nPING",     "{tag}:*",
      std::string(10000, '\xff'), ""};
  for (const auto& k : keys)
    EXPECT_EQ(rate_limit_key(s, k).size(), prefix_.size() + 32);
  for (const auto& d : hit_batch(redis_, s, keys))
    EXPECT_TRUE(d.allowed);
  for (const auto& d : hit_batch(redis_, s, keys))
    EXPECT_FALSE(d.allowed);
}

TEST_F(RedisRateLimiter, WhateverElseAKeyHoldsIsReplaced) {
  auto s = settings(5, 1000ms);
  redis_.command({"RPUSH", rate_limit_key(s, "list"), "x"});
  redis_.command({"SET", rate_limit_key(s, "text"), "not a state"});
  // Three doubles, as a state is, but its window ends in 1e300 us.
  std::string far(24, '\0');
  const double forever = 1e300;
  std::memcpy(far.data(), &forever, sizeof forever);
  redis_.command({"SET", rate_limit_key(s, "far"), far});
  for (const auto& d : hit_batch(redis_, s, {"list", "text", "far"})) {
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 4);
    EXPECT_EQ(d.reset_s, 1);
  }
  for (const char* k : {"list", "text", "far"}) {
    EXPECT_EQ(str(redis_, {"TYPE", rate_limit_key(s, k)}), "string");
    EXPECT_LE(num(redis_, {"PTTL", rate_limit_key(s, k)}), 1000);
  }
}

TEST_F(RedisRateLimiter, RejectsSettingsItCannotHonour) {
  EXPECT_THROW(hit_batch(redis_, settings(5, 0ms), {"k"}),
               std::invalid_argument);
  EXPECT_THROW(hit_batch(redis_, settings(-1, 1000ms), {"k"}),
               std::invalid_argument);
  EXPECT_TRUE(hit_batch(redis_, settings(5, 1000ms), {}).empty());
}

// Measured, not asserted: batches as the throttle actor sends them, of keys
// seen once per window (new keys) and of keys hit every few ms, whose
// windows fill with slots.
TEST_F(RedisRateLimiter, ThroughputOfBatchesOf64Keys) {
  auto s = settings(1'000'000'000, 1000ms);
  auto batch = [](const std::string& tag, int b) {
    std::vector<std::string> keys;
    keys.reserve(64);
    for (int i = 0; i < 64; ++i)
      keys.push_back(tag + std::to_string(b) + "." + std::to_string(i) +
                     "|POST /v1/post");
    return keys;
  };
  auto measure = [&](const char* what, auto&& next_batch) {
    const auto start = clock::now();
    int calls = 0;
    while (clock::now() - start < 1s)
      hit_batch(redis_, s, next_batch(calls++));
    const std::chrono::duration<double> took = clock::now() - start;
    std::cout << "[          ] batches of 64 " << what << ": " << calls
              << " calls, " << static_cast<long long>(calls * 64 / took.count())
              << " hits/s, " << took.count() * 1e6 / calls << " us/call\n";
  };
  measure("new keys", [&](int call) { return batch("198.51.", call); });
  std::vector<std::vector<std::string>> hot;
  for (int b = 0; b < 4; ++b)
    hot.push_back(batch("203.0.", b));
  // Warm up: fill the hot keys' windows with slots first.
  measure("hot keys (warm-up)", [&](int call) { return hot[call % 4]; });
  measure("hot keys", [&](int call) { return hot[call % 4]; });
}

} // namespace
} // namespace postd::persistence
