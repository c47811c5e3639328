#pragma once

// Where senders find the actors that a supervisor may restart. The root
// supervisor sets an entry when it starts the actor and clears it when the
// actor dies or stops; senders read it for every message. A restarted actor
// is found at once, and while one is restarting its entry is empty, so the
// sender answers 503 itself instead of writing into a dead mailbox.

#include <cstddef>
#include <mutex>
#include <vector>

#include "actors/protocol.hpp"

namespace postd::actors {

template <class Handle> class actor_entry {
public:
  // The current actor; invalid while it is restarting or stopped.
  Handle get() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return handle_;
  }
  void set(Handle h) {
    std::lock_guard<std::mutex> guard{mtx_};
    handle_ = std::move(h);
  }
  void clear() { set(Handle{}); }

private:
  mutable std::mutex mtx_;
  Handle handle_;
};

struct directory {
  explicit directory(std::size_t reader_count) : readers(reader_count) {}

  actor_entry<throttle_actor> throttle;
  actor_entry<enqueue_actor> enqueue;
  std::vector<actor_entry<reader_actor>> readers;
};

} // namespace postd::actors
