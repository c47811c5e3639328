// What the orphan sweep does with one file of the storage folder: only a
// stored file that is old, older than every pending job and named by no row
// goes; temporary files go once old; anything else is never touched.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "persistence/file_sweep.hpp"

namespace {

using namespace std::chrono_literals;
using postd::persistence::file_verdict;
using postd::persistence::judge_file;
using postd::persistence::sweep_policy;

const std::string stored = std::string(64, 'a') + ".png";
constexpr std::int64_t now = 1'800'000'000'000; // ms since the epoch
constexpr std::int64_t hour = 3'600'000;
constexpr std::int64_t minute = 60'000;
const sweep_policy policy{}; // 1 h, a margin of 1 min

file_verdict judge(const std::string& name, std::int64_t mtime,
                   std::optional<std::int64_t> oldest_pending = std::nullopt,
                   std::optional<bool> referenced = std::nullopt) {
  return judge_file(name, mtime, now, oldest_pending, referenced, policy);
}

TEST(FileSweep, TheDefaultsAreAnHourAndAMinute) {
  EXPECT_EQ(policy.min_age, 1h);
  EXPECT_EQ(policy.pending_margin, 1min);
}

TEST(FileSweep, NamesThatAreNotStoredFilesAreNeverTouched) {
  for (const auto& name : std::vector<std::string>{
           "notes.txt", "README", ".gitkeep", std::string(64, 'a') + ".txt",
           std::string(64, 'A') + ".png", std::string(63, 'a') + ".png",
           std::string(65, 'a') + ".png", std::string(64, 'g') + ".jpg",
           "x" + stored, stored + ".bak", ".upload", "upload-x", ".sweep",
           "sweep-" + stored}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(judge(name, 0, std::nullopt, false), file_verdict::ignored);
    EXPECT_EQ(judge(name, now - 100 * hour), file_verdict::ignored);
  }
}

TEST(FileSweep, EveryImageExtensionIsAStoredFile) {
  for (const char* ext : {".jpg", ".png", ".gif", ".webp"}) {
    const auto name = std::string(64, 'f') + ext;
    SCOPED_TRACE(name);
    EXPECT_EQ(judge(name, now - 2 * hour, std::nullopt, false),
              file_verdict::remove);
  }
}

TEST(FileSweep, AFileYoungerThanMinAgeStays) {
  EXPECT_EQ(judge(stored, now, std::nullopt, false), file_verdict::young);
  EXPECT_EQ(judge(stored, now - hour + 1, std::nullopt, false),
            file_verdict::young);
  EXPECT_EQ(judge(stored, now - hour, std::nullopt, false),
            file_verdict::remove);
  // A clock set back (or another instance's): from the future is young.
  EXPECT_EQ(judge(stored, now + hour, std::nullopt, false),
            file_verdict::young);
  // Whatever the queue and the rows say.
  EXPECT_EQ(judge(stored, now - minute, now - hour, true), file_verdict::young);
}

TEST(FileSweep, MinAgeIsThePolicys) {
  const sweep_policy quick{.min_age = 10s, .pending_margin = 0ms};
  EXPECT_EQ(judge_file(stored, now - 9'999, now, std::nullopt, false, quick),
            file_verdict::young);
  EXPECT_EQ(judge_file(stored, now - 10'000, now, std::nullopt, false, quick),
            file_verdict::remove);
}

TEST(FileSweep, AnOldFileNeedsTheRowsAnswer) {
  EXPECT_EQ(judge(stored, now - 2 * hour), file_verdict::look_up);
  EXPECT_EQ(judge(stored, now - 2 * hour, std::nullopt, true),
            file_verdict::referenced);
  EXPECT_EQ(judge(stored, now - 2 * hour, std::nullopt, false),
            file_verdict::remove);
}

// A job names files uploaded just before it was queued: a file modified
// before the oldest pending job (less the margin) is named by none.
TEST(FileSweep, AFileAPendingJobMayNameStays) {
  const auto mtime = now - 2 * hour;
  // The oldest job was queued before the file, or with it.
  for (auto queued : {mtime - 3 * hour, mtime - 1, mtime, mtime + 1,
                      mtime + minute - 1, mtime + minute}) {
    SCOPED_TRACE(queued - mtime);
    EXPECT_EQ(judge(stored, mtime, queued, false), file_verdict::pending);
    EXPECT_EQ(judge(stored, mtime, queued), file_verdict::pending);
  }
  // Queued more than the margin after the file was last uploaded.
  EXPECT_EQ(judge(stored, mtime, mtime + minute + 1), file_verdict::look_up);
  EXPECT_EQ(judge(stored, mtime, mtime + minute + 1, false),
            file_verdict::remove);
  EXPECT_EQ(judge(stored, mtime, now, true), file_verdict::referenced);
  EXPECT_EQ(judge(stored, mtime, now, false), file_verdict::remove);
}

TEST(FileSweep, AJobWithoutATimestampKeepsEveryOldFile) {
  // read_pending_jobs counts a timestamp that is not a number as 0.
  EXPECT_EQ(judge(stored, now - 100 * hour, 0, false), file_verdict::pending);
}

TEST(FileSweep, TheMarginIsThePolicys) {
  const sweep_policy wide{.min_age = 1h, .pending_margin = 30min};
  const auto mtime = now - 2 * hour;
  EXPECT_EQ(judge_file(stored, mtime, now, mtime + 30 * minute, false, wide),
            file_verdict::pending);
  EXPECT_EQ(
      judge_file(stored, mtime, now, mtime + 30 * minute + 1, false, wide),
      file_verdict::remove);
}

TEST(FileSweep, AnOldTemporaryFileGoesWhateverTheQueueAndTheRows) {
  for (const auto& name :
       std::vector<std::string>{".upload-3f2a0c1e-7b4d-4e8a-9c2f-0d1e2f3a4b5c",
                                ".upload-x", ".sweep-" + stored}) {
    SCOPED_TRACE(name);
    EXPECT_EQ(judge(name, now - minute), file_verdict::young);
    EXPECT_EQ(judge(name, now - hour), file_verdict::remove);
    EXPECT_EQ(judge(name, now - 2 * hour, now - 3 * hour, true),
              file_verdict::remove);
  }
}

} // namespace
