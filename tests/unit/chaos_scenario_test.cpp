// The chaos kit's scenario parser: every directive and action read into the
// scenario, every mistake refused with its line, and the normalised form the
// runner reads parsing back to the same scenario.

#include <algorithm>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "scenario.hpp"

using namespace postd::chaos;

namespace {

scenario parse(const std::string& text) {
  std::istringstream in(text);
  return parse_scenario(in);
}

// The scenario's meaning: all but the line each event was written on.
void expect_same(const scenario& a, const scenario& b) {
  EXPECT_EQ(a.duration_s, b.duration_s);
  EXPECT_EQ(a.rate, b.rate);
  EXPECT_EQ(a.instances, b.instances);
  EXPECT_EQ(a.sentinel, b.sentinel);
  EXPECT_EQ(a.aof, b.aof);
  EXPECT_EQ(a.env, b.env);
  ASSERT_EQ(a.events.size(), b.events.size());
  for (std::size_t i = 0; i < a.events.size(); ++i) {
    const auto& x = a.events[i];
    const auto& y = b.events[i];
    SCOPED_TRACE("event " + std::to_string(i) + ": " + x.describe());
    EXPECT_EQ(x.at_s, y.at_s);
    EXPECT_EQ(x.action, y.action);
    EXPECT_EQ(x.target, y.target);
    EXPECT_EQ(x.instance, y.instance);
    EXPECT_EQ(x.delay_ms, y.delay_ms);
    EXPECT_EQ(x.faults, y.faults);
  }
}

// The issue's example, shuffled: events out of order, scalars after them.
const std::string example = R"(# the issue's example
at 10 kill postd 1     # kill -9, restarted 3 s later
at 15 stop redis
at 20 cont redis
at 22 restart pg
at 25 delay redis 200
at 30 heal redis
at 31 partition pg
at 35 heal pg
at 12 faults writer_error_rate=0.2 for=5
at 28 failover redis

duration 40            # seconds of load
rate 3000
instances 2
sentinel on
aof always
env ACK_REPLICAS=1
env BATCH_SIZE=500
)";

} // namespace

TEST(ChaosScenario, ReadsEveryScalarDirective) {
  auto s = parse(example);
  EXPECT_EQ(s.duration_s, 40);
  EXPECT_EQ(s.rate, 3000);
  EXPECT_EQ(s.instances, 2);
  EXPECT_TRUE(s.sentinel);
  EXPECT_EQ(s.aof, "always");
  EXPECT_EQ(s.env, (std::map<std::string, std::string>{{"ACK_REPLICAS", "1"},
                                                       {"BATCH_SIZE", "500"}}));
}

TEST(ChaosScenario, DefaultsWhenADirectiveIsLeftOut) {
  auto s = parse("# nothing but a comment\n\n");
  EXPECT_EQ(s.duration_s, 30);
  EXPECT_EQ(s.rate, 1000);
  EXPECT_EQ(s.instances, 1);
  EXPECT_FALSE(s.sentinel);
  EXPECT_EQ(s.aof, "everysec");
  EXPECT_TRUE(s.env.empty());
  EXPECT_TRUE(s.events.empty());
}

TEST(ChaosScenario, ReadsEachScalarsValues) {
  EXPECT_FALSE(parse("sentinel off\n").sentinel);
  EXPECT_EQ(parse("aof off\n").aof, "off");
  EXPECT_EQ(parse("aof everysec\n").aof, "everysec");
  EXPECT_EQ(parse("duration 1\n").duration_s, 1);
  EXPECT_EQ(parse("duration 3600\n").duration_s, 3600);
  EXPECT_EQ(parse("rate 100000\n").rate, 100000);
  EXPECT_EQ(parse("instances 8\n").instances, 8);
  EXPECT_EQ(parse("env X_1=a=b\n").env.at("X_1"), "a=b");
  EXPECT_EQ(parse("env EMPTY=\n").env.at("EMPTY"), "");
}

TEST(ChaosScenario, ReadsEveryActionInTimeOrder) {
  auto s = parse(example);
  std::vector<std::string> seen;
  for (const auto& e : s.events)
    seen.push_back(std::to_string(static_cast<int>(e.at_s)) + " " +
                   e.describe());
  EXPECT_EQ(seen,
            (std::vector<std::string>{
                "10 kill postd 1", "12 faults for=5 writer_error_rate=0.2",
                "15 stop redis", "20 cont redis", "22 restart pg",
                "25 delay redis 200", "28 failover redis", "30 heal redis",
                "31 partition pg", "35 heal pg"}));
  EXPECT_EQ(s.events[0].line, 2);  // kill
  EXPECT_EQ(s.events[1].line, 10); // faults, written after heal pg
}

