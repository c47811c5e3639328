#include "persistence/bull_queue.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdio>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

namespace postd::persistence {

// Each state change is one Lua script, persistence/lua/<command>-<keys>.lua
// in Bull 4's layout (npm bull 4.16, lib/commands/*.lua); each file says what
// it does, its KEYS and ARGV, and which of Bull's scripts it follows. Every
// mutating script checks the types of its keys before its first write, so a
// wrongly typed key fails it cleanly instead of half-way. Job hashes are
// addressed as ARGV base .. id, as Bull does. A Lua number handed to
// redis.call is formatted with "%.17g" at every call, so the busy paths hand
// over strings made once; numbers are only formatted where they stay below
// 1e14 (ids, ms), which %d renders exactly.
const lua_script add_jobs_script = lua_script::embedded("addJobs");
const lua_script take_jobs_script = lua_script::embedded("takeJobs");
const lua_script release_jobs_script = lua_script::embedded("releaseJobs");
const lua_script release_orphans_script =
    lua_script::embedded("releaseOrphans");
const lua_script extend_locks_script = lua_script::embedded("extendLocks");
const lua_script complete_jobs_script = lua_script::embedded("completeJobs");
const lua_script fail_jobs_script = lua_script::embedded("failJobs");
const lua_script promote_delayed_script =
    lua_script::embedded("promoteDelayed");
const lua_script get_job_script = lua_script::embedded("getJob");
const lua_script recover_stalled_script =
    lua_script::embedded("recoverStalled");

namespace {

// Channel suffix of the `waiting` events postd's producer publishes; Bull
// emits global:waiting for any non-empty token.
constexpr std::string_view producer_token = "postd";

reply_ptr checked(reply_ptr r, std::string_view what) {
  if (reply_is_error(r.get()))
    throw redis_reply_error(std::string(what) + ": " + reply_string(r.get()));
  return r;
}

const redisReply& array_of(const redisReply* r, std::string_view what,
                           std::size_t min_elements = 0) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY ||
      r->elements < min_elements)
    throw redis_reply_error(std::string(what) +
                            ": unexpected reply: " + reply_string(r));
  return *r;
}

// An array reply of job ids (or other strings).
std::vector<std::string> strings_of(const redisReply* r,
                                    std::string_view what) {
  const auto& arr = array_of(r, what);
  std::vector<std::string> out;
  out.reserve(arr.elements);
  for (std::size_t i = 0; i < arr.elements; ++i)
    out.push_back(reply_string(arr.element[i]));
  return out;
}

// Hash fields written by other producers may hold anything: 0 when not an
// integer, so one odd job cannot stop a batch that is already locked.
std::int64_t lenient_integer(const redisReply* r) {
  const std::string s = reply_string(r);
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() ? v : 0;
}

// Bull's job opts for postd's jobs, up to the timestamp the script appends.
std::string opts_head(const job_request& job) {
  return R"({"attempts":)" + std::to_string(job.attempts) +
         R"(,"backoff":{"type":"exponential","delay":)" +
         std::to_string(job.backoff_ms) + R"(},"delay":0,"timestamp":)";
}

// <base>idem:<author>:<key>. The author's ':' and '%' are escaped, or author
// "a" with key "b:c" would share a key with author "a:b" and key "c".
std::string idempotency_key(const queue_keys& keys, const job_request& job) {
  std::string author;
  author.reserve(job.author.size());
  for (char ch : job.author) {
    if (ch == '%')
      author += "%25";
    else if (ch == ':')
      author += "%3A";
    else
      author += ch;
  }
  return keys.base() + "idem:" + author + ":" + job.idempotency_key;
}

} // namespace

