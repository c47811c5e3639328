#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "persistence/bull_queue.hpp"
#include "support/test_env.hpp"

namespace postd::persistence {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;

std::string str(redis_client& r, const redis_command& cmd) {
  auto reply = r.command(cmd);
  EXPECT_FALSE(reply_is_error(reply.get())) << reply_string(reply.get());
  return reply_string(reply.get());
}

long long num(redis_client& r, const redis_command& cmd) {
  return reply_integer(r.command(cmd).get());
}

std::vector<std::string> strings(redis_client& r, const redis_command& cmd) {
  auto reply = r.command(cmd);
  EXPECT_EQ(reply->type, REDIS_REPLY_ARRAY) << reply_string(reply.get());
  std::vector<std::string> out;
  for (std::size_t i = 0; i < reply->elements; ++i)
    out.push_back(reply_string(reply->element[i]));
  return out;
}

std::map<std::string, std::string> hash(redis_client& r,
                                        const std::string& key) {
  auto flat = strings(r, {"HGETALL", key});
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i + 1 < flat.size(); i += 2)
    out[flat[i]] = flat[i + 1];
  return out;
}

std::int64_t server_ms(redis_client& r) {
  auto t = strings(r, {"TIME"});
  return std::stoll(t[0]) * 1000 + std::stoll(t[1]) / 1000;
}

// Delayed scores reach 2^52: exact in a double, so parse as one.
std::int64_t zscore(redis_client& r, const std::string& key,
                    const std::string& member) {
  const std::string s = str(r, {"ZSCORE", key, member});
  EXPECT_FALSE(s.empty()) << member << " is not in " << key;
  return s.empty() ? -1 : std::llround(std::stod(s));
}

using ids = std::vector<std::string>;

// state -> how many jobs count_jobs found in it.
using counts = std::map<std::string, std::int64_t>;
counts by_state(const core::job_counts& c) {
  return {{"waiting", c.waiting},     {"active", c.active},
          {"completed", c.completed}, {"failed", c.failed},
          {"delayed", c.delayed},     {"paused", c.paused}};
}

// Pushes with a connection of its own 200 ms from now, while the test blocks
// in a take; join() answers what it threw ("" when nothing).
class late_producer {
public:
  explicit late_producer(std::function<void(redis_client&)> push)
      : thread_([this, push = std::move(push)] {
          try {
            std::this_thread::sleep_for(200ms);
            redis_client other{testing::test_redis()};
            push(other);
          } catch (const std::exception& e) {
            error_ = e.what();
          }
        }) {}
  ~late_producer() {
    if (thread_.joinable())
      thread_.join();
  }
  late_producer(const late_producer&) = delete;
  late_producer& operator=(const late_producer&) = delete;

  std::string join() {
    thread_.join();
    return error_;
  }

private:
  std::string error_; // before thread_: set by it
  std::thread thread_;
};

// A SUBSCRIBE/PSUBSCRIBE connection, as a Node Bull queue's event client.
class subscriber {
public:
  subscriber(const redis_options& o, const char* verb,
             const std::string& channel)
      : ctx_(redisConnect(o.host.c_str(), o.port)) {
    if (ctx_ == nullptr || ctx_->err != 0)
      throw std::runtime_error("subscriber cannot connect");
    if (redisSetTimeout(ctx_, timeval{5, 0}) != REDIS_OK)
      throw std::runtime_error("subscriber cannot set a timeout");
    reply_ptr r(static_cast<redisReply*>(
        redisCommand(ctx_, "%s %s", verb, channel.c_str())));
    if (!r || r->type != REDIS_REPLY_ARRAY)
      throw std::runtime_error("subscribe failed");
  }
  ~subscriber() { redisFree(ctx_); }
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  // {channel, payload} of the next message.
  std::pair<std::string, std::string> next() {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || raw == nullptr)
      throw std::runtime_error("no message arrived");
    reply_ptr r(static_cast<redisReply*>(raw));
    const std::size_t n = r->elements;
    return {reply_string(r->element[n - 2]), reply_string(r->element[n - 1])};
  }

private:
  redisContext* ctx_;
};

class BullQueueTest : public ::testing::Test {
protected:
  BullQueueTest() { keys_.name = testing::unique_name("q"); }

  void TearDown() override {
    redis_client r{testing::test_redis()};
    std::string cursor = "0";
    do {
      auto page = r.command(
          {"SCAN", cursor, "MATCH", keys_.base() + "*", "COUNT", "1000"});
      ASSERT_EQ(page->type, REDIS_REPLY_ARRAY);
      cursor = reply_string(page->element[0]);
      for (std::size_t i = 0; i < page->element[1]->elements; ++i)
        r.command({"DEL", reply_string(page->element[1]->element[i])});
    } while (cursor != "0");
  }

  static job_request job(const std::string& content,
                         const std::string& author = "user-1",
                         const std::string& idem = "") {
    job_request j;
    j.data = json{{"postData", {{"content", content}}},
                  {"userId", author},
                  {"fileUrls", json::array()}}
                 .dump();
    j.author = author;
    j.idempotency_key = idem;
    j.attempts = 3;
    j.backoff_ms = 1000;
    j.timestamp_ms = 1700000000123;
    return j;
  }

  // Adds `n` jobs (attempts each) and returns their ids.
  ids add(int n, int attempts = 3) {
    std::vector<job_request> batch;
    for (int i = 0; i < n; ++i) {
      batch.push_back(job("post " + std::to_string(i)));
      batch.back().attempts = attempts;
    }
    ids out;
    for (const auto& r : add_jobs(redis_, keys_, batch, 1000000)) {
      EXPECT_EQ(r.status, add_status::added);
      out.push_back(r.job_id);
    }
    return out;
  }

