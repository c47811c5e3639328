#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <pqxx/pqxx>

#include "persistence/migrations.hpp"
#include "support/test_env.hpp"

namespace {

namespace fs = std::filesystem;
using postd::persistence::embedded_migrations;
using postd::persistence::load_migrations;
using postd::persistence::migrate;
using postd::persistence::migration;
using postd::persistence::pg_options;
using postd::testing::scratch_database;

const char* const init_name = "20251101120000_init";
const char* const indexes_name = "20251103090809_add_post_performance_indexes";
const char* const job_id_name = "20251126120000_add_post_job_id";
const char* const job_id_not_unique_name =
    "20261128090000_post_job_id_not_unique";
const char* const idempotency_key_name = "20261129090000_post_idempotency_key";
const char* const images_index_name = "20261129120000_post_images_gin_index";
const std::vector<std::string> all_names{init_name,
                                         indexes_name,
                                         job_id_name,
                                         job_id_not_unique_name,
                                         idempotency_key_name,
                                         images_index_name};
// The history of a database fully migrated: each migration applied once.
const std::map<std::string, int> each_once{{init_name, 1},
                                           {indexes_name, 1},
                                           {job_id_name, 1},
                                           {job_id_not_unique_name, 1},
                                           {idempotency_key_name, 1},
                                           {images_index_name, 1}};

// ctest sets POSTD_SOURCE_DIR; a binary run by hand finds the tree from here.
fs::path source_dir() {
  if (const char* dir = std::getenv("POSTD_SOURCE_DIR"))
    return dir;
  return fs::path(__FILE__).parent_path() / ".." / ".." / "..";
}

// PostgreSQL's sha256(), an implementation independent of the one under test.
std::string pg_sha256(const std::string& bytes) {
  pqxx::connection conn{postd::testing::admin_url()};
  pqxx::nontransaction tx{conn};
  return tx
      .exec_params1("SELECT encode(sha256($1), 'hex')",
                    pqxx::binarystring(bytes))[0]
      .as<std::string>();
}

migration make(const std::string& name, const std::string& sql) {
  return migration{name, sql, pg_sha256(sql)};
}

std::vector<std::string> names(const std::vector<migration>& all) {
  std::vector<std::string> out;
  for (const auto& m : all)
    out.push_back(m.name);
  return out;
}

const migration& embedded(const std::string& name) {
  for (const auto& m : embedded_migrations())
    if (m.name == name)
      return m;
  throw std::runtime_error("no embedded migration " + name);
}

// migration_name -> how many applied rows record it.
std::map<std::string, int> recorded(const std::string& url) {
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  std::map<std::string, int> out;
  for (const auto& r :
       tx.exec("SELECT migration_name, count(*) FROM _prisma_migrations "
               "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL "
               "GROUP BY migration_name"))
    out[r[0].as<std::string>()] = r[1].as<int>();
  return out;
}

void exec(const std::string& url, const std::string& sql) {
  pqxx::connection conn{url};
  pqxx::work tx{conn};
  tx.exec(sql);
  tx.commit();
}

bool table_exists(const std::string& url, const std::string& table) {
  pqxx::connection conn{url};
  pqxx::nontransaction tx{conn};
  return !tx.exec_params1("SELECT to_regclass($1)", table)[0].is_null();
}

// Prisma's DDL for the history table, verbatim (no IF NOT EXISTS).
const char* const prisma_history_ddl = R"sql(
CREATE TABLE _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
);)sql";

// Records `name` as Prisma would after applying it, with `checksum`.
void record_as_prisma(pqxx::work& tx, const std::string& name,
                      const std::string& checksum, bool finished = true) {
  tx.exec_params(
      "INSERT INTO _prisma_migrations (id, checksum, finished_at, "
      "migration_name, started_at, applied_steps_count) VALUES "
      "(gen_random_uuid()::text, $1, CASE WHEN $3 THEN now() END, $2, now(), "
      "CASE WHEN $3 THEN 1 ELSE 0 END)",
      checksum, name, finished);
}

// A database the old NestJS service migrated: the first two migrations
// applied and recorded by Prisma.
void migrate_as_old_service(const std::string& url) {
  pqxx::connection conn{url};
  pqxx::work tx{conn};
  tx.exec(prisma_history_ddl);
  for (const auto* name : {init_name, indexes_name}) {
    tx.exec(embedded(name).sql);
    record_as_prisma(tx, name, embedded(name).checksum);
  }
  tx.commit();
}

