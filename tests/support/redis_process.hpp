#pragma once

// Redis processes of a test's own, started and stopped with the functions of
// deploy/lib/common.sh under POSTD_TEST_SERVICES_DIR (never the shared
// Redis): a server (to kill, hang or restart) and a Sentinel watching one.

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <hiredis/hiredis.h>

#include "persistence/redis_client.hpp"
#include "persistence/sentinel.hpp"
#include "support/eventually.hpp"
#include "support/server_process.hpp"
#include "support/test_env.hpp"

namespace postd::testing {

// A Redis of the test's own (Bull's AOF settings plus `directives`), so it
// can be killed without disturbing the tests beside it.
class private_redis {
public:
  explicit private_redis(std::vector<std::string> directives = {})
      : dir_(service_dir("redis")), port_(free_port()),
        directives_(std::move(directives)) {
    start();
  }
  ~private_redis() {
    stop();
    shell("rm -rf " + dir_);
  }
  private_redis(const private_redis&) = delete;
  private_redis& operator=(const private_redis&) = delete;

  void start() {
    std::string cmd = "postd_start_redis " + dir_ + " " + std::to_string(port_);
    for (const auto& d : directives_)
      cmd += " \"" + d + "\"";
    must(cmd);
  }
  void stop() { shell("postd_stop_redis " + dir_); }
  // SIGKILL: no shutdown, no final AOF flush; only what was fsynced stays.
  void kill9() {
    must("kill -KILL \"$(cat " + dir_ +
         "/redis.pid)\" && _postd_wait_gone \"$(cat " + dir_ +
         "/redis.pid)\" redis-server 10");
  }
  // SIGSTOP / SIGCONT: a hung Redis (connections open, no answers).
  void pause() { must("kill -STOP \"$(cat " + dir_ + "/redis.pid)\""); }
  void resume() { must("kill -CONT \"$(cat " + dir_ + "/redis.pid)\""); }
  // Points a postd's environment at this Redis.
  void serve(env_map& e) const {
    e["REDIS_HOST"] = options().host;
    e["REDIS_PORT"] = std::to_string(port_);
  }
  persistence::redis_options options() const {
    persistence::redis_options o;
    o.host = "127.0.0.1";
    o.port = port_;
    return o;
  }
  int port() const { return port_; }
  persistence::redis_endpoint endpoint() const { return {"127.0.0.1", port_}; }
  // ROLE's first word ("master", "slave"); "" while it cannot tell (down,
  // or a demotion ending the connection: Sentinel sends CLIENT KILL TYPE
  // normal with the REPLICAOF).
  std::string role() const {
    try {
      persistence::redis_client c{options()};
      auto reply = c.command({"ROLE"});
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
        return {};
      return persistence::reply_string(reply->element[0]);
    } catch (const persistence::redis_error&) {
      return {};
    }
  }

private:
  std::string dir_;
  int port_;
  std::vector<std::string> directives_;
};

// A Redis Sentinel of the test's own watching `master_port` as "mymaster"
// (postd_start_sentinel: quorum `quorum`, down after `down_after_ms`).
class private_sentinel {
public:
  explicit private_sentinel(int master_port, int quorum = 1,
                            int down_after_ms = 1000)
      : dir_(service_dir("sentinel")), port_(free_port()) {
    must("postd_start_sentinel " + dir_ + " " + std::to_string(port_) + " " +
         std::to_string(master_port) + " mymaster " + std::to_string(quorum) +
         " " + std::to_string(down_after_ms));
  }
  ~private_sentinel() {
    shell("postd_stop_sentinel " + dir_);
    shell("rm -rf " + dir_);
  }
  private_sentinel(const private_sentinel&) = delete;
  private_sentinel& operator=(const private_sentinel&) = delete;

  int port() const { return port_; }
  persistence::redis_endpoint endpoint() const { return {"127.0.0.1", port_}; }
  // A connection to the sentinel itself (SENTINEL commands).
  persistence::redis_client client() const {
    persistence::redis_options o;
    o.host = "127.0.0.1";
    o.port = port_;
    return persistence::redis_client{o};
  }
  // What the sentinel says mymaster is now ({} when it cannot say).
  persistence::redis_endpoint master() const {
    try {
      auto c = client();
      auto r = c.command({"SENTINEL", "get-master-addr-by-name", "mymaster"});
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2)
        return {};
      return {persistence::reply_string(r->element[0]),
              static_cast<int>(persistence::reply_integer(r->element[1]))};
    } catch (const persistence::redis_error&) {
      return {};
    }
  }
  // SENTINEL FAILOVER, asked again while the sentinel has no replica it
  // deems fit yet (NOGOODSLAVE: it has not seen the replica's link up in a
  // recent INFO); false when it never accepts within 20 s.
  bool failover() const {
    auto c = client();
    return eventually(
        [&] {
          return persistence::reply_string(
                     c.command({"SENTINEL", "FAILOVER", "mymaster"}).get()) ==
                 "OK";
        },
        std::chrono::seconds{20});
  }
  // How many replicas and other sentinels it knows of for mymaster.
  std::size_t known(const char* what) const {
    try {
      auto c = client();
      auto r = c.command({"SENTINEL", what, "mymaster"});
      return r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    } catch (const persistence::redis_error&) {
      return 0;
    }
  }

private:
  std::string dir_;
  int port_;
};

} // namespace postd::testing
