// The command line as an operator meets it: the settings list, and a server
// on PORT=0 that says where it listens.

#include <algorithm>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "app/config.hpp"
#include "support/server_process.hpp"
#include "support/test_env.hpp"

using namespace postd;
using namespace postd::testing;
using namespace std::chrono_literals;

// --help-env needs no configuration and prints the binary's own list: one
// line per setting with its default and range, in order.
TEST(Cli, HelpEnvListsEverySetting) {
  auto r = run_postd({"--help-env"}, {{"PORT", "not a port"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream out{r.out};
  std::string line;
  std::getline(out, line);
  EXPECT_EQ(line.rfind("NAME", 0), 0u) << line;
  for (const auto& s : app::settings()) {
    ASSERT_TRUE(std::getline(out, line)) << s.name << " missing:\n" << r.out;
    EXPECT_EQ(line.rfind(s.name + " ", 0), 0u) << line;
    EXPECT_NE(line.find(" " + s.documented_default() + " "), std::string::npos)
        << line;
    EXPECT_NE(line.find(" " + s.range + " "), std::string::npos) << line;
  }
  EXPECT_FALSE(std::getline(out, line)) << "unexpected: " << line;
}

// PORT=0: the kernel picks the port, the start log line names it, and the
// server answers there.
TEST(Cli, PortZeroListensOnAFreePortNamedInTheStartLine) {
  scratch_database db;
  auto e = postd_env(db, unique_name("q"), "cli-secret");
  e["PORT"] = "0";
  e["LOG_LEVEL"] = "info";
  server_process server{e};
  int port = server.port(); // read from the start line
  ASSERT_GT(port, 0) << server.output();
  auto live = http_call(port, "GET", "/health/live");
  EXPECT_EQ(live.status, 200u) << live.body;

  std::istringstream log{server.output()};
  bool named = false;
  for (std::string line; std::getline(log, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.value("msg", "") == "postd listening") {
      EXPECT_EQ(j.value("port", 0), port) << line;
      named = true;
    }
  }
  EXPECT_TRUE(named) << server.output();
}

// Fault knobs are for tests: each one set is named in a warning at start,
// and a bad value stops postd like a bad setting (exit 2, one line).
TEST(Cli, FaultKnobsWarnAndRefuseBadValues) {
  env_map e{{"JWT_SECRET", "cli-secret"}, {"POSTD_FAULT_LOCK_MS", "2000"}};
  auto r = run_postd({"token", "--sub", "author"}, e);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("warning: POSTD_FAULT_LOCK_MS=2000"), std::string::npos)
      << r.err;

  e["POSTD_FAULT_LOCK_MS"] = "sometimes";
  r = run_postd({"token", "--sub", "author"}, e);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_EQ(r.err.rfind("postd: POSTD_FAULT_LOCK_MS: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}
