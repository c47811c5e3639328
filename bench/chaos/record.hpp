#pragma once

// The record the chaos kit's load keeps (requests.csv: one line per send of
// a post) and the rows it reads back from PostgreSQL (rows.csv, psql's
// \copy ... WITH CSV): the checker's and the report's only inputs.

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <vector>

namespace postd::chaos {

// A line of an input file that is not what it should be.
class record_error : public std::runtime_error {
public:
  record_error(int line, const std::string& message)
      : std::runtime_error("line " + std::to_string(line) + ": " + message),
        line_(line) {}
  int line() const { return line_; }

private:
  int line_;
};

// One send of a post and what came of it. Times are milliseconds since the
// run's t0 (the moment the load and the fault schedule started).
struct attempt {
  // When it was due: the schedule's time for a first send (an open-loop
  // load, so a stalled server shows as latency, not as fewer sends), the
  // retry's time for a later one.
  double sent_ms = 0;
  // When the answer came; negative when none did (see `error`).
  double answered_ms = -1;
  std::string post;   // the post's content, also its Idempotency-Key
  int number = 1;     // 1 for a post's first send, 2 for its first retry...
  int status = 0;     // HTTP status; 0 when no answer came
  std::string job_id; // the answer's jobId, empty when it had none
  std::string error;  // why no answer ("timeout", "reset", "refused"...)

  bool answered() const { return status != 0; }
  double latency_ms() const { return answered_ms - sent_ms; }
};

// A field that must be a finite number; a record_error naming `what`, the
// field and the line otherwise. Shared by every reader of the kit's files.
double field_number(const std::string& field, int line, const char* what);

// requests.csv: a header line, then one line per attempt. `post`, `job_id`
// and `error` must hold no comma, quote or line break (the load's own
// contents and ids never do; write_attempt refuses them).
void write_header(std::ostream& out);
void write_attempt(std::ostream& out, const attempt& a);
std::vector<attempt> read_attempts(std::istream& in);

// A row of "Post" as the checker needs it.
struct row {
  std::string content;
  std::string job_id;
  std::string post_id;
};

// rows.csv: psql's `\copy (SELECT content, "jobId", id FROM "Post" ...) TO
// STDOUT WITH CSV`: no header, fields quoted when they need it.
std::vector<row> read_rows(std::istream& in);

} // namespace postd::chaos
