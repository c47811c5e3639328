#include "persistence/migrations.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <string_view>
#include <utility>

#include <openssl/evp.h>
#include <pqxx/pqxx>

#include "core/ids.hpp"
#include "persistence/pg_session.hpp"
#include "persistence/sql.hpp"

namespace postd::persistence {
namespace detail {
// Defined in the embedded_migration_files.cpp that cmake/EmbedFiles.cmake
// generates from migrations/*/migration.sql: (folder name, file bytes).
std::vector<std::pair<std::string_view, std::string_view>>
embedded_migration_files();
} // namespace detail

namespace {

std::array<unsigned char, 32> sha256(std::string_view bytes) {
  std::array<unsigned char, 32> digest{};
  unsigned int size = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &size, EVP_sha256(),
                 nullptr) != 1 ||
      size != digest.size())
    throw std::runtime_error("OpenSSL could not compute a SHA-256 checksum");
  return digest;
}

// Prisma once wrote each byte without its leading zero (prisma-engines
// #1887); it still accepts such checksums, so do we.
std::string hex(const std::array<unsigned char, 32>& digest, bool padded) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    if (padded || b >= 0x10)
      out += digits[b >> 4];
    out += digits[b & 0x0f];
  }
  return out;
}

std::string replaced(std::string_view s, std::string_view from,
                     std::string_view to) {
  std::string out;
  for (std::size_t i = 0; i < s.size();) {
    if (s.substr(i, from.size()) == from) {
      out += to;
      i += from.size();
    } else {
      out += s[i++];
    }
  }
  return out;
}

// Prisma's script_matches_checksum: the file as is or with its line endings
// flipped (git's autocrlf), in the current or the unpadded hex form.
bool checksum_matches(const migration& m, const std::string& recorded) {
  bool padded = recorded.empty() || recorded.size() == 64;
  const std::array<std::string, 3> scripts{m.sql, replaced(m.sql, "\r\n", "\n"),
                                           replaced(m.sql, "\n", "\r\n")};
  return std::ranges::any_of(scripts, [&](const std::string& script) {
    return hex(sha256(script), padded) == recorded;
  });
}

migration make_migration(std::string name, std::string sql) {
  std::string checksum = hex(sha256(sql), true);
  return migration{std::move(name), std::move(sql), std::move(checksum)};
}

void sort_by_name(std::vector<migration>& all) {
  std::sort(all.begin(), all.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw std::runtime_error("cannot read " + file.string());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

struct history_entry {
  bool applied = false; // finished and not rolled back
  bool failed = false;  // started, never finished, not rolled back
  std::string checksum; // of the applied row
};

std::map<std::string, history_entry> read_history(pqxx::work& tx) {
  std::map<std::string, history_entry> out;
  for (const auto& r : tx.exec(sql::history)) {
    auto& entry = out[r[0].as<std::string>()];
    bool finished = r[2].as<bool>();
    bool rolled_back = r[3].as<bool>();
    if (finished && !rolled_back) {
      entry.applied = true;
      entry.checksum = r[1].as<std::string>();
    } else if (!finished && !rolled_back) {
      entry.failed = true;
    }
  }
  return out;
}

// Prisma's `migrate deploy` stops on a failed migration (P3009): its script
// may have run halfway, which only a person can sort out.
void refuse_failed(const std::map<std::string, history_entry>& history) {
  for (const auto& [name, entry] : history)
    if (entry.failed && !entry.applied)
      throw std::runtime_error(
          "migration " + name +
          " failed earlier (its _prisma_migrations row has no finished_at): "
          "fix the database, then mark it with `prisma migrate resolve "
          "--applied` or `--rolled-back`");
}

void apply(pqxx::work& tx, const migration& m) {
  const std::string id = core::random_uuid(); // as Prisma records them
  try {
    tx.exec_params(sql::start_migration_row, id, m.checksum, m.name);
    tx.exec(m.sql); // simple query protocol: several statements at once
    tx.exec_params(sql::finish_migration_row, id);
  } catch (const pqxx::sql_error& e) {
    throw std::runtime_error(
        "migration " + m.name +
        " failed, nothing was applied: " + trimmed(e.what()));
  }
}

migrate_report run_migrations(pqxx::work& tx,
                              const std::vector<migration>& migrations) {
  tx.exec(sql::create_history);
  const auto history = read_history(tx);
  refuse_failed(history);
  auto pending = migrations;
  sort_by_name(pending);
  migrate_report report;
  for (const auto& m : pending) {
    auto it = history.find(m.name);
    if (it == history.end() || !it->second.applied) {
      apply(tx, m);
      report.applied.push_back(m.name);
      continue;
    }
    ++report.already_applied;
    if (!checksum_matches(m, it->second.checksum))
      report.modified.push_back(m.name);
  }
  return report;
}

// As Prisma does for the URL's schema. search_path already names it: the
// migrations' unqualified names land there once it exists.
void create_schema(pqxx::work& tx, const std::string& schema) {
  if (!tx.exec_params1(sql::schema_exists, schema)[0].as<bool>())
    tx.exec(sql::create_schema + tx.quote_name(schema));
}

} // namespace

const std::vector<migration>& embedded_migrations() {
  static const std::vector<migration> all = [] {
    std::vector<migration> out;
    for (auto [name, sql] : detail::embedded_migration_files())
      out.push_back(make_migration(std::string(name), std::string(sql)));
    sort_by_name(out);
    return out;
  }();
  return all;
}

std::vector<migration> load_migrations(const std::filesystem::path& dir) {
  if (!std::filesystem::is_directory(dir))
    throw std::runtime_error("migrations folder " + dir.string() +
                             " does not exist");
  std::vector<migration> out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (!entry.is_directory() || name.starts_with('.'))
      continue; // e.g. Prisma's migration_lock.toml
    auto file = entry.path() / "migration.sql";
    if (!std::filesystem::is_regular_file(file))
      throw std::runtime_error(file.string() +
                               " is missing: restore it or delete the folder");
    out.push_back(make_migration(std::move(name), read_file(file)));
  }
  sort_by_name(out);
  return out;
}

migrate_report migrate(const pg_options& options,
                       const std::vector<migration>& migrations) {
  try {
    pqxx::connection conn{detail::conninfo(options)};
    // Notices ("relation already exists, skipping") would go to stderr,
    // around the structured log.
    pqxx::quiet_errorhandler quiet{conn};
    pqxx::work tx{conn};
    tx.exec(detail::transaction_settings(conn, options) + sql::migrate_lock);
    if (!options.schema.empty())
      create_schema(tx, options.schema);
    auto report = run_migrations(tx, migrations);
    tx.commit();
    return report;
  } catch (const pqxx::pqxx_exception& e) {
    throw std::runtime_error("migrate: " + trimmed(e.base().what()));
  }
}

migrate_report migrate(const std::string& database_url,
                       const std::vector<migration>& migrations) {
  return migrate(
      pg_options{.url = database_url,
                 .statement_timeout = std::chrono::milliseconds::zero()},
      migrations);
}

} // namespace postd::persistence
