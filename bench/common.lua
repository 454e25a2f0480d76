-- Shared by the wrk scripts: per-thread error counting and one machine-readable result line.
-- A response counts as an error when it is not HTTP 200 or its GraphQL body has "errors".
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function count_response(status, body)
  if status ~= 200 or body:find('"errors"', 1, true) then
    failed = failed + 1
  end
end

function response(status, headers, body)
  count_response(status, body)
end

function done(summary, latency, requests)
  local failed_total = 0
  for _, t in ipairs(threads) do
    failed_total = failed_total + (t:get("failed") or 0)
  end
  local seconds = summary.duration / 1e6
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.2f p99_ms=%.2f requests=%d failed=%d socket_errors=%d\n",
    summary.requests / seconds,
    latency:percentile(50) / 1000,
    latency:percentile(99) / 1000,
    summary.requests,
    failed_total,
    socket_errors
  ))
end

function json_headers()
  return { ["Content-Type"] = "application/json" }
end