  ids take(std::size_t max, std::chrono::milliseconds block = 0ms) {
    ids out;
    for (const auto& j : take_jobs(redis_, keys_, max, token_, 30s, block))
      out.push_back(j.id);
    return out;
  }

  // The queue's list `name` (wait, active, paused), left to right.
  ids list(const std::string& name) {
    return strings(redis_, {"LRANGE", keys_.key(name), "0", "-1"});
  }
  long long length(const std::string& name) {
    return num(redis_, {"LLEN", keys_.key(name)});
  }
  bool exists(const std::string& name) {
    return num(redis_, {"EXISTS", keys_.key(name)}) == 1;
  }

  // A job as a Node producer writes it (addJob-6), with these opts.
  void put_node_job(const std::string& id, const std::string& opts,
                    const std::string& priority = "0") {
    str(redis_, {"HSET", keys_.key(id), "name", "create-post", "data",
                 job("from node").data, "opts", opts, "timestamp",
                 "1700000000000", "delay", "0", "priority", priority});
  }

  redis_client redis_{testing::test_redis()};
  queue_keys keys_;
  const std::string token_ = testing::unique_name("worker");
};

TEST_F(BullQueueTest, AddBatchWritesBullFieldsAndWaitOrder) {
  auto results =
      add_jobs(redis_, keys_, {job("a"), job("b"), job("c")}, 1000000);
  ASSERT_EQ(results.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(results[i].status, add_status::added);
    EXPECT_EQ(results[i].job_id, std::to_string(i + 1));
  }
  EXPECT_EQ(str(redis_, {"GET", keys_.key("id")}), "3");
  // LPUSH: the newest at the left, the next to take at the right.
  EXPECT_EQ(list("wait"), (ids{"3", "2", "1"}));

  auto h = hash(redis_, keys_.key("1"));
  std::set<std::string> fields;
  for (const auto& [k, v] : h)
    fields.insert(k);
  EXPECT_EQ(fields, (std::set<std::string>{"name", "data", "opts", "timestamp",
                                           "delay", "priority"}));
  EXPECT_EQ(h["name"], "create-post");
  EXPECT_EQ(h["data"], job("a").data);
  EXPECT_EQ(h["timestamp"], "1700000000123");
  EXPECT_EQ(h["delay"], "0");
  EXPECT_EQ(h["priority"], "0");
  auto opts = json::parse(h["opts"]);
  EXPECT_EQ(opts["attempts"], 3);
  EXPECT_EQ(opts["delay"], 0);
  EXPECT_EQ(opts["timestamp"], 1700000000123);
  EXPECT_EQ(opts["backoff"], (json{{"type", "exponential"}, {"delay", 1000}}));

  EXPECT_EQ(add_jobs(redis_, keys_, {job("d")}, 1000000)[0].job_id, "4");
  EXPECT_TRUE(add_jobs(redis_, keys_, {}, 1000000).empty());
}

// After a failover the new master's counter may be behind ids already
// answered for: the floor raises it first, so they are not given again.
TEST_F(BullQueueTest, AddRaisesTheIdCounterToTheFloorFirst) {
  add_jobs(redis_, keys_, {job("a")}, 1000000);
  auto r = add_jobs(redis_, keys_, {job("b"), job("c")}, 1000000, 40);
  EXPECT_EQ(r[0].job_id, "41");
  EXPECT_EQ(r[1].job_id, "42");
  // A floor below the counter changes nothing.
  EXPECT_EQ(add_jobs(redis_, keys_, {job("d")}, 1000000, 5)[0].job_id, "43");
  EXPECT_EQ(list("wait"), (ids{"43", "42", "41", "1"}));
}

// The recovery log adds a lost job again under the id its 202 gave, unless
// another job holds that id now; either way the counter ends past it.
TEST_F(BullQueueTest, AddTakesAWantedIdUnlessAJobHoldsIt) {
  add_jobs(redis_, keys_, {job("a"), job("b")}, 1000000); // 1, 2
  auto lost = job("lost", "user-1", "k-lost");
  lost.job_id = "7";
  auto taken = job("taken");
  taken.job_id = "2";
  auto r = add_jobs(redis_, keys_, {lost, taken, job("new")}, 1000000);
  ASSERT_EQ(r.size(), 3U);
  EXPECT_EQ(r[0].status, add_status::added);
  EXPECT_EQ(r[0].job_id, "7");
  EXPECT_EQ(r[1].status, add_status::added);
  EXPECT_EQ(r[1].job_id, "8"); // 2 is another post's
  EXPECT_EQ(r[2].job_id, "9");
  EXPECT_EQ(hash(redis_, keys_.key("7"))["data"], lost.data);
  EXPECT_EQ(hash(redis_, keys_.key("2"))["data"], job("b").data);
  EXPECT_EQ(hash(redis_, keys_.key("8"))["data"], taken.data);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("id")}), "9");
  // Its idempotency key names the wanted id, for a retry of the post.
  auto retry =
      add_jobs(redis_, keys_, {job("lost", "user-1", "k-lost")}, 1000000);
  EXPECT_EQ(retry[0].status, add_status::duplicate);
  EXPECT_EQ(retry[0].job_id, "7");
  // The same wanted id twice in one batch: the second gets a new one.
  auto twice = job("twice");
  twice.job_id = "20";
  auto r2 = add_jobs(redis_, keys_, {twice, twice}, 1000000);
  EXPECT_EQ(r2[0].job_id, "20");
  EXPECT_EQ(r2[1].job_id, "21");
}

TEST_F(BullQueueTest, AddUsesServerTimeWithoutTimestamp) {
  auto j = job("a");
  j.timestamp_ms = 0;
  const auto t0 = server_ms(redis_);
  add_jobs(redis_, keys_, {j}, 1000000);
  const auto t1 = server_ms(redis_);
  auto h = hash(redis_, keys_.key("1"));
  const auto ts = std::stoll(h["timestamp"]);
  EXPECT_GE(ts, t0);
  EXPECT_LE(ts, t1);
  EXPECT_EQ(json::parse(h["opts"])["timestamp"], ts);
}

