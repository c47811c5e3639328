// W3C traceparent: what a receiver must take and refuse (Trace Context,
// section 4.2), and the span postd continues a trace with.

#include <set>
#include <string>

#include <gtest/gtest.h>

#include "core/trace.hpp"

using postd::core::continue_trace;
using postd::core::parse_traceparent;

namespace {

constexpr const char* valid =
    "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

bool well_formed(const std::string& h) {
  auto parsed = parse_traceparent(h);
  return parsed && parsed->header() == h;
}

} // namespace

TEST(Traceparent, ReadsTheSpecsExample) {
  auto t = parse_traceparent(valid);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(t->flags, "01");
  EXPECT_EQ(t->header(), valid);
}

TEST(Traceparent, RefusesWhatTheSpecSaysIsInvalid) {
  for (const char* bad : {
           "",
           "00",
           "garbage",
           // upper-case hex
           "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
           // all-zero trace id, all-zero parent id
           "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
           // version ff
           "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           // version 00 with more after the flags
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
           // short fields, wrong separators, non-hex
           "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
           "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
           "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
           "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
           // a later version whose extra part does not start with '-'
           "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
       })
    EXPECT_FALSE(parse_traceparent(bad)) << bad;
}

TEST(Traceparent, ReadsALaterVersionByItsFirstFourFields) {
  auto t = parse_traceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-"
                             "00f067aa0ba902b7-09-what-the-future");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(t->flags, "09");
}

TEST(ContinueTrace, KeepsTheCallersTraceWithANewSpanOfItsOwn) {
  auto t = continue_trace(valid);
  EXPECT_EQ(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_NE(t.parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(t.flags, "01");
  EXPECT_TRUE(well_formed(t.header()));
}

TEST(ContinueTrace, KeepsOnlyTheSampledFlag) {
  EXPECT_EQ(
      continue_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00")
          .flags,
      "00");
  // A later version's other bits are not version 00's to carry.
  EXPECT_EQ(
      continue_trace("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0b")
          .flags,
      "01");
  EXPECT_EQ(
      continue_trace("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-fe")
          .flags,
      "00");
}

TEST(ContinueTrace, StartsANewTraceWhenAbsentOrMalformed) {
  for (const char* incoming :
       {"", "nonsense",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) {
    auto t = continue_trace(incoming);
    EXPECT_TRUE(well_formed(t.header())) << t.header();
    EXPECT_EQ(t.flags, "01");
    EXPECT_NE(t.trace_id, "00000000000000000000000000000000");
  }
}

TEST(ContinueTrace, NewIdsDoNotRepeat) {
  std::set<std::string> traces, spans;
  for (int i = 0; i < 10000; ++i) {
    auto t = continue_trace("");
    traces.insert(t.trace_id);
    spans.insert(t.parent_id);
  }
  EXPECT_EQ(traces.size(), 10000U);
  EXPECT_EQ(spans.size(), 10000U);
}
