#include "core/describe_job.hpp"

#include <nlohmann/json.hpp>

namespace postd::core {

namespace {

std::string author_of(const std::string& data) {
  auto json = nlohmann::json::parse(data, nullptr, false);
  if (!json.is_object() || !json.contains("userId"))
    return {};
  const auto& id = json["userId"];
  return id.is_string() ? id.get<std::string>() : id.dump();
}

// Bull's states as the API names them: a paused queue's job is waiting, and
// a job caught between two lists ("stuck") is about to be waiting again.
std::string api_status(const std::string& bull_state) {
  if (bull_state == "paused" || bull_state == "stuck")
    return "waiting";
  return bull_state;
}

} // namespace

std::string post_id_of_return_value(const std::string& return_value) {
  auto json = nlohmann::json::parse(return_value, nullptr, false);
  if (json.is_object() && json.contains("postId") && json["postId"].is_string())
    return json["postId"].get<std::string>();
  // A Node worker of the old service may have returned the created post.
  if (json.is_object() && json.contains("id") && json["id"].is_string())
    return json["id"].get<std::string>();
  return {};
}

job_lookup describe_job(const std::string& author,
                        const std::optional<job_info>& job,
                        const std::optional<post>& row) {
  job_lookup out;
  out.outcome = job_lookup::result::not_found;
  if (job) {
    if (author_of(job->data) != author)
      return out;
    out.outcome = job_lookup::result::found;
    out.status = api_status(job->state);
    out.attempts_made = job->attempts_made;
    if (out.status == "completed")
      out.post_id = post_id_of_return_value(job->return_value);
    if (out.post_id.empty() && row && row->author_id == author)
      out.post_id = row->id;
    if (!job->failed_reason.empty())
      out.failed_reason = job->failed_reason;
    return out;
  }
  if (row && row->author_id == author) {
    out.outcome = job_lookup::result::found;
    out.status = "completed";
    out.post_id = row->id;
  }
  return out;
}

} // namespace postd::core
