// The chaos kit's record: requests.csv as the load writes it and rows.csv as
// psql's \copy ... WITH CSV writes it, read back field for field, and every
// bad line refused with its line number.

#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "record.hpp"

using namespace postd::chaos;

namespace {

const std::string header =
    "sent_ms,answered_ms,post,number,status,job_id,error\n";

std::vector<attempt> read_a(const std::string& text) {
  std::istringstream in(text);
  return read_attempts(in);
}

std::vector<row> read_r(const std::string& text) {
  std::istringstream in(text);
  return read_rows(in);
}

// The line a record_error names, or 0 when the text was accepted.
template <typename Read> int refused_at(Read read, const std::string& text) {
  try {
    read(text);
  } catch (const record_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(
                  "line " + std::to_string(e.line()) + ": ", 0),
              0U)
        << e.what();
    return e.line();
  }
  return 0;
}

} // namespace

TEST(ChaosRecord, ReadsEveryFieldOfAnAttempt) {
  auto a = read_a(header + "1000.5,1012.25,chaos-1-7,2,202,4411,\n"
                           "1001,-1,chaos-1-8,1,0,,timeout\r\n"
                           "\n");
  ASSERT_EQ(a.size(), 2U);
  EXPECT_EQ(a[0].sent_ms, 1000.5);
  EXPECT_EQ(a[0].answered_ms, 1012.25);
  EXPECT_EQ(a[0].post, "chaos-1-7");
  EXPECT_EQ(a[0].number, 2);
  EXPECT_EQ(a[0].status, 202);
  EXPECT_EQ(a[0].job_id, "4411");
  EXPECT_EQ(a[0].error, "");
  EXPECT_TRUE(a[0].answered());
  EXPECT_EQ(a[0].latency_ms(), 11.75);
  EXPECT_EQ(a[1].status, 0);
  EXPECT_FALSE(a[1].answered());
  EXPECT_EQ(a[1].error, "timeout"); // the \r of a CRLF line is not kept
}

TEST(ChaosRecord, WrittenAttemptsReadBack) {
  attempt a{.sent_ms = 250.5,
            .answered_ms = 262,
            .post = "chaos-x-1",
            .number = 3,
            .status = 503,
            .job_id = "",
            .error = ""};
  attempt b{.sent_ms = 1,
            .answered_ms = -1,
            .post = "chaos-x-2",
            .number = 1,
            .status = 0,
            .job_id = "",
            .error = "reset"};
  std::stringstream out;
  write_header(out);
  write_attempt(out, a);
  write_attempt(out, b);
  auto back = read_attempts(out);
  ASSERT_EQ(back.size(), 2U);
  EXPECT_EQ(back[0].sent_ms, 250.5);
  EXPECT_EQ(back[0].answered_ms, 262);
  EXPECT_EQ(back[0].number, 3);
  EXPECT_EQ(back[0].status, 503);
  EXPECT_EQ(back[1].post, "chaos-x-2");
  EXPECT_EQ(back[1].error, "reset");
}

// Times keep their milliseconds' three decimals however long the run, on a
// stream left at its default six significant digits.
TEST(ChaosRecord, LongRunsKeepTheirTimesPrecise) {
  attempt a{.sent_ms = 3599999.125,
            .answered_ms = 3600000.5,
            .post = "chaos-x-1",
            .number = 1,
            .status = 202,
            .job_id = "7",
            .error = ""};
  std::stringstream out;
  write_header(out);
  write_attempt(out, a);
  EXPECT_NE(out.str().find("3599999.125,3600000.500,"), std::string::npos)
      << out.str();
  auto back = read_attempts(out);
  ASSERT_EQ(back.size(), 1U);
  EXPECT_EQ(back[0].sent_ms, 3599999.125);
  EXPECT_EQ(back[0].answered_ms, 3600000.5);
}

TEST(ChaosRecord, WriteRefusesAFieldThatWouldBreakTheLine) {
  std::ostringstream out;
  attempt a;
  a.post = "a,b";
  EXPECT_THROW(write_attempt(out, a), std::invalid_argument);
  a.post = "ok";
  a.error = "said \"no\"";
  EXPECT_THROW(write_attempt(out, a), std::invalid_argument);
  a.error = "";
  a.job_id = "1\n2";
  EXPECT_THROW(write_attempt(out, a), std::invalid_argument);
}

TEST(ChaosRecord, RefusesBadRequestLinesWithTheirNumber) {
  auto read = [](const std::string& t) { return read_a(t); };
  EXPECT_EQ(refused_at(read, ""), 1); // no header
  EXPECT_EQ(refused_at(read, "sent,answered\n1,2,p,1,202,1,\n"), 1);
  const std::string good = "1,2,p-1,1,202,9,\n";
  EXPECT_EQ(refused_at(read, header + good), 0);
  EXPECT_EQ(refused_at(read, header + good + "1,2,p-2,1,202,9\n"), 3);
  EXPECT_EQ(refused_at(read, header + good + "1,2,p-2,1,202,9,,\n"), 3);
  EXPECT_EQ(refused_at(read, header + good + "\n" + "x,2,p,1,202,9,\n"), 4);
  EXPECT_EQ(refused_at(read, header + "1,2,p,1,2o2,9,\n"), 2);
  EXPECT_EQ(refused_at(read, header + "1,2,p,one,202,9,\n"), 2);
  EXPECT_EQ(refused_at(read, header + "1,2,,1,202,9,\n"), 2); // no post
  EXPECT_EQ(refused_at(read, header + "1,2,\"p,1,202,9,\n"), 2);
}

TEST(ChaosRecord, ReadsPsqlCsvRowsWithQuotedFields) {
  auto r = read_r("chaos-1-7,4411,6f1c0a\n"
                  "\"with, a comma\",12,ab\n"
                  "\"say \"\"hi\"\"\",,cd\r\n"
                  "\n"
                  "\"\",13,ef\n");
  ASSERT_EQ(r.size(), 4U);
  EXPECT_EQ(r[0].content, "chaos-1-7");
  EXPECT_EQ(r[0].job_id, "4411");
  EXPECT_EQ(r[0].post_id, "6f1c0a");
  EXPECT_EQ(r[1].content, "with, a comma");
  EXPECT_EQ(r[1].job_id, "12");
  EXPECT_EQ(r[2].content, "say \"hi\"");
  EXPECT_EQ(r[2].job_id, ""); // a NULL jobId
  EXPECT_EQ(r[2].post_id, "cd");
  EXPECT_EQ(r[3].content, "");
}

TEST(ChaosRecord, RefusesBadRowLinesWithTheirNumber) {
  auto read = [](const std::string& t) { return read_r(t); };
  EXPECT_EQ(refused_at(read, ""), 0); // no rows at all is a fine answer
  EXPECT_EQ(refused_at(read, "a,1,x\nb,2\n"), 2);
  EXPECT_EQ(refused_at(read, "a,1,x\n\nb,2,y,z\n"), 3);
  EXPECT_EQ(refused_at(read, "\"a,1,x\n"), 1);
  EXPECT_EQ(refused_at(read, "\"a,b\",1,x\n\"a\"\",b\",1,x\n"), 0);
}
