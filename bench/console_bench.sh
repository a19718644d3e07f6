#!/usr/bin/env bash
# The console's benchmark (issue 15 §5 "Fast"), in one run (docs/BENCHMARKS.md):
#   1. loads the analytics benchmark's data set (bench/lib.sh: BENCH_EVENTS events over the
#      last 30 days, 10 connectors, 50 customers, billing rows) into a throwaway PostgreSQL,
#      starts `bpmc-exporter serve` and waits for the rollup (lag 0);
#   2. page data: every console page's default view (overview, connectors, conn-1, users,
#      financial, errors, audit) for an administrator and a manager, logged in by cookie,
#      BENCH_PAGE_REQUESTS sequential loads each, computed (Cache-Control: no-cache) and from
#      the answer cache; baseline: /healthz and /console/app.js on the same connection;
#      p50/p95 against 300 ms;
#   3. first render: headless Chromium, cache disabled, /console/#/overview from about:blank
#      BENCH_RENDER_RUNS times: navigation timing and the time until the headline figures are
#      filled, against 1 s; baseline: a trivial static page (python http.server), same runs;
#   4. size: index.html + app.js + app.css as served gzip, against 250 KB.
# The tables are printed at the end; MISS is a finding, not a failure (exit 0).
#
# Usage: bench/console_bench.sh
# Environment:
#   BENCH_EVENTS=10000000     raw events loaded
#   BENCH_ACCOUNTS=10000      distinct Make accounts
#   BENCH_ORDER=time          time | random (see analytics_bench.sh)
#   BENCH_PAGE_REQUESTS=30    sequential loads per page, role and mode
#   BENCH_RENDER_RUNS=10      first-render runs (after one warm-up)
#   BPMC_BIN=''               a bpmc-exporter binary to use as it is (default build/bin/bpmc-exporter,
#                             built Release when missing)
#   BENCH_KEEP=0              1: keep the temporary directory
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BENCH_EVENTS=${BENCH_EVENTS:-10000000}
BENCH_ACCOUNTS=${BENCH_ACCOUNTS:-10000}
BENCH_ORDER=${BENCH_ORDER:-time}
BENCH_PAGE_REQUESTS=${BENCH_PAGE_REQUESTS:-30}
BENCH_RENDER_RUNS=${BENCH_RENDER_RUNS:-10}
BENCH_KEEP=${BENCH_KEEP:-0}
EXPORTER=${BPMC_BIN:-$ROOT/build/bin/bpmc-exporter}
PY=/usr/bin/python3
PASSWORD=pw12345678

BENCH_NAME=console-bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # log, die, calc, bench_pg_start, bench_seed, bench_load_events, bench_exporter_start

for tool in psql curl awk chromium chromedriver; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh)"
done
"$PY" -c 'import selenium' 2>/dev/null || die "python3-selenium is missing (scripts/deps.sh)"

if [[ -z ${BPMC_BIN:-} && ! -x $EXPORTER ]]; then
  log "building Release into build/"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPMC_BUILD_TESTS=OFF >/dev/null
  cmake --build build --target bpmc-exporter >&2
fi
[[ -x $EXPORTER ]] || die "$EXPORTER is missing"
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$(dirname "$(dirname "$EXPORTER")")/CMakeCache.txt" 2>/dev/null || true)
[[ ${build_type:-} == Release ]] || log "warning: $EXPORTER is a '${build_type:-?}' build, not Release"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the run: $LOAD_BEFORE"

EXPORTER_PID=
bench_stop_children() { stop_pid "$EXPORTER_PID"; }
bench_pg_start bpmc-console-bench -c shared_buffers=512MB

# 1. The data set, the users, the exporter.
bench_seed "$EXPORTER"
for role in admin manager; do
  "$EXPORTER" user add --database-url "$DB_URL" "$role" --role "$role" >/dev/null
  printf '%s\n' "$PASSWORD" | "$EXPORTER" user set-password --database-url "$DB_URL" "$role" >/dev/null
done
bench_load_events "$EXPORTER"
# One viewer's sequential requests: no rate limit; the answer cache as shipped (1 s).
printf 'analytics_requests_per_minute: 0\nreporting_time_zone: UTC\n' >"$TMP/exporter.yaml"
# Managers see pseudonymised accounts: the exporter needs a key (any 32 bytes here).
BPMC_PSEUDONYM_KEY=$(printf 'console-bench-pseudonym-key-0123' | base64) \
  bench_exporter_start "$EXPORTER" "$TMP/exporter.yaml"
q "VACUUM ANALYZE"

# 2.–4. Measured by the python driver.
cache_counts() { curl -sf "$BASE_URL/metrics" | awk '/^bpmc_exporter_analytics_cache_total/ { printf "%s%s", (n++ ? ", " : ""), $0 }'; }
cache_before=$(cache_counts)
"$PY" "$ROOT/bench/console_bench.py" "$BASE_URL" "$PASSWORD" --users admin:admin,manager:manager \
  --requests "$BENCH_PAGE_REQUESTS" --render-runs "$BENCH_RENDER_RUNS" >"$TMP/tables.md"
cache_after=$(cache_counts)

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
GIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
{
  echo
  echo "=============================================================================="
  echo " BPM Centr console benchmark   $(date -u +%FT%TZ)   git $GIT"
  echo " $(nproc) CPUs ($CPU); PostgreSQL, exporter, client and Chromium share them"
  echo " load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo " $BENCH_EVENTS raw events over 30 days ($RAW_SIZE with indexes), $BENCH_ACCOUNTS accounts;"
  echo " SQL load $LOAD_SECS s; initial aggregation $AGG_SECS s ($AGG_RATE events/s)"
  echo " chromium: $(chromium --version 2>/dev/null | head -n 1)"
  echo "=============================================================================="
  echo
  cat "$TMP/tables.md"
  echo
  echo "(answer cache before the measurements: $cache_before;"
  echo " after: $cache_after — the browser's disabled cache sends no-cache: its answers are bypasses)"
}
exit 0
