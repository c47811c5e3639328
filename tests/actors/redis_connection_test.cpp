// The Redis connection holder's error policy, and its reconnect backoff
// against a port where nothing listens (refused at once: no service, no
// waiting), on a clock the test moves.

#define CAF_SUITE redis_connection
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "actor_fixture.hpp"
#include "core/metrics.hpp"
#include "persistence/redis_connection.hpp"

using namespace postd;
using namespace std::chrono_literals;
using persistence::drops_connection;
using persistence::redis_error;
using persistence::redis_reply_error;

namespace {

struct fixture {
  fixture() { ++testing::tests_run; }
};

// A loopback port nobody listens on: bound, then closed again.
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), len);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::uint64_t redis_errors() {
  return metrics::process().redis_errors.load();
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(redis_connection_tests, fixture)

CAF_TEST(a broken connection is dropped) {
  CAF_CHECK(drops_connection(redis_error("redis h:1: command failed"), true));
  CAF_CHECK(drops_connection(redis_error("redis h:1: cannot connect"), false));
}

CAF_TEST(replies from the wrong server drop the connection) {
  CAF_CHECK(drops_connection(
      redis_reply_error(
          "add_jobs: READONLY You can't write against a read only replica."),
      false));
  CAF_CHECK(drops_connection(
      redis_reply_error("count_jobs: LOADING Redis is loading the dataset"),
      false));
  CAF_CHECK(drops_connection(
      redis_reply_error("take_jobs: MASTERDOWN Link with MASTER is down"),
      false));
  CAF_CHECK(drops_connection(
      redis_reply_error("add_jobs: NOREPLICAS Not enough good replicas to "
                        "write."),
      false));
  CAF_CHECK(drops_connection(
      redis_reply_error("ERR Error running script (call to f_1): "
                        "@user_script:9: -READONLY You can't write"),
      false));
}

CAF_TEST(other error replies keep the connection) {
  CAF_CHECK(!drops_connection(
      redis_reply_error("add_jobs: OOM command not allowed when used memory > "
                        "'maxmemory'."),
      false));
  CAF_CHECK(!drops_connection(
      redis_reply_error("get_job: WRONGTYPE Operation against a key holding "
                        "the wrong kind of value"),
      false));
  CAF_CHECK(!drops_connection(
      redis_reply_error("hit_batch: ERR Error running script: bad argument"),
      false));
  CAF_CHECK(!drops_connection(
      redis_reply_error("fail_jobs: ERR NOTREADONLYISH is not a word here"),
      false));
}

CAF_TEST(reconnects only after its backoff and counts each attempt) {
  auto now = std::make_shared<std::chrono::steady_clock::time_point>(
      std::chrono::steady_clock::time_point{} + 1h);
  persistence::redis_connection_options o;
  o.redis.host = "127.0.0.1";
  o.redis.port = closed_port();
  o.timeout = 1000ms;
  o.owner = "test";
  persistence::redis_connection conn{o, [now] { return *now; }};
  CAF_CHECK_EQUAL(conn.options().redis.connect_timeout.count(), 1000);
  CAF_CHECK_EQUAL(conn.options().redis.command_timeout.count(), 1000);
  int calls = 0;
  auto attempt = [&] {
    try {
      conn.run([&](persistence::redis_client&) { ++calls; });
      return true;
    } catch (const redis_error&) {
      return false;
    }
  };
  auto errors = redis_errors();
  CAF_CHECK(!attempt()); // refused: counted, backs off 100 ms
  CAF_CHECK_EQUAL(redis_errors() - errors, 1u);
  *now += 99ms;
  CAF_CHECK(!attempt()); // too early: fails fast, no attempt, not counted
  CAF_CHECK_EQUAL(redis_errors() - errors, 1u);
  *now += 1ms;
  CAF_CHECK(!attempt()); // tried again; next wait 200 ms
  CAF_CHECK_EQUAL(redis_errors() - errors, 2u);
  *now += 199ms;
  CAF_CHECK(!attempt());
  CAF_CHECK_EQUAL(redis_errors() - errors, 2u);
  *now += 1ms;
  CAF_CHECK(!attempt());
  CAF_CHECK_EQUAL(redis_errors() - errors, 3u);
  CAF_CHECK_EQUAL(calls, 0);
  CAF_CHECK(!conn.connected());
}

CAF_TEST_FIXTURE_SCOPE_END()
