-- wrk script: post.lua (or PACED_SCRIPT) at a fixed rate (RATE requests per second in all,
-- default 10000) instead of as fast as the server answers. Every request
-- claims the next slot of one schedule shared by all connections (run wrk
-- with -t1), and waits for it: the rate holds while connections are free,
-- whatever the latency, so a server that falls behind shows it in latency
-- and in the errors, not in a quietly lower rate.
-- PACED_SCRIPT (default post.lua) makes the requests.
dofile((os.getenv("BENCH_DIR") or "bench") .. "/" ..
  (os.getenv("PACED_SCRIPT") or "post.lua"))

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } postd_timespec;
  int clock_gettime(int clock, postd_timespec* ts);
]]
local ts = ffi.new("postd_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local interval = 1000 / tonumber(os.getenv("RATE") or "10000")
local next_slot = nil

delay = function()
  local now = now_ms()
  if next_slot == nil or next_slot < now - 1000 then
    -- start, or more than a second behind: never burst to catch up more
    next_slot = now
  end
  next_slot = next_slot + interval
  local wait = next_slot - now
  if wait < 0 then return 0 end
  return math.floor(wait + 0.5)
end
