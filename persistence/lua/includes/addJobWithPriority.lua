--[[
  Puts a job with a priority (from older producers) into `targetKey` behind
  the jobs of the same or a higher priority, and into `priorityKey`.
  Follows Bull's includes/addJobWithPriority.lua.
]]
--- @include "rcall"

local function addJobWithPriority(priorityKey, priority, jobId, targetKey)
  rcall("ZADD", priorityKey, priority, jobId)
  local count = rcall("ZCOUNT", priorityKey, 0, priority)
  local id = rcall("LINDEX", targetKey, rcall("LLEN", targetKey) - (count - 1))
  if id then
    rcall("LINSERT", targetKey, "BEFORE", id, jobId)
  else
    rcall("RPUSH", targetKey, jobId)
  end
end
