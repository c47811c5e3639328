#include "persistence/bull_queue.hpp"

#include <array>
#include <charconv>
#include <cstdio>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

namespace postd::persistence {

// Each script is one atomic state change in Bull 4's layout (npm bull 4.16,
// lib/commands/*.lua). Every mutating script checks the types of its keys
// before its first write, so a wrongly typed key fails it cleanly instead of
// half-way. Job hashes are addressed as ARGV base .. id, as Bull does. A Lua
// number handed to redis.call is formatted with "%.17g" at every call, so
// the busy paths hand over strings made once; numbers are only formatted
// where they stay below 1e14 (ids, ms), which %d renders exactly.

namespace {

// What every script below starts with. Functions a script does not use cost
// next to nothing; one copy keeps them alike.
constexpr std::string_view bull_prelude = R"lua(
local rcall = redis.call
-- Why `key` cannot be used as a `want` (a Redis type name), or nil. Every
-- mutating script checks its keys before its first write, so a wrongly typed
-- key fails it cleanly instead of half-way.
local function badType(key, want)
  local t = rcall("TYPE", key)["ok"]
  if t ~= "none" and t ~= want then return key .. " holds a " .. t end
end
-- PUBLISH costs a call per job. With nobody listening (no subscriber of the
-- channel, no pattern subscription at all) it is skipped: no client can tell.
local function listened(channel)
  return rcall("PUBSUB", "NUMPAT") > 0 or
         rcall("PUBSUB", "NUMSUB", channel)[2] > 0
end
-- rcall(verb, [key,] list...) in parts: Lua's unpack has a limit.
local function chunks(verb, key, list)
  for from = 1, #list, 5000 do
    local to = math.min(from + 4999, #list)
    if key then rcall(verb, key, unpack(list, from, to))
    else rcall(verb, unpack(list, from, to)) end
  end
end
)lua";

lua_script bull_script(std::string_view body) {
  return lua_script{std::string(bull_prelude) + std::string(body)};
}

} // namespace

// Bull's addJob-6 for a batch, plus the idempotency key and the bound. Calls
// are batched wherever the result stays Bull's (a redis.call costs 2-3 us).
//   KEYS[1] wait  KEYS[2] paused  KEYS[3] meta-paused  KEYS[4] id
//   KEYS[5..] idempotency keys
//   ARGV[1] key base  ARGV[2] job name  ARGV[3] max waiting  ARGV[4] token
//   then per job: data, opts up to `"timestamp":`, timestamp ("" = now),
//   index in KEYS of its idempotency key (0 = none)
// Returns per job: "added"|"duplicate"|"full", job id ("" when full).
const lua_script add_jobs_script = bull_script(R"lua(
-- (A wrongly typed idempotency key fails the first pass, before any write.)
local bad = badType(KEYS[1], "list") or badType(KEYS[2], "list")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

local n = (#ARGV - 4) / 4
local function idemKey(j)
  local index = tonumber(ARGV[4 * j + 4])
  if index > 0 then return KEYS[index] end
end

-- Decide every job's fate first, so that one INCRBY allocates the ids (the
-- same ids one INCR per job would give).
local room = tonumber(ARGV[3]) - rcall("LLEN", KEYS[1]) - rcall("LLEN", KEYS[2])
local ordinal, dupOf, claimed, added = {}, {}, {}, 0
for j = 1, n do
  local key = idemKey(j)
  local first = key and (claimed[key] or rcall("GET", key))
  if first then
    dupOf[j] = first -- a stored id, or the ordinal of a job of this batch
  elseif added < room then
    added = added + 1
    ordinal[j] = added
    if key then claimed[key] = added end
  end
end
local firstId = 0
if added > 0 then firstId = rcall("INCRBY", KEYS[4], added) - added + 1 end

local target = KEYS[1]
if rcall("EXISTS", KEYS[3]) == 1 then target = KEYS[2] end
local now
local out, pushed = {}, {}
for j = 1, n do
  if ordinal[j] then
    local jobId = string.format("%d", firstId + ordinal[j] - 1)
    local ts = ARGV[4 * j + 3]
    if ts == "" then
      if not now then
        local t = rcall("TIME")
        now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
      end
      ts = string.format("%d", now)
    end
    rcall("HSET", ARGV[1] .. jobId, "name", ARGV[2], "data", ARGV[4 * j + 1],
          "opts", ARGV[4 * j + 2] .. ts .. "}", "timestamp", ts, "delay", "0",
          "priority", "0")
    local key = idemKey(j)
    if key then rcall("SET", key, jobId, "EX", 86400) end
    pushed[#pushed + 1] = jobId
    out[#out + 1] = "added"
    out[#out + 1] = jobId
  elseif dupOf[j] then
    local first = dupOf[j]
    if type(first) == "number" then
      first = string.format("%d", firstId + first - 1)
    end
    out[#out + 1] = "duplicate"
    out[#out + 1] = first
  else
    out[#out + 1] = "full"
    out[#out + 1] = ""
  end
end
for from = 1, #pushed, 5000 do
  rcall("LPUSH", target, unpack(pushed, from, math.min(from + 4999, #pushed)))
end
local channel = KEYS[1] .. "ing@" .. ARGV[4]
if #pushed > 0 and listened(channel) then
  for _, jobId in ipairs(pushed) do rcall("PUBLISH", channel, jobId) end
end
return out
)lua");

// Bull's moveToActive-8 for up to ARGV[4] jobs (minus its rate limiter).
//   KEYS[1] wait  KEYS[2] active  KEYS[3] priority  KEYS[4] stalled
//   ARGV[1] key base  ARGV[2] token  ARGV[3] lock ms  ARGV[4] max
//   ARGV[5] id BRPOPLPUSH already moved to active ("" = none)
// Returns per job: {id, name, data, opts, attemptsMade, timestamp}.
const lua_script take_jobs_script = bull_script(R"lua(
local bad = badType(KEYS[1], "list") or badType(KEYS[2], "list") or
            badType(KEYS[3], "zset") or badType(KEYS[4], "set")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

local base, token, lockMs = ARGV[1], ARGV[2], ARGV[3]
local ids = {}
if ARGV[5] ~= "" and rcall("LPOS", KEYS[2], ARGV[5]) then ids[1] = ARGV[5] end
-- What RPOPLPUSH one by one would do, in three calls: the oldest jobs (the
-- right end of wait) go onto active, the oldest deepest.
local want = tonumber(ARGV[4]) - #ids
if want > 0 then
  local right = rcall("LRANGE", KEYS[1], -want, -1)
  if #right > 0 then
    rcall("LTRIM", KEYS[1], 0, -(#right + 1))
    for i = #right, 1, -1 do ids[#ids + 1] = right[i] end
    local first = #ids - #right + 1
    for from = first, #ids, 5000 do
      rcall("LPUSH", KEYS[2], unpack(ids, from, math.min(from + 4999, #ids)))
    end
  end
end

-- Numbers reach Redis as strings made once: a Lua number argument is
-- formatted with "%.14g" at every call.
local t = rcall("TIME")
local now = string.format("%d", tonumber(t[1]) * 1000 +
                                math.floor(tonumber(t[2]) / 1000))
local out, taken = {}, {}
for _, jobId in ipairs(ids) do
  local jobKey = base .. jobId
  local f = redis.pcall("HMGET", jobKey, "name", "data", "opts",
                        "attemptsMade", "timestamp")
  if f["err"] or (not f[1] and not f[2] and not f[3] and
                  rcall("EXISTS", jobKey) == 0) then
    -- removed while it waited: nothing to process
    rcall("LREM", KEYS[2], 1, jobId)
  else
    rcall("SET", jobKey .. ":lock", token, "PX", lockMs)
    rcall("HSET", jobKey, "processedOn", now)
    taken[#taken + 1] = jobId
    out[#out + 1] = {jobId, f[1] or "", f[2] or "", f[3] or "", f[4] or "0",
                     f[5] or "0"}
  end
end
for from = 1, #taken, 5000 do
  local to = math.min(from + 4999, #taken)
  rcall("SREM", KEYS[4], unpack(taken, from, to))
  rcall("ZREM", KEYS[3], unpack(taken, from, to))
end
local channel = KEYS[2] .. "@" .. token
if #taken > 0 and listened(channel) then
  for _, jobId in ipairs(taken) do rcall("PUBLISH", channel, jobId) end
end
return out
)lua");

// Gives back jobs a worker took but will not finish (shutdown, or locking
// failed after BRPOPLPUSH): what Bull's stalled check does once their locks
// expire, at once. Each job whose lock is ours (or gone) leaves active for
// the right end of wait (or paused), next in line again, in taken order.
//   KEYS[1] wait  KEYS[2] active  KEYS[3] paused  KEYS[4] meta-paused
//   KEYS[5] stalled  ARGV[1] key base  ARGV[2] token  ARGV[3..] ids
// Returns the ids given back.
const lua_script release_jobs_script = bull_script(R"lua(
local target = KEYS[1]
if rcall("EXISTS", KEYS[4]) == 1 then target = KEYS[3] end
local out = {}
for i = #ARGV, 3, -1 do -- the oldest ends rightmost
  local jobId = ARGV[i]
  local lockKey = ARGV[1] .. jobId .. ":lock"
  local lock = rcall("GET", lockKey)
  if (not lock or lock == ARGV[2]) and
     rcall("LREM", KEYS[2], -1, jobId) > 0 then
    rcall("RPUSH", target, jobId)
    if lock then rcall("DEL", lockKey) end
    rcall("SREM", KEYS[5], jobId)
    out[#out + 1] = jobId
  end
end
return out
)lua");

// Bull's extendLock-2 for many jobs.
//   KEYS[1] stalled  KEYS[2..] the jobs' lock keys
//   ARGV[1] token  ARGV[2] lock ms  ARGV[3..] the jobs' ids
// Returns the ids whose lock `token` no longer holds.
const lua_script extend_locks_script = bull_script(R"lua(
local lost, renewed = {}, {}
for i = 2, #KEYS do
  if rcall("GET", KEYS[i]) == ARGV[1] then
    rcall("SET", KEYS[i], ARGV[1], "PX", ARGV[2])
    renewed[#renewed + 1] = ARGV[i + 1]
  else
    lost[#lost + 1] = ARGV[i + 1]
  end
end
for from = 1, #renewed, 5000 do
  rcall("SREM", KEYS[1], unpack(renewed, from, math.min(from + 4999, #renewed)))
end
return lost
)lua");

// Bull's moveToFinished-9 (completed) for many jobs, with a redis.call per
// job only where Bull's state needs one (the job's own hash): the locks are
// read with one MGET and released with one DEL, the ids leave `active` in one
// rewrite of the list, trimmed jobs go in one DEL. A job we hold locked in
// `active` has its hash (Bull's removeJob refuses locked jobs), so it is not
// looked up again.
//   KEYS[1] active  KEYS[2] completed  KEYS[3] stalled
//   ARGV[1] key base  ARGV[2] token
//   then per job: id, returnvalue, how many completed jobs to keep (< 0: all,
//   0: none, so its hash goes at once: Bull's removeOnComplete)
// Returns the ids whose lock was lost (left untouched).
const lua_script complete_jobs_script = bull_script(R"lua(
local bad = badType(KEYS[1], "list") or badType(KEYS[2], "zset") or
            badType(KEYS[3], "set")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

local base, token = ARGV[1], ARGV[2]
local ids, rvs, keepOf, lockKeys = {}, {}, {}, {}
for i = 3, #ARGV, 3 do
  local jobId = ARGV[i]
  ids[#ids + 1] = jobId
  rvs[#ids] = ARGV[i + 1]
  keepOf[#ids] = tonumber(ARGV[i + 2])
  lockKeys[#ids] = base .. jobId .. ":lock"
end

-- Our locks: one MGET, one DEL.
local locks = {}
for from = 1, #lockKeys, 5000 do
  local part = rcall("MGET", unpack(lockKeys, from,
                                    math.min(from + 4999, #lockKeys)))
  for k = 1, #part do locks[from + k - 1] = part[k] end
end
local lost, ours, released, wanted = {}, {}, {}, 0
for j = 1, #ids do
  if locks[j] == token then
    released[#released + 1] = lockKeys[j]
    ours[ids[j]] = (ours[ids[j]] or 0) + 1
    wanted = wanted + 1
  end
end
chunks("DEL", nil, released)

-- Each id leaves active once, from the right (what LREM id -1 would do).
-- A take pushes its batch onto the left end, so jobs taken earlier sit
-- further right, and they are the ones that finish first: only the right
-- end of active that holds all our ids is read (its length doubled until
-- it does, or the whole list) and written back without them, instead of an
-- LREM per job or a rewrite of the whole list shared with other workers.
local removed = {}
if wanted > 0 then
  local len = rcall("LLEN", KEYS[1])
  local span, tail, drop = math.min(len, 2 * wanted)
  while true do
    tail = rcall("LRANGE", KEYS[1], -span, -1)
    local left, found = {}, 0
    for id, n in pairs(ours) do left[id] = n end
    drop = {}
    for k = #tail, 1, -1 do
      local id = tail[k]
      if left[id] and left[id] > 0 then
        left[id] = left[id] - 1
        found = found + 1
        drop[k] = true
      end
    end
    if found == wanted or #tail >= len then break end
    span = math.min(len, 2 * span)
  end
  local kept = {}
  for k = 1, #tail do
    if drop[k] then removed[tail[k]] = true else kept[#kept + 1] = tail[k] end
  end
  rcall("LTRIM", KEYS[1], 0, -(#tail + 1))
  chunks("RPUSH", KEYS[1], kept)
end

local t = rcall("TIME")
local now = string.format("%d", tonumber(t[1]) * 1000 +
                                math.floor(tonumber(t[2]) / 1000))
local scored, keeps, finished, gone, srem = {}, {}, {}, {}, {}
for j = 1, #ids do
  local jobId = ids[j]
  if locks[j] ~= token or not removed[jobId] then
    lost[#lost + 1] = jobId
  else
    local jobKey = base .. jobId
    local keep = keepOf[j]
    if keep == 0 then
      gone[#gone + 1] = jobKey
      gone[#gone + 1] = jobKey .. ":logs"
    else
      rcall("HSET", jobKey, "returnvalue", rvs[j], "finishedOn", now)
      scored[#scored + 1] = now
      scored[#scored + 1] = jobId
      keeps[keep] = true
    end
    srem[#srem + 1] = jobId
    finished[#finished + 1] = j
  end
end
chunks("SREM", KEYS[3], srem)
chunks("ZADD", KEYS[2], scored)
-- Trim once per batch (Bull trims after each job: the same end state).
for keep in pairs(keeps) do
  if keep > 0 and rcall("ZCARD", KEYS[2]) > keep then
    for _, id in ipairs(rcall("ZREVRANGE", KEYS[2], keep, -1)) do
      gone[#gone + 1] = base .. id
      gone[#gone + 1] = base .. id .. ":logs"
    end
    rcall("ZREMRANGEBYRANK", KEYS[2], 0, -(keep + 1))
  end
end
chunks("DEL", nil, gone)
if #finished > 0 and listened(KEYS[2]) then
  for _, j in ipairs(finished) do
    rcall("PUBLISH", KEYS[2], cjson.encode({jobId = ids[j], val = rvs[j]}))
  end
end
return lost
)lua");

// Bull's Job#moveToFailed: _saveAttempt, then moveToDelayed-4, retryJob or
// moveToFinished-9 (failed), for many jobs.
//   KEYS[1] active  KEYS[2] delayed  KEYS[3] failed  KEYS[4] stalled
//   KEYS[5] wait  KEYS[6] paused  KEYS[7] meta-paused  KEYS[8] priority
//   ARGV[1] key base  ARGV[2] token  ARGV[3] backoff ms  ARGV[4] keep failed
//   then per job: id, reason
// Returns per job: 0 retried, 1 failed, 2 lock lost (left untouched).
const lua_script fail_jobs_script = bull_script(R"lua(
local bad = badType(KEYS[1], "list") or badType(KEYS[2], "zset") or
            badType(KEYS[3], "zset") or badType(KEYS[4], "set") or
            badType(KEYS[5], "list") or badType(KEYS[6], "list") or
            badType(KEYS[8], "zset")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

local function release(jobKey, jobId, token)
  local lockKey = jobKey .. ":lock"
  if rcall("GET", lockKey) ~= token then return false end
  rcall("DEL", lockKey)
  rcall("SREM", KEYS[4], jobId)
  if rcall("LREM", KEYS[1], -1, jobId) == 0 then return false end
  return rcall("TYPE", jobKey)["ok"] == "hash"
end
local function decode(raw)
  local ok, v = pcall(cjson.decode, raw or "")
  if ok and type(v) == "table" then return v end
  return {}
end
-- Bull keeps a JSON array of traces; ours are the failure reasons.
local function traces(jobKey, reason)
  local list = decode(rcall("HGET", jobKey, "stacktrace"))
  list[#list + 1] = reason
  local ok, json = pcall(cjson.encode, list)
  if ok then return json end
  return cjson.encode({reason})
end
-- backoffs.js: a number is fixed; exponential is round((2^n - 1) * delay).
local function backoff(opt, made, default)
  if type(opt) == "number" then return opt end
  if type(opt) == "table" and opt["type"] == "fixed" then
    return tonumber(opt["delay"]) or 0
  end
  local base = default
  if type(opt) == "table" and opt["type"] == "exponential" then
    base = tonumber(opt["delay"]) or 0
  end
  return math.floor((2 ^ made - 1) * base + 0.5)
end
local function keepCount(opt, default)
  if opt == true then return 0 end
  if type(opt) == "number" then return opt end
  if type(opt) == "table" and type(opt["count"]) == "number" then
    return opt["count"]
  end
  return default
end
local function removeJob(jobKey) rcall("DEL", jobKey, jobKey .. ":logs") end
local function trim(setKey, keep, base)
  if rcall("ZCARD", setKey) <= keep then return end
  for _, id in ipairs(rcall("ZREVRANGE", setKey, keep, -1)) do
    removeJob(base .. id)
  end
  rcall("ZREMRANGEBYRANK", setKey, 0, -(keep + 1))
end
-- Bull's addJobWithPriority, for jobs of old producers.
local function addWithPriority(priorityKey, priority, jobId, target)
  rcall("ZADD", priorityKey, priority, jobId)
  local count = rcall("ZCOUNT", priorityKey, 0, priority)
  local id = rcall("LINDEX", target, rcall("LLEN", target) - (count - 1))
  if id then
    rcall("LINSERT", target, "BEFORE", id, jobId)
  else
    rcall("RPUSH", target, jobId)
  end
end

local base, token = ARGV[1], ARGV[2]
local backoffDefault, keepDefault = tonumber(ARGV[3]), tonumber(ARGV[4])
local t = rcall("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 5, #ARGV, 2 do
  local jobId, reason = ARGV[i], ARGV[i + 1]
  local jobKey = base .. jobId
  if not release(jobKey, jobId, token) then
    out[#out + 1] = 2
  else
    local opts = decode(rcall("HGET", jobKey, "opts"))
    local made = rcall("HINCRBY", jobKey, "attemptsMade", 1)
    rcall("HSET", jobKey, "failedReason", reason, "stacktrace",
          traces(jobKey, reason))
    if made < (tonumber(opts["attempts"]) or 1) then
      local delay = backoff(opts["backoff"], made, backoffDefault)
      if delay > 0 then
        local due = now + delay
        -- scripts.js moveToDelayedArgs: due * 0x1000 + (jobId & 0xfff)
        rcall("ZADD", KEYS[2], due * 0x1000 + (tonumber(jobId) or 0) % 0x1000,
              jobId)
        rcall("HSET", jobKey, "delay", delay)
        rcall("PUBLISH", KEYS[2], due)
      else
        -- retryJob-7
        local target = KEYS[5]
        if rcall("EXISTS", KEYS[7]) == 1 then target = KEYS[6] end
        local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
        if priority == 0 then
          rcall("LPUSH", target, jobId)
        else
          addWithPriority(KEYS[8], priority, jobId, target)
        end
        rcall("PUBLISH", KEYS[5] .. "ing@" .. token, jobId)
      end
      out[#out + 1] = 0
    else
      local keep = keepCount(opts["removeOnFail"], keepDefault)
      if keep == 0 then
        removeJob(jobKey)
      else
        rcall("ZADD", KEYS[3], now, jobId)
        rcall("HSET", jobKey, "finishedOn", now)
        if keep > 0 then trim(KEYS[3], keep, base) end
      end
      rcall("PUBLISH", KEYS[3], cjson.encode({jobId = jobId, val = reason}))
      out[#out + 1] = 1
    end
  end
end
return out
)lua");

// Bull's updateDelaySet-6.
//   KEYS[1] delayed  KEYS[2] wait  KEYS[3] paused  KEYS[4] meta-paused
//   KEYS[5] priority
//   ARGV[1] key base  ARGV[2] now ms (<= 0: server clock)  ARGV[3] token
// Returns how many jobs moved.
const lua_script promote_delayed_script = bull_script(R"lua(
local bad = badType(KEYS[1], "zset") or badType(KEYS[2], "list") or
            badType(KEYS[3], "list") or badType(KEYS[5], "zset")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

-- Bull's addJobWithPriority, for jobs of old producers.
local function addWithPriority(priorityKey, priority, jobId, target)
  rcall("ZADD", priorityKey, priority, jobId)
  local count = rcall("ZCOUNT", priorityKey, 0, priority)
  local id = rcall("LINDEX", target, rcall("LLEN", target) - (count - 1))
  if id then
    rcall("LINSERT", target, "BEFORE", id, jobId)
  else
    rcall("RPUSH", target, jobId)
  end
end

local now = tonumber(ARGV[2])
if now <= 0 then
  local t = rcall("TIME")
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local due = rcall("ZRANGEBYSCORE", KEYS[1], 0, (now + 1) * 0x1000 - 1,
                  "LIMIT", 0, 1000)
if #due == 0 then return 0 end
rcall("ZREM", KEYS[1], unpack(due))
local target = KEYS[2]
if rcall("EXISTS", KEYS[4]) == 1 then target = KEYS[3] end
local moved = 0
for _, jobId in ipairs(due) do
  local jobKey = ARGV[1] .. jobId
  if rcall("TYPE", jobKey)["ok"] == "hash" then
    local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
    if priority == 0 then
      rcall("LPUSH", target, jobId)
    else
      addWithPriority(KEYS[5], priority, jobId, target)
    end
    rcall("PUBLISH", KEYS[2] .. "ing@" .. ARGV[3], jobId)
    rcall("HSET", jobKey, "delay", 0)
    moved = moved + 1
  end
end
return moved
)lua");

// Job.fromId + Job#getState (same order of checks) in one consistent read.
//   KEYS[1] job hash  KEYS[2] completed  KEYS[3] failed  KEYS[4] delayed
//   KEYS[5] active  KEYS[6] wait  KEYS[7] paused  ARGV[1] id
// Returns nil, or {state, {field, value, ...}}.
const lua_script get_job_script = bull_script(R"lua(
if rcall("TYPE", KEYS[1])["ok"] ~= "hash" then return false end
local id = ARGV[1]
local state = "stuck"
if rcall("ZSCORE", KEYS[2], id) then state = "completed"
elseif rcall("ZSCORE", KEYS[3], id) then state = "failed"
elseif rcall("ZSCORE", KEYS[4], id) then state = "delayed"
elseif rcall("LPOS", KEYS[5], id) then state = "active"
elseif rcall("LPOS", KEYS[6], id) then state = "waiting"
elseif rcall("LPOS", KEYS[7], id) then state = "paused"
end
return {state, rcall("HGETALL", KEYS[1])}
)lua");

// Bull's moveStalledJobsToWait-7.
//   KEYS[1] stalled  KEYS[2] wait  KEYS[3] active  KEYS[4] failed
//   KEYS[5] stalled-check  KEYS[6] meta-paused  KEYS[7] paused
//   ARGV[1] max stalled count  ARGV[2] key base  ARGV[3] interval ms
//   ARGV[4] keep failed
// Returns {failed ids, requeued ids}.
const lua_script recover_stalled_script = bull_script(R"lua(
local bad = badType(KEYS[1], "set") or badType(KEYS[2], "list") or
            badType(KEYS[3], "list") or badType(KEYS[4], "zset") or
            badType(KEYS[7], "list")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end
if rcall("EXISTS", KEYS[5]) == 1 then return {{}, {}} end

local function keepCount(opt, default)
  if opt == true then return 0 end
  if type(opt) == "number" then return opt end
  if type(opt) == "table" and type(opt["count"]) == "number" then
    return opt["count"]
  end
  return default
end
local function removeJob(jobKey) rcall("DEL", jobKey, jobKey .. ":logs") end
local function trim(setKey, keep, base)
  if rcall("ZCARD", setKey) <= keep then return end
  for _, id in ipairs(rcall("ZREVRANGE", setKey, keep, -1)) do
    removeJob(base .. id)
  end
  rcall("ZREMRANGEBYRANK", setKey, 0, -(keep + 1))
end

local base = ARGV[2]
local t = rcall("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
rcall("SET", KEYS[5], now, "PX", ARGV[3])

local failed, requeued = {}, {}
local stalling = rcall("SMEMBERS", KEYS[1])
if #stalling > 0 then
  rcall("DEL", KEYS[1])
  local dst = KEYS[2]
  if rcall("EXISTS", KEYS[6]) == 1 then dst = KEYS[7] end
  local maxStalled = tonumber(ARGV[1])
  for _, jobId in ipairs(stalling) do
    local jobKey = base .. jobId
    if rcall("EXISTS", jobKey .. ":lock") == 0 and
       rcall("LREM", KEYS[3], 1, jobId) > 0 and
       rcall("TYPE", jobKey)["ok"] == "hash" then
      if rcall("HINCRBY", jobKey, "stalledCounter", 1) > maxStalled then
        local ok, opts = pcall(cjson.decode, rcall("HGET", jobKey, "opts") or "")
        if not (ok and type(opts) == "table") then opts = {} end
        local keep = keepCount(opts["removeOnFail"], tonumber(ARGV[4]))
        if keep == 0 then
          removeJob(jobKey)
        else
          rcall("ZADD", KEYS[4], now, jobId)
          rcall("HSET", jobKey, "failedReason",
                "job stalled more than allowable limit", "finishedOn", now)
          if keep > 0 then trim(KEYS[4], keep, base) end
        end
        rcall("PUBLISH", KEYS[4], cjson.encode({jobId = jobId,
              val = "job stalled more than maxStalledCount"}))
        failed[#failed + 1] = jobId
      else
        rcall("RPUSH", dst, jobId)
        rcall("PUBLISH", KEYS[1] .. "@", jobId)
        requeued[#requeued + 1] = jobId
      end
    end
  end
end

-- Mark every active job: the next check takes those still unlocked.
local active = rcall("LRANGE", KEYS[3], 0, -1)
for from = 1, #active, 5000 do
  rcall("SADD", KEYS[1], unpack(active, from, math.min(from + 4999, #active)))
end
return {failed, requeued}
)lua");

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
                                 std::int64_t max_waiting) {
  if (jobs.empty())
    return {};
  std::vector<std::string> k{keys.key("wait"), keys.key("paused"),
                             keys.key("meta-paused"), keys.key("id")};
  std::vector<std::string> a{keys.base(), std::string(create_post_job_name),
                             std::to_string(max_waiting),
                             std::string(producer_token)};
  a.reserve(a.size() + 4 * jobs.size());
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

std::vector<std::string> release_jobs(redis_client& redis,
                                      const queue_keys& keys,
                                      const std::vector<std::string>& job_ids,
                                      const std::string& token) {
  if (job_ids.empty())
    return {};
  std::vector<std::string> a{keys.base(), token};
  a.insert(a.end(), job_ids.begin(), job_ids.end());
  auto r = checked(
      redis.eval(release_jobs_script,
                 {keys.key("wait"), keys.key("active"), keys.key("paused"),
                  keys.key("meta-paused"), keys.key("stalled")},
                 a),
      "release_jobs");
  const auto& arr = array_of(r.get(), "release_jobs");
  std::vector<std::string> out;
  for (std::size_t i = 0; i < arr.elements; ++i)
    out.push_back(reply_string(arr.element[i]));
  return out;
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
  const auto& arr = array_of(r.get(), "extend_locks");
  std::vector<std::string> lost;
  for (std::size_t i = 0; i < arr.elements; ++i)
    lost.push_back(reply_string(arr.element[i]));
  return lost;
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
  const auto& arr = array_of(r.get(), "complete_jobs");
  std::vector<std::string> lost;
  for (std::size_t i = 0; i < arr.elements; ++i)
    lost.push_back(reply_string(arr.element[i]));
  return lost;
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
  const auto& failed = array_of(arr.element[0], "recover_stalled");
  for (std::size_t i = 0; i < failed.elements; ++i)
    out.failed.push_back(reply_string(failed.element[i]));
  const auto& requeued = array_of(arr.element[1], "recover_stalled");
  for (std::size_t i = 0; i < requeued.elements; ++i)
    out.requeued.push_back(reply_string(requeued.element[i]));
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
    out.push_back("Redis runs without AOF (appendonly no): a Redis crash "
                  "loses jobs acknowledged since its last snapshot");
  return out;
}

std::vector<std::string> durability_warnings(redis_client& redis) {
  auto r = checked(redis.command({"INFO"}), "INFO");
  if (r->type != REDIS_REPLY_STRING)
    return {};
  return durability_warnings(std::string_view(r->str, r->len));
}

} // namespace postd::persistence
