#pragma once

// The fault API's hold on the storage calls (FAULTS=on): decorators of the
// job queue and the post store that wait the board's delay before every
// call and fail the calls the board's error chances pick, the way a slow or
// failing Redis or PostgreSQL would. Without FAULTS the factories are not
// wrapped: production pays nothing.

#include <memory>

#include "core/fault.hpp"
#include "persistence/job_queue.hpp"
#include "persistence/post_store.hpp"

namespace postd::persistence {

// Every Redis call waits redis_delay_ms first; add_jobs fails with a
// redis_error with enqueue_error_rate's chance, before anything is added.
job_queue_factory with_faults(job_queue_factory make,
                              std::shared_ptr<const core::fault_board> board);

// Every PostgreSQL call waits db_delay_ms first; insert_posts fails with
// writer_error_rate's chance, before anything is written, as a database
// that cannot serve now does (a store_error that is not the rows' doing:
// the writer holds its jobs, reconnects and retries with backoff).
post_store_factory with_faults(post_store_factory make,
                               std::shared_ptr<const core::fault_board> board);

} // namespace postd::persistence
