--[[
  How many finished jobs to keep, from a job's removeOnComplete/removeOnFail
  option: true keeps none (0), a number or {count = n} keeps n, anything else
  `default` (< 0: all).
]]

local function keepCount(opt, default)
  if opt == true then return 0 end
  if type(opt) == "number" then return opt end
  if type(opt) == "table" and type(opt["count"]) == "number" then
    return opt["count"]
  end
  return default
end
