--[[
  Bull's stalled check: jobs of active still unlocked since the last check
  go back to wait (or paused), or to failed once they stalled more than the
  allowed count; then every active job is marked for the next check. Runs at
  most once per interval across all workers (stalled-check).

  Input:
    KEYS[1] stalled  KEYS[2] wait  KEYS[3] active  KEYS[4] failed
    KEYS[5] stalled-check  KEYS[6] meta-paused  KEYS[7] paused
    ARGV[1] max stalled count  ARGV[2] key base  ARGV[3] interval ms
    ARGV[4] keep failed

  Output:
    {failed ids, requeued ids}

  Follows Bull 4.16.5's moveStalledJobsToWait-7.lua.
]]
--- @include "includes/rcall"
--- @include "includes/badType"
--- @include "includes/chunks"
--- @include "includes/decodeTable"
--- @include "includes/getTargetQueueList"
--- @include "includes/keepCount"
--- @include "includes/removeJob"
--- @include "includes/serverTimeMs"
--- @include "includes/trim"

local bad = badType(KEYS[1], "set") or badType(KEYS[2], "list") or
            badType(KEYS[3], "list") or badType(KEYS[4], "zset") or
            badType(KEYS[7], "list")
if bad then return redis.error_reply("WRONGTYPE " .. bad) end
if rcall("EXISTS", KEYS[5]) == 1 then return {{}, {}} end

local base = ARGV[2]
local now = serverTimeMs()
rcall("SET", KEYS[5], now, "PX", ARGV[3])

local failed, requeued = {}, {}
local stalling = rcall("SMEMBERS", KEYS[1])
if #stalling > 0 then
  rcall("DEL", KEYS[1])
  local dst = getTargetQueueList(KEYS[6], KEYS[2], KEYS[7])
  local maxStalled = tonumber(ARGV[1])
  for _, jobId in ipairs(stalling) do
    local jobKey = base .. jobId
    if rcall("EXISTS", jobKey .. ":lock") == 0 and
       rcall("LREM", KEYS[3], 1, jobId) > 0 and
       rcall("TYPE", jobKey)["ok"] == "hash" then
      if rcall("HINCRBY", jobKey, "stalledCounter", 1) > maxStalled then
        local opts = decodeTable(rcall("HGET", jobKey, "opts"))
        local keep = keepCount(opts["removeOnFail"], tonumber(ARGV[4]))
        if keep == 0 then
          removeJob(jobKey)
        else
          rcall("ZADD", KEYS[4], now, jobId)
          rcall("HSET", jobKey, "failedReason",
                "job stalled more than allowable limit", "finishedOn", now)
          if keep > 0 then trim(KEYS[4], keep, base) end
        end
        rcall("PUBLISH", KEYS[4], cjson.encode({jobId = jobId,
              val = "job stalled more than maxStalledCount"}))
        failed[#failed + 1] = jobId
      else
        rcall("RPUSH", dst, jobId)
        rcall("PUBLISH", KEYS[1] .. "@", jobId)
        requeued[#requeued + 1] = jobId
      end
    end
  end
end

-- Mark every active job: the next check takes those still unlocked.
chunks("SADD", KEYS[1], rcall("LRANGE", KEYS[3], 0, -1))
return {failed, requeued}
