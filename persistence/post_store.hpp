#pragma once

// The "Post" table operations the actors use, as an interface: the libpqxx
// store (postgres.hpp) implements it through postgres_post_store; actor
// tests use an in-memory fake. Every call throws core::store_error, whose
// connection_lost() tells a retry-later failure from the rows' own fault.
//
// Named post_store_api while the libpqxx class still holds the name
// post_store; once that becomes postgres_store (implementing this directly),
// this can take the name and the adapter can go.

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/post.hpp"
#include "core/store_error.hpp"

namespace postd::persistence {

class post_store_api {
public:
  virtual ~post_store_api() = default;

  // Idempotent on the id (a row whose id exists is left as it is) and on
  // the Idempotency-Key (a row whose key an earlier post of the author took
  // within 24 h is left out, that post standing for it). All stored or
  // stood for when it returns.
  virtual core::insert_outcome
  insert_posts(const std::vector<core::new_post>& rows) = 0;
  // Forgets the Idempotency-Keys queued before `queued_before_ms` (ms since
  // the epoch); returns how many.
  virtual std::size_t forget_keys(std::int64_t queued_before_ms) = 0;
  virtual std::optional<core::post> find_post(const std::string& id) = 0;
  virtual std::optional<core::post>
  find_post_by_job(const std::string& job_id, const std::string& author_id) = 0;
  // Newest first, below `after` (nullopt: from the newest).
  virtual std::vector<core::post>
  posts_by_author(const std::string& author_id, std::size_t limit,
                  const std::optional<core::post>& after) = 0;
  virtual void ping() = 0;
};

// Each call connects anew (throws core::store_error when it cannot): an
// actor calls it when it has no connection, after losing one.
using post_store_factory = std::function<std::unique_ptr<post_store_api>()>;

} // namespace postd::persistence