TEST(Migrations, EmbeddedOnesAreTheFilesByteForByte) {
  auto on_disk = load_migrations(source_dir() / "migrations");
  const auto& built_in = embedded_migrations();
  ASSERT_EQ(names(built_in), all_names);
  ASSERT_EQ(on_disk.size(), built_in.size());
  for (std::size_t i = 0; i < on_disk.size(); ++i) {
    SCOPED_TRACE(on_disk[i].name);
    EXPECT_EQ(on_disk[i].name, built_in[i].name);
    EXPECT_EQ(on_disk[i].sql, built_in[i].sql);
    EXPECT_EQ(on_disk[i].checksum, built_in[i].checksum);
    EXPECT_EQ(built_in[i].checksum, pg_sha256(built_in[i].sql));
  }
}

TEST(Migrations, LoadSortsByFolderAndSkipsFiles) {
  auto dir = fs::temp_directory_path() / postd::testing::unique_name("mig");
  for (const auto* name : {"20250102000000_b", "20250101000000_a"}) {
    fs::create_directories(dir / name);
    std::ofstream(dir / name / "migration.sql", std::ios::binary)
        << "SELECT 1;\r\n-- " << name << '\n';
  }
  std::ofstream(dir / "migration_lock.toml") << "provider = \"postgresql\"\n";
  auto loaded = load_migrations(dir);
  EXPECT_EQ(names(loaded),
            (std::vector<std::string>{"20250101000000_a", "20250102000000_b"}));
  EXPECT_EQ(loaded[0].sql, "SELECT 1;\r\n-- 20250101000000_a\n");
  EXPECT_EQ(loaded[0].checksum, pg_sha256(loaded[0].sql));

  fs::create_directories(dir / "20250103000000_c"); // no migration.sql
  EXPECT_THROW(load_migrations(dir), std::runtime_error);
  fs::remove_all(dir);
  EXPECT_THROW(load_migrations(dir), std::runtime_error);
}

TEST(Migrations, AppliesAllOnAnEmptyDatabaseThenNothing) {
  scratch_database db;
  auto first = migrate(db.direct_url(), embedded_migrations());
  EXPECT_EQ(first.applied, all_names);
  EXPECT_EQ(first.already_applied, 0u);
  EXPECT_TRUE(first.modified.empty());

  auto second = migrate(db.direct_url(), embedded_migrations());
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.already_applied, all_names.size());
  EXPECT_TRUE(second.modified.empty());
  EXPECT_EQ(recorded(db.direct_url()), each_once);
}

TEST(Migrations, RecordsRowsAsPrismaDoes) {
  scratch_database db;
  migrate(db.direct_url(), embedded_migrations());
  pqxx::connection conn{db.direct_url()};
  pqxx::nontransaction tx{conn};
  auto rows = tx.exec(
      "SELECT id, checksum, migration_name, logs IS NULL, "
      "rolled_back_at IS NULL, started_at <= finished_at, applied_steps_count "
      "FROM _prisma_migrations ORDER BY migration_name");
  ASSERT_EQ(rows.size(), all_names.size());
  std::set<std::string> ids;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& m = embedded_migrations()[i];
    auto id = rows[i][0].as<std::string>();
    ids.insert(id);
    EXPECT_EQ(id.size(), 36u);
    EXPECT_EQ(id[14], '4') << id; // UUID version 4
    EXPECT_EQ(rows[i][1].as<std::string>(), m.checksum);
    EXPECT_EQ(rows[i][2].as<std::string>(), m.name);
    EXPECT_TRUE(rows[i][3].as<bool>());
    EXPECT_TRUE(rows[i][4].as<bool>());
    EXPECT_TRUE(rows[i][5].as<bool>());
    EXPECT_EQ(rows[i][6].as<int>(), 1);
  }
  EXPECT_EQ(ids.size(), all_names.size());
}

TEST(Migrations, WorksThroughPgBouncer) {
  scratch_database db;
  auto first = migrate(db.pgbouncer_url(), embedded_migrations());
  EXPECT_EQ(first.applied.size(), all_names.size());
  auto second = migrate(db.pgbouncer_url(), embedded_migrations());
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.already_applied, all_names.size());
  EXPECT_TRUE(table_exists(db.direct_url(), "\"Post\""));
}

