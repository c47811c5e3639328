#pragma once

// A request and response as the API sees them, free of Beast, so the
// routing and validation logic is plain code tested without sockets.

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace postd::http {

struct api_request {
  std::string method; // "GET", "POST", ...
  std::string target; // path and query, e.g. /v1/post?authorId=a
  std::string authorization;
  std::string content_type;
  std::string idempotency_key;
  bool has_idempotency_key = false;
  std::string forwarded_for; // X-Forwarded-For
  // The W3C traceparent: as received (to_api_request: empty when absent or
  // sent twice), then postd's own span of the request (session::dispatch,
  // core::continue_trace), which the answer, the job and the logs carry.
  std::string traceparent;
  std::string prefer; // RFC 7240 Prefer, every field joined by ", "
  std::string peer_ip;
  // Conditional and partial GETs (GET /v1/files/:name): each field's
  // values joined by ", " when sent more than once.
  std::string if_none_match;
  std::string range;
  std::string body;
};

struct api_response {
  unsigned status = 200;
  std::string body; // JSON (or Prometheus text for /metrics)
  std::vector<std::pair<std::string, std::string>> headers;
  std::string content_type = "application/json; charset=utf-8";
};

using respond_fn = std::function<void(api_response)>;

} // namespace postd::http
