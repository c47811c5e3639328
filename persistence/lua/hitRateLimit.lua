--[[
  core::rate_limiter::hit for a batch, on the Redis server's clock.

  Input:
    KEYS one per hit, in order (a key may repeat): their number varies, so
         the file name gives none (Bull's loader: the caller passes the count)
    ARGV[1] limit  ARGV[2] ttl in us

  Output:
    per hit: allowed (1|0), hits in the window, us until the window ends,
    us until the block ends (0 when not blocked)

  A key is a string of little-endian doubles (struct.pack "<d..."):
  window end, block end (0 = not blocked), hits in the window, then per
  slot, oldest first: its start, hits in it.
  Times are us of TIME (exact in a double until the year 2255). As in the
  in-memory limiter, a hit within ttl/64 of the newest slot's start joins
  it, so a key holds at most 64 slots (1 KiB), and a slot expires ttl after
  its start. Packed so that a batch costs one MGET, then one SET per key,
  and no Lua work per slot: a hash of slot -> hits cost ~5x more per hit
  once a window had filled up.
  The keys are ours (prefix and digest): whatever else one holds (another
  type, a state ending more than a window from now) is replaced, as by a key
  seen for the first time, so a stray value cannot fail every batch.

  postd's own.
]]
--- @include "includes/rcall"

local limit, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local width = ttl / 64
local t = rcall("TIME")
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local formats = {}
local function format(n)
  formats[n] = formats[n] or "<" .. string.rep("d", n)
  return formats[n]
end

-- The slots are st.slots[lo..hi] as start, hits pairs; lo > hi: none.
local function load(key, v)
  local n = v and #v / 8 or 0
  if n >= 3 and n <= 3 + 2 * 64 and n % 2 == 1 then
    local s = {struct.unpack(format(n), v)}
    -- No state of ours ends later than a window from now (NaN fails too).
    local far = now + ttl
    if s[1] <= far and s[2] <= far and s[n - 1] <= far then
      local b = s[2] > 0 and s[2] or nil
      return {key = key, w = s[1], b = b, total = s[3], slots = s, lo = 4,
              hi = n}
    end
  end
  return {key = key, total = 0, slots = {}, lo = 1, hi = 0}
end

local function expire(st)
  local s = st.slots
  while st.lo < st.hi and s[st.lo] + ttl <= now do
    st.total = st.total - s[st.lo + 1]
    st.lo = st.lo + 2
  end
end

local function addHit(st)
  local s, hi = st.slots, st.hi
  if st.lo < hi and now - s[hi - 1] < width then
    s[hi] = s[hi] + 1
  else
    s[hi + 1], s[hi + 2], st.hi = now, 1, hi + 2
  end
  st.total = st.total + 1
end

-- rate_limiter::hit, step by step.
local function hit(st, out)
  if not st.w or st.w <= now then st.w = now + ttl end
  expire(st)
  local blocked = st.b ~= nil
  if not blocked then addHit(st) end
  if not blocked and st.total > limit then st.b = now + ttl end
  if st.b and st.b <= now then
    st.b, st.total, st.lo = nil, 0, st.hi + 1
    addHit(st)
  end
  out[#out + 1] = st.b and 0 or 1
  out[#out + 1] = st.total
  out[#out + 1] = st.w - now
  out[#out + 1] = st.b and st.b - now or 0
end

-- The key lives until its window, its block and its newest slot have all
-- ended, after which it would act as a new key.
local function save(st)
  local s, lo, hi = st.slots, st.lo, st.hi
  local idle = math.max(st.w, st.b or 0)
  if lo < hi then idle = math.max(idle, s[hi - 1] + ttl) end
  local packed = struct.pack(format(3 + hi - lo + 1), st.w, st.b or 0,
                             st.total, unpack(s, lo, hi))
  rcall("SET", st.key, packed, "PX", math.ceil((idle - now) / 1000))
end

local states, distinct = {}, {}
for from = 1, #KEYS, 5000 do
  local to = math.min(from + 4999, #KEYS)
  local values = rcall("MGET", unpack(KEYS, from, to))
  for i = from, to do
    local key = KEYS[i]
    if not states[key] then
      states[key] = load(key, values[i - from + 1])
      distinct[#distinct + 1] = states[key]
    end
  end
end
local out = {}
for _, key in ipairs(KEYS) do hit(states[key], out) end
for _, st in ipairs(distinct) do save(st) end
return out
