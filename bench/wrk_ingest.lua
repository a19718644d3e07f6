-- wrk script for bench/ingest_bench.sh and bench/analytics_bench.sh: POSTs one
-- fixed body (a single event or a batch) with keep-alive; 201 is success. Prints
-- the BENCHRESULT line of wrk_report.lua (n201=..).
-- Environment: BENCH_KEY (API key), BENCH_BODY_FILE (the request body),
-- BENCH_EVENT_ID=1 (give every event of every request its own "event_id": a
-- UUID made of this run's start second, the wrk thread, two random fields and
-- a per-thread counter, inserted before each event's "connector" key).

local key = os.getenv("BENCH_KEY") or error("BENCH_KEY is not set")
local body_file = os.getenv("BENCH_BODY_FILE") or error("BENCH_BODY_FILE is not set")
local f = assert(io.open(body_file, "rb"))
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. key

ok_status = 201

if os.getenv("BENCH_EVENT_ID") == "1" then
  local run = os.time() % 2147483648
  local function next_id()
    counter = counter + 1
    return string.format('{"event_id":"%08x-%04x-4%03x-8%03x-0000%08x","connector":', run, id,
                         math.random(0, 4095), math.random(0, 4095), counter)
  end
  local body_connector = '{"connector":'
  function request()
    local fresh = body:gsub(body_connector, next_id)
    return wrk.format(nil, nil, nil, fresh)
  end
end
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
