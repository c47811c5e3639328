// The chaos kit's report on synthetic runs: per-second rates, percentiles,
// recovery times (and faults never recovered from), bands from events.

#include <cmath>
#include <sstream>

#include <gtest/gtest.h>

#include "report.hpp"

using namespace postd::chaos;

namespace {

attempt send(double sent_ms, double answered_ms, const std::string& post,
             int status, int number = 1, const std::string& error = "") {
  attempt a;
  a.sent_ms = sent_ms;
  a.answered_ms = answered_ms;
  a.post = post;
  a.number = number;
  a.status = status;
  a.error = error;
  return a;
}

sample at(double t_ms, std::int64_t wait, std::int64_t rows = 0) {
  sample s;
  s.t_ms = t_ms;
  s.wait = wait;
  s.rows = rows;
  return s;
}

fault_event planned(double at_s, const std::string& action,
                    const std::string& target, int instance = 0) {
  fault_event e;
  e.at_s = at_s;
  e.action = action;
  e.target = target;
  e.instance = instance;
  return e;
}

scenario plan_of(double duration_s, std::vector<fault_event> events) {
  scenario s;
  s.duration_s = duration_s;
  s.events = std::move(events);
  return s;
}

std::vector<run_event> events_of(const std::string& csv) {
  std::istringstream in(csv);
  return read_events(in);
}

} // namespace

TEST(ChaosReportFiles, ReadsEventsWithOrWithoutAHeader) {
  auto with = events_of("t_ms,action,target,detail\n"
                        "10012,kill,postd 1,SIGKILL to pid 12\n"
                        "13040,start,postd 1,serving again (start took 0 s)\n");
  ASSERT_EQ(with.size(), 2u);
  EXPECT_EQ(with[0].t_ms, 10012);
  EXPECT_EQ(with[0].name(), "kill postd 1");
  EXPECT_EQ(with[1].detail, "serving again (start took 0 s)");
  auto without = events_of("5000,heal,redis,\n");
  ASSERT_EQ(without.size(), 1u);
  EXPECT_EQ(without[0].target, "redis");
  EXPECT_TRUE(events_of("").empty());
}

TEST(ChaosReportFiles, RefusesAMalformedEventWithItsLine) {
  try {
    events_of("10,kill,postd 1,x\nsoon,stop,redis,x\n");
    FAIL() << "expected a record_error";
  } catch (const record_error& e) {
    EXPECT_EQ(e.line(), 2);
  }
  EXPECT_THROW(events_of("10\n"), record_error);
}

TEST(ChaosReportFiles, ReadsSamplesAndKeepsAFailedProbeUnknown) {
  std::istringstream in("t_ms,wait,active,delayed,failed,rows\n"
                        "0,0,0,0,0,0\n"
                        "500,,,,,120\n");
  auto s = read_samples(in);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[1].wait, -1);
  EXPECT_EQ(s[1].rows, 120);
  std::istringstream bad("t_ms,wait\n0,0\n");
  EXPECT_THROW(read_samples(bad), record_error);
  std::istringstream negative(
      "t_ms,wait,active,delayed,failed,rows\n0,-3,0,0,0,0\n");
  EXPECT_THROW(read_samples(negative), record_error);
}

TEST(ChaosReportPercentiles, AreNearestRank) {
  std::vector<double> v;
  for (int i = 1; i <= 100; ++i)
    v.push_back(i);
  EXPECT_EQ(percentile(v, 50), 50);
  EXPECT_EQ(percentile(v, 90), 90);
  EXPECT_EQ(percentile(v, 99), 99);
  EXPECT_EQ(percentile(v, 100), 100);
  EXPECT_EQ(percentile({7}, 99), 7);
  EXPECT_EQ(percentile({1, 2, 3}, 50), 2);
  EXPECT_TRUE(std::isnan(percentile({}, 50)));
  auto l = latency_of({30, 10, 20});
  EXPECT_EQ(l.count, 3u);
  EXPECT_EQ(l.p50, 20);
  EXPECT_EQ(l.max, 30);
  EXPECT_TRUE(std::isnan(latency_of({}).p99));
}

