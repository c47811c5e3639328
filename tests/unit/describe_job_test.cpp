#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/describe_job.hpp"

using namespace postd;
using core::describe_job;
using result = core::job_lookup::result;

namespace {

core::job_info job(std::string state, std::string author,
                   std::string ret = {}) {
  core::job_info j;
  j.id = "7";
  j.state = std::move(state);
  j.data = nlohmann::json{{"postData", {{"content", "x"}}},
                          {"userId", author},
                          {"fileUrls", nlohmann::json::array()}}
               .dump();
  j.return_value = std::move(ret);
  return j;
}

} // namespace

TEST(DescribeJob, OwnJobInEachState) {
  for (const char* s : {"waiting", "active", "delayed", "failed"}) {
    auto d = describe_job("alice", job(s, "alice"), std::nullopt);
    EXPECT_EQ(d.outcome, result::found);
    EXPECT_EQ(d.status, s);
    EXPECT_TRUE(d.post_id.empty());
  }
  EXPECT_EQ(describe_job("alice", job("paused", "alice"), std::nullopt).status,
            "waiting");
  EXPECT_EQ(describe_job("alice", job("stuck", "alice"), std::nullopt).status,
            "waiting");
}

TEST(DescribeJob, CompletedCarriesThePostId) {
  auto d = describe_job(
      "alice", job("completed", "alice", R"({"postId":"p1"})"), std::nullopt);
  EXPECT_EQ(d.status, "completed");
  EXPECT_EQ(d.post_id, "p1");
}

TEST(DescribeJob, OtherAuthorsJobsAreNotFound) {
  EXPECT_EQ(describe_job("bob", job("waiting", "alice"), std::nullopt).outcome,
            result::not_found);
  core::post row{"p1", "x", "alice", "2025-01-01T00:00:00.000Z", "7"};
  EXPECT_EQ(describe_job("bob", std::nullopt, row).outcome, result::not_found);
}

TEST(DescribeJob, TrimmedHashIsAnsweredFromTheRow) {
  core::post row{"p1", "x", "alice", "2025-01-01T00:00:00.000Z", "7"};
  auto d = describe_job("alice", std::nullopt, row);
  EXPECT_EQ(d.outcome, result::found);
  EXPECT_EQ(d.status, "completed");
  EXPECT_EQ(d.post_id, "p1");
  EXPECT_EQ(describe_job("alice", std::nullopt, std::nullopt).outcome,
            result::not_found);
}
