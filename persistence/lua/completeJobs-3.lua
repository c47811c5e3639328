--[[
  Moves jobs the worker holds from active to completed, with a redis.call per
  job only where Bull's state needs one (the job's own hash): the locks are
  read with one MGET and released with one DEL, the ids leave active in one
  rewrite of its right end, trimmed jobs go in one DEL. A job we hold locked
  in active has its hash (Bull's removeJob refuses locked jobs), so it is not
  looked up again.

  Input:
    KEYS[1] active  KEYS[2] completed  KEYS[3] stalled
    ARGV[1] key base  ARGV[2] token
    then per job: id, returnvalue, how many completed jobs to keep (< 0: all,
    0: none, so its hash goes at once: Bull's removeOnComplete)

  Output:
    the ids whose lock was lost (left untouched)

  Follows Bull 4.16.5's moveToFinished-9.lua (completed), in batches.
]]
--- @include "includes/rcall"
--- @include "includes/badType"
--- @include "includes/chunks"
--- @include "includes/listened"
--- @include "includes/serverTimeMs"

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
  local span = math.min(len, 2 * wanted)
  local tail, drop
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

local now = string.format("%d", serverTimeMs())
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
