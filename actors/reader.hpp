#pragma once

#include "actors/connections.hpp"
#include "actors/protocol.hpp"

namespace postd::actors {

using reader_settings = connection_factories;

struct reader_state : connections {
  static inline const char* name = "reader";
};

// Answers the read routes off the I/O threads. Runs detached in production
// (hiredis and libpqxx block); a lost connection is dropped and made again on
// the next query; a query that fails answers `unavailable`.
reader_actor::behavior_type
reader(reader_actor::stateful_pointer<reader_state> self,
       const reader_settings& settings);

} // namespace postd::actors
