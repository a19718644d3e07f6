-- wrk script for bench/ingest_bench.sh: POSTs one fixed body (a single event or
-- a batch) with keep-alive, counts response statuses per thread, and prints one
-- machine-readable line at the end:
--   BENCHRESULT requests=.. duration_us=.. n201=.. nother=.. other_status=..
--               p50_us=.. p99_us=.. err_connect=.. err_read=.. err_write=..
--               err_status=.. err_timeout=..
-- Environment: BENCH_KEY (API key), BENCH_BODY_FILE (the request body).

local key = os.getenv("BENCH_KEY") or error("BENCH_KEY is not set")
local body_file = os.getenv("BENCH_BODY_FILE") or error("BENCH_BODY_FILE is not set")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n201 = 0
  nother = 0
  other_status = 0
end

-- Kept minimal: it runs once per response on the loader, which shares the CPUs.
function response(status, headers, body)
  if status == 201 then
    n201 = n201 + 1
  else
    nother = nother + 1
    other_status = status
  end
end

function done(summary, latency, requests)
  local t201, tother, last = 0, 0, 0
  for _, t in ipairs(threads) do
    t201 = t201 + t:get("n201")
    tother = tother + t:get("nother")
    local s = t:get("other_status")
    if s ~= 0 then last = s end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d n201=%d nother=%d other_status=%d " ..
    "p50_us=%d p99_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, t201, tother, last,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