TEST(Migrations, ConcurrentRunsSerialise) {
  scratch_database db;
  constexpr int runs = 6;
  std::vector<postd::persistence::migrate_report> reports(runs);
  std::vector<std::string> errors(runs);
  std::vector<std::thread> threads;
  for (int i = 0; i < runs; ++i)
    threads.emplace_back([&, i] {
      try {
        // Half straight to PostgreSQL, half through PgBouncer: the lock
        // must hold across both paths.
        auto url = i % 2 == 0 ? db.direct_url() : db.pgbouncer_url();
        reports[i] = migrate(url, embedded_migrations());
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads)
    t.join();
  std::size_t applied = 0;
  for (int i = 0; i < runs; ++i) {
    EXPECT_EQ(errors[i], "") << "run " << i;
    EXPECT_EQ(reports[i].applied.size() + reports[i].already_applied,
              all_names.size());
    applied += reports[i].applied.size();
  }
  EXPECT_EQ(applied, all_names.size());
  EXPECT_EQ(recorded(db.direct_url()), each_once);
}

TEST(Migrations, DatabaseOfTheOldServiceGetsOnlyTheNewMigration) {
  scratch_database db;
  migrate_as_old_service(db.direct_url());
  exec(db.direct_url(),
       R"sql(INSERT INTO "Post" (id, content, "authorId", "updatedAt")
             VALUES ('old-1', 'from nest', 'u1', now()))sql");

  auto report = migrate(db.pgbouncer_url(), embedded_migrations());
  EXPECT_EQ(report.applied, (std::vector<std::string>{
                                job_id_name, job_id_not_unique_name,
                                idempotency_key_name, images_index_name}));
  EXPECT_EQ(report.already_applied, 2u);
  EXPECT_TRUE(report.modified.empty());
  EXPECT_EQ(recorded(db.direct_url()), each_once);

  pqxx::connection conn{db.direct_url()};
  pqxx::nontransaction tx{conn};
  auto row = tx.exec1(R"sql(SELECT content, "jobId" IS NULL FROM "Post")sql");
  EXPECT_EQ(row[0].as<std::string>(), "from nest");
  EXPECT_TRUE(row[1].as<bool>());
}

// The old service's DATABASE_URL said ?schema=tenant1: Prisma kept its
// tables and history there. Through PgBouncer, which refuses the startup
// parameter Prisma used, the schema is still the one migrated.
TEST(Migrations, DatabaseOfTheOldServiceInItsPrismaSchema) {
  scratch_database db;
  exec(db.direct_url(), "CREATE SCHEMA tenant1");
  const auto old_service = db.direct_url() + "?options=-csearch_path%3Dtenant1";
  migrate_as_old_service(old_service);

  auto report =
      migrate(pg_options{.url = db.pgbouncer_url(), .schema = "tenant1"},
              embedded_migrations());
  EXPECT_EQ(report.applied, (std::vector<std::string>{
                                job_id_name, job_id_not_unique_name,
                                idempotency_key_name, images_index_name}));
  EXPECT_EQ(report.already_applied, 2u);
  EXPECT_EQ(recorded(old_service), each_once);
  EXPECT_TRUE(table_exists(db.direct_url(), "tenant1.\"Post\""));
  EXPECT_FALSE(table_exists(db.direct_url(), "public.\"Post\""));
  EXPECT_FALSE(table_exists(db.direct_url(), "public._prisma_migrations"));
}

// A new tenant's schema is created, as Prisma does, and nothing goes to
// public; without a schema nothing changes.
TEST(Migrations, ASchemaIsCreatedAndMigratedAlone) {
  scratch_database db;
  const pg_options tenant{.url = db.pgbouncer_url(), .schema = "tenant2"};
  EXPECT_EQ(migrate(tenant, embedded_migrations()).applied.size(),
            all_names.size());
  EXPECT_TRUE(table_exists(db.direct_url(), "tenant2._prisma_migrations"));
  EXPECT_FALSE(table_exists(db.direct_url(), "public._prisma_migrations"));
  EXPECT_EQ(migrate(db.pgbouncer_url(), embedded_migrations()).applied.size(),
            all_names.size()); // public had none yet
  EXPECT_EQ(migrate(tenant, embedded_migrations()).already_applied,
            all_names.size());
  EXPECT_TRUE(table_exists(db.direct_url(), "public.\"Post\""));
}

TEST(Migrations, ModifiedChecksumIsReportedNotReapplied) {
  scratch_database db;
  migrate(db.direct_url(), embedded_migrations());
  exec(db.direct_url(), "UPDATE _prisma_migrations SET checksum = repeat('0', "
                        "64) WHERE migration_name = '" +
                            std::string(indexes_name) + "'");
  auto report = migrate(db.direct_url(), embedded_migrations());
  EXPECT_TRUE(report.applied.empty());
  EXPECT_EQ(report.already_applied, all_names.size());
  EXPECT_EQ(report.modified, (std::vector<std::string>{indexes_name}));
  EXPECT_EQ(recorded(db.direct_url()).at(indexes_name), 1);
}

// Prisma accepts a checksum taken with the other line endings (git autocrlf)
// and the unpadded hex an old Prisma wrote (prisma-engines #1887).
TEST(Migrations, PrismaChecksumVariantsAreNotReportedModified) {
  // A script whose digest has a byte below 0x10, so unpadded hex differs.
  std::string sql;
  std::string padded;
  for (int n = 0;; ++n) {
    sql = "CREATE TABLE t (x int);\n-- " + std::to_string(n) + "\n";
    padded = pg_sha256(sql);
    bool has_small_byte = false;
    for (std::size_t i = 0; i < padded.size(); i += 2)
      has_small_byte = has_small_byte || padded[i] == '0';
    if (has_small_byte)
      break;
  }
  std::string unpadded;
  for (std::size_t i = 0; i < padded.size(); i += 2)
    unpadded +=
        padded[i] == '0' ? padded.substr(i + 1, 1) : padded.substr(i, 2);
  ASSERT_LT(unpadded.size(), 64u);

  std::string crlf_sql = sql;
  for (std::size_t at = 0; (at = crlf_sql.find('\n', at)) != std::string::npos;
       at += 2)
    crlf_sql.insert(at, 1, '\r');

  scratch_database db;
  {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    tx.exec(prisma_history_ddl);
    record_as_prisma(tx, "20250101000000_unpadded", unpadded);
    record_as_prisma(tx, "20250102000000_crlf", pg_sha256(crlf_sql));
    record_as_prisma(tx, "20250103000000_edited", pg_sha256(sql + "--\n"));
    tx.commit();
  }
  auto report = migrate(db.direct_url(), {make("20250101000000_unpadded", sql),
                                          make("20250102000000_crlf", sql),
                                          make("20250103000000_edited", sql)});
  EXPECT_TRUE(report.applied.empty());
  EXPECT_EQ(report.already_applied, 3u);
  EXPECT_EQ(report.modified,
            (std::vector<std::string>{"20250103000000_edited"}));
}

TEST(Migrations, AFailingMigrationAppliesNothing) {
  scratch_database db;
  std::vector<migration> all{
      make("20250101000000_good", "CREATE TABLE good (x int);"),
      make("20250102000000_bad", "CREATE TABLE bad (x int);\nSELEC 1;")};
  try {
    migrate(db.pgbouncer_url(), all);
    FAIL() << "migrate succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("20250102000000_bad"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("syntax error"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(table_exists(db.direct_url(), "good"));
  EXPECT_FALSE(table_exists(db.direct_url(), "_prisma_migrations"));

  all.pop_back(); // the fixed deployment goes through
  EXPECT_EQ(migrate(db.direct_url(), all).applied.size(), 1u);
}

// As Prisma's P3009: a half-run script needs a person, not a retry.
TEST(Migrations, APrismaFailedMigrationStopsTheRun) {
  scratch_database db;
  {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    tx.exec(prisma_history_ddl);
    tx.exec(embedded(init_name).sql);
    record_as_prisma(tx, init_name, embedded(init_name).checksum);
    record_as_prisma(tx, indexes_name, embedded(indexes_name).checksum,
                     /*finished=*/false);
    tx.commit();
  }
  try {
    migrate(db.direct_url(), embedded_migrations());
    FAIL() << "migrate succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(indexes_name), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(recorded(db.direct_url()),
            (std::map<std::string, int>{{init_name, 1}}));

  // `prisma migrate resolve --rolled-back` marks it; then it is re-applied.
  exec(db.direct_url(), "UPDATE _prisma_migrations SET rolled_back_at = now() "
                        "WHERE finished_at IS NULL");
  auto report = migrate(db.direct_url(), embedded_migrations());
  EXPECT_EQ(report.applied, (std::vector<std::string>{indexes_name, job_id_name,
                                                      job_id_not_unique_name,
                                                      idempotency_key_name,
                                                      images_index_name}));
}

// A database the earlier postd migrated (jobId unique) and wrote to: the new
// migration keeps its rows and lets a reused jobId become a second row.
TEST(Migrations, DatabaseOfTheEarlierPostdMigratesToAPlainJobIdIndex) {
  scratch_database db;
  std::vector<migration> earlier;
  for (const auto* name : {init_name, indexes_name, job_id_name})
    earlier.push_back(embedded(name));
  migrate(db.direct_url(), earlier);
  const char* const insert = R"sql(
    INSERT INTO "Post" (id, content, "authorId", "jobId", "updatedAt")
    VALUES ($1, $2, 'u1', '1', now()))sql";
  {
    pqxx::connection conn{db.direct_url()};
    pqxx::work tx{conn};
    tx.exec_params(insert, "p-before", "before the reset");
    tx.commit();
  }
  auto report = migrate(db.pgbouncer_url(), embedded_migrations());
  EXPECT_EQ(report.applied, (std::vector<std::string>{job_id_not_unique_name,
                                                      idempotency_key_name,
                                                      images_index_name}));
  EXPECT_EQ(report.already_applied, 3u);

  pqxx::connection conn{db.direct_url()};
  pqxx::work tx{conn};
  tx.exec_params(insert, "p-after", "after the reset");
  auto rows = tx.exec(R"sql(SELECT id, content FROM "Post" ORDER BY id)sql");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0][1].as<std::string>(), "after the reset");
  EXPECT_EQ(rows[1][1].as<std::string>(), "before the reset");
}

