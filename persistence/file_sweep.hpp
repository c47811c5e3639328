#pragma once

// The sweep of orphaned attachments. Uploads are stored before their post is
// throttled and queued (file_store.hpp), so a refused post (429, 503) leaves
// its files behind; and one stored file may serve several posts. A file goes
// only when nothing can name it any more:
//  - it was last modified more than min_age ago: an upload of the same bytes
//    renames a fresh file over it, so mtime is its last upload's time;
//  - no job still in the queue can name it: a job names only files uploaded
//    just before it was queued, so a file older than the oldest pending job
//    (less pending_margin, for the rest of that request's upload) is named
//    by none;
//  - no "Post" row's images holds its URL.
// The queue is read before PostgreSQL: a job that completes in between is a
// row by then (a writer commits the row before it completes the job). A file
// is renamed aside before it is removed, so a fresh copy an upload renames
// over it meanwhile is never lost. When Redis or PostgreSQL fails, nothing
// is removed that round. Temporary files of uploads cut short (a crash) go
// once older than min_age; no other file of the folder is ever touched.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "persistence/bull_queue.hpp"
#include "persistence/postgres.hpp"
#include "persistence/redis_connection.hpp"

namespace postd::persistence {

struct sweep_policy {
  std::chrono::milliseconds min_age{std::chrono::hours{1}};
  // Longer than a request may take from storing its first file to queueing
  // its job (the body's upload, throttling, the enqueue), plus the clock
  // skew between the instances sharing the folder.
  std::chrono::milliseconds pending_margin{std::chrono::minutes{1}};
};

enum class file_verdict {
  ignored,    // neither a stored file nor a temporary one: never touched
  young,      // modified less than min_age ago
  pending,    // a job still in the queue may name it
  look_up,    // only a row can keep it: ask PostgreSQL
  referenced, // a row's images holds its URL
  remove,
};

// What the sweep does with the file `name`, modified at `mtime_ms`, at
// `now_ms` (ms since the epoch). `oldest_pending_ms`: the timestamp of the
// oldest job in the queue (nullopt: none); `referenced`: whether a row holds
// the file's URL (nullopt: not asked yet).
file_verdict judge_file(std::string_view name, std::int64_t mtime_ms,
                        std::int64_t now_ms,
                        std::optional<std::int64_t> oldest_pending_ms,
                        std::optional<bool> referenced,
                        const sweep_policy& policy);

struct pending_jobs {
  std::int64_t count = 0; // in wait, active, paused and delayed
  // The oldest of their `timestamp`s (one that is not a number counts as 0,
  // so it keeps every file); only read when count <= max_jobs.
  std::optional<std::int64_t> oldest_ms;
};

// The jobs not written yet, read at one instant (MULTI/EXEC), then their
// timestamps (one pipeline of HGETs); a job whose hash is gone is done.
// Throws redis_error.
pending_jobs read_pending_jobs(redis_client& redis, const queue_keys& keys,
                               std::size_t max_jobs);

struct file_sweep_options {
  std::filesystem::path dir; // STORAGE_DIR
  // A row holds a file as prefix + name: PUBLIC_FILES_URL, and any value it
  // had before (rows written then still hold their files under it).
  std::vector<std::string> url_prefixes{"/v1/files/"};
  queue_keys queue;
  // The primary (DATABASE_URL), never a replica: one that lags would miss
  // the newest rows.
  pg_options database;
  sweep_policy policy;
  std::size_t max_files = 10000;   // judged per round
  std::size_t max_pending = 10000; // a larger backlog skips the round
  std::size_t lookup_batch = 1000; // URLs per statement
};

struct sweep_report {
  std::size_t examined = 0; // stored and temporary files judged
  std::size_t removed = 0;
  std::size_t kept_young = 0;
  std::size_t kept_pending = 0;
  std::size_t kept_referenced = 0;
  std::size_t failed = 0; // could not be removed
  // Empty when the round went through; else why it stopped (nothing was
  // removed) or why a file could not be removed.
  std::string error;
  // Where the next round starts (its resume_after): each round judges the
  // max_files names that follow in name order, so files that stay (in use)
  // never starve the others. Empty: the next round starts over.
  std::string resume_after;
};

// One round over the files named after `resume_after`.
sweep_report sweep_orphan_files(const file_sweep_options& options,
                                redis_connection& redis,
                                std::string_view resume_after = {});

} // namespace postd::persistence
