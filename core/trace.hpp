#pragma once

// W3C Trace Context (https://www.w3.org/TR/trace-context/): the
// `traceparent` postd accepts on every request, answers with, carries in
// the job's data and puts in the log lines about the request and its job,
// so one post can be followed from its HTTP request to its row.

#include <optional>
#include <string>
#include <string_view>

namespace postd::core {

// A traceparent's parts, lower-case hex: version "00", 32-digit trace id,
// 16-digit parent (span) id, 2-digit flags.
struct trace_context {
  std::string trace_id;
  std::string parent_id;
  std::string flags;

  // "00-<trace id>-<parent id>-<flags>".
  std::string header() const;
};

// Parses a traceparent header as the spec's section 4 says a receiver must:
// version "ff" and an all-zero trace or parent id are invalid, upper-case
// hex is invalid, version "00" is exactly 55 characters, and a later version
// is read by its first four fields (more may follow after a '-'). nullopt
// when invalid.
std::optional<trace_context> parse_traceparent(std::string_view header);

// postd's own span of a request: the caller's trace id and flags with a new
// parent id (the span postd's work belongs to), or, when `incoming` is absent
// or invalid, a new trace (flags "01": postd records it in its logs).
trace_context continue_trace(std::string_view incoming);

} // namespace postd::core
