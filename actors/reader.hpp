#pragma once

#include <memory>

#include "actors/protocol.hpp"
#include "persistence/job_queue.hpp"
#include "persistence/post_store.hpp"

namespace postd::actors {

struct reader_settings {
  persistence::job_queue_factory make_queue;  // called once, at start
  persistence::post_store_factory make_store; // after a lost connection
};

struct reader_state {
  std::unique_ptr<persistence::job_queue> queue;
  std::unique_ptr<persistence::post_store_api> db; // null: connect anew
  static inline const char* name = "reader";
};

// Answers the read routes off the I/O threads. Runs detached in production
// (hiredis and libpqxx block); a lost connection is dropped and made again on
// the next query; a query that fails answers `unavailable`.
reader_actor::behavior_type
reader(reader_actor::stateful_pointer<reader_state> self,
       reader_settings settings);

} // namespace postd::actors
