--[[
  Deletes a job's hash and its logs, as Bull's removeJob does.
]]
--- @include "rcall"

local function removeJob(jobKey) rcall("DEL", jobKey, jobKey .. ":logs") end
