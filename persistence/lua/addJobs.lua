--[[
  Adds a batch of jobs, each as Bull's addJob-6 adds one, plus postd's
  idempotency key and its bound on waiting jobs. Calls are batched wherever
  the result stays Bull's (a redis.call costs 2-3 us).

  Input:
    KEYS[1] wait  KEYS[2] paused  KEYS[3] meta-paused  KEYS[4] id
    KEYS[5..] idempotency keys: their number varies, so the file name gives
              none (Bull's loader: the caller passes the count)
    ARGV[1] key base  ARGV[2] job name  ARGV[3] max waiting  ARGV[4] token
    ARGV[5] id floor: the counter is first raised to it (ids this producer
            already answered for, which a failover may have taken back)
    then per job: data, opts up to `"timestamp":`, timestamp ("" = now),
    index in KEYS of its idempotency key (0 = none), wanted id ("" = the
    counter's next; else that id unless a job holds it, and the counter is
    raised past it)

  Output:
    per job: "added"|"duplicate"|"full", then its id ("" when full)

  Follows Bull 4.16.5's addJob-6.lua (FIFO, no delay, no priority), in batches.
]]
--- @include "includes/rcall"
--- @include "includes/badType"
--- @include "includes/chunks"
--- @include "includes/getTargetQueueList"
--- @include "includes/listened"
--- @include "includes/serverTimeMs"

-- (A wrongly typed idempotency key fails the first pass, before any write.)
local bad = badType(KEYS[1], "list") or badType(KEYS[2], "list")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

local n = (#ARGV - 5) / 5
local function arg(j, field) return ARGV[5 * j + field] end
local function idemKey(j)
  local index = tonumber(arg(j, 4))
  if index > 0 then return KEYS[index] end
end

-- Decide every job's fate first, so that one INCRBY allocates the ids (the
-- same ids one INCR per job would give).
local room = tonumber(ARGV[3]) - rcall("LLEN", KEYS[1]) - rcall("LLEN", KEYS[2])
local floor = tonumber(ARGV[5])
local ordinal, given, dupOf, claimed, taken = {}, {}, {}, {}, {}
local added, counted = 0, 0
for j = 1, n do
  local key = idemKey(j)
  local first = key and (claimed[key] or rcall("GET", key))
  local wanted = arg(j, 5)
  if first then
    dupOf[j] = first -- a stored id, or the ordinal of a job of this batch
  elseif added < room then
    added = added + 1
    if wanted ~= "" and not taken[wanted] and
        rcall("EXISTS", ARGV[1] .. wanted) == 0 then
      given[j] = wanted
      taken[wanted] = true
      floor = math.max(floor, tonumber(wanted) or 0)
      if key then claimed[key] = wanted end
    else
      counted = counted + 1
      ordinal[j] = counted
      if key then claimed[key] = counted end
    end
  end
end
if floor > 0 and (tonumber(rcall("GET", KEYS[4])) or 0) < floor then
  rcall("SET", KEYS[4], string.format("%d", floor))
end
local firstId = 0
if counted > 0 then firstId = rcall("INCRBY", KEYS[4], counted) - counted + 1 end

local target = getTargetQueueList(KEYS[3], KEYS[1], KEYS[2])
local now
local out, pushed = {}, {}
for j = 1, n do
  if ordinal[j] or given[j] then
    local jobId = given[j] or string.format("%d", firstId + ordinal[j] - 1)
    local ts = arg(j, 3)
    if ts == "" then
      now = now or serverTimeMs()
      ts = string.format("%d", now)
    end
    rcall("HSET", ARGV[1] .. jobId, "name", ARGV[2], "data", arg(j, 1),
          "opts", arg(j, 2) .. ts .. "}", "timestamp", ts, "delay", "0",
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
chunks("LPUSH", target, pushed)
local channel = KEYS[1] .. "ing@" .. ARGV[4]
if #pushed > 0 and listened(channel) then
  for _, jobId in ipairs(pushed) do rcall("PUBLISH", channel, jobId) end
end
return out
