// Bull's keepJobs for removeOnComplete, read from a job's opts.

#include <gtest/gtest.h>

#include "persistence/bull_queue.hpp"

using postd::persistence::completed_to_keep;

TEST(CompletedToKeep, FollowsTheJobsOwnRemoveOnComplete) {
  EXPECT_EQ(completed_to_keep(R"({"attempts":3})", 1000), 1000);
  EXPECT_EQ(completed_to_keep("", 1000), 1000);
  EXPECT_EQ(completed_to_keep(R"({"removeOnComplete":true})", 1000), 0);
  EXPECT_EQ(completed_to_keep(R"({"removeOnComplete":false})", 1000), 1000);
  EXPECT_EQ(completed_to_keep(R"({"removeOnComplete":5})", 1000), 5);
  EXPECT_EQ(completed_to_keep(R"({"removeOnComplete":{"count":7}})", -1), 7);
  EXPECT_EQ(completed_to_keep(R"({"removeOnComplete":{"age":60}})", -1), -1);
  EXPECT_EQ(completed_to_keep(R"({"removeOnComplete":true)", 10), 10);
  EXPECT_EQ(completed_to_keep(R"(["removeOnComplete"])", 10), 10);
}