TEST(Migrations, SchemaHasPrismaNamesAndAPlainJobIdIndex) {
  scratch_database db;
  migrate(db.direct_url(), embedded_migrations());
  pqxx::connection conn{db.direct_url()};
  pqxx::nontransaction tx{conn};
  std::map<std::string, std::string> indexes;
  for (const auto& r : tx.exec("SELECT indexname, indexdef FROM pg_indexes "
                               "WHERE tablename = 'Post'"))
    indexes[r[0].as<std::string>()] = r[1].as<std::string>();
  const std::string on = " ON public.\"Post\" USING btree ";
  EXPECT_EQ(
      indexes,
      (std::map<std::string, std::string>{
          {"Post_pkey", "CREATE UNIQUE INDEX \"Post_pkey\"" + on + "(id)"},
          {"Post_authorId_idx",
           "CREATE INDEX \"Post_authorId_idx\"" + on + "(\"authorId\")"},
          {"Post_createdAt_idx",
           "CREATE INDEX \"Post_createdAt_idx\"" + on + "(\"createdAt\")"},
          {"Post_authorId_createdAt_idx",
           "CREATE INDEX \"Post_authorId_createdAt_idx\"" + on +
               "(\"authorId\", \"createdAt\")"},
          {"Post_jobId_idx",
           "CREATE INDEX \"Post_jobId_idx\"" + on + "(\"jobId\")"},
          {"Post_images_idx", "CREATE INDEX \"Post_images_idx\" ON "
                              "public.\"Post\" USING gin (images)"},
      }));

  std::vector<std::string> columns;
  for (const auto& r : tx.exec(
           "SELECT column_name || ' ' || format_type(atttypid, atttypmod) || "
           "CASE WHEN attnotnull THEN ' not null' ELSE '' END || "
           "coalesce(' default ' || column_default, '') "
           "FROM information_schema.columns c JOIN pg_attribute a "
           "ON a.attrelid = '\"Post\"'::regclass AND a.attname = c.column_name "
           "WHERE c.table_name = 'Post' ORDER BY ordinal_position"))
    columns.push_back(r[0].as<std::string>());
  EXPECT_EQ(columns,
            (std::vector<std::string>{
                "id text not null",
                "content text not null",
                "authorId text not null",
                "images text[] default ARRAY[]::text[]",
                "createdAt timestamp(3) without time zone not null default "
                "CURRENT_TIMESTAMP",
                "updatedAt timestamp(3) without time zone not null",
                "jobId text",
            }));
}

} // namespace