TEST_F(BullQueueTest, DuplicateIdempotencyKeyReturnsFirstId) {
  auto first = add_jobs(redis_, keys_, {job("a", "u1", "k1")}, 1000000);
  ASSERT_EQ(first[0].status, add_status::added);
  EXPECT_EQ(first[0].job_id, "1");

  auto again = add_jobs(
      redis_, keys_,
      {job("b", "u1", "k1"), job("c", "u2", "k1"), job("d", "u2", "k1")},
      1000000);
  EXPECT_EQ(again[0].status, add_status::duplicate);
  EXPECT_EQ(again[0].job_id, "1");
  EXPECT_EQ(again[1].status, add_status::added); // another author
  EXPECT_EQ(again[1].job_id, "2");
  EXPECT_EQ(again[2].status, add_status::duplicate); // same batch
  EXPECT_EQ(again[2].job_id, "2");

  EXPECT_EQ(length("wait"), 2);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("id")}), "2");
  EXPECT_EQ(hash(redis_, keys_.key("1"))["data"], job("a", "u1").data);
  const auto ttl = num(redis_, {"TTL", keys_.key("idem:u1:k1")});
  EXPECT_GT(ttl, 86000);
  EXPECT_LE(ttl, 86400);
}

TEST_F(BullQueueTest, IdempotencyKeysOfAuthorsWithColonsStayApart) {
  auto r = add_jobs(redis_, keys_, {job("a", "a", "b:c"), job("b", "a:b", "c")},
                    1000000);
  EXPECT_EQ(r[0].status, add_status::added);
  EXPECT_EQ(r[1].status, add_status::added);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("idem:a:b:c")}), "1");
  EXPECT_EQ(str(redis_, {"GET", keys_.key("idem:a%3Ab:c")}), "2");
}

TEST_F(BullQueueTest, QueueFullWritesNothing) {
  auto r = add_jobs(
      redis_, keys_,
      {job("a", "u", "k1"), job("b", "u", "k2"), job("c", "u", "k3")}, 2);
  EXPECT_EQ(r[0].status, add_status::added);
  EXPECT_EQ(r[1].status, add_status::added);
  EXPECT_EQ(r[2].status, add_status::queue_full);
  EXPECT_EQ(r[2].job_id, "");
  EXPECT_EQ(length("wait"), 2);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("id")}), "2");
  EXPECT_FALSE(exists("3"));
  EXPECT_FALSE(exists("idem:u:k3"));

  // Paused jobs count too: 2 waiting + 1 paused reach a bound of 3.
  num(redis_, {"RPUSH", keys_.key("paused"), "99"});
  EXPECT_EQ(add_jobs(redis_, keys_, {job("d")}, 3)[0].status,
            add_status::queue_full);
  EXPECT_EQ(add_jobs(redis_, keys_, {job("d")}, 4)[0].status,
            add_status::added);
}

TEST_F(BullQueueTest, AddGoesToPausedWhenPaused) {
  str(redis_, {"SET", keys_.key("meta-paused"), "1"});
  add(1);
  EXPECT_EQ(list("paused"), (ids{"1"}));
  EXPECT_EQ(length("wait"), 0);
  EXPECT_TRUE(take(5).empty()); // a paused queue hands out nothing
}

TEST_F(BullQueueTest, TakeLocksOldestJobsAndClearsPriority) {
  add(3);
  // Old producers' jobs (priority 1) are also in the priority zset.
  num(redis_, {"ZADD", keys_.key("priority"), "1", "1", "1", "2", "1", "3"});
  const auto t0 = server_ms(redis_);
  auto jobs = take_jobs(redis_, keys_, 2, token_, 30s, 0ms);
  const auto t1 = server_ms(redis_);
  ASSERT_EQ(jobs.size(), 2U);
  EXPECT_EQ(jobs[0].id, "1");
  EXPECT_EQ(jobs[1].id, "2");
  EXPECT_EQ(jobs[0].name, "create-post");
  EXPECT_EQ(jobs[0].data, job("post 0").data);
  EXPECT_EQ(jobs[0].opts, hash(redis_, keys_.key("1"))["opts"]);
  EXPECT_EQ(jobs[0].attempts_made, 0);
  EXPECT_EQ(jobs[0].timestamp_ms, 1700000000123);

  EXPECT_EQ(list("active"), (ids{"2", "1"}));
  EXPECT_EQ(list("wait"), (ids{"3"}));
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("priority"), "0", "-1"}),
            (ids{"3"}));
  for (const std::string id : {"1", "2"}) {
    EXPECT_EQ(str(redis_, {"GET", keys_.key(id + ":lock")}), token_);
    const auto pttl = num(redis_, {"PTTL", keys_.key(id + ":lock")});
    EXPECT_GT(pttl, 29000);
    EXPECT_LE(pttl, 30000);
    const auto processed =
        std::stoll(hash(redis_, keys_.key(id))["processedOn"]);
    EXPECT_GE(processed, t0);
    EXPECT_LE(processed, t1);
  }
  EXPECT_TRUE(take_jobs(redis_, keys_, 0, token_, 30s, 0ms).empty());
}

TEST_F(BullQueueTest, TakeBlocksThenReturnsEmptyOnTimeout) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(take(10, 300ms).empty());
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_GE(elapsed, 250ms);
  EXPECT_LT(elapsed, 2000ms);
  EXPECT_FALSE(redis_.broken());
  EXPECT_EQ(str(redis_, {"PING"}), "PONG");
}

