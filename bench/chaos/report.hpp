#pragma once

// The chaos kit's report: what a person reads after a run. Pure: the
// record, the runner's events and samples in; the numbers, the timeline's
// data and report.md's text out (postd-chaos-report reads and writes the
// files; bench/chaos/timeline.gp draws timeline.dat and bands.dat).

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "record.hpp"
#include "scenario.hpp"

namespace postd::chaos {

// A line of events.csv (`t_ms,action,target,detail`): what the runner did
// and when (measured). Actions: the scenario's own (kill, stop, cont,
// restart, delay, heal, partition, faults with target `all`, failover),
// `start` when a killed or restarted process serves again, `heal all` at
// the end of the load, `error`.
struct run_event {
  double t_ms = 0;
  std::string action;
  std::string target;
  std::string detail;

  std::string name() const { return action + " " + target; }
};

// A line of samples.csv: Bull's list and set sizes and the run's rows,
// every 500 ms.
struct sample {
  double t_ms = 0;
  std::int64_t wait = 0;
  std::int64_t active = 0;
  std::int64_t delayed = 0;
  std::int64_t failed = 0;
  std::int64_t rows = 0;
};

// Both throw record_error (with the line) on a malformed line; a header
// line is optional in events.csv, required in samples.csv.
std::vector<run_event> read_events(std::istream& in);
std::vector<sample> read_samples(std::istream& in);

// A fault as the timeline draws it: from the moment it was applied to the
// moment it was over (the process serving again, `cont`, `heal`, the end
// of `for`), or to the end of the load when nothing ended it sooner.
struct fault_band {
  double start_s = 0;
  double end_s = 0;
  std::string label;    // "kill postd 1"
  std::string kind;     // the action: kill, stop, restart, delay...
  std::string ended_by; // "start postd 1", "heal all", "for=5", "end of load"
  std::optional<double> planned_s; // the scenario's time for it
};

// One band per fault of events.csv, in its order, matched to the plan's
// events (same action and target, in order) for their planned times. A
// failover is a short band (1 s): the runner only starts it.
std::vector<fault_band> build_bands(const std::vector<run_event>& events,
                                    const scenario& plan);

// Planned faults of the scenario that events.csv never shows applied.
std::vector<fault_event> unapplied(const std::vector<run_event>& events,
                                   const scenario& plan);

// Seconds from `t_ms` to the first 202 answering a send due at or after it;
// nullopt when none came.
std::optional<double> first_ack_after(const std::vector<attempt>& attempts,
                                      double t_ms);

// The queue depth (wait) just before a fault: the highest sampled in the
// two seconds before `start_ms` (the last sample before it when none
// falls in them; 0 with no sample before it).
std::int64_t depth_before(const std::vector<sample>& samples, double start_ms);

// Seconds from `end_ms` to the first sample at or after it whose wait is at
// or under `depth`; nullopt when none is within the run.
std::optional<double> queue_back_after(const std::vector<sample>& samples,
                                       double end_ms, std::int64_t depth);

// The nearest-rank percentile (0 < p <= 100) of sorted values; NaN when
// there are none.
double percentile(const std::vector<double>& sorted, double p);

struct latency_stats {
  std::size_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, max = 0; // ms; NaN when count is 0
};
latency_stats latency_of(std::vector<double> latencies_ms);

// A stretch of the run between two of the runner's events: the sends due
// in [start_s, end_s).
struct phase {
  double start_s = 0;
  double end_s = 0;
  std::string label; // "before the first fault", "after kill postd 1 at 10.0 s"
  std::int64_t offered = 0; // first sends due in it
  std::int64_t sends = 0;   // every send due in it, retries included
  std::int64_t acked = 0;   // its sends answered 202
  latency_stats latency;    // of those 202s
};

// Phases split at each event's time, from 0 to `end_s`; empty ones left out.
std::vector<phase> phases(const std::vector<attempt>& attempts,
                          const std::vector<run_event>& events, double end_s);

// One second of the timeline. Answers count in the second they came, sends
// without an answer in the second they were due.
struct second_stats {
  int t_s = 0;
  std::int64_t accepted = 0;       // 202s
  std::int64_t unavailable = 0;    // 503s
  std::int64_t other_failures = 0; // other statuses, and no answer
  double p99_ms = 0; // of sends due in it that got an answer; NaN: none
  // The highest sampled wait, active and delayed in it; NaN: no sample.
  double queue_wait = 0;
  double queue_active = 0;
  double queue_delayed = 0;
  double rows_per_s = 0;    // from the samples' rows; NaN outside them
  std::int64_t offered = 0; // first sends due in it
};

// Seconds 0 .. ceil(end_s) - 1.
std::vector<second_stats> timeline(const std::vector<attempt>& attempts,
                                   const std::vector<sample>& samples,
                                   double end_s);

// The last moment the run's files know of, in seconds: the last sample,
// answer or due send, and the end of the load.
double run_end_s(const std::vector<attempt>& attempts,
                 const std::vector<sample>& samples, const scenario& plan);

// timeline.dat and bands.dat as timeline.gp reads them ('#' header lines,
// NaN for no value, labels quoted).
void write_timeline(std::ostream& out, const std::vector<second_stats>& rows);
void write_bands(std::ostream& out, const std::vector<fault_band>& bands);

struct report_input {
  std::string name;      // the scenario's name
  std::string plan_text; // plan.txt as the runner wrote it
  scenario plan;
  nlohmann::json check; // check.json
  std::vector<attempt> attempts;
  std::vector<sample> samples;
  std::vector<run_event> events;
};

// report.md.
std::string render_report(const report_input& in);

} // namespace postd::chaos
