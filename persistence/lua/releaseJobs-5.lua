--[[
  Gives back jobs a worker took but will not finish (shutdown, or locking
  failed after BRPOPLPUSH): what Bull's stalled check does once their locks
  expire, at once. Each job whose lock is ours (or gone) leaves active for
  the right end of wait (or paused), next in line again, in taken order.

  Input:
    KEYS[1] wait  KEYS[2] active  KEYS[3] paused  KEYS[4] meta-paused
    KEYS[5] stalled
    ARGV[1] key base  ARGV[2] token  ARGV[3..] ids

  Output:
    the ids given back

  postd's own (the requeueing of Bull's moveStalledJobsToWait-7.lua, without
  waiting for the locks to expire).
]]
--- @include "includes/rcall"
--- @include "includes/getTargetQueueList"

local target = getTargetQueueList(KEYS[4], KEYS[1], KEYS[3])
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