TEST_F(BullQueueTest, BlockLongerThanCommandTimeoutKeepsTheClient) {
  auto opts = testing::test_redis();
  opts.command_timeout = 200ms;
  redis_client client{opts};
  EXPECT_TRUE(take_jobs(client, keys_, 1, token_, 30s, 500ms).empty());
  EXPECT_FALSE(client.broken());
  // The ordinary timeout is back: a longer block now breaks the client.
  EXPECT_THROW(client.command({"BLPOP", keys_.key("nothing"), "1"}),
               redis_error);
}

TEST_F(BullQueueTest, TakePicksUpJobsPushedDuringTheBlock) {
  late_producer producer{[&](redis_client& other) {
    add_jobs(other, keys_, {job("x"), job("y"), job("z")}, 1000000);
  }};
  const auto start = std::chrono::steady_clock::now();
  auto jobs = take_jobs(redis_, keys_, 5, token_, 30s, 3000ms);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(producer.join(), "");
  EXPECT_LT(elapsed, 2500ms);
  ASSERT_EQ(jobs.size(), 3U); // the first by BRPOPLPUSH, the rest with it
  EXPECT_EQ(jobs[0].id, "1");
  EXPECT_EQ(jobs[0].data, job("x").data);
  EXPECT_EQ(jobs[2].id, "3");
  for (const std::string id : {"1", "2", "3"})
    EXPECT_EQ(str(redis_, {"GET", keys_.key(id + ":lock")}), token_);
  EXPECT_EQ(length("wait"), 0);
  EXPECT_EQ(length("active"), 3);
}

TEST_F(BullQueueTest, TakeDropsIdsWithoutHash) {
  add(1);
  num(redis_, {"RPUSH", keys_.key("wait"), "999"}); // next to be taken
  EXPECT_EQ(take(5), (ids{"1"}));
  EXPECT_EQ(list("active"), (ids{"1"}));
  EXPECT_FALSE(exists("999:lock"));
  EXPECT_FALSE(exists("999"));
}

TEST_F(BullQueueTest, FailedLockingLeavesTheJobWaiting) {
  // Without blocking: the script fails before moving anything.
  add(1);
  str(redis_, {"SET", keys_.key("priority"), "not a zset"});
  EXPECT_THROW(take(5), redis_reply_error);
  EXPECT_FALSE(redis_.broken());
  EXPECT_EQ(length("active"), 0);
  EXPECT_EQ(length("wait"), 1);

  // After BRPOPLPUSH moved a job: it goes back to the right end of wait.
  num(redis_, {"DEL", keys_.key("priority"), keys_.key("wait")});
  late_producer producer{[&](redis_client& other) {
    other.command({"SET", keys_.key("priority"), "not a zset"});
    add_jobs(other, keys_, {job("x")}, 1000000);
  }};
  EXPECT_THROW(take(5, 3000ms), redis_reply_error);
  ASSERT_EQ(producer.join(), "");
  EXPECT_EQ(list("wait"), (ids{"2"}));
  EXPECT_EQ(length("active"), 0);
  EXPECT_FALSE(exists("2:lock"));
}

TEST_F(BullQueueTest, CompleteMovesToCompletedWithReturnValue) {
  add(2);
  take(2);
  const auto t0 = server_ms(redis_);
  auto lost = complete_jobs(
      redis_, keys_, {{"1", R"({"postId":"p-1"})"}, {"2", ""}}, token_, 1000);
  const auto t1 = server_ms(redis_);
  EXPECT_TRUE(lost.empty());
  EXPECT_EQ(length("active"), 0);
  auto h = hash(redis_, keys_.key("1"));
  EXPECT_EQ(h["returnvalue"], R"({"postId":"p-1"})");
  const auto finished = std::stoll(h["finishedOn"]);
  EXPECT_GE(finished, t0);
  EXPECT_LE(finished, t1);
  EXPECT_EQ(zscore(redis_, keys_.key("completed"), "1"), finished);
  EXPECT_EQ(hash(redis_, keys_.key("2"))["returnvalue"], "null");
  EXPECT_FALSE(exists("1:lock"));
  EXPECT_EQ(get_job(redis_, keys_, "1")->state, "completed");
}

// Completing reads and rewrites only the right end of active that holds
// the finished jobs: other workers' jobs on either side keep their order,
// wherever ours sit, and an id twice in active leaves it once, from the
// right (LREM -1).
TEST_F(BullQueueTest, CompleteLeavesOtherJobsInActiveInOrder) {
  add(6);
  take(6); // active, left to right: 6 5 4 3 2 1
  const std::string other = "another-worker";
  for (const std::string id : {"1", "2", "5", "6"})
    str(redis_, {"SET", keys_.key(id + ":lock"), other});
  num(redis_, {"LPUSH", keys_.key("active"), "4"}); // 4 6 5 4 3 2 1

  // Ours: the rightmost 4 and 3, between other workers' jobs.
  EXPECT_TRUE(complete_jobs(redis_, keys_, {{"3", "x"}, {"4", "x"}}, token_, 10)
                  .empty());
  EXPECT_EQ(list("active"), (ids{"4", "6", "5", "2", "1"}));
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("completed")}), 2);

  // A job at the far left: the whole list is read, the rest stays as it was.
  str(redis_, {"SET", keys_.key("6:lock"), token_});
  EXPECT_TRUE(complete_jobs(redis_, keys_, {{"6", "x"}}, token_, 10).empty());
  EXPECT_EQ(list("active"), (ids{"4", "5", "2", "1"}));

  // Not in active at all: lost, and active untouched.
  str(redis_, {"SET", keys_.key("3:lock"), token_});
  EXPECT_EQ(complete_jobs(redis_, keys_, {{"3", "x"}}, token_, 10), (ids{"3"}));
  EXPECT_EQ(list("active"), (ids{"4", "5", "2", "1"}));

  // The last ones: active goes away.
  for (const std::string id : {"1", "2", "4", "5"})
    str(redis_, {"SET", keys_.key(id + ":lock"), token_});
  EXPECT_TRUE(complete_jobs(redis_, keys_,
                            {{"1", "x"}, {"2", "x"}, {"4", "x"}, {"5", "x"}},
                            token_, 10)
                  .empty());
  EXPECT_FALSE(exists("active"));
}