std::vector<add_result> add_jobs(redis_client& redis, const queue_keys& keys,
                                 const std::vector<job_request>& jobs,
                                 std::int64_t max_waiting,
                                 std::int64_t id_floor) {
  if (jobs.empty())
    return {};
  std::vector<std::string> k{keys.key("wait"), keys.key("paused"),
                             keys.key("meta-paused"), keys.key("id")};
  std::vector<std::string> a{keys.base(), std::string(create_post_job_name),
                             std::to_string(max_waiting),
                             std::string(producer_token),
                             std::to_string(id_floor)};
  a.reserve(a.size() + 5 * jobs.size());
  for (const auto& job : jobs) {
    std::string idem_index = "0";
    if (!job.idempotency_key.empty()) {
      k.push_back(idempotency_key(keys, job));
      idem_index = std::to_string(k.size());
    }
    a.push_back(job.data);
    a.push_back(opts_head(job));
    a.push_back(job.timestamp_ms > 0 ? std::to_string(job.timestamp_ms) : "");
    a.push_back(std::move(idem_index));
    a.push_back(job.job_id);
  }
  auto r = checked(redis.eval(add_jobs_script, k, a), "add_jobs");
  const auto& arr = array_of(r.get(), "add_jobs", 2 * jobs.size());
  std::vector<add_result> out;
  out.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const std::string status = reply_string(arr.element[2 * i]);
    std::string id = reply_string(arr.element[2 * i + 1]);
    if (status == "added")
      out.push_back({add_status::added, std::move(id)});
    else if (status == "duplicate")
      out.push_back({add_status::duplicate, std::move(id)});
    else
      out.push_back({add_status::queue_full, {}});
  }
  return out;
}

namespace {

std::vector<active_job> parse_taken(const redisReply* r) {
  const auto& arr = array_of(r, "take_jobs");
  std::vector<active_job> jobs;
  jobs.reserve(arr.elements);
  for (std::size_t i = 0; i < arr.elements; ++i) {
    const auto& f = array_of(arr.element[i], "take_jobs", 6);
    active_job job;
    job.id = reply_string(f.element[0]);
    job.name = reply_string(f.element[1]);
    job.data = reply_string(f.element[2]);
    job.opts = reply_string(f.element[3]);
    job.attempts_made = static_cast<int>(lenient_integer(f.element[4]));
    job.timestamp_ms = lenient_integer(f.element[5]);
    jobs.push_back(std::move(job));
  }
  return jobs;
}

std::vector<active_job> run_take(redis_client& redis, const queue_keys& keys,
                                 std::size_t max, const std::string& token,
                                 std::chrono::milliseconds lock_for,
                                 const std::string& moved_id) {
  auto r = redis.eval(take_jobs_script,
                      {keys.key("wait"), keys.key("active"),
                       keys.key("priority"), keys.key("stalled")},
                      {keys.base(), token, std::to_string(lock_for.count()),
                       std::to_string(max), moved_id});
  return parse_taken(checked(std::move(r), "take_jobs").get());
}

// BRPOPLPUSH wait -> active, as Bull's getNextJob; the socket timeout is
// raised above the block so a quiet queue does not look like a dead server.
std::optional<std::string> wait_for_job(redis_client& redis,
                                        const queue_keys& keys,
                                        std::chrono::milliseconds block_for) {
  std::array<char, 32> secs{};
  std::snprintf(secs.data(), secs.size(), "%.3f",
                static_cast<double>(block_for.count()) / 1000.0);
  const auto normal = redis.options().command_timeout;
  redis.set_timeout(normal + block_for);
  auto r = redis.command(
      {"BRPOPLPUSH", keys.key("wait"), keys.key("active"), secs.data()});
  redis.set_timeout(normal);
  if (r->type == REDIS_REPLY_NIL)
    return std::nullopt;
  if (r->type != REDIS_REPLY_STRING)
    throw redis_reply_error("BRPOPLPUSH: " + reply_string(r.get()));
  return reply_string(r.get());
}

} // namespace

std::vector<active_job> take_jobs(redis_client& redis, const queue_keys& keys,
                                  std::size_t max, const std::string& token,
                                  std::chrono::milliseconds lock_for,
                                  std::chrono::milliseconds block_for) {
  if (max == 0)
    return {};
  auto jobs = run_take(redis, keys, max, token, lock_for, "");
  if (!jobs.empty() || block_for.count() <= 0)
    return jobs;
  auto id = wait_for_job(redis, keys, block_for);
  if (!id)
    return {};
  try {
    return run_take(redis, keys, max, token, lock_for, *id);
  } catch (const redis_reply_error&) {
    try {
      release_jobs(redis, keys, {*id}, token);
    } catch (const redis_error&) {
      // The original error matters more; the stalled check recovers the job.
    }
    throw;
  }
}

