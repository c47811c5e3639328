#include "persistence/pg_watchdog.hpp"

#include <algorithm>

#include <sys/socket.h>

namespace postd::persistence::detail {

pg_watchdog& pg_watchdog::instance() {
  static pg_watchdog dog;
  return dog;
}

pg_watchdog::pg_watchdog() : thread_([this] { run(); }) {}

pg_watchdog::~pg_watchdog() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  changed_.notify_one();
  thread_.join();
}

pg_watchdog::guard pg_watchdog::arm(int socket, clock::time_point deadline) {
  std::uint64_t id = 0;
  bool earliest = false;
  {
    std::lock_guard<std::mutex> lock{mtx_};
    id = next_id_++;
    earliest = std::none_of(armed_.begin(), armed_.end(), [&](const auto& a) {
      return a.second.deadline <= deadline;
    });
    armed_.emplace(id, armed{socket, deadline});
  }
  if (earliest)
    changed_.notify_one();
  return guard{this, id};
}

void pg_watchdog::disarm(std::uint64_t id) {
  std::lock_guard<std::mutex> lock{mtx_};
  armed_.erase(id);
}

pg_watchdog::guard::~guard() {
  dog_->disarm(id_);
}

std::uint64_t pg_watchdog::fired() const {
  std::lock_guard<std::mutex> lock{mtx_};
  return fired_;
}

void pg_watchdog::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  while (!stopping_) {
    auto next = std::min_element(armed_.begin(), armed_.end(),
                                 [](const auto& a, const auto& b) {
                                   return a.second.deadline < b.second.deadline;
                                 });
    if (next == armed_.end()) {
      changed_.wait(lock);
      continue;
    }
    // A copy: while this waits (unlocked), the entry may be disarmed.
    const auto deadline = next->second.deadline;
    if (clock::now() < deadline) {
      changed_.wait_until(lock, deadline);
      continue;
    }
    // Under the lock: a guard being destroyed waits, so its socket is
    // still the one armed.
    ::shutdown(next->second.socket, SHUT_RDWR);
    armed_.erase(next);
    ++fired_;
  }
}

} // namespace postd::persistence::detail
