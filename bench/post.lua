-- wrk script: POST /v1/post/create with a Bearer token from the TOKEN
-- environment variable and a different body each time; with TRACEPARENT set,
-- each request carries that W3C traceparent (as a traced client's would);
-- with PREFER set, that Prefer header (e.g. wait=2: answered once persisted).
local token = os.getenv("TOKEN") or ""
local traceparent = os.getenv("TRACEPARENT") or ""
local prefer = os.getenv("PREFER") or ""
local counter = 0

wrk.method = "POST"
wrk.path = "/v1/post/create"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. token
if traceparent ~= "" then
  wrk.headers["traceparent"] = traceparent
end
if prefer ~= "" then
  wrk.headers["Prefer"] = prefer
end

request = function()
  counter = counter + 1
  local body = '{"content":"benchmark post ' .. counter .. '"}'
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
