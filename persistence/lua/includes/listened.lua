--[[
  Whether anyone may hear a PUBLISH on `channel`. PUBLISH costs a call per
  job; with nobody listening (no subscriber of the channel, no pattern
  subscription at all) it is skipped: no client can tell.
]]
--- @include "rcall"

local function listened(channel)
  return rcall("PUBSUB", "NUMPAT") > 0 or
         rcall("PUBSUB", "NUMSUB", channel)[2] > 0
end
