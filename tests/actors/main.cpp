// The one translation unit with CAF's test engine (unit_test_impl.hpp), and a
// main that fails a run in which no test ran.

#include <atomic>
#include <iostream>

#define CAF_TEST_NO_MAIN
#include <caf/test/unit_test_impl.hpp>

#include "actor_fixture.hpp"
#include "core/log.hpp"

namespace postd::testing {
std::atomic<int> tests_run{0};
} // namespace postd::testing

int main(int argc, char** argv) {
  // The actors log what they do; the tests check it through fakes instead.
  postd::log::init("off", "text");
  int rc = caf::test::main(argc, argv);
  if (rc == 0 && postd::testing::tests_run == 0) {
    std::cerr << "no test ran: check the suite filter (-s)\n";
    return 1;
  }
  return rc;
}