TEST(ChaosReportTimeline, CountsAnswersInTheSecondTheyCame) {
  std::vector<attempt> a = {
      send(100, 150, "p-0", 202),
      send(200, 1200, "p-1", 202), // due in 0, answered in 1
      send(300, 320, "p-2", 503),
      send(400, -1, "p-3", 0, 1, "timeout"), // no answer: its due second
      send(1500, 1510, "p-2", 202, 2),       // a retry: not offered
      send(1600, 1700, "p-4", 400),
  };
  auto rows = timeline(a, {}, 2.5);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].accepted, 1);
  EXPECT_EQ(rows[0].unavailable, 1);
  EXPECT_EQ(rows[0].other_failures, 1);
  EXPECT_EQ(rows[0].offered, 4);
  EXPECT_EQ(rows[1].accepted, 2);
  EXPECT_EQ(rows[1].other_failures, 1); // the 400
  EXPECT_EQ(rows[1].offered, 1);
  EXPECT_EQ(rows[2].accepted, 0);
  // p99 of the sends due in a second that got an answer, whatever it was.
  EXPECT_EQ(rows[0].p99_ms, 1000);
  EXPECT_EQ(rows[1].p99_ms, 100);
  EXPECT_TRUE(std::isnan(rows[2].p99_ms));
}

TEST(ChaosReportTimeline, TakesQueueDepthAndRowsPerSecondFromSamples) {
  std::vector<sample> s = {at(0, 5, 0), at(500, 9, 100), at(1000, 2, 200),
                           at(1500, 4, 400), at(2000, 0, 600)};
  s.push_back(at(2500, -1, -1)); // a failed probe: every field unknown
  s.back().active = s.back().delayed = -1;
  s[1].active = 3;
  s[3].delayed = 7;
  auto rows = timeline({}, s, 4);
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0].queue_active, 3);
  EXPECT_EQ(rows[1].queue_delayed, 7);
  EXPECT_TRUE(std::isnan(rows[3].queue_active));
  EXPECT_EQ(rows[0].queue_wait, 9); // the highest sampled in the second
  EXPECT_EQ(rows[1].queue_wait, 4);
  EXPECT_EQ(rows[2].queue_wait, 0);
  EXPECT_TRUE(std::isnan(rows[3].queue_wait));
  EXPECT_EQ(rows[0].rows_per_s, 200);
  EXPECT_EQ(rows[1].rows_per_s, 400);
  EXPECT_TRUE(std::isnan(rows[2].rows_per_s)); // past the last known rows
}

// Seconds whose rows probes failed (PostgreSQL stopped) have no rows/s,
// not one interpolated over the outage.
TEST(ChaosReportTimeline, NoRowsPerSecondAcrossFailedProbes) {
  std::vector<sample> s = {at(0, 0, 0), at(500, 0, 100), at(1000, 0, 200)};
  for (int t = 1500; t < 4000; t += 500)
    s.push_back(at(t, 0, -1));
  s.push_back(at(4000, 0, 3000));
  s.push_back(at(4500, 0, 3100));
  s.push_back(at(5000, 0, 3200));
  auto rows = timeline({}, s, 5);
  EXPECT_EQ(rows[0].rows_per_s, 200);
  for (int second = 1; second < 4; ++second)
    EXPECT_TRUE(std::isnan(rows[second].rows_per_s)) << second;
  EXPECT_EQ(rows[4].rows_per_s, 200);
}

TEST(ChaosReportTimeline, WritesNaNForNoValue) {
  std::ostringstream out;
  write_timeline(out, timeline({send(0, 5, "p-0", 202)}, {}, 1));
  EXPECT_EQ(out.str(), "# t_s accepted/s 503/s other_failures/s p99_ms "
                       "queue_wait rows/s offered/s queue_active "
                       "queue_delayed\n"
                       "0 1 0 0 5.00 NaN NaN 1 NaN NaN\n");
}

TEST(ChaosReportRecovery, FirstAckCountsOnlySendsDueAfterTheFault) {
  std::vector<attempt> a = {
      send(9000, 15000, "p-0", 202), // due before: not counted
      send(10100, -1, "p-1", 0, 1, "refused"),
      send(10200, 10210, "p-2", 503),
      send(12000, 13500, "p-3", 202),
      send(12500, 13200, "p-4", 202), // answered first
  };
  auto r = first_ack_after(a, 10000);
  ASSERT_TRUE(r.has_value());
  EXPECT_DOUBLE_EQ(*r, 3.2);
  EXPECT_FALSE(first_ack_after(a, 12600).has_value()); // never
}

