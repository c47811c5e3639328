--[[
  A job's fields and state in one consistent read.

  Input:
    KEYS[1] job hash  KEYS[2] completed  KEYS[3] failed  KEYS[4] delayed
    KEYS[5] active  KEYS[6] wait  KEYS[7] paused
    ARGV[1] id

  Output:
    nil when there is no such job, else {state, {field, value, ...}}

  postd's own: Bull 4.16.5's Job.fromId and Job#getState (the same order of
  checks) in one script.
]]
--- @include "includes/rcall"

if rcall("TYPE", KEYS[1])["ok"] ~= "hash" then return false end
local id = ARGV[1]
local state = "stuck"
if rcall("ZSCORE", KEYS[2], id) then state = "completed"
elseif rcall("ZSCORE", KEYS[3], id) then state = "failed"
elseif rcall("ZSCORE", KEYS[4], id) then state = "delayed"
elseif rcall("LPOS", KEYS[5], id) then state = "active"
elseif rcall("LPOS", KEYS[6], id) then state = "waiting"
elseif rcall("LPOS", KEYS[7], id) then state = "paused"
end
return {state, rcall("HGETALL", KEYS[1])}
