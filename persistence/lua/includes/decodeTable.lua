--[[
  The JSON object or array in `raw`, or an empty table when `raw` is missing
  or anything else: job hashes written by other producers may hold anything,
  and one odd job must not fail a batch.
]]

local function decodeTable(raw)
  local ok, v = pcall(cjson.decode, raw or "")
  if ok and type(v) == "table" then return v end
  return {}
end
