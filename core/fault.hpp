#pragma once

// Fault injection for testers (FAULTS=on, set through PUT /admin/faults):
// a board of the faults in force, read on the hot paths without a lock,
// and the dice the actors roll against it. With FAULTS off there is no
// board and every check is a null pointer test.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace postd::core {

enum class fault : std::uint8_t {
  writer_error_rate,  // a writer's database write fails (retried, backoff)
  writer_crash_rate,  // a writer crashes around a batch (supervisor restart)
  enqueue_error_rate, // a batch's Redis add fails (its creates answer 503)
  enqueue_crash_rate, // the enqueue actor crashes around a batch's add
  reader_crash_rate,  // a reader crashes on a query
  db_delay_ms,        // added before each PostgreSQL call
  redis_delay_ms,     // added before each Redis call
};

struct fault_spec {
  fault id;
  std::string_view name; // as the API and /metrics name it
  double max;            // values run from 0 (off) to this
  bool whole;            // milliseconds (integers), not a chance
};

inline constexpr std::array<fault_spec, 7> fault_specs{{
    {fault::writer_error_rate, "writer_error_rate", 1, false},
    {fault::writer_crash_rate, "writer_crash_rate", 1, false},
    {fault::enqueue_error_rate, "enqueue_error_rate", 1, false},
    {fault::enqueue_crash_rate, "enqueue_crash_rate", 1, false},
    {fault::reader_crash_rate, "reader_crash_rate", 1, false},
    {fault::db_delay_ms, "db_delay_ms", 60000, true},
    {fault::redis_delay_ms, "redis_delay_ms", 60000, true},
}};

inline const fault_spec& spec_of(fault f) {
  return fault_specs[static_cast<std::size_t>(f)];
}

// The faults in force. Values are read lock-free on every hot-path call;
// set and clear (the admin API, rare) take a lock so a reader of active()
// sees whole updates. A fault set `for` a while clears itself when read
// past its end.
class fault_board {
public:
  using clock = std::chrono::steady_clock;

  // 0: the fault is off (or its time is over).
  double value(fault f) const {
    const auto& s = slots_[static_cast<std::size_t>(f)];
    double v = s.value.load(std::memory_order_relaxed);
    if (v == 0)
      return 0;
    auto until = s.until_ns.load(std::memory_order_relaxed);
    return until == 0 || now_ns() < until ? v : 0;
  }

  // `until`: when it clears by itself; none: until cleared.
  void set(fault f, double value, std::optional<clock::time_point> until) {
    std::lock_guard lock{mu_};
    auto& s = slots_[static_cast<std::size_t>(f)];
    s.until_ns.store(until ? until->time_since_epoch().count() : 0);
    s.value.store(value);
  }

  void clear() {
    std::lock_guard lock{mu_};
    for (auto& s : slots_) {
      s.value.store(0);
      s.until_ns.store(0);
    }
  }

  struct active_fault {
    fault id;
    double value;
    std::optional<clock::time_point> until;
  };
  std::vector<active_fault> active() const {
    std::lock_guard lock{mu_};
    std::vector<active_fault> out;
    for (const auto& spec : fault_specs)
      if (double v = value(spec.id); v != 0) {
        auto until = slots_[static_cast<std::size_t>(spec.id)].until_ns.load();
        out.push_back({spec.id, v,
                       until == 0 ? std::nullopt
                                  : std::optional{clock::time_point{
                                        clock::duration{until}}}});
      }
    return out;
  }

  // Sleeps for the delay fault `f` (db_delay_ms, redis_delay_ms), in short
  // slices so clearing the fault ends a long one early.
  void delay(fault f) const {
    using std::chrono::milliseconds;
    auto end = clock::now() + milliseconds{static_cast<long>(value(f))};
    while (value(f) != 0) {
      auto left = end - clock::now();
      if (left <= clock::duration::zero())
        return;
      std::this_thread::sleep_for(std::min<clock::duration>(left, slice));
    }
  }

private:
  static constexpr std::chrono::milliseconds slice{50};
  static clock::rep now_ns() { return clock::now().time_since_epoch().count(); }

  struct slot {
    std::atomic<double> value{0};
    std::atomic<clock::rep> until_ns{0}; // 0: no end
  };
  std::array<slot, fault_specs.size()> slots_;
  mutable std::mutex mu_;
};

// An actor's dice against one chance on the board (its own generator: the
// actors roll on different threads). `share` splits a chance between the
// places an actor strikes (half before a write, half after).
class fault_injector {
public:
  fault_injector() = default;
  fault_injector(std::shared_ptr<const fault_board> board, fault f,
                 double share = 1)
      : board_(std::move(board)), fault_(f), share_(share) {}

  // Throws std::runtime_error("injected " + what), a crash-like exception
  // no retry in postd catches, with the board's chance (times the share).
  void strike(const char* what) {
    if (!roll())
      return;
    throw std::runtime_error(std::string("injected ") + what);
  }

  // True with the board's chance (times the share).
  bool roll() {
    if (!board_)
      return false;
    double rate = board_->value(fault_) * share_;
    return rate > 0 &&
           std::uniform_real_distribution<double>{0, 1}(dice_) < rate;
  }

private:
  std::shared_ptr<const fault_board> board_;
  fault fault_ = fault::writer_crash_rate;
  double share_ = 1;
  std::minstd_rand dice_{std::random_device{}()};
};

} // namespace postd::core