namespace {

// releaseJobs and releaseOrphans: the same keys, the token, then job ids.
std::vector<std::string> release(redis_client& redis, const queue_keys& keys,
                                 const lua_script& script,
                                 std::string_view what,
                                 const std::vector<std::string>& job_ids,
                                 const std::string& token) {
  std::vector<std::string> a{keys.base(), token};
  a.insert(a.end(), job_ids.begin(), job_ids.end());
  auto r = checked(
      redis.eval(script,
                 {keys.key("wait"), keys.key("active"), keys.key("paused"),
                  keys.key("meta-paused"), keys.key("stalled")},
                 a),
      what);
  return strings_of(r.get(), what);
}

} // namespace

std::vector<std::string> release_jobs(redis_client& redis,
                                      const queue_keys& keys,
                                      const std::vector<std::string>& job_ids,
                                      const std::string& token) {
  if (job_ids.empty())
    return {};
  return release(redis, keys, release_jobs_script, "release_jobs", job_ids,
                 token);
}

std::vector<std::string> release_orphans(redis_client& redis,
                                         const queue_keys& keys,
                                         const std::vector<std::string>& held,
                                         const std::string& token) {
  return release(redis, keys, release_orphans_script, "release_orphans", held,
                 token);
}

std::vector<std::string> extend_locks(redis_client& redis,
                                      const queue_keys& keys,
                                      const std::vector<std::string>& job_ids,
                                      const std::string& token,
                                      std::chrono::milliseconds lock_for) {
  if (job_ids.empty())
    return {};
  std::vector<std::string> k{keys.key("stalled")};
  std::vector<std::string> a{token, std::to_string(lock_for.count())};
  for (const auto& id : job_ids) {
    k.push_back(keys.base() + id + ":lock");
    a.push_back(id);
  }
  auto r = checked(redis.eval(extend_locks_script, k, a), "extend_locks");
  return strings_of(r.get(), "extend_locks");
}

std::int64_t completed_to_keep(const std::string& opts,
                               std::int64_t keep_default) {
  // Most opts never mention it: skip parsing those.
  if (opts.find("removeOnComplete") == std::string::npos)
    return keep_default;
  auto o = nlohmann::json::parse(opts, nullptr, false);
  if (!o.is_object() || !o.contains("removeOnComplete"))
    return keep_default;
  const auto& opt = o["removeOnComplete"];
  if (opt.is_boolean() && opt.get<bool>())
    return 0;
  if (opt.is_number())
    return opt.get<std::int64_t>();
  if (opt.is_object() && opt.contains("count") && opt["count"].is_number())
    return opt["count"].get<std::int64_t>();
  return keep_default;
}

std::vector<std::string> complete_jobs(redis_client& redis,
                                       const queue_keys& keys,
                                       const std::vector<completion>& done,
                                       const std::string& token,
                                       std::int64_t keep_completed) {
  if (done.empty())
    return {};
  std::vector<std::string> a{keys.base(), token};
  for (const auto& c : done) {
    a.push_back(c.job_id);
    // Bull stores JSON.stringify(undefined) as "null".
    a.push_back(c.return_value.empty() ? "null" : c.return_value);
    a.push_back(std::to_string(completed_to_keep(c.opts, keep_completed)));
  }
  auto r = checked(redis.eval(complete_jobs_script,
                              {keys.key("active"), keys.key("completed"),
                               keys.key("stalled")},
                              a),
                   "complete_jobs");
  return strings_of(r.get(), "complete_jobs");
}

