-- wrk script for bench/ingest_bench.sh and bench/analytics_bench.sh: POSTs one
-- fixed body (a single event or a batch) with keep-alive; 201 is success. Prints
-- the BENCHRESULT line of wrk_report.lua (n201=..).
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

ok_status = 201
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "wrk_report.lua")
