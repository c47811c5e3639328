--[[
  Keeps the newest `keep` jobs of the finished set `setKey`, deleting the
  others with their hashes (Bull's removeOnComplete/removeOnFail count).
]]
--- @include "rcall"
--- @include "removeJob"

local function trim(setKey, keep, base)
  if rcall("ZCARD", setKey) <= keep then return end
  for _, id in ipairs(rcall("ZREVRANGE", setKey, keep, -1)) do
    removeJob(base .. id)
  end
  rcall("ZREMRANGEBYRANK", setKey, 0, -(keep + 1))
end
