#pragma once

#include <chrono>
#include <memory>

#include "actors/connections.hpp"
#include "actors/protocol.hpp"
#include "actors/supervisor.hpp"
#include "core/fault.hpp"

namespace postd::actors {

struct reader_settings : connection_factories {
  // DATABASE_READ_URL's store (a replica), asked first for posts; empty:
  // make_store's. A post it lacks, or a failure, goes to make_store's.
  persistence::post_store_factory make_read_store;
  // The fault API's board (FAULTS=on; none in production): its
  // reader_crash_rate is the chance a query throws a crash-like exception
  // before it is looked up.
  std::shared_ptr<const core::fault_board> faults;
  // Counts the queries answered (its supervisor's, fresh at each start).
  progress_counter progress;
};

struct reader_state : connections {
  std::unique_ptr<persistence::post_store_api> replica; // null: connect anew
  bool replica_failing = false; // warned once per outage
  // After a failure the replica is skipped until then: a replica that does
  // not answer would cost every read its connect timeout.
  std::chrono::steady_clock::time_point replica_retry_at{};
  core::fault_injector faults; // reader_crash_rate's dice
  static inline const char* name = "reader";
};

// Answers the read routes off the I/O threads. Runs detached in production
// (hiredis and libpqxx block); a lost connection is dropped and made again on
// the next query; a query that fails answers `unavailable`.
reader_actor::behavior_type
reader(reader_actor::stateful_pointer<reader_state> self,
       const reader_settings& settings);

} // namespace postd::actors
