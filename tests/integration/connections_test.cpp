// Connections and floods: MAX_CONNECTIONS, accept() failing for want of file
// descriptors, and many half-open requests held while others are served.

#include <algorithm>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/resource.h>

#include "support/eventually.hpp"
#include "support/raw_client.hpp"
#include "support/server_process.hpp"
#include "support/start_server.hpp"
#include "support/test_env.hpp"

using namespace postd::testing;
using namespace std::chrono_literals;

namespace {

struct ConnectionsTest : ::testing::Test {
  scratch_database db;

  env_map env(env_map settings = {}) const {
    settings.merge(postd_env(db, unique_name("cq"), "connections-secret"));
    return settings;
  }

  static long long metric(int port, const std::string& name) {
    return metric_value(port, name);
  }

  static std::size_t lines(const std::string& text) {
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  }
};

// Raises this process's open-files limit to `wanted` (up to the hard
// limit); returns what it is now.
rlim_t raise_open_files(rlim_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < wanted) {
    limit.rlim_cur = std::min(wanted, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

const std::string half_request = "POST /v1/post/create HTTP/1.1\r\n"
                                 "Host: 127.0.0.1\r\n"
                                 "Content-Type: application/json\r\n";

} // namespace

// Past MAX_CONNECTIONS a new connection is closed at once, counted, and
// the server takes connections again when one goes.
TEST_F(ConnectionsTest, OverMaxConnectionsNewOnesAreClosedAtOnce) {
  START_SERVER(server, env({{"MAX_CONNECTIONS", "5"}}));
  // Five live sessions: a connection accepted while the health check's
  // session was still ending was refused (the limit counted that one), so
  // each is held only once the server is seen to keep it.
  std::vector<std::unique_ptr<raw_client>> held;
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(eventually([&] {
      auto client = std::make_unique<raw_client>(server.port());
      try {
        client->send(half_request);
      } catch (const std::exception&) {
        return false; // refused and reset before the send
      }
      if (client->closed_by_peer(300ms))
        return false;
      held.push_back(std::move(client));
      return true;
    })) << server.output();
  }
  // The five are sessions by the time the sixth is accepted: wait for it.
  ASSERT_TRUE(eventually([&] {
    raw_client extra{server.port()};
    return extra.closed_by_peer(2s);
  })) << server.output();

  held.pop_back(); // one goes: room for one
  ASSERT_TRUE(eventually([&] {
    return metric(server.port(), "postd_connections_refused_total") >= 1;
  })) << server.output();
  EXPECT_NE(server.output().find("connection limit reached"), std::string::npos)
      << server.output();
}

// accept() failing with EMFILE under a connection flood: a few log lines,
// not one per failure, and normal service once the flood ends.
TEST_F(ConnectionsTest, FileDescriptorExhaustionBacksOffQuietly) {
  raise_open_files(4096);
  server_process server{env(), /*max_open_files=*/256};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();
  auto before = lines(server.output());

  std::vector<std::unique_ptr<raw_client>> flood;
  for (int i = 0; i < 600; ++i) {
    try {
      flood.push_back(std::make_unique<raw_client>(server.port(), 2s));
      flood.back()->send(half_request);
    } catch (const std::exception&) {
      break; // the backlog is full: flooded enough
    }
  }
  std::this_thread::sleep_for(3s); // the accept loop keeps failing meanwhile
  auto during = server.output();
  EXPECT_NE(during.find("accept failing"), std::string::npos) << during;
  EXPECT_LT(lines(during) - before, 10u) << during;

  // The flood's connections close; postd reads their ends (the backlog's
  // too) and accepts again, within seconds even on a busy machine.
  flood.clear();
  ASSERT_TRUE(eventually(
      [&] {
        try {
          return http_call(server.port(), "GET", "/health/live", "", {}, 2s)
                     .status == 200;
        } catch (const std::exception&) {
          return false;
        }
      },
      30s))
      << server.output();
  EXPECT_LT(lines(server.output()) - before, 10u) << server.output();
}

// 10,000 half-open requests (headers never finished) held at once: other
// clients are still served, promptly.
TEST_F(ConnectionsTest, TenThousandHalfOpenRequestsDoNotStarveOthers) {
  constexpr int held_count = 10000;
  if (raise_open_files(held_count + 1000) < held_count + 1000)
    GTEST_SKIP() << "the hard open-files limit is below " << held_count + 1000;
  server_process server{env({{"MAX_CONNECTIONS", "20000"}}),
                        /*max_open_files=*/held_count + 1000};
  ASSERT_TRUE(server.wait_healthy(20s)) << server.output();

  std::vector<std::unique_ptr<raw_client>> held;
  held.reserve(held_count);
  for (int i = 0; i < held_count; ++i) {
    held.push_back(std::make_unique<raw_client>(server.port(), 10s));
    held.back()->send(half_request);
  }
  ASSERT_TRUE(eventually([&] {
    return metric(server.port(), "postd_connections_open") >= held_count;
  })) << server.output();
  for (int i = 0; i < 50; ++i) {
    auto r = http_call(server.port(), "GET", "/health/live", "", {}, 2s);
    ASSERT_EQ(r.status, 200u) << r.body;
  }
  held.clear();
}
