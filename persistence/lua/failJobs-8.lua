--[[
  Fails jobs the worker holds: records the attempt and its reason, then each
  job is retried (after its backoff, or at once) while attempts remain, else
  moves to failed, kept or removed as its removeOnFail says.

  Input:
    KEYS[1] active  KEYS[2] delayed  KEYS[3] failed  KEYS[4] stalled
    KEYS[5] wait  KEYS[6] paused  KEYS[7] meta-paused  KEYS[8] priority
    ARGV[1] key base  ARGV[2] token  ARGV[3] backoff ms  ARGV[4] keep failed
    then per job: id, reason

  Output:
    per job: 0 retried, 1 failed, 2 lock lost (left untouched)

  Follows Bull 4.16.5's Job#moveToFailed for many jobs: saveStacktrace-1.lua,
  then moveToDelayed-4.lua, retryJob-7.lua or moveToFinished-9.lua (failed).
]]
--- @include "includes/rcall"
--- @include "includes/badType"
--- @include "includes/decodeTable"
--- @include "includes/getTargetQueueList"
--- @include "includes/keepCount"
--- @include "includes/pushReadyJob"
--- @include "includes/removeJob"
--- @include "includes/serverTimeMs"
--- @include "includes/trim"

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
-- Bull keeps a JSON array of traces; ours are the failure reasons.
local function traces(jobKey, reason)
  local list = decodeTable(rcall("HGET", jobKey, "stacktrace"))
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

local base, token = ARGV[1], ARGV[2]
local backoffDefault, keepDefault = tonumber(ARGV[3]), tonumber(ARGV[4])
local now = serverTimeMs()
local out = {}
for i = 5, #ARGV, 2 do
  local jobId, reason = ARGV[i], ARGV[i + 1]
  local jobKey = base .. jobId
  if not release(jobKey, jobId, token) then
    out[#out + 1] = 2
  else
    local opts = decodeTable(rcall("HGET", jobKey, "opts"))
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
        local target = getTargetQueueList(KEYS[7], KEYS[5], KEYS[6])
        pushReadyJob(jobKey, jobId, target, KEYS[8], KEYS[5], token)
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
