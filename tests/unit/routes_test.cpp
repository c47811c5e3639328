// The route table: what the router matches, what a 405 allows, what
// /metrics labels.

#include <gtest/gtest.h>

#include "http/routes.hpp"

using namespace postd::http;

TEST(Routes, MatchesEachRouteAndItsParameter) {
  EXPECT_EQ(match_route("/v1/post/create").id(), route_id::create);
  EXPECT_EQ(match_route("/v1/post").id(), route_id::posts);
  EXPECT_EQ(match_route("/health/ready").id(), route_id::health_ready);
  auto job = match_route("/v1/post/jobs/42");
  EXPECT_EQ(job.id(), route_id::job_status);
  EXPECT_EQ(job.param, "42");
  auto post = match_route("/v1/post/AbC-1");
  EXPECT_EQ(post.id(), route_id::post);
  EXPECT_EQ(post.param, "AbC-1"); // ids keep their case
}

TEST(Routes, OneTrailingSlashAndLetterCaseDoNotMatter) {
  EXPECT_EQ(match_route("/v1/post/create/").id(), route_id::create);
  EXPECT_EQ(match_route("/V1/Post/CREATE").id(), route_id::create);
  EXPECT_EQ(match_route("/HEALTH/").id(), route_id::health);
  EXPECT_EQ(match_route("/v1/post/create//").id(), route_id::other);
}

TEST(Routes, AParameterIsOneNonEmptySegment) {
  EXPECT_EQ(match_route("/v1/post/jobs/1/2").id(), route_id::other);
  EXPECT_EQ(match_route("/v1/post/a/b").id(), route_id::other);
  EXPECT_EQ(match_route("/v1/post/jobs/").id(), route_id::post); // id "jobs"
  EXPECT_EQ(match_route("/v1/post//").id(), route_id::other);
  EXPECT_EQ(match_route("").id(), route_id::other);
  EXPECT_EQ(match_route("v1/post").id(), route_id::other);
  EXPECT_EQ(match_route("/").id(), route_id::other);
  EXPECT_TRUE(match_route("/nope").param.empty());
}

TEST(Routes, AllowListsTheMethodsServed) {
  EXPECT_TRUE(match_route("/v1/post/create").allows("POST"));
  EXPECT_FALSE(match_route("/v1/post/create").allows("GET"));
  EXPECT_TRUE(match_route("/metrics").allows("GET"));
  EXPECT_TRUE(match_route("/metrics").allows("HEAD"));
  EXPECT_FALSE(match_route("/metrics").allows("POST"));
  EXPECT_FALSE(match_route("/metrics").allows("GE"));
  EXPECT_FALSE(match_route("/nope").allows("GET"));
}

TEST(Routes, MetricsLabelsAreTheTemplatesThenOther) {
  auto labels = metrics_labels();
  ASSERT_EQ(labels.size(), routes.size() + 1);
  EXPECT_EQ(labels[metrics_index(route_id::job_status)],
            "/v1/post/jobs/:jobId");
  EXPECT_EQ(labels[metrics_index(route_id::other)], "other");
  for (const auto* path : {"/v1/post/jobs/7", "/metrics", "/v1/post/create"})
    EXPECT_EQ(match_route(path).index(), metrics_index(match_route(path).id()))
        << path;
  EXPECT_EQ(match_route("/nope").index(), metrics_index(route_id::other));
}
