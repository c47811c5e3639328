#pragma once

// What the actors that use both stores (monitor, reader, writer) are given
// and hold. They run detached in production: hiredis and libpqxx block.

#include <memory>

#include "persistence/job_queue.hpp"
#include "persistence/post_store.hpp"

namespace postd::actors {

struct connection_factories {
  // Called at each start: a restarted actor gets a fresh Redis connection,
  // which then reconnects on its own.
  persistence::job_queue_factory make_queue;
  // Called on first use and again after a lost database connection.
  persistence::post_store_factory make_store;
};

struct connections {
  std::unique_ptr<persistence::job_queue> queue;
  std::unique_ptr<persistence::post_store_api> db; // null: connect anew

  // The store, connected first when there is none.
  persistence::post_store_api& store(const connection_factories& f) {
    if (!db)
      db = f.make_store();
    return *db;
  }
};

} // namespace postd::actors