std::vector<failure_outcome> fail_jobs(redis_client& redis,
                                       const queue_keys& keys,
                                       const std::vector<failure>& failed,
                                       const std::string& token, int backoff_ms,
                                       std::int64_t keep_failed) {
  if (failed.empty())
    return {};
  std::vector<std::string> a{keys.base(), token, std::to_string(backoff_ms),
                             std::to_string(keep_failed)};
  for (const auto& f : failed) {
    a.push_back(f.job_id);
    a.push_back(f.reason);
  }
  auto r = checked(
      redis.eval(fail_jobs_script,
                 {keys.key("active"), keys.key("delayed"), keys.key("failed"),
                  keys.key("stalled"), keys.key("wait"), keys.key("paused"),
                  keys.key("meta-paused"), keys.key("priority")},
                 a),
      "fail_jobs");
  const auto& arr = array_of(r.get(), "fail_jobs", failed.size());
  std::vector<failure_outcome> out;
  out.reserve(failed.size());
  for (std::size_t i = 0; i < failed.size(); ++i) {
    switch (reply_integer(arr.element[i])) {
    case 0:
      out.push_back(failure_outcome::retried);
      break;
    case 1:
      out.push_back(failure_outcome::failed);
      break;
    default:
      out.push_back(failure_outcome::lock_lost);
    }
  }
  return out;
}

std::int64_t promote_delayed(redis_client& redis, const queue_keys& keys,
                             std::int64_t now_ms) {
  auto r = redis.eval(
      promote_delayed_script,
      {keys.key("delayed"), keys.key("wait"), keys.key("paused"),
       keys.key("meta-paused"), keys.key("priority")},
      {keys.base(), std::to_string(now_ms), std::string(producer_token)});
  return reply_integer(checked(std::move(r), "promote_delayed").get());
}

std::vector<bool>
have_jobs(redis_client& redis, const queue_keys& keys,
          const std::vector<std::pair<std::string, std::string>>& jobs) {
  std::vector<redis_command> cmds;
  cmds.reserve(jobs.size());
  for (const auto& [job_id, post_id] : jobs)
    cmds.push_back({"HGET", keys.base() + job_id, "data"});
  auto replies = redis.pipeline(cmds);
  std::vector<bool> out;
  out.reserve(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (reply_is_error(replies[i].get()))
      throw redis_reply_error("have_jobs: " + reply_string(replies[i].get()));
    // postd writes the data itself (enqueue's job_data): "postId":"<uuid>".
    const auto data = reply_string(replies[i].get());
    out.push_back(data.find(R"("postId":")" + jobs[i].second + '"') !=
                  std::string::npos);
  }
  return out;
}

job_counts count_jobs(redis_client& redis, const queue_keys& keys) {
  auto replies = redis.pipeline({{"MULTI"},
                                 {"LLEN", keys.key("wait")},
                                 {"LLEN", keys.key("active")},
                                 {"ZCARD", keys.key("completed")},
                                 {"ZCARD", keys.key("failed")},
                                 {"ZCARD", keys.key("delayed")},
                                 {"LLEN", keys.key("paused")},
                                 {"EXEC"}});
  for (const auto& r : replies)
    if (reply_is_error(r.get()))
      throw redis_reply_error("count_jobs: " + reply_string(r.get()));
  const auto& arr = array_of(replies.back().get(), "count_jobs", 6);
  job_counts c;
  c.waiting = reply_integer(arr.element[0]);
  c.active = reply_integer(arr.element[1]);
  c.completed = reply_integer(arr.element[2]);
  c.failed = reply_integer(arr.element[3]);
  c.delayed = reply_integer(arr.element[4]);
  c.paused = reply_integer(arr.element[5]);
  return c;
}

std::optional<job_info> get_job(redis_client& redis, const queue_keys& keys,
                                const std::string& job_id) {
  auto r = checked(
      redis.eval(get_job_script,
                 {keys.base() + job_id, keys.key("completed"),
                  keys.key("failed"), keys.key("delayed"), keys.key("active"),
                  keys.key("wait"), keys.key("paused")},
                 {job_id}),
      "get_job");
  if (r->type == REDIS_REPLY_NIL)
    return std::nullopt;
  const auto& arr = array_of(r.get(), "get_job", 2);
  const auto& fields = array_of(arr.element[1], "get_job");
  job_info info;
  info.id = job_id;
  info.state = reply_string(arr.element[0]);
  for (std::size_t i = 0; i + 1 < fields.elements; i += 2) {
    const std::string name = reply_string(fields.element[i]);
    const redisReply* value = fields.element[i + 1];
    if (name == "data")
      info.data = reply_string(value);
    else if (name == "returnvalue")
      info.return_value = reply_string(value);
    else if (name == "failedReason")
      info.failed_reason = reply_string(value);
    else if (name == "attemptsMade")
      info.attempts_made = static_cast<int>(lenient_integer(value));
    else if (name == "timestamp")
      info.timestamp_ms = lenient_integer(value);
  }
  return info;
}

