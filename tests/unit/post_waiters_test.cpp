// Creates waiting for their rows: woken by a writer's news, by their own
// timer, dropped when cancelled, all ended at shutdown.

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "http/post_waiters.hpp"

using namespace std::chrono_literals;
using postd::http::post_waiters;

namespace {

struct result {
  std::promise<std::optional<std::string>> promise;
  std::future<std::optional<std::string>> future = promise.get_future();
  post_waiters::done_fn done() {
    return [this](std::optional<std::string> row) {
      promise.set_value(std::move(row));
    };
  }
};

// A writer's completion of the job whose post is `post_id`, written as the
// row `row_id`.
postd::core::completion done(std::string post_id, std::string row_id) {
  postd::core::completion c;
  c.post_id = std::move(post_id);
  c.row_id = std::move(row_id);
  return c;
}

} // namespace

TEST(PostWaiters, APersistedPostWakesItsWaiterWithTheRow) {
  post_waiters waiters;
  result r;
  waiters.await("p-1", 10s, r.done());
  EXPECT_EQ(waiters.waiting(), 1U);
  waiters.persisted({done("p-0", "p-0"), done("p-1", "p-earlier")});
  ASSERT_EQ(r.future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(r.future.get(), "p-earlier");
  EXPECT_EQ(waiters.waiting(), 0U);
}

TEST(PostWaiters, AWaitEndsAfterItsTimeWithNothing) {
  post_waiters waiters;
  result r;
  auto started = std::chrono::steady_clock::now();
  waiters.await("p-1", 200ms, r.done());
  ASSERT_EQ(r.future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(r.future.get(), std::nullopt);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms);
  // News after the wait ended wakes nothing.
  waiters.persisted({done("p-1", "p-1")});
  EXPECT_EQ(waiters.waiting(), 0U);
}

TEST(PostWaiters, ACancelledWaitIsNeverCalled) {
  post_waiters waiters;
  bool called = false;
  waiters.await("p-1", 100ms,
                [&](std::optional<std::string>) { called = true; });
  waiters.cancel("p-1");
  EXPECT_EQ(waiters.waiting(), 0U);
  std::this_thread::sleep_for(300ms);
  waiters.stop();
  EXPECT_FALSE(called);
}

TEST(PostWaiters, StopEndsEveryWaitAndLaterOnesAtOnce) {
  post_waiters waiters;
  result a, b;
  waiters.await("p-1", 60s, a.done());
  waiters.stop();
  ASSERT_EQ(a.future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(a.future.get(), std::nullopt);
  waiters.await("p-2", 60s, b.done());
  ASSERT_EQ(b.future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(b.future.get(), std::nullopt);
}
