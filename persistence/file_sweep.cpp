#include "persistence/file_sweep.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <iterator>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <hiredis/hiredis.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.hpp"
#include "core/file_store.hpp"

namespace postd::persistence {

namespace fs = std::filesystem;

namespace {

// file_upload's temporary files (file_store.cpp), and the sweep's own name
// for a file it is about to remove (left behind only by a crash).
constexpr std::string_view upload_prefix = ".upload-";
constexpr std::string_view aside_prefix = ".sweep-";

bool temporary_name(std::string_view name) {
  return name.starts_with(upload_prefix) || name.starts_with(aside_prefix);
}

struct listed_file {
  std::string name;
  std::int64_t mtime_ms = 0;
  dev_t dev = 0;
  ino_t ino = 0;
};

std::int64_t mtime_ms(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 +
         st.st_mtim.tv_nsec / 1000000;
}

bool same_file(const struct stat& st, const listed_file& f) {
  // An inode number is reused once freed: the mtime tells a fresh upload.
  return st.st_dev == f.dev && st.st_ino == f.ino && mtime_ms(st) == f.mtime_ms;
}

std::string errno_text(std::string_view what, const fs::path& path) {
  return std::string(what) + " " + path.string() + ": " + std::strerror(errno);
}

// The first `max` regular files of `dir` named after `after`, in name order,
// among the stored and temporary ones; `next`: the last name of those when
// there were `max` (more may follow), else "". A missing folder has none.
std::vector<listed_file> list_files(const fs::path& dir, std::string_view after,
                                    std::size_t max, std::string& next,
                                    std::string& error) {
  std::set<std::string> names; // the `max` smallest so far
  std::error_code ec;
  for (fs::directory_iterator it{dir, ec}, end; !ec && it != end;
       it.increment(ec)) {
    auto name = it->path().filename().string();
    if (name <= after ||
        (!core::stored_file_name(name) && !temporary_name(name)))
      continue;
    names.insert(std::move(name));
    if (names.size() > max)
      names.erase(std::prev(names.end()));
  }
  if (ec && ec != std::errc::no_such_file_or_directory) {
    error = "cannot list " + dir.string() + ": " + ec.message();
    return {};
  }
  next = names.size() >= max && !names.empty() ? *names.rbegin() : "";
  std::vector<listed_file> out;
  for (const auto& name : names) {
    struct stat st {};
    if (::lstat((dir / name).c_str(), &st) != 0 || !S_ISREG(st.st_mode))
      continue; // gone since (another sweep), or not a plain file
    out.push_back({name, mtime_ms(st), st.st_dev, st.st_ino});
  }
  return out;
}

// The names among `names` whose URL, under any of the prefixes, a row holds.
// Throws postgres_error.
std::unordered_set<std::string>
referenced_names(const file_sweep_options& o,
                 const std::vector<std::string>& names) {
  std::unordered_map<std::string, std::string> name_of; // url -> name
  std::vector<std::string> urls;
  for (const auto& name : names)
    for (const auto& prefix : o.url_prefixes)
      if (name_of.emplace(prefix + name, name).second)
        urls.push_back(prefix + name);
  std::unordered_set<std::string> out;
  if (urls.empty())
    return out;
  post_store store{o.database};
  for (const auto& url : store.referenced_images(urls, o.lookup_batch))
    out.insert(name_of.at(url));
  return out;
}

enum class removal { removed, gone, kept, failed };

// Removes the file judged, `f`, unless an upload renamed a fresh copy over
// it since: it is renamed aside first, which takes whichever file is there
// at once, then removed if it is the one judged, else put back (same name,
// same bytes: harmless even over a copy stored meanwhile). Nothing renames
// over a temporary file: it is removed as it is.
removal remove_file(const fs::path& dir, const listed_file& f,
                    std::string& error) {
  const auto path = dir / f.name;
  auto target = path;
  if (!temporary_name(f.name)) {
    target = dir / (std::string(aside_prefix) + f.name);
    if (::rename(path.c_str(), target.c_str()) != 0) {
      if (errno == ENOENT)
        return removal::gone;
      error = errno_text("cannot rename", path);
      return removal::failed;
    }
    struct stat st {};
    if (::lstat(target.c_str(), &st) != 0 || !same_file(st, f)) {
      if (::rename(target.c_str(), path.c_str()) == 0)
        return removal::kept;
      error = errno_text("cannot put back", target);
      return removal::failed;
    }
  }
  if (::unlink(target.c_str()) == 0)
    return removal::removed;
  if (errno == ENOENT)
    return removal::gone;
  error = errno_text("cannot remove", target);
  return removal::failed;
}

// Acts on the final verdict on `f` and counts it.
void carry_out(file_verdict verdict, const fs::path& dir, const listed_file& f,
               sweep_report& report) {
  switch (verdict) {
  case file_verdict::young:
    ++report.kept_young;
    break;
  case file_verdict::pending:
    ++report.kept_pending;
    break;
  case file_verdict::referenced:
    ++report.kept_referenced;
    break;
  case file_verdict::remove: {
    std::string error;
    auto r = remove_file(dir, f, error);
    report.removed += r == removal::removed ? 1 : 0;
    report.kept_young += r == removal::kept ? 1 : 0; // a fresh copy
    if (r == removal::failed && report.failed++ == 0)
      report.error = error;
    break;
  }
  case file_verdict::ignored:
  case file_verdict::look_up:
    break;
  }
}

} // namespace

file_verdict judge_file(std::string_view name, std::int64_t mtime_ms,
                        std::int64_t now_ms,
                        std::optional<std::int64_t> oldest_pending_ms,
                        std::optional<bool> referenced,
                        const sweep_policy& policy) {
  const bool temporary = temporary_name(name);
  if (!temporary && !core::stored_file_name(name))
    return file_verdict::ignored;
  if (now_ms - mtime_ms < policy.min_age.count())
    return file_verdict::young;
  if (temporary)
    return file_verdict::remove; // no job or row names one
  if (oldest_pending_ms &&
      mtime_ms >= *oldest_pending_ms - policy.pending_margin.count())
    return file_verdict::pending;
  if (!referenced)
    return file_verdict::look_up;
  return *referenced ? file_verdict::referenced : file_verdict::remove;
}

pending_jobs read_pending_jobs(redis_client& redis, const queue_keys& keys,
                               std::size_t max_jobs) {
  // Counted and listed at one instant: a job moving between them (taken,
  // retried, promoted) is seen in exactly one. The lists are read up to
  // max_jobs + 1 each, so a large backlog costs no more.
  const auto last = std::to_string(max_jobs);
  const auto wait = keys.key("wait");
  const auto active = keys.key("active");
  const auto paused = keys.key("paused");
  const auto delayed = keys.key("delayed");
  auto replies = redis.pipeline({{"MULTI"},
                                 {"LLEN", wait},
                                 {"LLEN", active},
                                 {"LLEN", paused},
                                 {"ZCARD", delayed},
                                 {"LRANGE", wait, "0", last},
                                 {"LRANGE", active, "0", last},
                                 {"LRANGE", paused, "0", last},
                                 {"ZRANGE", delayed, "0", last},
                                 {"EXEC"}});
  for (const auto& r : replies)
    if (reply_is_error(r.get()))
      throw redis_reply_error("read_pending_jobs: " + reply_string(r.get()));
  const redisReply* all = replies.back().get();
  if (all->type != REDIS_REPLY_ARRAY || all->elements != 8)
    throw redis_reply_error("read_pending_jobs: EXEC did not answer 8 replies");
  pending_jobs out;
  for (std::size_t i = 0; i < 4; ++i)
    out.count += reply_integer(all->element[i]);
  if (out.count == 0 || out.count > static_cast<std::int64_t>(max_jobs))
    return out;

  std::vector<redis_command> hgets;
  for (std::size_t i = 4; i < 8; ++i) {
    const redisReply* ids = all->element[i];
    if (ids->type != REDIS_REPLY_ARRAY)
      throw redis_reply_error("read_pending_jobs: a list is not an array");
    for (std::size_t j = 0; j < ids->elements; ++j)
      hgets.push_back(
          {"HGET", keys.base() + reply_string(ids->element[j]), "timestamp"});
  }
  for (const auto& r : redis.pipeline(hgets)) {
    if (reply_is_error(r.get()))
      throw redis_reply_error("read_pending_jobs: " + reply_string(r.get()));
    if (r->type == REDIS_REPLY_NIL)
      continue; // finished (and removed) since
    const auto text = reply_string(r.get());
    std::int64_t ms = 0;
    auto [end, ec] =
        std::from_chars(text.data(), text.data() + text.size(), ms);
    if (ec != std::errc{} || end != text.data() + text.size())
      ms = 0;
    out.oldest_ms = std::min(out.oldest_ms.value_or(ms), ms);
  }
  return out;
}

sweep_report sweep_orphan_files(const file_sweep_options& o,
                                redis_connection& redis,
                                std::string_view resume_after) {
  sweep_report report;
  std::string next;
  const auto files =
      list_files(o.dir, resume_after, o.max_files, next, report.error);
  report.examined = files.size();
  // A round that fails is tried again from where it started.
  report.resume_after = std::string(resume_after);
  if (!report.error.empty())
    return report;
  if (files.empty()) {
    report.resume_after = next;
    return report;
  }
  // The queue before PostgreSQL (see the header).
  pending_jobs pending;
  try {
    pending = redis.run([&](redis_client& c) {
      return read_pending_jobs(c, o.queue, o.max_pending);
    });
  } catch (const redis_error& e) {
    report.error = std::string("Redis: ") + e.what();
    return report;
  }
  if (pending.count > static_cast<std::int64_t>(o.max_pending)) {
    report.error = std::to_string(pending.count) +
                   " jobs pending, more than max_pending: nothing removed";
    return report;
  }
  const auto now = core::epoch_ms();
  auto verdict = [&](const listed_file& f, std::optional<bool> referenced) {
    return judge_file(f.name, f.mtime_ms, now, pending.oldest_ms, referenced,
                      o.policy);
  };
  std::vector<std::string> look_up;
  for (const auto& f : files)
    if (verdict(f, std::nullopt) == file_verdict::look_up)
      look_up.push_back(f.name);
  std::unordered_set<std::string> referenced;
  try {
    referenced = referenced_names(o, look_up);
  } catch (const postgres_error& e) {
    report.error = std::string("PostgreSQL: ") + e.what();
    return report;
  }

  for (const auto& f : files)
    carry_out(verdict(f, referenced.contains(f.name)), o.dir, f, report);
  report.resume_after = next;
  return report;
}

} // namespace postd::persistence