TEST(ChaosReportRecovery, QueueBackUnderItsDepthBeforeTheFault) {
  std::vector<sample> s = {at(7000, 50),  at(7500, 3),    at(8500, 20),
                           at(9500, 10),  at(10000, 400), at(13000, 900),
                           at(14000, -1), at(14500, 30),  at(15500, 15)};
  EXPECT_EQ(depth_before(s, 9900), 20); // the highest in the 2 s before
  EXPECT_EQ(depth_before(s, 7600), 50);
  EXPECT_EQ(depth_before(s, 100), 0); // nothing sampled before
  auto back = queue_back_after(s, 13000, 20);
  ASSERT_TRUE(back.has_value());
  EXPECT_DOUBLE_EQ(*back, 2.5);
  EXPECT_FALSE(queue_back_after(s, 13000, 10).has_value()); // never
  EXPECT_DOUBLE_EQ(*queue_back_after(s, 7500, 3), 0);
}

TEST(ChaosReportBands, EndEachFaultWhereTheRunnerSaysItWasOver) {
  fault_event faults = planned(12, "faults", "");
  faults.faults = {{"for", "5"}, {"writer_error_rate", "0.2"}};
  fault_event delay = planned(25, "delay", "redis");
  delay.delay_ms = 200;
  auto plan = plan_of(
      40, {planned(10, "kill", "postd", 1), faults, planned(15, "stop", "pg"),
           planned(20, "cont", "pg"), delay, planned(30, "heal", "redis"),
           planned(32, "partition", "pg"), planned(35, "restart", "redis")});
  auto events =
      events_of("10030,kill,postd 1,SIGKILL to pid 1\n"
                "12010,faults,all,for=5 writer_error_rate=0.2 => postd 1: 200\n"
                "13100,start,postd 1,serving again\n"
                "15020,stop,pg,SIGSTOP\n"
                "20010,cont,pg,SIGCONT\n"
                "25005,delay,redis,redis_delay_ms=200\n"
                "30002,heal,redis,redis_delay_ms=0\n"
                "32000,partition,pg,drop\n"
                "35000,restart,redis,clean stop then start\n"
                "36500,start,redis,serving again\n"
                "40000,heal,all,end of the load\n");
  auto b = build_bands(events, plan);
  ASSERT_EQ(b.size(), 6u);
  EXPECT_EQ(b[0].label, "kill postd 1");
  EXPECT_DOUBLE_EQ(b[0].start_s, 10.03);
  EXPECT_DOUBLE_EQ(b[0].end_s, 13.1);
  EXPECT_EQ(b[0].ended_by, "start postd 1");
  EXPECT_EQ(*b[0].planned_s, 10);
  EXPECT_EQ(b[1].label, "faults for=5 writer_error_rate=0.2");
  EXPECT_DOUBLE_EQ(b[1].end_s, 17.01);
  EXPECT_EQ(b[1].ended_by, "for=5");
  EXPECT_DOUBLE_EQ(b[2].end_s, 20.01);
  EXPECT_EQ(b[2].ended_by, "cont pg");
  EXPECT_EQ(b[3].label, "delay redis 200");
  EXPECT_EQ(b[3].ended_by, "heal redis");
  EXPECT_EQ(b[4].label, "partition pg");
  EXPECT_DOUBLE_EQ(b[4].end_s, 40);
  EXPECT_EQ(b[4].ended_by, "heal all");
  EXPECT_EQ(b[5].kind, "restart");
  EXPECT_DOUBLE_EQ(b[5].end_s, 36.5);
  EXPECT_TRUE(unapplied(events, plan).empty());

  std::ostringstream out;
  write_bands(out, {b[0], b[2]});
  EXPECT_EQ(out.str(), "# start_s end_s label kind\n"
                       "10.030 13.100 \"kill postd 1\" 1\n"
                       "15.020 20.010 \"stop pg\" 2\n");
}

TEST(ChaosReportBands, UnendedFaultsLastToTheEndOfTheLoad) {
  auto plan = plan_of(
      30, {planned(5, "kill", "postd", 2), planned(8, "faults", ""),
           planned(10, "failover", "redis"), planned(12, "stop", "redis")});
  auto events =
      events_of("5000,kill,postd 2,SIGKILL\n"
                "8100,start,postd 2,FAILED to start\n"
                "8000,faults,all,enqueue_error_rate=1 => postd 1: 200\n"
                "10000,failover,redis,OK\n");
  auto b = build_bands(events, plan);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_DOUBLE_EQ(b[0].end_s, 30); // its start failed
  EXPECT_EQ(b[0].ended_by, "end of load");
  EXPECT_DOUBLE_EQ(b[1].start_s, 8); // sorted by time
  EXPECT_DOUBLE_EQ(b[1].end_s, 30);  // faults without `for`
  EXPECT_DOUBLE_EQ(b[2].end_s, 11);  // a failover: a short band
  auto missing = unapplied(events, plan);
  ASSERT_EQ(missing.size(), 1u);
  EXPECT_EQ(missing[0].describe(), "stop redis");
}