TEST(ChaosScenario, FillsEachEventsFields) {
  auto s = parse("instances 3\n"
                 "at 1 kill postd 3\n"
                 "at 2 stop pgbouncer\n"
                 "at 3 delay pg 60000\n"
                 "at 4 faults db_delay_ms=250 enqueue_error_rate=1\n");
  ASSERT_EQ(s.events.size(), 4U);
  const auto& kill = s.events[0];
  EXPECT_EQ(kill.action, "kill");
  EXPECT_EQ(kill.target, "postd");
  EXPECT_EQ(kill.instance, 3);
  EXPECT_EQ(kill.line, 2);
  const auto& stop = s.events[1];
  EXPECT_EQ(stop.target, "pgbouncer");
  EXPECT_EQ(stop.instance, 0);
  const auto& delay = s.events[2];
  EXPECT_EQ(delay.target, "pg");
  EXPECT_EQ(delay.delay_ms, 60000);
  const auto& faults = s.events[3];
  EXPECT_EQ(faults.target, "");
  EXPECT_EQ(faults.faults,
            (std::map<std::string, std::string>{{"db_delay_ms", "250"},
                                                {"enqueue_error_rate", "1"}}));
}

TEST(ChaosScenario, KeepsTheWrittenOrderOfEventsAtTheSameTime) {
  auto s = parse("at 5 stop redis\nat 1.5 heal pg\nat 5 cont redis\n"
                 "at 5 kill pg\n");
  ASSERT_EQ(s.events.size(), 4U);
  EXPECT_EQ(s.events[0].at_s, 1.5);
  EXPECT_EQ(s.events[1].describe(), "stop redis");
  EXPECT_EQ(s.events[2].describe(), "cont redis");
  EXPECT_EQ(s.events[3].describe(), "kill pg");
}

TEST(ChaosScenario, KeepsTheWrittenOrderOfManyEventsAtTheSameTime) {
  // Enough events for a sort to take its unstable path.
  std::string text = "instances 8\n";
  std::vector<std::string> at_five;
  for (const char* action : {"kill", "stop", "cont", "restart"})
    for (int n = 1; n <= 8; ++n) {
      auto event = std::string(action) + " postd " + std::to_string(n);
      text += "at 5 " + event + "\nat " + std::to_string(n) + ".5 heal pg\n";
      at_five.push_back(event);
    }
  auto s = parse(text);
  std::vector<std::string> seen;
  for (const auto& e : s.events)
    if (e.at_s == 5)
      seen.push_back(e.describe());
  EXPECT_EQ(seen, at_five);
  EXPECT_TRUE(std::is_sorted(
      s.events.begin(), s.events.end(),
      [](const auto& a, const auto& b) { return a.at_s < b.at_s; }));
}

TEST(ChaosScenario, ReadsDecimalTimesAndCanonicalFaultValues) {
  auto s = parse("at 0 heal pg\nat 2.25 faults writer_crash_rate=0.50 "
                 "redis_delay_ms=007 for=1.5\n");
  EXPECT_EQ(s.events[0].at_s, 0);
  EXPECT_EQ(s.events[1].at_s, 2.25);
  // Written as the JSON numbers the runner sends postd's fault API.
  EXPECT_EQ(s.events[1].describe(),
            "faults for=1.5 redis_delay_ms=7 writer_crash_rate=0.5");
}

TEST(ChaosScenario, ToleratesTabsCarriageReturnsAndCommentsAnywhere) {
  auto s = parse("\tduration\t20  # twenty\r\n#at 30 kill redis\r\n"
                 "  at 3 kill redis#no space before the comment\r\n");
  EXPECT_EQ(s.duration_s, 20);
  ASSERT_EQ(s.events.size(), 1U);
  EXPECT_EQ(s.events[0].describe(), "kill redis");
  EXPECT_EQ(s.events[0].line, 3);
}

TEST(ChaosScenario, NormalisesScalarsThenEnvThenEvents) {
  EXPECT_EQ(normalised(parse(example)), "duration 40\n"
                                        "rate 3000\n"
                                        "instances 2\n"
                                        "sentinel on\n"
                                        "aof always\n"
                                        "env ACK_REPLICAS=1\n"
                                        "env BATCH_SIZE=500\n"
                                        "at 10 kill postd 1\n"
                                        "at 12 faults for=5 "
                                        "writer_error_rate=0.2\n"
                                        "at 15 stop redis\n"
                                        "at 20 cont redis\n"
                                        "at 22 restart pg\n"
                                        "at 25 delay redis 200\n"
                                        "at 28 failover redis\n"
                                        "at 30 heal redis\n"
                                        "at 31 partition pg\n"
                                        "at 35 heal pg\n");
}

