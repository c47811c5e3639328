#pragma once

// What every actor test includes: CAF 0.17's deterministic test DSL (one
// scheduler the test steps by hand, a clock that moves only when told) with
// postd's message types, and a count of the tests that ran (main fails a run
// of none: a wrong suite filter must not pass silently).

#include <atomic>
#include <chrono>
#include <cstddef>

#include <caf/all.hpp>

#include "actors/protocol.hpp"

// CAF 0.17's dsl.hpp calls FAIL() without defining it.
#ifndef FAIL
#define FAIL(msg) CAF_FAIL(msg)
#endif
#include <caf/test/dsl.hpp>

namespace postd::testing {

extern std::atomic<int> tests_run;

struct postd_test_config : caf::actor_system_config {
  postd_test_config() { add_message_types<caf::id_block::postd>(); }
};

struct actor_fixture : test_coordinator_fixture<postd_test_config> {
  actor_fixture() { ++tests_run; }

  // Moves the simulated clock; returns how many timers fired.
  std::size_t advance(std::chrono::milliseconds d) {
    return sched.advance_time(d);
  }
  // Processes at most `max` messages (actors that loop on their own stay
  // bounded); returns how many.
  std::size_t run_some(std::size_t max = 100) { return sched.run(max); }
};

} // namespace postd::testing
