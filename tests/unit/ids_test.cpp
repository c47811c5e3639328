// A post's id: time-ordered for postd's own jobs, derived from the job's
// identity in Redis for old producers' jobs (Python's uuid.uuid5 computed
// the expected values: an independent implementation).

#include <chrono>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/ids.hpp"

using namespace postd::core;

namespace {

std::int64_t id_ms(const std::string& uuid) {
  return std::stoll(uuid.substr(0, 8) + uuid.substr(9, 4), nullptr, 16);
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

TEST(Ids, NewPostIdIsAUuidV7WithTheCurrentTime) {
  const std::regex v7(
      "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  const auto before = now_ms();
  for (int i = 0; i < 10000; ++i) {
    auto id = new_post_id();
    ASSERT_TRUE(std::regex_match(id, v7)) << id;
    seen.insert(id);
  }
  const auto after = now_ms();
  EXPECT_EQ(seen.size(), 10000u);
  EXPECT_GE(id_ms(*seen.begin()), before);
  EXPECT_LE(id_ms(*seen.rbegin()), after);
}

TEST(Ids, PostIdsMadeInALaterMillisecondSortLater) {
  auto first = new_post_id();
  const auto ms = id_ms(first);
  while (now_ms() <= ms)
    std::this_thread::yield();
  EXPECT_LT(first, new_post_id());
}

TEST(Ids, LegacyPostIdIsTheUuidV5OfQueueJobAndTimestamp) {
  EXPECT_EQ(legacy_post_id("bull:post-creation:", "17", 1764321000123),
            "e816efc1-b9af-5b59-9a6d-9928ccb33c45");
  // A counter reset gives job 17 again, at another time: another post.
  EXPECT_EQ(legacy_post_id("bull:post-creation:", "17", 1764321000124),
            "741dfa62-16b8-5099-8d98-25fc7b564855");
  EXPECT_EQ(legacy_post_id("bull:post-creation:", "1", 1764321000123),
            "de2564fd-7051-5fae-8165-ff8757317b9b");
  EXPECT_NE(legacy_post_id("bull:other:", "17", 1764321000123),
            legacy_post_id("bull:post-creation:", "17", 1764321000123));
}

TEST(Ids, AJobsPostIdIsItsPostIdElseTheDerivedOne) {
  auto with = nlohmann::json::parse(R"({"userId":"a","postId":"p-9"})");
  EXPECT_EQ(post_id_of_job(with, "bull:q:", "3", 5), "p-9");
  for (const char* data : {R"({"userId":"a"})", R"({"postId":""})",
                           R"({"postId":12})", R"({"postId":null})"})
    EXPECT_EQ(post_id_of_job(nlohmann::json::parse(data), "bull:q:", "3", 5),
              legacy_post_id("bull:q:", "3", 5))
        << data;
}

TEST(Ids, RandomUuidIsV4) {
  const std::regex v4(
      "^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  EXPECT_TRUE(std::regex_match(random_uuid(), v4));
  EXPECT_NE(random_uuid(), random_uuid());
}