TEST(ChaosScenario, NormalisedFormParsesBackToTheSameScenario) {
  const std::vector<std::string> cases = {
      example,
      "",
      R"(duration 7
at 0.1 kill pgbouncer
at 6.999 restart postd 1
at 0.1 stop pg
at 3.0000001 cont pg
)",
      R"(sentinel off
aof off
rate 1
instances 8
at 2 kill postd 8
at 1 faults reader_crash_rate=0.001 enqueue_crash_rate=0 writer_error_rate=1 db_delay_ms=60000 for=3600
)",
      R"(env Z=last
env A=first
at 1 delay pg 1
at 1 partition redis
)",
      // Tiny and long numbers, which a shortest form might write with an
      // exponent the parser refuses.
      R"(at 0.00001 heal pg
at 29.999999999999 faults writer_error_rate=0.000001 for=0.0000001 redis_delay_ms=60000
)",
  };
  for (const auto& text : cases) {
    SCOPED_TRACE(text);
    auto s = parse(text);
    auto again = parse(normalised(s));
    expect_same(again, s);
    EXPECT_EQ(normalised(again), normalised(s));
  }
}

// Each mistake, the line it is reported on and what the message must say.
struct bad_case {
  std::string text;
  int line;
  std::string says;
};

class ChaosScenarioError : public ::testing::TestWithParam<bad_case> {};

TEST_P(ChaosScenarioError, IsRefusedWithItsLine) {
  const auto& c = GetParam();
  try {
    parse(c.text);
    FAIL() << "accepted:\n" << c.text;
  } catch (const scenario_error& e) {
    EXPECT_EQ(e.line(), c.line) << e.what();
    EXPECT_NE(e.message().find(c.says), std::string::npos)
        << "message: " << e.message() << "\nwanted: " << c.says;
    EXPECT_EQ(std::string(e.what()),
              "line " + std::to_string(c.line) + ": " + e.message());
  }
}

const std::string lead = "# a comment\nduration 40\n\n"; // errors on line 4

INSTANTIATE_TEST_SUITE_P(
    ChaosDirectives, ChaosScenarioError,
    ::testing::Values(
        bad_case{lead + "atx 5 kill redis\n", 4,
                 "unknown directive 'atx' (expected duration, rate, "
                 "instances, sentinel, aof, env, at)"},
        bad_case{lead + "Duration 5\n", 4, "unknown directive 'Duration'"},
        bad_case{lead + "duration 30\n", 4,
                 "'duration' given twice (first on line 2)"},
        bad_case{"rate 5\nrate 5\n", 2, "'rate' given twice (first on line 1)"},
        bad_case{"instances 1\n#\ninstances 2\n", 3, "'instances' given twice"},
        bad_case{"sentinel on\nsentinel on\n", 2, "'sentinel' given twice"},
        bad_case{"aof off\naof off\n", 2, "'aof' given twice"},
        bad_case{lead + "duration\n", 4, "'duration' given twice"},
        bad_case{"duration\n", 1, "duration needs a value"},
        bad_case{"rate\n", 1, "rate needs a value (a whole number 1..100000)"},
        bad_case{"duration 0\n", 1,
                 "duration 0 is out of range (expected 1..3600)"},
        bad_case{"duration 3601\n", 1, "duration 3601 is out of range"},
        bad_case{"duration 2.5\n", 1,
                 "duration '2.5' is not a whole number (expected 1..3600)"},
        bad_case{"rate 0\n", 1, "rate 0 is out of range (expected 1..100000)"},
        bad_case{"rate 100001\n", 1, "rate 100001 is out of range"},
        bad_case{"rate 99999999999999999999\n", 1,
                 "rate 99999999999999999999 is out of range"},
        bad_case{"instances 9\n", 1,
                 "instances 9 is out of range (expected 1..8)"},
        bad_case{"instances 0\n", 1, "instances 0 is out of range"},
        bad_case{"sentinel yes\n", 1, "sentinel 'yes' (expected on or off)"},
        bad_case{"sentinel\n", 1, "sentinel needs a value (on or off)"},
        bad_case{"aof sometimes\n", 1,
                 "aof 'sometimes' (expected always, everysec or off)"},
        bad_case{"duration 40 50\n", 1, "unexpected '50' after 'duration 40'"},
        bad_case{"sentinel on off\n", 1,
                 "unexpected 'off' after 'sentinel on'"},
        bad_case{"env\n", 1, "env needs NAME=VALUE"},
        bad_case{"env ACK_REPLICAS\n", 1,
                 "env 'ACK_REPLICAS' (expected NAME=VALUE)"},
        bad_case{"env ack=1\n", 1,
                 "env 'ack=1': the name must be like [A-Z][A-Z0-9_]*"},
        bad_case{"env 1X=1\n", 1, "the name must be like"},
        bad_case{"env =1\n", 1, "the name must be like"},
        bad_case{"env A-B=1\n", 1, "the name must be like"},
        bad_case{"env A=1\nenv A=2\n", 2, "env A given twice"},
        bad_case{"env A=1 B=2\n", 1, "unexpected 'B=2' after 'env A=1'"}));

