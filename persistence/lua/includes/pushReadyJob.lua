--[[
  Puts a job that is ready to run into `targetKey` (wait, or paused while the
  queue is paused): at the head when it has no priority, else behind the jobs
  of the same or a higher priority; then announces it on the `waiting`
  channel of `waitKey` with `token`, as Bull does for a retried or promoted
  job. Follows Bull's retryJob-7.lua and updateDelaySet-6.lua.
]]
--- @include "rcall"
--- @include "addJobWithPriority"

local function pushReadyJob(jobKey, jobId, targetKey, priorityKey, waitKey,
                            token)
  local priority = tonumber(rcall("HGET", jobKey, "priority")) or 0
  if priority == 0 then
    rcall("LPUSH", targetKey, jobId)
  else
    addJobWithPriority(priorityKey, priority, jobId, targetKey)
  end
  rcall("PUBLISH", waitKey .. "ing@" .. token, jobId)
end
