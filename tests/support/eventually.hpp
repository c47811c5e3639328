#pragma once

// Waits for a condition in end-to-end tests: polls `f` every 20 ms until it
// holds or `timeout` passes; returns its last answer. Bounded, so a server
// that never gets there fails the test instead of hanging it.

#include <chrono>
#include <thread>

namespace postd::testing {

template <class F>
bool eventually(F&& f,
                std::chrono::milliseconds timeout = std::chrono::seconds{10}) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f())
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return f();
}

} // namespace postd::testing
