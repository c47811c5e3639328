#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "persistence/redis_client.hpp"
#include "support/test_env.hpp"

namespace postd::persistence {
namespace {

using namespace std::chrono_literals;

// A loopback port nobody listens on: bound once by us, then released.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class RedisClientTest : public ::testing::Test {
protected:
  void TearDown() override {
    if (!redis_.broken())
      redis_.command({"DEL", key_, key_ + "2"});
  }

  redis_client redis_{testing::test_redis()};
  std::string key_ = testing::unique_name("rc");
};

TEST_F(RedisClientTest, RoundTripsACommand) {
  auto set = redis_.command({"SET", key_, "hello"});
  EXPECT_EQ(set->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(reply_string(set.get()), "OK");
  auto get = redis_.command({"GET", key_});
  EXPECT_EQ(get->type, REDIS_REPLY_STRING);
  EXPECT_EQ(reply_string(get.get()), "hello");
  EXPECT_EQ(reply_string(redis_.command({"GET", key_ + "2"}).get()), "");
}

TEST_F(RedisClientTest, ErrorReplyKeepsTheConnection) {
  redis_.command({"SET", key_, "not a number"});
  auto r = redis_.command({"INCR", key_});
  EXPECT_TRUE(reply_is_error(r.get()));
  EXPECT_FALSE(redis_.broken());
  auto unknown = redis_.command({"NO_SUCH_COMMAND"});
  EXPECT_TRUE(reply_is_error(unknown.get()));
  EXPECT_EQ(reply_string(redis_.command({"PING"}).get()), "PONG");
}

TEST_F(RedisClientTest, ConnectingToAClosedPortThrows) {
  redis_options opts = testing::test_redis();
  opts.host = "127.0.0.1";
  opts.port = closed_port();
  opts.connect_timeout = 500ms;
  EXPECT_THROW(redis_client{opts}, redis_error);
}

TEST_F(RedisClientTest, RefusedAuthThrows) {
  // The test server has no password, so any AUTH is refused; this proves
  // AUTH is sent and its error reply is not ignored.
  redis_options opts = testing::test_redis();
  opts.password = "wrong-password";
  try {
    redis_client client{opts};
    FAIL() << "AUTH was not refused";
  } catch (const redis_error& e) {
    EXPECT_NE(std::string(e.what()).find("AUTH"), std::string::npos)
        << e.what();
    EXPECT_EQ(std::string(e.what()).find("wrong-password"), std::string::npos)
        << "the password leaked into the message";
  }
}

TEST_F(RedisClientTest, PipelineAnswersInOrder) {
  std::vector<redis_command> cmds;
  for (int i = 0; i < 200; ++i)
    cmds.push_back({"RPUSH", key_, std::string("v").append(std::to_string(i))});
  cmds.push_back({"LRANGE", key_, "0", "2"});
  cmds.push_back({"INCR", key_}); // an error reply in the middle
  cmds.push_back({"LLEN", key_});
  auto replies = redis_.pipeline(cmds);
  ASSERT_EQ(replies.size(), cmds.size());
  for (int i = 0; i < 200; ++i)
    EXPECT_EQ(reply_integer(replies[i].get()), i + 1);
  const redisReply* range = replies[200].get();
  ASSERT_EQ(range->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(range->elements, 3U);
  EXPECT_EQ(reply_string(range->element[0]), "v0");
  EXPECT_EQ(reply_string(range->element[2]), "v2");
  EXPECT_TRUE(reply_is_error(replies[201].get()));
  EXPECT_EQ(reply_integer(replies[202].get()), 200);
  EXPECT_TRUE(redis_.pipeline({}).empty());
}

TEST_F(RedisClientTest, BinarySafeArgumentsAndReplies) {
  static constexpr char raw[] =
      "nul\0inside \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0";
  const std::string value(raw, sizeof raw - 1);
  ASSERT_EQ(value.size(), 21U);
  const std::string key = key_ + std::string("\0k", 2);
  redis_.command({"SET", key, value});
  EXPECT_EQ(reply_string(redis_.command({"GET", key}).get()), value);
  EXPECT_EQ(reply_integer(redis_.command({"STRLEN", key}).get()), 21);
  auto echoed = redis_.eval("return ARGV[1] .. KEYS[1]", {key}, {value});
  EXPECT_EQ(reply_string(echoed.get()), value + key);
  redis_.command({"DEL", key});
}

TEST_F(RedisClientTest, EvalLoadsTheScriptAfterNoscript) {
  // Unique to this run, so the server cannot know it yet (no SCRIPT FLUSH,
  // which would disturb other tests sharing the server).
  const std::string script = "return {KEYS[1], ARGV[1], '" + key_ + "'}";
  const std::string sha = script_sha1(script);
  auto exists = redis_.command({"SCRIPT", "EXISTS", sha});
  ASSERT_EQ(exists->elements, 1U);
  EXPECT_EQ(reply_integer(exists->element[0]), 0);

  auto r = redis_.eval(script, {"k"}, {"a"});
  ASSERT_EQ(r->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(r->elements, 3U);
  EXPECT_EQ(reply_string(r->element[0]), "k");
  EXPECT_EQ(reply_string(r->element[1]), "a");
  exists = redis_.command({"SCRIPT", "EXISTS", sha});
  EXPECT_EQ(reply_integer(exists->element[0]), 1);
  r = redis_.eval(script, {"k2"}, {"b"}); // now by EVALSHA
  EXPECT_EQ(reply_string(r->element[0]), "k2");
}

TEST_F(RedisClientTest, ScriptErrorsAreReplies) {
  auto r = redis_.eval("return redis.call('INCR', KEYS[1])", {key_}, {});
  EXPECT_EQ(reply_integer(r.get()), 1);
  r = redis_.eval("error('boom')", {}, {});
  EXPECT_TRUE(reply_is_error(r.get()));
  EXPECT_FALSE(redis_.broken());
}

TEST_F(RedisClientTest, Sha1MatchesRedis) {
  const std::string script = "return 'sha check " + key_ + "'";
  auto loaded = redis_.command({"SCRIPT", "LOAD", script});
  EXPECT_EQ(reply_string(loaded.get()), script_sha1(script));
  EXPECT_EQ(script_sha1(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
}

TEST_F(RedisClientTest, TimeoutBreaksTheClientForGood) {
  redis_client client{testing::test_redis()};
  client.set_timeout(200ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(client.command({"BLPOP", key_, "2"}), redis_error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1500ms);
  EXPECT_TRUE(client.broken());
  EXPECT_THROW(client.command({"PING"}), redis_error);
  EXPECT_THROW(client.pipeline({{"PING"}}), redis_error);
  EXPECT_THROW(client.eval("return 1", {}, {}), redis_error);
}

TEST_F(RedisClientTest, MovedFromClientIsBroken) {
  redis_client a{testing::test_redis()};
  redis_client b{std::move(a)};
  EXPECT_TRUE(a.broken()); // NOLINT(bugprone-use-after-move)
  EXPECT_THROW(a.command({"PING"}), redis_error);
  EXPECT_EQ(reply_string(b.command({"PING"}).get()), "PONG");
  redis_client c{testing::test_redis()};
  c = std::move(b);
  EXPECT_EQ(reply_string(c.command({"PING"}).get()), "PONG");
}

TEST_F(RedisClientTest, ReplyHelpers) {
  EXPECT_EQ(reply_integer(redis_.command({"INCRBY", key_, "41"}).get()), 41);
  EXPECT_EQ(reply_integer(redis_.command({"GET", key_}).get()), 41);
  EXPECT_EQ(reply_integer(redis_.command({"GET", key_ + "2"}).get()), 0);
  redis_.command({"SET", key_, "4x"});
  EXPECT_THROW(reply_integer(redis_.command({"GET", key_}).get()),
               redis_reply_error);
  EXPECT_EQ(reply_string(nullptr), "");
  EXPECT_EQ(reply_integer(nullptr), 0);
  EXPECT_FALSE(reply_is_error(nullptr));
}

} // namespace
} // namespace postd::persistence