TEST_F(BullQueueTest, RemoveOnCompleteDeletesHashAndLogs) {
  // What queue.add('create-post', data, {priority: 1, removeOnComplete:
  // true}) leaves in Redis (addJob-6 into an empty wait list).
  put_node_job("1",
               R"({"priority":1,"removeOnComplete":true,"attempts":3,)"
               R"("backoff":{"type":"exponential","delay":1000},)"
               R"("delay":0,"timestamp":1700000000000})",
               "1");
  str(redis_, {"SET", keys_.key("id"), "1"});
  num(redis_, {"ZADD", keys_.key("priority"), "1", "1"});
  num(redis_, {"RPUSH", keys_.key("wait"), "1"});
  num(redis_, {"RPUSH", keys_.key("1:logs"), "a log line"});

  auto jobs = take_jobs(redis_, keys_, 5, token_, 30s, 0ms);
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_EQ(jobs[0].data, job("from node").data);
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("priority")}), 0);

  EXPECT_TRUE(
      complete_jobs(redis_, keys_, {{"1", "{}", jobs[0].opts}}, token_, 1000)
          .empty());
  EXPECT_EQ(num(redis_, {"EXISTS", keys_.key("1"), keys_.key("1:logs")}), 0);
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("completed")}), 0);
  EXPECT_EQ(length("active"), 0);
  EXPECT_FALSE(get_job(redis_, keys_, "1").has_value());
}

TEST_F(BullQueueTest, CompletedRetentionTrimsOldest) {
  add(5);
  take(5);
  EXPECT_TRUE(complete_jobs(redis_, keys_,
                            {{"1", "1"}, {"2", "2"}, {"3", "3"}, {"4", "4"}},
                            token_, 2)
                  .empty());
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("completed"), "0", "-1"}),
            (ids{"3", "4"}));
  EXPECT_EQ(num(redis_, {"EXISTS", keys_.key("1"), keys_.key("2")}), 0);
  EXPECT_EQ(num(redis_, {"EXISTS", keys_.key("3"), keys_.key("4")}), 2);
  // A negative bound keeps everything.
  complete_jobs(redis_, keys_, {{"5", "5"}}, token_, -1);
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("completed")}), 3);
}

TEST_F(BullQueueTest, FailRetriesWithExponentialBackoffThenFails) {
  add(1);
  std::int64_t delays[] = {1000, 3000}; // round((2^n - 1) * 1000)
  for (int attempt = 1; attempt <= 2; ++attempt) {
    ASSERT_EQ(take(1), (ids{"1"}));
    const auto t0 = server_ms(redis_);
    auto out =
        fail_jobs(redis_, keys_, {{"1", "db down " + std::to_string(attempt)}},
                  token_, 1000, 100);
    const auto t1 = server_ms(redis_);
    ASSERT_EQ(out, (std::vector<failure_outcome>{failure_outcome::retried}));
    EXPECT_EQ(length("active"), 0);
    EXPECT_FALSE(exists("1:lock"));
    auto h = hash(redis_, keys_.key("1"));
    EXPECT_EQ(h["attemptsMade"], std::to_string(attempt));
    EXPECT_EQ(h["failedReason"], "db down " + std::to_string(attempt));
    EXPECT_EQ(h["delay"], std::to_string(delays[attempt - 1]));
    EXPECT_EQ(json::parse(h["stacktrace"]).size(),
              static_cast<std::size_t>(attempt));
    // scripts.js: (now + delay) * 0x1000 + (jobId & 0xfff)
    const auto score = zscore(redis_, keys_.key("delayed"), "1");
    EXPECT_EQ(score % 4096, 1);
    const auto due = score / 4096;
    EXPECT_GE(due, t0 + delays[attempt - 1]);
    EXPECT_LE(due, t1 + delays[attempt - 1]);
    EXPECT_EQ(get_job(redis_, keys_, "1")->state, "delayed");
    EXPECT_EQ(promote_delayed(redis_, keys_, due - 1), 0); // not due yet
    EXPECT_EQ(promote_delayed(redis_, keys_, due), 1);
  }
  ASSERT_EQ(take(1), (ids{"1"}));
  const auto t0 = server_ms(redis_);
  auto out = fail_jobs(redis_, keys_, {{"1", "gave up"}}, token_, 1000, 100);
  ASSERT_EQ(out, (std::vector<failure_outcome>{failure_outcome::failed}));
  auto h = hash(redis_, keys_.key("1"));
  EXPECT_EQ(h["attemptsMade"], "3");
  EXPECT_EQ(h["failedReason"], "gave up");
  EXPECT_EQ(json::parse(h["stacktrace"]),
            (json{"db down 1", "db down 2", "gave up"}));
  EXPECT_GE(std::stoll(h["finishedOn"]), t0);
  EXPECT_EQ(zscore(redis_, keys_.key("failed"), "1"),
            std::stoll(h["finishedOn"]));
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("delayed")}), 0);
  EXPECT_EQ(length("active"), 0);
  auto info = get_job(redis_, keys_, "1");
  EXPECT_EQ(info->state, "failed");
  EXPECT_EQ(info->failed_reason, "gave up");
  EXPECT_EQ(info->attempts_made, 3);
}

