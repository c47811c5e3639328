#pragma once

// The client-side bound on a PostgreSQL call. statement_timeout is enforced
// by the server: a server that does not run at all (SIGSTOPped, a frozen VM,
// a network path that drops packets) never sends its error, and libpq waits
// in recv() for ever. The watchdog shuts the connection's socket down when a
// call outlives its deadline: libpq's wait ends at once with a broken
// connection, which the store reports as a retryable error and reconnects.
// Internal to persistence/.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>

namespace postd::persistence::detail {

class pg_watchdog {
public:
  using clock = std::chrono::steady_clock;

  // The process's one watchdog (its thread starts on first use).
  static pg_watchdog& instance();

  // Disarms on destruction. The socket is still libpq's then, so a shutdown
  // can only hit the connection it was armed for.
  class guard {
  public:
    guard(const guard&) = delete;
    guard& operator=(const guard&) = delete;
    ~guard();

  private:
    friend class pg_watchdog;
    guard(pg_watchdog* dog, std::uint64_t id) : dog_(dog), id_(id) {}
    pg_watchdog* dog_;
    std::uint64_t id_;
  };

  // Shuts `socket` down (both directions) at `deadline` unless the returned
  // guard is gone by then.
  [[nodiscard]] guard arm(int socket, clock::time_point deadline);

  // Calls cut short so far (for tests and logs).
  std::uint64_t fired() const;

  ~pg_watchdog();
  pg_watchdog(const pg_watchdog&) = delete;
  pg_watchdog& operator=(const pg_watchdog&) = delete;

private:
  pg_watchdog();
  void run();
  void disarm(std::uint64_t id);

  struct armed {
    int socket;
    clock::time_point deadline;
  };
  mutable std::mutex mtx_;
  std::condition_variable changed_;
  std::map<std::uint64_t, armed> armed_;
  std::uint64_t next_id_ = 0;
  std::uint64_t fired_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace postd::persistence::detail
