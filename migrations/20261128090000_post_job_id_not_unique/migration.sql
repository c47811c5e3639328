-- A post's identity is its "id", given when it is queued. Bull's job ids
-- start over when Redis loses its state, so one "jobId" may name several
-- posts: the index stays (the job-status route looks rows up by it) but is
-- no longer unique.

-- DropIndex
DROP INDEX "Post_jobId_key";

-- CreateIndex
CREATE INDEX "Post_jobId_idx" ON "Post"("jobId");