TEST_F(BullQueueTest, FailHonoursTheJobsOwnOpts) {
  put_node_job("1", R"({"attempts":2,"backoff":5000,"timestamp":1})");
  put_node_job("2",
               R"({"attempts":2,"backoff":{"type":"fixed","delay":2000}})");
  put_node_job(
      "3", R"({"attempts":2,"backoff":{"type":"exponential","delay":0}})", "1");
  put_node_job("4", R"({"timestamp":1})"); // Bull's default: one attempt
  put_node_job("5", R"({"attempts":1,"removeOnFail":true})");
  num(redis_, {"LPUSH", keys_.key("wait"), "1", "2", "3", "4", "5"});
  ASSERT_EQ(take(5), (ids{"1", "2", "3", "4", "5"}));
  const auto t0 = server_ms(redis_);
  auto out =
      fail_jobs(redis_, keys_,
                {{"1", "r"}, {"2", "r"}, {"3", "r"}, {"4", "r"}, {"5", "r"}},
                token_, 1000, 100);
  const auto t1 = server_ms(redis_);
  using fo = failure_outcome;
  EXPECT_EQ(out, (std::vector<fo>{fo::retried, fo::retried, fo::retried,
                                  fo::failed, fo::failed}));
  const auto due1 = zscore(redis_, keys_.key("delayed"), "1") / 4096;
  EXPECT_GE(due1, t0 + 5000);
  EXPECT_LE(due1, t1 + 5000);
  const auto due2 = zscore(redis_, keys_.key("delayed"), "2") / 4096;
  EXPECT_GE(due2, t0 + 2000);
  EXPECT_LE(due2, t1 + 2000);
  // A zero delay retries at once, as Bull's retryJob (with its priority).
  EXPECT_EQ(list("wait"), (ids{"3"}));
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("priority"), "0", "-1"}),
            (ids{"3"}));
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("failed"), "0", "-1"}),
            (ids{"4"}));
  EXPECT_FALSE(exists("5"));
}

TEST_F(BullQueueTest, FailedRetentionTrimsOldest) {
  add(3, 1);
  take(3);
  auto out = fail_jobs(redis_, keys_, {{"1", "a"}, {"2", "b"}, {"3", "c"}},
                       token_, 1000, 2);
  EXPECT_EQ(out.size(), 3U);
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("failed"), "0", "-1"}),
            (ids{"2", "3"}));
  EXPECT_FALSE(exists("1"));
  EXPECT_EQ(hash(redis_, keys_.key("3"))["failedReason"], "c");
}

TEST_F(BullQueueTest, PromoteDelayedMovesOnlyDueJobs) {
  const auto now = server_ms(redis_);
  put_node_job("1", "{}");
  put_node_job("2", "{}");
  put_node_job("3", "{}", "1"); // an old producer's prioritised job
  const auto score = [](std::int64_t due, int id) {
    return std::to_string(due * 4096 + id);
  };
  num(redis_, {"ZADD", keys_.key("delayed"), score(now - 2000, 1), "1",
               score(now + 60000, 2), "2", score(now - 1000, 3), "3",
               score(now - 500, 4), "4"}); // 4 has no hash: dropped
  str(redis_, {"HSET", keys_.key("1"), "delay", "1000"});
  EXPECT_EQ(promote_delayed(redis_, keys_, 0), 2); // server clock
  EXPECT_EQ(list("wait"), (ids{"1", "3"}));
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("delayed"), "0", "-1"}),
            (ids{"2"}));
  EXPECT_EQ(strings(redis_, {"ZRANGE", keys_.key("priority"), "0", "-1"}),
            (ids{"3"}));
  EXPECT_EQ(hash(redis_, keys_.key("1"))["delay"], "0");
  EXPECT_EQ(promote_delayed(redis_, keys_, now), 0);
  EXPECT_EQ(promote_delayed(redis_, keys_, now + 60000), 1);
}

// Job 1 completed, 2 delayed, 3 failed, 4 active, 5 and 6 waiting, 7 paused
// and 8 in no list at all.
class BullStatesTest : public BullQueueTest {
protected:
  void SetUp() override {
    std::vector<job_request> batch;
    for (int i = 1; i <= 6; ++i) {
      batch.push_back(job("post " + std::to_string(i)));
      batch.back().attempts = i == 3 ? 1 : 3;
    }
    add_jobs(redis_, keys_, batch, 1000000);
    ASSERT_EQ(take(3), (ids{"1", "2", "3"}));
    complete_jobs(redis_, keys_, {{"1", R"({"postId":"p1"})"}}, token_, 100);
    fail_jobs(redis_, keys_, {{"2", "retry me"}, {"3", "broken"}}, token_, 1000,
              100);
    ASSERT_EQ(take(1), (ids{"4"}));
    put_node_job("7", "{}");
    num(redis_, {"RPUSH", keys_.key("paused"), "7"});
    put_node_job("8", "{}");
  }
};

TEST_F(BullStatesTest, CountJobsMatchesGetJobCounts) {
  // Padding (ids only) so that every count differs and none can be swapped.
  num(redis_, {"RPUSH", keys_.key("active"), "a1", "a2", "a3", "a4", "a5"});
  num(redis_, {"ZADD", keys_.key("completed"), "1", "c1", "2", "c2"});
  num(redis_, {"ZADD", keys_.key("delayed"), "1", "d1", "2", "d2", "3", "d3"});
  num(redis_, {"RPUSH", keys_.key("paused"), "p1", "p2", "p3", "p4"});
  EXPECT_EQ(by_state(count_jobs(redis_, keys_)), (counts{{"waiting", 2},
                                                         {"active", 6},
                                                         {"completed", 3},
                                                         {"failed", 1},
                                                         {"delayed", 4},
                                                         {"paused", 5}}));
  EXPECT_EQ(
      by_state(count_jobs(redis_, queue_keys{"bull", keys_.name + "_none"})),
      (counts{{"waiting", 0},
              {"active", 0},
              {"completed", 0},
              {"failed", 0},
              {"delayed", 0},
              {"paused", 0}}));
}

