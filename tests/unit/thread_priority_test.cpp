// core::lower_this_thread: SCHED_BATCH at a nice, for the calling thread
// only (the writers' threads, not the HTTP threads beside them).

#include <algorithm>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/thread_priority.hpp"

using namespace postd;

namespace {

int this_thread_nice() {
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
}

} // namespace

TEST(ThreadPriority, LowersTheCallingThreadOnly) {
  const int main_policy = ::sched_getscheduler(0);
  const int main_nice = this_thread_nice();
  const int lower = std::min(main_nice + 7, 19); // 19: the lowest
  int policy = -1;
  int nice = -1;
  std::string error = "not run";
  std::thread lowered{[&] {
    error = core::lower_this_thread(lower);
    policy = ::sched_getscheduler(0);
    nice = this_thread_nice();
  }};
  lowered.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(policy, SCHED_BATCH);
  EXPECT_EQ(nice, lower);
  EXPECT_EQ(::sched_getscheduler(0), main_policy);
  EXPECT_EQ(this_thread_nice(), main_nice);
}
