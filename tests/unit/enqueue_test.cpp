// The job data postd writes into Bull's hash: the old service's shape, byte
// for byte, with every string JSON-escaped.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "actors/enqueue.hpp"

using postd::actors::create_post;
using postd::actors::job_data;

TEST(JobData, HasTheOldServiceShapeInItsKeyOrder) {
  create_post post{"alice", "hello", ""};
  EXPECT_EQ(job_data(post, "0190c7a2-5b1e-7c3d-8e4f-0123456789ab"),
            R"({"postData":{"content":"hello"},"userId":"alice","fileUrls":[],)"
            R"("postId":"0190c7a2-5b1e-7c3d-8e4f-0123456789ab"})");
}

// The key goes last, and only when the create had one.
TEST(JobData, CarriesTheIdempotencyKey) {
  create_post post{"alice", "hello", "key \"1\""};
  EXPECT_EQ(job_data(post, "p-1"),
            R"({"postData":{"content":"hello"},"userId":"alice","fileUrls":[],)"
            R"("postId":"p-1","idempotencyKey":"key \"1\""})");
}

TEST(JobData, EscapesEveryString) {
  const std::string content = "quote \" backslash \\ newline \n tab \t "
                              "nul-free control \x01 emoji \xF0\x9F\x9A\x80";
  const std::string author = "we\"ird\\user";
  auto data = nlohmann::json::parse(job_data({author, content, ""}, "p-1"));
  EXPECT_EQ(data["postData"]["content"], content);
  EXPECT_EQ(data["userId"], author);
  EXPECT_TRUE(data["fileUrls"].is_array());
  EXPECT_TRUE(data["fileUrls"].empty());
  EXPECT_EQ(data["postId"], "p-1");
}

// The request's trace goes last, after the key, only when there is one.
TEST(JobData, CarriesTheTraceparent) {
  create_post post{"alice", "hello", "k",
                   "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"};
  EXPECT_EQ(
      job_data(post, "p-1"),
      R"({"postData":{"content":"hello"},"userId":"alice","fileUrls":[],)"
      R"("postId":"p-1","idempotencyKey":"k",)"
      R"("traceparent":"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})");
}