TEST_F(BullStatesTest, GetJobReportsEveryState) {
  const std::map<std::string, std::string> expected{
      {"1", "completed"}, {"2", "delayed"}, {"3", "failed"}, {"4", "active"},
      {"5", "waiting"},   {"6", "waiting"}, {"7", "paused"}, {"8", "stuck"}};
  for (const auto& [id, state] : expected) {
    auto info = get_job(redis_, keys_, id);
    ASSERT_TRUE(info.has_value()) << id;
    EXPECT_EQ(info->id, id);
    EXPECT_EQ(info->state, state) << id;
  }
  auto done = get_job(redis_, keys_, "1");
  EXPECT_EQ(done->data, job("post 1").data);
  EXPECT_EQ(done->return_value, R"({"postId":"p1"})");
  EXPECT_EQ(done->attempts_made, 0);
  auto failed = get_job(redis_, keys_, "3");
  EXPECT_EQ(failed->failed_reason, "broken");
  EXPECT_EQ(failed->attempts_made, 1);
  EXPECT_FALSE(get_job(redis_, keys_, "12345").has_value());
}

TEST_F(BullQueueTest, LockLostCases) {
  add(3);
  take(3);
  num(redis_, {"DEL", keys_.key("1:lock")}); // expired
  str(redis_, {"SET", keys_.key("2:lock"), "another-worker"});
  num(redis_, {"PEXPIRE", keys_.key("3:lock"), "1000"});

  EXPECT_EQ(extend_locks(redis_, keys_, {"1", "2", "3"}, token_, 30s),
            (ids{"1", "2"}));
  EXPECT_GT(num(redis_, {"PTTL", keys_.key("3:lock")}), 20000);

  EXPECT_EQ(complete_jobs(redis_, keys_, {{"1", "x"}, {"2", "x"}}, token_, 10),
            (ids{"1", "2"}));
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("completed")}), 0);
  EXPECT_EQ(length("active"), 3);
  EXPECT_EQ(hash(redis_, keys_.key("1")).count("finishedOn"), 0U);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("2:lock")}), "another-worker");

  using fo = failure_outcome;
  EXPECT_EQ(
      fail_jobs(redis_, keys_, {{"1", "x"}, {"2", "x"}}, token_, 1000, 10),
      (std::vector<fo>{fo::lock_lost, fo::lock_lost}));
  EXPECT_EQ(hash(redis_, keys_.key("2")).count("attemptsMade"), 0U);
  EXPECT_EQ(num(redis_, {"ZCARD", keys_.key("delayed")}), 0);

  EXPECT_TRUE(complete_jobs(redis_, keys_, {{"3", "x"}}, token_, 10).empty());
  EXPECT_EQ(complete_jobs(redis_, keys_, {{"3", "x"}}, token_, 10), (ids{"3"}));
  EXPECT_TRUE(extend_locks(redis_, keys_, {}, token_, 30s).empty());
}

TEST_F(BullQueueTest, ExtendLocksRenewsAndUnmarksStalled) {
  add(1);
  take(1);
  num(redis_, {"PEXPIRE", keys_.key("1:lock"), "1000"});
  num(redis_, {"SADD", keys_.key("stalled"), "1"});
  EXPECT_TRUE(extend_locks(redis_, keys_, {"1"}, token_, 30s).empty());
  EXPECT_GT(num(redis_, {"PTTL", keys_.key("1:lock")}), 29000);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("1:lock")}), token_);
  EXPECT_EQ(num(redis_, {"SISMEMBER", keys_.key("stalled"), "1"}), 0);
}

TEST_F(BullQueueTest, BinarySafeJobData) {
  static constexpr char raw[] =
      "{\"postData\":{\"content\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
      " \0 after nul\"}}";
  const std::string data(raw, sizeof raw - 1);
  auto j = job("unused");
  j.data = data;
  add_jobs(redis_, keys_, {j}, 1000000);
  auto jobs = take_jobs(redis_, keys_, 1, token_, 30s, 0ms);
  ASSERT_EQ(jobs.size(), 1U);
  EXPECT_EQ(jobs[0].data, data);
  const std::string rv("{\"v\":\"\xc3\xa9\0\"}", 11);
  complete_jobs(redis_, keys_, {{"1", rv}}, token_, 10);
  auto info = get_job(redis_, keys_, "1");
  EXPECT_EQ(info->data, data);
  EXPECT_EQ(info->return_value, rv);
}

TEST_F(BullQueueTest, RecoverStalledRequeuesThenFails) {
  add(3);
  take(2);                                   // 3 stays waiting
  num(redis_, {"DEL", keys_.key("1:lock")}); // its worker died
  const auto check = [&] {
    return recover_stalled(redis_, keys_, 1, 30s, 100);
  };
  auto first = check(); // only marks what is active now
  EXPECT_TRUE(first.failed.empty());
  EXPECT_TRUE(first.requeued.empty());
  EXPECT_EQ(num(redis_, {"SCARD", keys_.key("stalled")}), 2);
  EXPECT_GT(num(redis_, {"PTTL", keys_.key("stalled-check")}), 29000);
  EXPECT_TRUE(check().requeued.empty()); // within the interval: no-op

  num(redis_, {"DEL", keys_.key("stalled-check")}); // the interval passed
  auto second = check();
  EXPECT_EQ(second.requeued, (ids{"1"}));
  // At the right end: the next job taken, ahead of those already waiting.
  EXPECT_EQ(list("wait"), (ids{"3", "1"}));
  EXPECT_EQ(list("active"), (ids{"2"}));
  EXPECT_EQ(hash(redis_, keys_.key("1"))["stalledCounter"], "1");

  ASSERT_EQ(take(1), (ids{"1"}));
  num(redis_, {"DEL", keys_.key("1:lock"), keys_.key("stalled-check")});
  check(); // marks 1 again
  num(redis_, {"DEL", keys_.key("stalled-check")});
  auto third = check();
  EXPECT_EQ(third.failed, (ids{"1"}));
  EXPECT_EQ(hash(redis_, keys_.key("1"))["failedReason"],
            "job stalled more than allowable limit");
  EXPECT_EQ(get_job(redis_, keys_, "1")->state, "failed");
  EXPECT_EQ(get_job(redis_, keys_, "2")->state, "active"); // still locked
}

