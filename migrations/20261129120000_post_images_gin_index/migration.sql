-- The orphan sweep (persistence/file_sweep.hpp) asks which file URLs a row's
-- "images" holds: `"images" @> ARRAY[url]` is an index probe here, not a scan
-- of "Post". Prisma names it as `@@index([images], type: Gin)` would.
-- Not CONCURRENTLY: `postd migrate` runs every pending migration in one
-- transaction, where PostgreSQL refuses it; this build blocks writes to
-- "Post" while it runs. On a large table, build it by hand first with
-- CREATE INDEX CONCURRENTLY under this name (and check it is valid: a failed
-- concurrent build leaves an invalid index that IF NOT EXISTS would keep).

-- CreateIndex
CREATE INDEX IF NOT EXISTS "Post_images_idx" ON "Post" USING GIN ("images");
