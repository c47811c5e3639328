-- wrk script: what open dashboards ask of postd. Each open /dashboard polls
-- /health, /health/queue and /metrics once a second; run it paced
-- (PACED_SCRIPT=dashboards.lua with bench/paced.lua, RATE = 3 x dashboards).
local paths = { "/health", "/health/queue", "/metrics" }
local next_path = 0

request = function()
  next_path = next_path % #paths + 1
  return wrk.format("GET", paths[next_path])
end

done = function(summary, latency, requests)
  io.write(string.format("DASHBOARDS requests=%d non2xx=%d errors=%d p99_us=%d\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.timeout + summary.errors.read,
    latency:percentile(99)))
end
