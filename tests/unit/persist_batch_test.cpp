// A writer's batch carries each job's trace from its data to what the
// writer logs: the completion of a written job and the failure of a bad one.

#include <gtest/gtest.h>

#include "core/persist_batch.hpp"
#include "core/store_error.hpp"

using namespace postd::core;

namespace {

constexpr const char* trace =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

active_job job(std::string id, std::string data) {
  return {std::move(id), "create-post", std::move(data), "{}", 0, 1000};
}

insert_outcome all_new(const std::vector<new_post>& rows) {
  insert_outcome out;
  out.inserted = rows.size();
  return out;
}

} // namespace

TEST(PersistBatch, AWrittenJobKeepsItsTrace) {
  auto r = persist_batch(
      {job("1", std::string(R"({"postData":{"content":"a"},"userId":"u",)") +
                    R"("postId":"p-1","traceparent":")" + trace + "\"}"),
       job("2", R"({"postData":{"content":"b"},"userId":"u","postId":"p-2"})")},
      "bull:q:", all_new);
  ASSERT_EQ(r.completed.size(), 2U);
  EXPECT_EQ(r.completed[0].traceparent, trace);
  EXPECT_EQ(r.completed[1].traceparent, ""); // an old producer's: none
  EXPECT_TRUE(r.failed.empty());
}

TEST(PersistBatch, AFailedJobKeepsItsTrace) {
  // Malformed data (no content), and a row the database refuses.
  auto r = persist_batch(
      {job("1",
           std::string(R"({"userId":"u","traceparent":")") + trace + "\"}"),
       job("2", std::string(R"({"postData":{"content":"b"},"userId":"u",)") +
                    R"("postId":"p-2","traceparent":")" + trace + "\"}")},
      "bull:q:", [](const std::vector<new_post>&) -> insert_outcome {
        throw store_error("bad row", false);
      });
  ASSERT_EQ(r.failed.size(), 2U);
  EXPECT_EQ(r.failed[0].job_id, "1");
  EXPECT_EQ(r.failed[0].traceparent, trace);
  EXPECT_EQ(r.failed[1].job_id, "2");
  EXPECT_EQ(r.failed[1].traceparent, trace);
}
