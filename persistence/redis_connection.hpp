#pragma once

// The one reconnecting Redis connection every actor uses, so they all treat
// errors alike: connect on demand (within a connect timeout), a timeout on
// every command (the writers' blocking take excepted), reconnect with capped
// backoff, and a single error policy. Not thread-safe: one owner (an actor).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "core/backoff.hpp"
#include "persistence/redis_client.hpp"
#include "persistence/sentinel.hpp"

namespace postd::persistence {

struct redis_connection_options {
  redis_options redis; // host, port, password; the timeouts come from below
  // With sentinels, the master's address is asked of them at every connect
  // (redis.host and redis.port are not used) and checked with ROLE.
  sentinel_options sentinel;
  // REDIS_TIMEOUT_MS: connect timeout and per-command socket timeout.
  std::chrono::milliseconds timeout{3000};
  // After a failed connect or a dropped connection, no new connect is tried
  // before this backoff has passed (fail fast meanwhile). Zero for owners
  // that pace their own retries (the writer's retry backoff, the monitor's
  // tick), so a retry always finds a connect attempt.
  std::chrono::milliseconds reconnect_base{100};
  std::chrono::milliseconds reconnect_cap{5000};
  std::string owner; // the logs' "actor" field
  // Runs on each new connection before it is used (the monitor's durability
  // check; Sentinel's role check will go here). A redis_error it throws
  // counts as a failed connect.
  std::function<void(redis_client&)> on_connect;
};

// True when an error means this connection should be given up: hiredis
// broke it (I/O error, timeout, protocol error), or the server cannot serve
// writes here now (READONLY: a replica, e.g. after a failover; LOADING;
// MASTERDOWN; UNBLOCKED: a blocked command ended by a role change;
// NOREPLICAS: a master without its replicas, as the old one is for ~10 s
// after a planned failover until Sentinel demotes it), where a
// new connection (to the master Sentinel names then) may reach the right
// server. Other error replies (OOM, WRONGTYPE, script errors) leave a
// healthy connection.
bool drops_connection(const redis_error& e, bool client_broken);

class redis_connection {
public:
  using clock = std::chrono::steady_clock;

  explicit redis_connection(
      redis_connection_options opts,
      std::function<clock::time_point()> now = [] { return clock::now(); });

  // Calls f(redis_client&) on the connection, connecting first if needed.
  // Throws redis_error when no connection can be had now (in the backoff
  // after a failure, or the connect failed) and rethrows f's redis_error
  // after applying the error policy. Every error counts in redis_errors.
  template <class F> decltype(auto) run(F&& f) {
    redis_client& client = connected_client();
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&, redis_client&>>) {
        f(client);
        succeeded();
      } else {
        decltype(auto) result = f(client);
        succeeded();
        return result;
      }
    } catch (const redis_error& e) {
      failed(e);
      throw;
    }
  }

  bool connected() const noexcept { return client_.has_value(); }
  const redis_connection_options& options() const noexcept { return opts_; }
  // The address connected to last (Sentinel's master, or redis.host/port).
  const redis_endpoint& address() const noexcept { return address_; }
  // Connections made so far: a new one (a restart, a failover) may reach a
  // server that lost recent writes.
  std::uint64_t connections() const noexcept { return connections_; }

private:
  redis_client& connected_client();
  // What the errors call the server: its address, or Sentinel's name for it.
  std::string describe() const;
  void succeeded();
  void failed(const redis_error& e);
  void report(const redis_error& e, bool dropped);

  redis_connection_options opts_;
  std::function<clock::time_point()> now_;
  std::optional<sentinel_resolver> sentinels_;
  redis_endpoint address_;
  std::uint64_t connections_ = 0;
  std::optional<redis_client> client_;
  core::backoff reconnect_;
  clock::time_point next_connect_{};
  bool outage_ = false; // warned already: later errors at debug level
};

} // namespace postd::persistence
