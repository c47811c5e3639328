#pragma once

// The chaos kit's verdict: the load's record (every send and its answer)
// against the rows PostgreSQL holds after the drain. postd promises that a
// post answered 202 is written exactly once, with the jobId it answered;
// a post never acknowledged may be written (its answer was lost), but at
// most once. Pure: the tool around it reads the files.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record.hpp"

namespace postd::chaos {

// Bull's lists and sets after the drain: a job still in one was never
// written.
struct queue_left {
  std::int64_t wait = 0;
  std::int64_t active = 0;
  std::int64_t delayed = 0;

  std::int64_t total() const { return wait + active + delayed; }
};

// How many example posts a result keeps per kind: enough to start a search
// in the logs, few enough to read.
inline constexpr std::size_t max_examples = 20;

struct check_result {
  std::int64_t posts = 0;        // distinct posts in the record
  std::int64_t acknowledged = 0; // posts with a 202
  std::int64_t rows = 0;         // rows of the run (rows.csv), foreign ones too
  std::int64_t lost = 0;         // acknowledged, no row
  std::int64_t duplicated = 0;   // more than one row, acknowledged or not
  std::int64_t unacknowledged_written = 0; // no 202, one row (allowed)
  // One row, every send answered, and the row's jobId none of the answers'.
  std::int64_t jobid_mismatch = 0;
  std::int64_t foreign = 0; // rows whose content is no post of the record
  queue_left queue;

  // Up to max_examples each, in the record's order ("post (detail)").
  struct example_lists {
    std::vector<std::string> lost;
    std::vector<std::string> duplicated;
    std::vector<std::string> unacknowledged_written;
    std::vector<std::string> jobid_mismatch;
    std::vector<std::string> foreign;
  } examples;

  std::int64_t left_in_queue() const { return queue.total(); }
  // No acknowledged post was lost or doubled, and nothing else is amiss.
  bool guarantee_held() const {
    return lost == 0 && duplicated == 0 && jobid_mismatch == 0 &&
           left_in_queue() == 0 && foreign == 0;
  }
  // The guarantee held over at least one acknowledged post: a run in which
  // postd acknowledged nothing proves nothing.
  bool passed() const { return acknowledged > 0 && guarantee_held(); }
};

check_result check(const std::vector<attempt>& attempts,
                   const std::vector<row>& rows, queue_left queue);

// "acknowledged A, rows R, lost L, duplicated D, unacknowledged-but-written U"
std::string summary_line(const check_result& r);
// "verdict: PASS" or "verdict: FAIL (lost L, duplicated D, job ids differing
// M, left in queue Q)", with ", foreign X" when there are foreign rows.
std::string verdict_line(const check_result& r);
// The two lines above, then on FAIL the examples of each failing kind (and
// the queue's counts when jobs were left): what postd-chaos-check prints.
std::string to_text(const check_result& r);
// check.json: the counts, "verdict" and "examples" (see chaos-contract).
nlohmann::json to_json(const check_result& r);

} // namespace postd::chaos