TEST(ChaosReportBands, FaultsWithoutForLastUntilTheHealAfterTheLoad) {
  fault_event brief = planned(2, "faults", "");
  brief.faults = {{"for", "2.5"}, {"db_delay_ms", "100"}};
  auto plan =
      plan_of(10, {planned(1, "faults", ""), brief, planned(3, "stop", "pg")});
  auto b = build_bands(events_of("1000,faults,all,enqueue_error_rate=0.5\n"
                                 "2000,faults,all,for=2.5 db_delay_ms=100\n"
                                 "3000,stop,pg,SIGSTOP\n"
                                 "31000,heal,all,end of the load\n"),
                       plan);
  ASSERT_EQ(b.size(), 3u);
  EXPECT_DOUBLE_EQ(b[0].end_s, 31); // cleared by the heal after the load
  EXPECT_EQ(b[0].ended_by, "heal all");
  EXPECT_DOUBLE_EQ(b[1].end_s, 4.5);
  EXPECT_EQ(b[1].ended_by, "for=2.5");
  EXPECT_EQ(b[1].label, "faults db_delay_ms=100 for=2.5");
  EXPECT_DOUBLE_EQ(b[2].end_s, 31); // never continued during the load
}

TEST(ChaosReportPhases, SplitAtEachEventWithTheirLatencies) {
  std::vector<attempt> a = {
      send(1000, 1010, "p-0", 202),
      send(2000, 2030, "p-1", 202),
      send(10500, -1, "p-2", 0, 1, "refused"),
      send(11000, 14000, "p-3", 202),
      send(10900, 12900, "p-2", 202, 2),
      send(14000, 14005, "p-4", 202),
      send(20000, 20010, "p-5", 503),
  };
  auto events = events_of("10000,kill,postd 1,x\n13000,start,postd 1,x\n");
  auto p = phases(a, events, 25);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].label, "before the first fault");
  EXPECT_EQ(p[0].end_s, 10);
  EXPECT_EQ(p[0].acked, 2);
  EXPECT_EQ(p[0].latency.p50, 10);
  EXPECT_EQ(p[0].latency.max, 30);
  EXPECT_EQ(p[1].label, "after kill postd 1 at 10.0 s");
  EXPECT_EQ(p[1].offered, 2);
  EXPECT_EQ(p[1].sends, 3);
  EXPECT_EQ(p[1].acked, 2);
  EXPECT_EQ(p[1].latency.p50, 2000);
  EXPECT_EQ(p[1].latency.p99, 3000);
  EXPECT_EQ(p[2].label, "after start postd 1 at 13.0 s");
  EXPECT_EQ(p[2].end_s, 25);
  EXPECT_EQ(p[2].offered, 2);
  EXPECT_EQ(p[2].acked, 1);
}

TEST(ChaosReportText, HasTheScenarioVerdictFaultsPhasesAndPlot) {
  report_input in;
  in.name = "kill-one";
  in.plan_text = "duration 20\nrate 10\nat 10 kill postd 1\n";
  in.plan = plan_of(20, {planned(10, "kill", "postd", 1)});
  in.check = nlohmann::json::parse(
      R"({"acknowledged":3,"rows":3,"lost":0,"duplicated":0,
          "unacknowledged_written":0,"jobid_mismatch":0,"left_in_queue":0,
          "foreign":0,"verdict":"PASS","examples":{}})");
  in.attempts = {send(1000, 1010, "p-0", 202),
                 send(10500, -1, "p-1", 0, 1, "refused"),
                 send(12000, 14000, "p-1", 202, 2)};
  in.samples = {at(9500, 4), at(13500, 80), at(14000, 12)};
  in.events = events_of("10000,kill,postd 1,x\n13000,start,postd 1,x\n");
  auto md = render_report(in);
  EXPECT_NE(md.find("```\nduration 20\nrate 10\nat 10 kill postd 1\n```"),
            std::string::npos);
  EXPECT_NE(md.find("## Verdict: PASS"), std::string::npos);
  EXPECT_NE(md.find("acknowledged 3, rows 3, lost 0"), std::string::npos);
  EXPECT_NE(md.find("| kill postd 1 | 10.0 | 10.00 | 13.00 | start postd 1 "
                    "| 4.00 | not within the run (to 4) |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| after kill postd 1 at 10.0 s |"), std::string::npos);
  EXPECT_NE(md.find("Without an answer: refused: 1"), std::string::npos);
  EXPECT_NE(md.find("![timeline](timeline.png)"), std::string::npos);
}