INSTANTIATE_TEST_SUITE_P(
    ChaosNumbers, ChaosScenarioError,
    ::testing::Values(
        bad_case{"duration 10s\n", 1, "duration '10s' is not a whole number"},
        bad_case{"duration -1\n", 1, "duration '-1' is not a whole number"},
        bad_case{"duration +5\n", 1, "duration '+5' is not a whole number"},
        bad_case{"rate 0x10\n", 1, "rate '0x10' is not a whole number"},
        bad_case{"rate 1e3\n", 1, "rate '1e3' is not a whole number"},
        bad_case{"at 10s kill redis\n", 1,
                 "at '10s' is not a number (expected a plain decimal like 10 "
                 "or 2.5)"},
        bad_case{"at -1 kill redis\n", 1, "at '-1' is not a number"},
        bad_case{"at nan kill redis\n", 1, "at 'nan' is not a number"},
        bad_case{"at inf kill redis\n", 1, "at 'inf' is not a number"},
        bad_case{"at 1e999 kill redis\n", 1, "at '1e999' is not a number"},
        bad_case{"at 1e1 kill redis\n", 1, "at '1e1' is not a number"},
        bad_case{"at .5 kill redis\n", 1, "at '.5' is not a number"},
        bad_case{"at 5. kill redis\n", 1, "at '5.' is not a number"},
        bad_case{"at 1.2.3 kill redis\n", 1, "at '1.2.3' is not a number"},
        bad_case{"at 1" + std::string(400, '0') + " kill redis\n", 1,
                 "is out of range"},
        bad_case{"at 1 faults writer_error_rate=nan\n", 1,
                 "faults writer_error_rate 'nan' is not a number"},
        bad_case{"at 1 faults writer_error_rate=-0.1\n", 1,
                 "faults writer_error_rate '-0.1' is not a number"},
        bad_case{"at 1 delay pg 10ms\n", 1,
                 "delay pg '10ms' is not a whole number"}));

INSTANTIATE_TEST_SUITE_P(
    ChaosEvents, ChaosScenarioError,
    ::testing::Values(
        bad_case{"at\n", 1, "at needs a time"},
        bad_case{"at 5\n", 1, "at 5 needs an action (kill, stop, cont,"},
        bad_case{"at 5 explode redis\n", 1,
                 "unknown action 'explode' (expected kill, stop, cont, "
                 "restart, delay, heal, partition, faults, failover)"},
        bad_case{"at 5 kill\n", 1,
                 "kill needs a target (postd N, redis, pg or pgbouncer)"},
        bad_case{"at 5 stop mysql\n", 1,
                 "stop 'mysql' (expected postd N, redis, pg or pgbouncer)"},
        bad_case{"at 5 cont nginx\n", 1, "cont 'nginx' (expected postd N"},
        bad_case{"at 5 restart redis1\n", 1, "restart 'redis1'"},
        bad_case{"at 5 kill postd\n", 1, "kill postd needs a value"},
        bad_case{"at 5 kill postd 0\n", 1,
                 "kill postd 0 is out of range (expected 1..8)"},
        bad_case{"at 5 kill postd one\n", 1,
                 "kill postd 'one' is not a whole number"},
        bad_case{"at 5 kill redis now\n", 1,
                 "unexpected 'now' after 'at 5 kill redis'"},
        bad_case{"at 5 kill postd 1 2\n", 1,
                 "unexpected '2' after 'at 5 kill postd 1'"},
        bad_case{"at 5 delay\n", 1, "delay needs a target (redis or pg)"},
        bad_case{"at 5 delay pgbouncer 10\n", 1,
                 "delay 'pgbouncer' (expected redis or pg)"},
        bad_case{"at 5 delay redis\n", 1,
                 "delay redis needs a value (a whole number 1..60000)"},
        bad_case{"at 5 delay redis 0\n", 1,
                 "delay redis 0 is out of range (expected 1..60000)"},
        bad_case{"at 5 delay redis 60001\n", 1, "delay redis 60001 is out"},
        bad_case{"at 5 delay redis 10 20\n", 1, "unexpected '20'"},
        bad_case{"at 5 heal\n", 1, "heal needs a target (redis or pg)"},
        bad_case{"at 5 heal postd 1\n", 1,
                 "heal 'postd' (expected redis or pg)"},
        bad_case{"at 5 partition pgbouncer\n", 1,
                 "partition 'pgbouncer' (expected redis or pg)"},
        bad_case{"at 5 heal pg pg\n", 1, "unexpected 'pg' after"},
        bad_case{"at 5 failover pg\n", 1, "failover 'pg' (expected redis)"},
        bad_case{"sentinel on\nat 5 failover\n", 2,
                 "failover needs a target (redis)"},
        bad_case{"sentinel on\nat 5 failover redis now\n", 2,
                 "unexpected 'now'"}));

