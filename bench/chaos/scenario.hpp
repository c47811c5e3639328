#pragma once

// A chaos scenario: the topology, the load and the faults on a schedule,
// parsed from the kit's text format (bench/scenarios/*.scn: one directive
// a line, '#' comments). Every mistake is found here, with its line number,
// before anything starts.

#include <iosfwd>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace postd::chaos {

class scenario_error : public std::runtime_error {
public:
  scenario_error(int line, const std::string& message)
      : std::runtime_error("line " + std::to_string(line) + ": " + message),
        line_(line), message_(message) {}
  int line() const { return line_; }
  // Without the "line N: " prefix, for tools that print "FILE:N: message".
  const std::string& message() const { return message_; }

private:
  int line_;
  std::string message_;
};

// One `at T ...` directive.
struct fault_event {
  double at_s = 0;    // seconds after the load starts
  std::string action; // kill stop cont restart delay heal partition
                      // faults failover
  std::string target; // postd redis pg pgbouncer; empty for `faults`
  int instance = 0;   // N of `postd N` (1-based); 0 for the others
  int delay_ms = 0;   // `delay redis|pg MS`
  // `faults k=v...` as given (validated names and ranges), `for` included.
  std::map<std::string, std::string> faults;
  int line = 0; // where it was written

  // The directive as one normalised line ("kill postd 1", "delay pg 200",
  // "faults for=5 writer_error_rate=0.2").
  std::string describe() const;
};

struct scenario {
  double duration_s = 30;
  int rate = 1000;              // posts offered per second
  int instances = 1;            // postd processes (nginx in front when > 1)
  bool sentinel = false;        // master + 2 replicas + 3 sentinels
  std::string aof = "everysec"; // always | everysec | off
  // `env NAME=VALUE`: a postd setting for every instance.
  std::map<std::string, std::string> env;
  std::vector<fault_event> events; // in time order (stable for equal times)
};

// Throws scenario_error (with the line) on an unknown directive, a
// malformed line, a value out of range, a time at or past `duration`, a
// `postd N` past `instances`, or `failover` without `sentinel on`. A fault
// left unhealed at the end is fine: the kit heals everything before the
// drain.
scenario parse_scenario(std::istream& in);

// The parsed scenario in the same format, one directive a line, events in
// time order: what `postd-chaos-plan` prints for the runner to read.
std::string normalised(const scenario& s);

} // namespace postd::chaos
