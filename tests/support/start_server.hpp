#pragma once

// START_SERVER(name, env): starts `postd serve` with `env` as the
// server_process `name` and waits until it answers /health with 200, or
// fails the test and returns from it. A macro, because a helper function's
// ASSERT would return from the helper only and the test would go on.

#include <chrono>

#include <gtest/gtest.h>

#include "support/server_process.hpp"

#define START_SERVER(name, environment)                                        \
  ::postd::testing::server_process name{environment};                          \
  ASSERT_TRUE(name.wait_healthy(std::chrono::seconds{20})) << name.output()
