--[[
  Why `key` cannot be used as a `want` (a Redis type name), or nil. Every
  mutating script checks its keys before its first write, so a wrongly typed
  key fails it cleanly instead of half-way.
]]
--- @include "rcall"

local function badType(key, want)
  local t = rcall("TYPE", key)["ok"]
  if t ~= "none" and t ~= want then return key .. " holds a " .. t end
end
