--[[
  The list a job goes to when it is ready: `paused` while the queue is paused
  (meta-paused exists; an empty list and a missing key are not the same),
  else `wait`. Then whether it is paused.
  Follows Bull's includes/getTargetQueueList.lua.
]]
--- @include "rcall"

local function getTargetQueueList(queueMetaKey, waitKey, pausedKey)
  if rcall("EXISTS", queueMetaKey) ~= 1 then
    return waitKey, false
  else
    return pausedKey, true
  end
end
