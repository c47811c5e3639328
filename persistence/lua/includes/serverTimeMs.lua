--[[
  The Redis server's clock in whole ms, the unit of Bull's timestamps.
]]
--- @include "rcall"

local function serverTimeMs()
  local t = rcall("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
