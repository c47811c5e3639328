#pragma once

#include <memory>
#include <optional>
#include <string>

#include "actors/protocol.hpp"
#include "persistence/bull_queue.hpp"
#include "persistence/postgres.hpp"
#include "persistence/redis_client.hpp"

namespace postd::actors {

struct reader_settings {
  persistence::redis_options redis;
  std::string database_url;
  persistence::queue_keys keys;
};

// What a job looks like to its author: from its Bull hash, or, once the hash
// was trimmed from Redis, from the "Post" row that carries its jobId. Other
// authors' jobs are not found. Pure, so it is tested without services.
job_lookup describe_job(const std::string& author,
                        const std::optional<persistence::job_info>& job,
                        const std::optional<persistence::post>& row);

struct reader_state {
  std::optional<persistence::redis_client> redis;
  std::unique_ptr<persistence::post_store> db;
  static inline const char* name = "reader";
};

// Answers the read routes off the I/O threads. Runs detached (hiredis and
// libpqxx block); a lost connection is dropped and made again on the next
// query, which meanwhile answers `unavailable`.
reader_actor::behavior_type
reader(reader_actor::stateful_pointer<reader_state> self,
       reader_settings settings);

} // namespace postd::actors
