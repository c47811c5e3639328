--[[
  Renews the worker's locks on many jobs and takes them off the stalled set.

  Input:
    KEYS[1] stalled
    KEYS[2..] the jobs' lock keys: their number varies, so the file name
              gives none (Bull's loader: the caller passes the count)
    ARGV[1] token  ARGV[2] lock ms  ARGV[3..] the jobs' ids

  Output:
    the ids whose lock `token` no longer holds

  Follows Bull 4.16.5's extendLock-2.lua, for many jobs.
]]
--- @include "includes/rcall"
--- @include "includes/chunks"

local lost, renewed = {}, {}
for i = 2, #KEYS do
  if rcall("GET", KEYS[i]) == ARGV[1] then
    rcall("SET", KEYS[i], ARGV[1], "PX", ARGV[2])
    renewed[#renewed + 1] = ARGV[i + 1]
  else
    lost[#lost + 1] = ARGV[i + 1]
  end
end
chunks("SREM", KEYS[1], renewed)
return lost
