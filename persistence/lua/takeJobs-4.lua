--[[
  Takes up to ARGV[4] jobs from the right end of wait onto active, each
  locked for the worker, and returns their fields.

  Input:
    KEYS[1] wait  KEYS[2] active  KEYS[3] priority  KEYS[4] stalled
    ARGV[1] key base  ARGV[2] token  ARGV[3] lock ms  ARGV[4] max
    ARGV[5] id BRPOPLPUSH already moved to active ("" = none)

  Output:
    per job: {id, name, data, opts, attemptsMade, timestamp}

  Follows Bull 4.16.5's moveToActive-8.lua (without its rate limiter), in
  batches.
]]
--- @include "includes/rcall"
--- @include "includes/badType"
--- @include "includes/chunks"
--- @include "includes/listened"
--- @include "includes/serverTimeMs"

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
    local moved = {}
    for i = #right, 1, -1 do moved[#moved + 1] = right[i] end
    chunks("LPUSH", KEYS[2], moved)
    for _, jobId in ipairs(moved) do ids[#ids + 1] = jobId end
  end
end

-- Numbers reach Redis as strings made once: a Lua number argument is
-- formatted anew at every call.
local now = string.format("%d", serverTimeMs())
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
chunks("SREM", KEYS[4], taken)
chunks("ZREM", KEYS[3], taken)
local channel = KEYS[2] .. "@" .. token
if #taken > 0 and listened(channel) then
  for _, jobId in ipairs(taken) do rcall("PUBLISH", channel, jobId) end
end
return out
