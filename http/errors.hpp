#pragma once

// Nest's error body: {"statusCode":400,"message":[...],"error":"Bad Request"}.
// Every error response is built here, so the shape is the same everywhere.

#include <string>
#include <vector>

#include "http/api_types.hpp"

namespace postd::http {

// The standard reason phrase Nest puts in "error" ("Bad Request", ...).
std::string reason_phrase(unsigned status);

api_response error_response(unsigned status, const std::string& message);
api_response error_response(unsigned status,
                            const std::vector<std::string>& messages);

// Body only: {"statusCode":...,"message":...} with no "error" member, as
// Nest's ThrottlerException and UnauthorizedException send it.
api_response bare_error_response(unsigned status, const std::string& message);

// A request that got no answer in time ("request timed out") or whose answer
// was lost on the way ("request dropped": an actor stopped with it): 503 with
// Retry-After. For a create, "mayHaveBeenQueued": true, since the job may
// have reached Redis before the answer was lost; a retry with the same
// Idempotency-Key then answers its jobId instead of queueing it again.
api_response unanswered_response(const std::string& message, bool create);

// A create queued on the Redis master that fewer than ACK_REPLICAS replicas
// confirmed in time: 503 with Retry-After, its jobId and
// "mayHaveBeenQueued": true (a retry with the same Idempotency-Key answers
// that jobId once it is confirmed, instead of a second post).
api_response unconfirmed_response(const std::string& job_id);

} // namespace postd::http
