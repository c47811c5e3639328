#pragma once

// Every SQL statement postd sends, in one place. post_store (postgres.cpp) runs
// them through PgBouncer in transaction mode: unnamed statements only, nothing
// that outlives a transaction. The tests use the same constants (the EXPLAIN
// test checks the very page queries the adapter runs).

namespace postd::persistence::sql {

// Opening each transaction, with a number or a quote_name()d schema appended.
// SET LOCAL, because PgBouncer's transaction mode hands the server connection
// to other clients after COMMIT: a session SET would leak to them, and would be
// missing on the next server connection we get.
inline constexpr const char* set_statement_timeout =
    "SET LOCAL statement_timeout = ";
inline constexpr const char* set_search_path = "SET LOCAL search_path TO ";

// ---- "Post" (post_store) ----

// A post as post_store reads it, in to_post()'s column order. Timestamps are
// handed out as ISO-8601 UTC with milliseconds; a timestamp input ignores the
// trailing 'Z', so the page cursor takes the string back.
// (A macro: only adjacent literals concatenate into one constant.)
#define POSTD_SQL_POST_COLUMNS                                                 \
  R"sql(SELECT "id", "content", "authorId",)sql"                               \
  R"sql( to_char("createdAt", 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), "jobId",)sql"  \
  R"sql( array_to_json("images")::text FROM "Post")sql"

// The whole batch travels as ONE json parameter, so a batch is one statement
// whatever its size. Timestamps are UTC as Prisma writes them; the column
// default (CURRENT_TIMESTAMP) would follow the server's TimeZone instead.
//
// A row with an Idempotency-Key ("key") is inserted only if it takes the
// key: the key is free, or its holder was queued 24 h or more before it (a
// new post; Redis keeps a key 24 h). Otherwise an earlier post holds it and
// stands for the row (insert_post_keys says which). A conflicting key or id
// is a committed one (ON CONFLICT waits for a concurrent insert to end).
// Answers the rows inserted, the keys taken and the rows with a key: fewer
// taken than keyed sends insert_post_keys.
inline constexpr const char* insert_posts = R"sql(
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x("id" text, "content" text, "authorId" text, "images" text[],
         "jobId" text, "key" text, "queuedAt" bigint)
), taken AS (
  INSERT INTO "PostIdempotencyKey" AS k
    ("authorId", "key", "postId", "queuedAt", "jobId", "jobQueuedAt")
  SELECT DISTINCT ON ("authorId", "key")
         "authorId", "key", "id", "queuedAt", "jobId", "queuedAt"
  FROM x WHERE "key" IS NOT NULL
  ORDER BY "authorId", "key", "queuedAt", "id"
  ON CONFLICT ("authorId", "key") DO UPDATE
    SET "postId" = excluded."postId", "queuedAt" = excluded."queuedAt",
        "jobId" = excluded."jobId", "jobQueuedAt" = excluded."jobQueuedAt"
    WHERE k."queuedAt" <= excluded."queuedAt" - 86400000
  RETURNING "postId"
), stored AS (
  INSERT INTO "Post" ("id", "content", "authorId", "images", "jobId", "createdAt", "updatedAt")
  SELECT x."id", x."content", x."authorId", x."images", x."jobId",
         now() AT TIME ZONE 'UTC', now() AT TIME ZONE 'UTC'
  FROM x WHERE x."key" IS NULL OR x."id" IN (SELECT "postId" FROM taken)
  ON CONFLICT ("id") DO NOTHING
  RETURNING 1
)
SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM taken),
       (SELECT count(*) FROM x WHERE "key" IS NOT NULL))sql";

// The same batch's keyed rows whose key was not taken, in the insert's
// transaction (a statement of its own: it must see a key that a concurrent
// transaction committed while the insert waited for it). Answers each row
// whose key another post holds, with that post's id. The post carries the
// jobId of the latest job queued for its key: the one a retrying client was
// answered last (a later retry's job moves it there).
inline constexpr const char* insert_post_keys = R"sql(
WITH x AS (
  SELECT * FROM jsonb_to_recordset($1::jsonb)
    AS x("id" text, "authorId" text, "jobId" text, "key" text,
         "queuedAt" bigint)
  WHERE "key" IS NOT NULL
), latest AS (
  SELECT DISTINCT ON ("authorId", "key") * FROM x
  ORDER BY "authorId", "key", "queuedAt" DESC, "id" DESC
), moved AS (
  UPDATE "PostIdempotencyKey" k
  SET "jobId" = l."jobId", "jobQueuedAt" = l."queuedAt"
  FROM latest l
  WHERE k."authorId" = l."authorId" AND k."key" = l."key"
    AND l."queuedAt" > k."jobQueuedAt"
  RETURNING k."postId", k."jobId"
), relabeled AS (
  UPDATE "Post" p SET "jobId" = m."jobId" FROM moved m WHERE p."id" = m."postId"
)
SELECT x."id", k."postId"
FROM x JOIN "PostIdempotencyKey" k USING ("authorId", "key")
WHERE k."postId" <> x."id")sql";

