-- AlterTable
ALTER TABLE "Post" ADD COLUMN     "jobId" TEXT;

-- CreateIndex
CREATE UNIQUE INDEX "Post_jobId_key" ON "Post"("jobId");
