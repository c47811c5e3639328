#pragma once

// Prisma-compatible migrations (SPEC §4): migrations/<ts>_<name>/migration.sql,
// recorded in "_prisma_migrations" with checksum = sha256 hex of the file, so
// a database migrated by the old Prisma service is recognised.

#include <filesystem>
#include <string>
#include <vector>

#include "persistence/postgres.hpp"

namespace postd::persistence {

struct migration {
  std::string
      name; // directory name, e.g. 20251103090809_add_post_performance_indexes
  std::string sql;
  std::string checksum; // sha256 hex of sql
};

// The migrations compiled into the binary from migrations/, in name order.
const std::vector<migration>& embedded_migrations();

// Reads <dir>/*/migration.sql, sorted by directory name.
std::vector<migration> load_migrations(const std::filesystem::path& dir);

struct migrate_report {
  std::vector<std::string> applied; // names applied by this run
  std::size_t already_applied = 0;
  // Applied earlier but the file's checksum differs now (Prisma's
  // `migrate deploy` only warns about this; so do we).
  std::vector<std::string> modified;
};

// Applies pending migrations in one transaction holding a transaction-level
// advisory lock, so concurrent runs serialise (works through PgBouncer).
// With options.schema, the schema is created if missing and the migrations
// and their history go there (SET LOCAL search_path), as Prisma does.
// Throws std::runtime_error with a clear message on failure.
migrate_report migrate(const pg_options& options,
                       const std::vector<migration>& migrations);
// No schema, pg_options' connect timeout, no statement timeout.
migrate_report migrate(const std::string& database_url,
                       const std::vector<migration>& migrations);

} // namespace postd::persistence
