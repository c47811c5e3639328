#include "http/errors.hpp"

#include <nlohmann/json.hpp>

namespace postd::http {

namespace {

api_response make(unsigned status, const nlohmann::ordered_json& body) {
  api_response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

} // namespace

std::string reason_phrase(unsigned status) {
  switch (status) {
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 408:
    return "Request Timeout";
  case 413:
    return "Payload Too Large";
  case 415:
    return "Unsupported Media Type";
  case 416:
    return "Range Not Satisfiable";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  case 500:
    return "Internal Server Error";
  case 501:
    return "Not Implemented";
  case 503:
    return "Service Unavailable";
  default:
    return "Error";
  }
}

api_response error_response(unsigned status, const std::string& message) {
  return make(status, {{"statusCode", status},
                       {"message", message},
                       {"error", reason_phrase(status)}});
}

api_response error_response(unsigned status,
                            const std::vector<std::string>& messages) {
  return make(status, {{"statusCode", status},
                       {"message", messages},
                       {"error", reason_phrase(status)}});
}

api_response unanswered_response(const std::string& message, bool create) {
  nlohmann::ordered_json body{
      {"statusCode", 503}, {"message", message}, {"error", reason_phrase(503)}};
  if (create)
    body["mayHaveBeenQueued"] = true;
  auto r = make(503, body);
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

api_response unconfirmed_response(const std::string& job_id) {
  auto r = make(503, nlohmann::ordered_json{
                         {"statusCode", 503},
                         {"message", "Queued, but not confirmed by the Redis "
                                     "replicas in time: retry with the same "
                                     "Idempotency-Key"},
                         {"error", reason_phrase(503)},
                         {"jobId", job_id},
                         {"mayHaveBeenQueued", true}});
  r.headers.emplace_back("Retry-After", "1");
  return r;
}

api_response bare_error_response(unsigned status, const std::string& message) {
  return make(status, {{"statusCode", status}, {"message", message}});
}

} // namespace postd::http