INSTANTIATE_TEST_SUITE_P(
    ChaosFaults, ChaosScenarioError,
    ::testing::Values(
        bad_case{"at 5 faults\n", 1,
                 "faults needs at least one key=value (keys: for, "
                 "writer_error_rate"},
        bad_case{"at 5 faults for=5\n", 1,
                 "faults needs a fault besides 'for'"},
        bad_case{"at 5 faults explode_rate=1\n", 1,
                 "faults: unknown key 'explode_rate' (expected for, "
                 "writer_error_rate, writer_crash_rate, enqueue_error_rate"},
        bad_case{"at 5 faults writer_error_rate\n", 1,
                 "faults 'writer_error_rate' (expected key=value)"},
        bad_case{"at 5 faults writer_error_rate=\n", 1,
                 "faults writer_error_rate '' is not a number"},
        bad_case{"at 5 faults writer_error_rate=1.5\n", 1,
                 "faults writer_error_rate 1.5 is out of range (expected "
                 "0..1)"},
        bad_case{"at 5 faults db_delay_ms=60001\n", 1,
                 "faults db_delay_ms 60001 is out of range (expected "
                 "0..60000)"},
        bad_case{"at 5 faults redis_delay_ms=2.5\n", 1,
                 "faults redis_delay_ms=2.5 is not a whole number of "
                 "milliseconds"},
        bad_case{"at 5 faults writer_error_rate=0.1 writer_error_rate=0.2\n", 1,
                 "faults 'writer_error_rate' given twice"},
        bad_case{"at 5 faults for=0 writer_error_rate=0.1\n", 1,
                 "faults for=0 (expected seconds > 0"},
        bad_case{"at 5 faults for=3601 writer_error_rate=0.1\n", 1,
                 "faults for 3601 is out of range (expected 0..3600)"}));

// Judged once the whole file is read: what they depend on may come later.
INSTANTIATE_TEST_SUITE_P(
    ChaosAfterTheWholeFile, ChaosScenarioError,
    ::testing::Values(
        bad_case{"at 45 kill redis\nduration 40\n", 1,
                 "at 45 is not before the end of the load (duration 40)"},
        bad_case{"duration 40\nat 1 heal pg\nat 40 heal pg\n", 3,
                 "at 40 is not before the end of the load (duration 40)"},
        bad_case{"at 30 heal pg\n", 1,
                 "at 30 is not before the end of the load (duration 30)"},
        bad_case{"at 1 kill postd 3\ninstances 2\n", 1,
                 "kill postd 3 but instances is 2"},
        bad_case{"at 1 restart postd 2\n", 1,
                 "restart postd 2 but instances is 1"},
        bad_case{"at 1 failover redis\n", 1, "failover needs 'sentinel on'"},
        bad_case{"at 1 heal pg\nat 2 failover redis\nsentinel off\n", 2,
                 "failover needs 'sentinel on'"}));

TEST(ChaosScenario, JudgesAgainstDirectivesWrittenAfterTheEvents) {
  auto s = parse("at 39.5 failover redis\nat 2 stop postd 4\n"
                 "duration 40\ninstances 4\nsentinel on\n");
  ASSERT_EQ(s.events.size(), 2U);
  EXPECT_EQ(s.events[0].describe(), "stop postd 4");
  EXPECT_EQ(s.events[1].at_s, 39.5);
}

TEST(ChaosScenario, CutsARunawayTokenShortInTheMessage) {
  try {
    parse("at 5 kill " + std::string(1000, 'x') + "\n");
    FAIL() << "accepted";
  } catch (const scenario_error& e) {
    EXPECT_LT(e.message().size(), 150U) << e.message();
    EXPECT_NE(e.message().find("xxx...'"), std::string::npos) << e.message();
  }
}
