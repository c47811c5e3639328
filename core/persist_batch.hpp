#pragma once

// A writer's batch, from taken jobs to what Bull must be told: the rows to
// insert, then per job completed (with its post id) or failed (why). Plain
// logic around a store given as a function, so it is tested without one.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/job.hpp"
#include "core/post.hpp"

namespace postd::core {

// What a batch of taken jobs turned into.
struct batch_result {
  std::vector<completion> completed;
  std::vector<failure> failed;
};

// Turns Bull `data` into a row; nullopt (with `reason`) when malformed.
// The row's id is the job's post id (core::post_id_of_job); its key is the
// data's "idempotencyKey" (enqueue's job_data), queued at the job's
// timestamp.
std::optional<new_post> post_from_job(const active_job& job,
                                      std::string_view queue_base,
                                      std::string& reason);

// Stores rows idempotently on their id and Idempotency-Key
// (post_store_api::insert_posts); throws store_error.
using insert_posts_fn =
    std::function<insert_outcome(const std::vector<new_post>&)>;

// Writes a batch with one insert; a job whose row an earlier post stands for
// (its Idempotency-Key) is completed with that post's id. When the insert
// fails on the data (a store_error
// that is not connection_lost), writes row by row so one bad job fails
// alone. Rethrows a store_error only when the connection is lost: then
// nothing is decided and the jobs stay held.
batch_result persist_batch(const std::vector<active_job>& jobs,
                           std::string_view queue_base,
                           const insert_posts_fn& insert);

} // namespace postd::core
