-- wrk script for bench/receiver_bench.sh: POSTs Alertmanager v4 webhooks whose
-- alerts are all new (a fingerprint unique per run, thread, request and alert),
-- so that every alert is a state change that is stored and enqueued. Counts
-- response statuses and prints one machine-readable line at the end:
--   BENCHRESULT requests=.. duration_us=.. n200=.. nother=.. other_status=..
--               p50_us=.. p99_us=.. err_connect=.. err_read=.. err_write=.. err_timeout=..
-- Environment: BENCH_TOKEN (bearer token), BENCH_ALERTS (alerts per webhook),
-- BENCH_RUN (a prefix unique per run), BENCH_STARTS_AT (the alerts' startsAt).

local token = os.getenv("BENCH_TOKEN") or error("BENCH_TOKEN is not set")
local alerts_per = tonumber(os.getenv("BENCH_ALERTS") or "1")
local run = os.getenv("BENCH_RUN") or "run"
local starts_at = os.getenv("BENCH_STARTS_AT") or "2026-01-01T00:00:00Z"

local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  n200 = 0
  nother = 0
  other_status = 0
  counter = 0
end

function request()
  counter = counter + 1
  local parts = {}
  for i = 1, alerts_per do
    local fp = string.format("%s-%d-%d-%d", run, id, counter, i)
    parts[i] = '{"status":"firing","labels":{"alertname":"BenchAlert","severity":"critical",' ..
        '"n":"' .. fp .. '"},"annotations":{"summary":"bench alert ' .. fp .. '"},' ..
        '"startsAt":"' .. starts_at .. '","endsAt":"0001-01-01T00:00:00Z",' ..
        '"generatorURL":"http://127.0.0.1:9090/graph","fingerprint":"' .. fp .. '"}'
  end
  local body = '{"version":"4","groupKey":"{}:{alertname=\\"BenchAlert\\"}","truncatedAlerts":0,' ..
      '"status":"firing","receiver":"bench","groupLabels":{},"commonLabels":{},' ..
      '"commonAnnotations":{},"externalURL":"http://127.0.0.1:9093","alerts":[' ..
      table.concat(parts, ",") .. ']}'
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status == 200 then
    n200 = n200 + 1
  else
    nother = nother + 1
    other_status = status
  end
end

function done(summary, latency, requests)
  local t200, tother, last = 0, 0, 0
  for _, t in ipairs(threads) do
    t200 = t200 + t:get("n200")
    tother = tother + t:get("nother")
    local s = t:get("other_status")
    if s ~= 0 then last = s end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d n200=%d nother=%d other_status=%d " ..
    "p50_us=%d p99_us=%d err_connect=%d err_read=%d err_write=%d err_timeout=%d\n",
    summary.requests, summary.duration, t200, tother, last,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout))
end
