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
