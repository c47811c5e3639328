-- wrk script: POST /v1/post/create with a Bearer token from the TOKEN
-- environment variable and a different body each time; with TRACEPARENT set,
-- each request carries that W3C traceparent (as a traced client's would);
-- with PREFER set, that Prefer header (e.g. wait=2: answered once persisted);
-- with IMAGE_BYTES set, a multipart/form-data create with one PNG of that
-- many bytes, a different one each time (its last bytes are the counter):
-- every upload is a new file, written, hashed and fsynced.
local token = os.getenv("TOKEN") or ""
local traceparent = os.getenv("TRACEPARENT") or ""
local prefer = os.getenv("PREFER") or ""
local image_bytes = tonumber(os.getenv("IMAGE_BYTES") or "") or 0
local counter = 0
local boundary = "----postd-bench-boundary"
local image = nil
if image_bytes > 0 then
  local head = "\137PNG\r\n\026\n"
  local filler = {}
  for i = 1, image_bytes - #head do
    filler[i] = string.char(32 + (i * 7919) % 90)
  end
  image = head .. table.concat(filler, "", 1, #filler - 12)
end

wrk.method = "POST"
wrk.path = "/v1/post/create"
if image then
  wrk.headers["Content-Type"] = "multipart/form-data; boundary=" .. boundary
else
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Authorization"] = "Bearer " .. token
if traceparent ~= "" then
  wrk.headers["traceparent"] = traceparent
end
if prefer ~= "" then
  wrk.headers["Prefer"] = prefer
end

request = function()
  counter = counter + 1
  local body
  if image then
    body = "--" .. boundary .. "\r\n" ..
      'Content-Disposition: form-data; name="content"\r\n\r\n' ..
      "benchmark post " .. counter .. "\r\n--" .. boundary .. "\r\n" ..
      'Content-Disposition: form-data; name="files"; filename="b.png"\r\n' ..
      "Content-Type: image/png\r\n\r\n" .. image ..
      string.format("%012d", counter) .. "\r\n--" ..
      boundary .. "--\r\n"
  else
    body = '{"content":"benchmark post ' .. counter .. '"}'
  end
  return wrk.format(nil, nil, nil, body)
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d non2xx=%d errors_connect=%d errors_timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99),
    summary.errors.status, summary.errors.connect, summary.errors.timeout))
end
