--[[
  rcall(verb, [key,] list...) in parts of 5000: Lua's unpack has a limit.
]]
--- @include "rcall"

local function chunks(verb, key, list)
  for from = 1, #list, 5000 do
    local to = math.min(from + 4999, #list)
    if key then rcall(verb, key, unpack(list, from, to))
    else rcall(verb, unpack(list, from, to)) end
  end
end
