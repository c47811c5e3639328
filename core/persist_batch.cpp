#include "core/persist_batch.hpp"

#include <unordered_map>

#include <nlohmann/json.hpp>

#include "core/ids.hpp"
#include "core/store_error.hpp"

namespace postd::core {

namespace {

// The traceparent postd's enqueue put in a job's data; empty when none.
std::string traceparent_of(const nlohmann::json& data) {
  auto it = data.find("traceparent");
  return it != data.end() && it->is_string() ? it->get<std::string>()
                                             : std::string{};
}

std::string traceparent_of(const active_job& job) {
  auto data = nlohmann::json::parse(job.data, nullptr, false);
  return data.is_object() ? traceparent_of(data) : std::string{};
}

} // namespace

std::optional<new_post> post_from_job(const active_job& job,
                                      std::string_view queue_base,
                                      std::string& reason) {
  auto data = nlohmann::json::parse(job.data, nullptr, false);
  if (!data.is_object()) {
    reason = "job data is not a JSON object";
    return std::nullopt;
  }
  const auto* content = data.contains("postData") &&
                                data["postData"].is_object() &&
                                data["postData"].contains("content")
                            ? &data["postData"]["content"]
                            : nullptr;
  if (content == nullptr || !content->is_string()) {
    reason = "job data has no postData.content string";
    return std::nullopt;
  }
  if (!data.contains("userId") ||
      !(data["userId"].is_string() || data["userId"].is_number())) {
    reason = "job data has no userId";
    return std::nullopt;
  }
  new_post row;
  row.job_id = job.id;
  row.content = content->get<std::string>();
  row.author_id = data["userId"].is_string() ? data["userId"].get<std::string>()
                                             : data["userId"].dump();
  row.id = post_id_of_job(data, queue_base, job.id, job.timestamp_ms);
  if (data.contains("fileUrls") && data["fileUrls"].is_array())
    for (const auto& url : data["fileUrls"])
      if (url.is_string())
        row.images.push_back(url.get<std::string>());
  if (auto key = data.find("idempotencyKey");
      key != data.end() && key->is_string())
    row.idempotency_key = key->get<std::string>();
  row.queued_at_ms = job.timestamp_ms;
  row.traceparent = traceparent_of(data);
  return row;
}

batch_result persist_batch(const std::vector<active_job>& jobs,
                           std::string_view queue_base,
                           const insert_posts_fn& insert) {
  batch_result out;
  std::vector<new_post> rows;
  for (const auto& job : jobs) {
    std::string reason;
    if (auto row = post_from_job(job, queue_base, reason))
      rows.push_back(std::move(*row));
    else
      out.failed.push_back({job.id, reason, traceparent_of(job)});
  }
  std::unordered_map<std::string_view, const std::string*> opts;
  for (const auto& job : jobs)
    opts.emplace(job.id, &job.opts);
  auto complete = [&](const new_post& row, const insert_outcome& done) {
    auto earlier = done.earlier.find(row.id);
    const auto& post_id =
        earlier == done.earlier.end() ? row.id : earlier->second;
    out.completed.push_back(
        {row.job_id, nlohmann::json{{"postId", post_id}}.dump(),
         *opts.at(row.job_id), row.traceparent, row.id, post_id});
  };
  try {
    auto done = insert(rows);
    for (const auto& row : rows)
      complete(row, done);
    return out;
  } catch (const store_error& e) {
    if (e.connection_lost())
      throw;
  }
  for (const auto& row : rows) {
    try {
      complete(row, insert({row}));
    } catch (const store_error& e) {
      if (e.connection_lost())
        throw;
      out.failed.push_back({row.job_id, e.what(), row.traceparent});
    }
  }
  return out;
}

} // namespace postd::core
