#pragma once

// The "Post" table (SPEC §4). Every call runs in its own transaction with
// unnamed statements only, so it works through PgBouncer in transaction mode.
// libpqxx exceptions never leave this adapter: they become postgres_error.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/post.hpp"
#include "core/store_error.hpp"

namespace postd::persistence {

using core::new_post;
using core::post;

// libpqxx's errors as they leave this adapter (see core::store_error).
class postgres_error : public core::store_error {
public:
  using core::store_error::store_error;
};

class post_store {
public:
  // Connects; throws postgres_error.
  explicit post_store(const std::string& database_url);
  ~post_store();
  post_store(const post_store&) = delete;
  post_store& operator=(const post_store&) = delete;

  // Inserts all rows with one statement in one transaction, idempotent on
  // the primary key: a row whose id exists is left as it is (ON CONFLICT
  // (id) DO NOTHING), so a job written twice is one row. When this returns,
  // every row is stored. Returns how many were new.
  std::size_t insert_posts(const std::vector<new_post>& rows);

  std::optional<post> find_post(const std::string& id);
  // The author's newest row carrying this Bull job id (job ids repeat after
  // Redis loses its state; only the newest can be the job Redis knew).
  std::optional<post> find_post_by_job(const std::string& job_id,
                                       const std::string& author_id);

  // Newest first, keyset-paginated on ("createdAt", id): pass the last
  // item of the previous page as `after` (nullopt for the first page).
  std::vector<post> posts_by_author(const std::string& author_id,
                                    std::size_t limit,
                                    const std::optional<post>& after);

  void ping(); // SELECT 1

private:
  // Wraps the pqxx::connection, which libpqxx 6 declares as an alias that
  // cannot be forward-declared here.
  struct connection;
  template <class F> auto run(F&& f);

  std::string url_;
  std::unique_ptr<connection> conn_;
};

} // namespace postd::persistence
