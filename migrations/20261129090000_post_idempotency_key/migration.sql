-- The Idempotency-Keys of written posts. Redis keeps a key for 24 h, but a
-- post can be written from a Redis that then loses it (the old master of a
-- failover, a restart that lost its last writes): a retry with the same key
-- would be queued again. The key written with the post keeps it one row.
-- "queuedAt" (ms since the epoch, the job's timestamp) is when the key was
-- taken: a later post is a retry within 24 h, a new post after that.
-- "jobId"/"jobQueuedAt": the latest job queued for the key, whose jobId the
-- post row carries (the one a retrying client was answered last).

-- CreateTable
CREATE TABLE "PostIdempotencyKey" (
    "authorId" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "postId" TEXT NOT NULL,
    "queuedAt" BIGINT NOT NULL,
    "jobId" TEXT NOT NULL,
    "jobQueuedAt" BIGINT NOT NULL,

    CONSTRAINT "PostIdempotencyKey_pkey" PRIMARY KEY ("authorId", "key")
);

-- CreateIndex
CREATE INDEX "PostIdempotencyKey_queuedAt_idx" ON "PostIdempotencyKey"("queuedAt");