// Keys queued before $1 (ms since the epoch): long past their 24 h.
inline constexpr const char* forget_post_keys = R"sql(
DELETE FROM "PostIdempotencyKey" WHERE "queuedAt" < $1)sql";

inline constexpr const char* find_post = POSTD_SQL_POST_COLUMNS R"sql(
WHERE "id" = $1)sql";

// Job ids repeat after Redis loses its state: only the newest row can be the
// job Redis knew.
inline constexpr const char* find_post_by_job = POSTD_SQL_POST_COLUMNS R"sql(
WHERE "jobId" = $1 AND "authorId" = $2
ORDER BY "createdAt" DESC, "id" DESC LIMIT 1)sql";

// Both pages walk "Post_authorId_createdAt_idx" backwards; id breaks ties of
// equal "createdAt" (a batch shares one now()).
inline constexpr const char* first_page = POSTD_SQL_POST_COLUMNS R"sql(
WHERE "authorId" = $1
ORDER BY "createdAt" DESC, "id" DESC
LIMIT $2)sql";

inline constexpr const char* next_page = POSTD_SQL_POST_COLUMNS R"sql(
WHERE "authorId" = $1 AND ("createdAt", "id") < ($2::timestamp(3), $3)
ORDER BY "createdAt" DESC, "id" DESC
LIMIT $4)sql";

#undef POSTD_SQL_POST_COLUMNS

inline constexpr const char* ping = "SELECT 1";

// ---- migrations (migrations.cpp) ----

// Prisma Migrate's own key (it takes it as a session lock): a postd migrate and
// a `prisma migrate deploy` on a direct connection exclude each other too. The
// transaction-level form is released at COMMIT/ROLLBACK, so PgBouncer's
// transaction mode cannot strand it on a pooled server connection.
inline constexpr const char* migrate_lock =
    "SELECT pg_advisory_xact_lock(72707369)";

// Asked before creating the URL's schema: CREATE SCHEMA IF NOT EXISTS checks
// the database's CREATE privilege even when the schema exists, which a role
// that owns only its schema lacks.
inline constexpr const char* schema_exists =
    "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)";
// + quote_name(schema); IF NOT EXISTS against another tool creating it now.
inline constexpr const char* create_schema = "CREATE SCHEMA IF NOT EXISTS ";

// Prisma's own definition, column for column, so either tool can read the
// other's history.
inline constexpr const char* create_history = R"sql(
CREATE TABLE IF NOT EXISTS _prisma_migrations (
    id                      VARCHAR(36) PRIMARY KEY NOT NULL,
    checksum                VARCHAR(64) NOT NULL,
    finished_at             TIMESTAMPTZ,
    migration_name          VARCHAR(255) NOT NULL,
    logs                    TEXT,
    rolled_back_at          TIMESTAMPTZ,
    started_at              TIMESTAMPTZ NOT NULL DEFAULT now(),
    applied_steps_count     INTEGER NOT NULL DEFAULT 0
))sql";

inline constexpr const char* history = R"sql(
SELECT migration_name, checksum,
       finished_at IS NOT NULL, rolled_back_at IS NOT NULL
FROM _prisma_migrations)sql";

// The row goes in before the script and is completed after it, as Prisma
// does, so started_at/finished_at bracket the script. Both commit together.
inline constexpr const char* start_migration_row = R"sql(
INSERT INTO _prisma_migrations (id, checksum, migration_name, started_at)
VALUES ($1, $2, $3, clock_timestamp()))sql";

inline constexpr const char* finish_migration_row = R"sql(
UPDATE _prisma_migrations
SET finished_at = clock_timestamp(), applied_steps_count = 1
WHERE id = $1)sql";

// ---- attachments (file_sweep) ----

// The URLs of the JSON array $1 that some row's images holds; each one is
// an index probe of "Post_images_idx" (GIN).
inline constexpr const char* referenced_file_urls = R"sql(
SELECT u FROM jsonb_array_elements_text($1::jsonb) AS u
WHERE EXISTS (SELECT 1 FROM "Post" WHERE "images" @> ARRAY[u]))sql";

} // namespace postd::persistence::sql
