-- wrk script for bench/receiver_bench.sh: POSTs Alertmanager v4 webhooks whose
-- alerts are all new (a fingerprint unique per run, thread, request and alert),
-- so that every alert is a state change that is stored and enqueued; 200 is
-- success. Prints the BENCHRESULT line of wrk_report.lua (n200=..).
-- Environment: BENCH_TOKEN (bearer token), BENCH_ALERTS (alerts per webhook),
-- BENCH_RUN (a prefix unique per run), BENCH_STARTS_AT (the alerts' startsAt).

local token = os.getenv("BENCH_TOKEN") or error("BENCH_TOKEN is not set")
local alerts_per = tonumber(os.getenv("BENCH_ALERTS") or "1")
local run = os.getenv("BENCH_RUN") or "run"
local starts_at = os.getenv("BENCH_STARTS_AT") or "2026-01-01T00:00:00Z"

local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}

ok_status = 200
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")

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
