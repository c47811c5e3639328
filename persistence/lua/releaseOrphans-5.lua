--[[
  After a worker's connection reaches another server (a Sentinel failover):
  the jobs of active locked with its token that it does not hold go back to
  wait at once. The old master replicated their take and their lock but not
  what the worker did with them afterwards (completed them there, or gave
  them back), so no one will finish them here; left alone they would wait
  for their lock to expire and the stalled check after it. Taken again,
  each carries its postId: still one row.

  Input:
    KEYS[1] wait  KEYS[2] active  KEYS[3] paused  KEYS[4] meta-paused
    KEYS[5] stalled
    ARGV[1] key base  ARGV[2] token  ARGV[3..] ids the worker holds

  Output:
    the ids given back

  postd's own (releaseJobs-5.lua for the jobs it no longer knows of).
]]
--- @include "includes/rcall"
--- @include "includes/getTargetQueueList"

local held = {}
for i = 3, #ARGV do held[ARGV[i]] = true end
local target = getTargetQueueList(KEYS[4], KEYS[1], KEYS[3])
local out = {}
-- active holds the newest at the left: the oldest ends rightmost in wait,
-- next in line.
local active = rcall("LRANGE", KEYS[2], 0, -1)
for i = 1, #active do
  local jobId = active[i]
  local lockKey = ARGV[1] .. jobId .. ":lock"
  if not held[jobId] and rcall("GET", lockKey) == ARGV[2] and
     rcall("LREM", KEYS[2], -1, jobId) > 0 then
    rcall("RPUSH", target, jobId)
    rcall("DEL", lockKey)
    rcall("SREM", KEYS[5], jobId)
    out[#out + 1] = jobId
  end
end
return out
