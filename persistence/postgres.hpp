#pragma once

// The "Post" table (SPEC §4). Every call runs in its own transaction with
// unnamed statements only, so it works through PgBouncer in transaction mode;
// the transaction opens with the options' statement timeout and schema.
// libpqxx exceptions never leave this adapter: they become postgres_error.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/post.hpp"
#include "core/store_error.hpp"

namespace postd::persistence {

using core::insert_outcome;
using core::new_post;
using core::post;

// libpqxx's errors as they leave this adapter (see core::store_error).
class postgres_error : public core::store_error {
public:
  using core::store_error::store_error;
};

// How postd reaches PostgreSQL; post_store and migrate take it.
struct pg_options {
  std::string url{}; // libpq URL or keyword/value string
  // Prisma's ?schema= (app::config::database_schema): each transaction opens
  // with SET LOCAL search_path TO it, as PgBouncer's transaction mode keeps no
  // session settings. Empty: the server's own search_path.
  std::string schema{};
  // libpq's connect_timeout, in whole seconds rounded up, at least 1. libpq 15
  // (Debian 12) waits 2 s when told 1 and counts with a whole-second clock, so
  // the wait is up to a second off; per host address tried. Zero: none.
  // Overrides a connect_timeout in url.
  std::chrono::milliseconds connect_timeout{3000};
  // SET LOCAL statement_timeout at the start of each transaction; a statement
  // cut by it is a retryable postgres_error. Zero: the server's own setting.
  // A server that does not answer at all (hung, unreachable) is cut off by
  // the client too: a transaction still waiting statement_timeout +
  // client_slack after it began has its connection shut down (a retryable
  // postgres_error; the next call reconnects).
  std::chrono::milliseconds statement_timeout{5000};
};

// How much longer than statement_timeout a transaction may take before the
// client gives up on the server (its own statements, the commit, the
// network).
inline constexpr std::chrono::milliseconds client_slack{1000};

class post_store {
public:
  // Connects; throws postgres_error.
  explicit post_store(pg_options options);
  // The defaults of pg_options, no schema.
  explicit post_store(const std::string& database_url);
  ~post_store();
  post_store(const post_store&) = delete;
  post_store& operator=(const post_store&) = delete;

  // Inserts all rows in one transaction (one statement, two when a key was
  // taken before), idempotent on the primary key: a row whose id exists is
  // left as it is (ON CONFLICT (id) DO NOTHING), so a job written twice is
  // one row; and on the Idempotency-Key: a row whose key an earlier post of
  // the author took less than 24 h before it was queued is left out, that
  // post standing for it (sql::insert_posts). When this returns, every row
  // is stored or stood for.
  insert_outcome insert_posts(const std::vector<new_post>& rows);

  // Deletes the Idempotency-Keys queued before `queued_before_ms` (ms since
  // the epoch); returns how many.
  std::size_t forget_keys(std::int64_t queued_before_ms);

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

  // Of `urls`, those that some row's images holds (the attachment sweep):
  // one read transaction, one statement per `batch` URLs (GIN index).
  std::unordered_set<std::string>
  referenced_images(const std::vector<std::string>& urls, std::size_t batch);

  void ping(); // SELECT 1

private:
  // Wraps the pqxx::connection, which libpqxx 6 declares as an alias that
  // cannot be forward-declared here.
  struct connection;
  // f(tx) in a transaction of type Tx opened with the options.
  template <class Tx, class F> auto run(F&& f);

  pg_options options_;
  std::unique_ptr<connection> conn_;
};

} // namespace postd::persistence
