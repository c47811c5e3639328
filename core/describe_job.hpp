#pragma once

// GET /v1/post/jobs/:jobId as its author sees it: from the job's Bull hash,
// or, once the hash was trimmed from Redis, from its "Post" row. Pure.

#include <optional>
#include <string>

#include "core/job.hpp"
#include "core/post.hpp"

namespace postd::core {

struct job_lookup {
  enum class result { found, not_found, unavailable };
  result outcome = result::unavailable;
  std::string status; // waiting|active|delayed|completed|failed
  int attempts_made = 0;
  std::string post_id;       // when completed
  std::string failed_reason; // when failed (or retrying)
};

// The post id a finished job returned: `{"postId": ...}` (postd's writers)
// or the created post's `id` (an old Node worker's); empty when neither.
std::string post_id_of_return_value(const std::string& return_value);

// What a job looks like to its author: from its Bull hash, or, once the hash
// was trimmed from Redis, from the "Post" row that carries its jobId. Other
// authors' jobs are not found.
job_lookup describe_job(const std::string& author,
                        const std::optional<job_info>& job,
                        const std::optional<post>& row);

} // namespace postd::core
