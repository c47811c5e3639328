--[[
  Moves up to 1000 delayed jobs that are due onto wait (or paused).

  Input:
    KEYS[1] delayed  KEYS[2] wait  KEYS[3] paused  KEYS[4] meta-paused
    KEYS[5] priority
    ARGV[1] key base  ARGV[2] now ms (<= 0: server clock)  ARGV[3] token

  Output:
    how many jobs moved

  Follows Bull 4.16.5's updateDelaySet-6.lua.
]]
--- @include "includes/rcall"
--- @include "includes/badType"
--- @include "includes/getTargetQueueList"
--- @include "includes/pushReadyJob"
--- @include "includes/serverTimeMs"

local bad = badType(KEYS[1], "zset") or badType(KEYS[2], "list") or
            badType(KEYS[3], "list") or badType(KEYS[5], "zset")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end

local now = tonumber(ARGV[2])
if now <= 0 then now = serverTimeMs() end
local due = rcall("ZRANGEBYSCORE", KEYS[1], 0, (now + 1) * 0x1000 - 1,
                  "LIMIT", 0, 1000)
if #due == 0 then return 0 end
rcall("ZREM", KEYS[1], unpack(due))
local target = getTargetQueueList(KEYS[4], KEYS[2], KEYS[3])
local moved = 0
for _, jobId in ipairs(due) do
  local jobKey = ARGV[1] .. jobId
  if rcall("TYPE", jobKey)["ok"] == "hash" then
    pushReadyJob(jobKey, jobId, target, KEYS[5], KEYS[2], ARGV[3])
    rcall("HSET", jobKey, "delay", 0)
    moved = moved + 1
  end
end
return moved
