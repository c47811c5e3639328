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

TEST(DurabilityWarnings, NamesEvictionAndMissingAof) {
  const std::string safe = "# Memory\r\nused_memory:1\r\nmaxmemory_policy:"
                           "noeviction\r\n# Persistence\r\naof_enabled:1\r\n";
  EXPECT_TRUE(postd::persistence::durability_warnings(safe).empty());
  const std::string unsafe = "# Memory\r\nmaxmemory_policy:allkeys-lru\r\n"
                             "# Persistence\r\naof_enabled:0\r\n";
  auto w = postd::persistence::durability_warnings(unsafe);
  ASSERT_EQ(w.size(), 2u);
  EXPECT_NE(w[0].find("allkeys-lru"), std::string::npos) << w[0];
  EXPECT_NE(w[1].find("AOF"), std::string::npos) << w[1];
  // A field name that only starts like another is not it.
  EXPECT_TRUE(postd::persistence::durability_warnings(
                  "maxmemory_policy_x:volatile-lru\r\naof_enabled_y:0\r\n")
                  .empty());
  EXPECT_TRUE(postd::persistence::durability_warnings("").empty());
}
