-- Shared by the wrk scripts of bench/ (loaded with dofile): counts response
-- statuses per thread and prints one machine-readable line at the end:
--   BENCHRESULT requests=.. duration_us=.. n<ok>=.. nother=.. other_status=..
--               p50_us=.. p99_us=.. err_connect=.. err_read=.. err_write=..
--               err_status=.. err_timeout=.. mean_us=..
-- The including script sets the global `ok_status` (201, 200) first. Each wrk
-- thread runs in its own Lua state with the globals `id` (1, 2, ...) and
-- `counter` (0; the including script may count its requests in it).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  nok = 0
  nother = 0
  other_status = 0
  counter = 0
end

-- Kept minimal: it runs once per response on the loader, which shares the CPUs.
function response(status, headers, body)
  if status == ok_status then
    nok = nok + 1
  else
    nother = nother + 1
    other_status = status
  end
end

function done(summary, latency, requests)
  local tok, tother, last = 0, 0, 0
  for _, t in ipairs(threads) do
    tok = tok + t:get("nok")
    tother = tother + t:get("nother")
    local s = t:get("other_status")
    if s ~= 0 then last = s end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCHRESULT requests=%d duration_us=%d n%d=%d nother=%d other_status=%d " ..
    "p50_us=%d p99_us=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d " ..
    "mean_us=%d\n",
    summary.requests, summary.duration, ok_status, tok, tother, last,
    latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout, latency.mean))
end