stalled_jobs recover_stalled(redis_client& redis, const queue_keys& keys,
                             int max_stalled_count,
                             std::chrono::milliseconds interval,
                             std::int64_t keep_failed) {
  auto r = checked(
      redis.eval(recover_stalled_script,
                 {keys.key("stalled"), keys.key("wait"), keys.key("active"),
                  keys.key("failed"), keys.key("stalled-check"),
                  keys.key("meta-paused"), keys.key("paused")},
                 {std::to_string(max_stalled_count), keys.base(),
                  std::to_string(interval.count()),
                  std::to_string(keep_failed)}),
      "recover_stalled");
  const auto& arr = array_of(r.get(), "recover_stalled", 2);
  stalled_jobs out;
  out.failed = strings_of(arr.element[0], "recover_stalled");
  out.requeued = strings_of(arr.element[1], "recover_stalled");
  return out;
}

namespace {

// The value of `field` in INFO's "field:value\r\n" lines, or nullopt.
std::optional<std::string_view> info_field(std::string_view info,
                                           std::string_view field) {
  std::size_t at = 0;
  while (at < info.size()) {
    auto end = info.find('\n', at);
    if (end == std::string_view::npos)
      end = info.size();
    auto line = info.substr(at, end - at);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.size() > field.size() && line[field.size()] == ':' &&
        line.substr(0, field.size()) == field)
      return line.substr(field.size() + 1);
    at = end + 1;
  }
  return std::nullopt;
}

} // namespace

std::vector<std::string> durability_warnings(std::string_view info) {
  std::vector<std::string> out;
  if (auto policy = info_field(info, "maxmemory_policy");
      policy && *policy != "noeviction")
    out.push_back("Redis maxmemory-policy is " + std::string(*policy) +
                  ", not noeviction: when Redis is full it evicts keys, "
                  "queued jobs among them");
  if (auto aof = info_field(info, "aof_enabled"); aof && *aof != "1")
    out.emplace_back("Redis runs without AOF (appendonly no): a Redis crash "
                     "loses jobs acknowledged since its last snapshot");
  return out;
}

replication_state parse_replication(std::string_view info) {
  replication_state out;
  if (auto role = info_field(info, "role"))
    out.role = *role;
  auto number = [](std::string_view text) {
    std::int64_t v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
  };
  const auto master_offset =
      number(info_field(info, "master_repl_offset").value_or(""));
  for (int i = 0;; ++i) {
    // slave<i>:ip=127.0.0.1,port=6380,state=online,offset=1234,lag=0
    auto line = info_field(info, "slave" + std::to_string(i));
    if (!line)
      break;
    core::replica_state r;
    std::string_view ip;
    std::string_view port;
    for (std::string_view rest = *line; !rest.empty();) {
      auto comma = rest.find(',');
      auto pair = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{}
                                             : rest.substr(comma + 1);
      auto eq = pair.find('=');
      if (eq == std::string_view::npos)
        continue;
      auto key = pair.substr(0, eq);
      auto value = pair.substr(eq + 1);
      if (key == "ip")
        ip = value;
      else if (key == "port")
        port = value;
      else if (key == "state")
        r.state = value;
      else if (key == "offset")
        r.lag_bytes = std::max<std::int64_t>(0, master_offset - number(value));
      else if (key == "lag")
        r.lag_seconds = number(value);
    }
    r.address = std::string(ip) + ":" + std::string(port);
    out.replicas.push_back(std::move(r));
  }
  return out;
}

replication_state replication(redis_client& redis) {
  auto r = checked(redis.command({"INFO", "replication"}), "INFO");
  if (r->type != REDIS_REPLY_STRING)
    return {};
  return parse_replication(std::string_view(r->str, r->len));
}

std::vector<std::string> durability_warnings(redis_client& redis) {
  auto r = checked(redis.command({"INFO"}), "INFO");
  if (r->type != REDIS_REPLY_STRING)
    return {};
  return durability_warnings(std::string_view(r->str, r->len));
}

} // namespace postd::persistence