TEST_F(BullQueueTest, PublishesBullEvents) {
  const auto o = testing::test_redis();
  subscriber waiting(o, "PSUBSCRIBE", keys_.key("waiting@*"));
  subscriber active(o, "PSUBSCRIBE", keys_.key("active@*"));
  subscriber completed(o, "SUBSCRIBE", keys_.key("completed"));
  subscriber failed(o, "SUBSCRIBE", keys_.key("failed"));
  subscriber delayed(o, "SUBSCRIBE", keys_.key("delayed"));

  add(1, 1);
  add(1, 3);
  EXPECT_EQ(waiting.next(),
            std::make_pair(keys_.key("waiting@postd"), std::string("1")));
  EXPECT_EQ(waiting.next().second, "2");
  take(2);
  EXPECT_EQ(active.next(),
            std::make_pair(keys_.key("active@" + token_), std::string("1")));
  EXPECT_EQ(active.next().second, "2");

  complete_jobs(redis_, keys_, {{"1", R"({"postId":"p/1"})"}}, token_, 10);
  auto done = json::parse(completed.next().second);
  EXPECT_EQ(done["jobId"], "1");
  EXPECT_EQ(done["val"], R"({"postId":"p/1"})");

  fail_jobs(redis_, keys_, {{"2", "retry"}}, token_, 1000, 10);
  EXPECT_EQ(std::stoll(delayed.next().second),
            zscore(redis_, keys_.key("delayed"), "2") / 4096);
  promote_delayed(redis_, keys_, 0x7fffffffffff);
  EXPECT_EQ(waiting.next().second, "2");
  take(1);
  fail_jobs(redis_, keys_, {{"2", "retry"}}, token_, 1000, 10);
  delayed.next();
  promote_delayed(redis_, keys_, 0x7fffffffffff);
  take(1);
  fail_jobs(redis_, keys_, {{"2", "final"}}, token_, 1000, 10);
  auto gone = json::parse(failed.next().second);
  EXPECT_EQ(gone["jobId"], "2");
  EXPECT_EQ(gone["val"], "final");
}

// Events are skipped when nobody listens: a plain SUBSCRIBE to one channel,
// with no pattern subscription anywhere, must still get every one of them.
TEST_F(BullQueueTest, PublishesToAChannelSubscriberWithoutPatterns) {
  subscriber completed(testing::test_redis(), "SUBSCRIBE",
                       keys_.key("completed"));
  add(2);
  take(2);
  complete_jobs(redis_, keys_,
                {{"1", R"({"postId":"p/1"})"}, {"2", R"({"postId":"p/2"})"}},
                token_, 10);
  EXPECT_EQ(json::parse(completed.next().second)["jobId"], "1");
  EXPECT_EQ(json::parse(completed.next().second)["jobId"], "2");
}

// Shutdown gives held jobs back: next in line again, in taken order, with
// their locks gone; a job another worker locked meanwhile stays theirs.
TEST_F(BullQueueTest, ReleaseGivesJobsBackInTakenOrder) {
  add(4);
  ASSERT_EQ(take(3), (ids{"1", "2", "3"}));
  str(redis_, {"SET", keys_.key("2:lock"), "another-worker"});
  EXPECT_EQ(release_jobs(redis_, keys_, {"1", "2", "3"}, token_),
            (ids{"3", "1"}));
  EXPECT_EQ(list("active"), (ids{"2"}));
  EXPECT_EQ(num(redis_, {"EXISTS", keys_.key("1:lock"), keys_.key("3:lock")}),
            0);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("2:lock")}), "another-worker");
  EXPECT_EQ(take(3), (ids{"1", "3", "4"})); // the released first, in order

  // A paused queue gets them in its paused list.
  str(redis_, {"SET", keys_.key("meta-paused"), "1"});
  EXPECT_EQ(release_jobs(redis_, keys_, {"1", "3"}, token_), (ids{"3", "1"}));
  EXPECT_EQ(list("paused"), (ids{"3", "1"}));
  EXPECT_TRUE(release_jobs(redis_, keys_, {}, token_).empty());
}

// A failover: the new master has the jobs a writer took on the old one,
// locked with its token, though the writer completed some there. Those it
// does not hold go back; its held job, another worker's and an unlocked
// one (taken, its lock not yet set) stay.
TEST_F(BullQueueTest, ReleaseOrphansGivesBackWhatOurTokenLockedButWeDoNotHold) {
  add(6);
  ASSERT_EQ(take(5), (ids{"1", "2", "3", "4", "5"}));
  str(redis_, {"SET", keys_.key("3:lock"), "another-worker"});
  str(redis_, {"DEL", keys_.key("4:lock")});
  EXPECT_EQ(release_orphans(redis_, keys_, {"2"}, token_), (ids{"5", "1"}));
  EXPECT_EQ(list("active"), (ids{"4", "3", "2"}));
  EXPECT_EQ(num(redis_, {"EXISTS", keys_.key("1:lock"), keys_.key("5:lock")}),
            0);
  EXPECT_EQ(str(redis_, {"GET", keys_.key("2:lock")}), token_);
  EXPECT_EQ(take(3), (ids{"1", "5", "6"})); // the given back first, in order
  // Nothing of ours left unheld: nothing moves.
  EXPECT_TRUE(
      release_orphans(redis_, keys_, {"1", "2", "5", "6"}, token_).empty());
}

} // namespace
} // namespace postd::persistence
