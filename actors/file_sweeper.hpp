#pragma once

// Removes the attachments no post holds (persistence::sweep_orphan_files):
// files stored for a create that was then refused (429, 503, a bad form)
// or abandoned. One round every `every`, on its own thread (libpqxx and
// hiredis block); a failed round removes nothing and is tried again at the
// next tick.

#include <chrono>
#include <memory>
#include <string>

#include <caf/all.hpp>

#include "persistence/file_sweep.hpp"
#include "persistence/redis_connection.hpp"

namespace postd::actors {

struct file_sweeper_settings {
  persistence::file_sweep_options options;
  persistence::redis_connection_options redis;
  std::chrono::milliseconds every{std::chrono::minutes{10}};
};

struct file_sweeper_state {
  std::unique_ptr<persistence::redis_connection> redis;
  std::string resume_after; // where the next round starts
  bool failing = false;     // warned once per run of failed rounds
  static inline const char* name = "file-sweeper";
};

caf::behavior file_sweeper(caf::stateful_actor<file_sweeper_state>* self,
                           const file_sweeper_settings& settings);

} // namespace postd::actors
