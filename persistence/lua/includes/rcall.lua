--[[
  redis.call under the short name every script uses, as Bull's scripts do.
]]
local rcall = redis.call
