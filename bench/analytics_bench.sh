#!/usr/bin/env bash
# Analytics benchmark of bpmc-exporter (issue 3 §6), in one run (docs/BENCHMARKS.md):
#   1. loads BENCH_EVENTS events spread over the last 30 days straight into
#      connector_usage with SQL (10 connectors, 50 customers, 20 operations,
#      BENCH_ACCOUNTS Make accounts, 5 % errors of 5 types), plus subscriptions/payments.
#      Accounts are modelled as on the platform: each belongs to one customer
#      (account % 50 picks the customer's key) and uses 3 of the 10 connectors;
#      activity is skewed (account = floor(N * random()^2): a few heavy accounts,
#      a long tail of light ones);
#   2. starts `bpmc-exporter serve` and times the rollup catching up (lag 0);
#   3. times every analytics endpoint (BENCH_REQUESTS sequential curl requests, each
#      with Cache-Control: no-cache so that every answer is computed,
#      p50/p95) against the same numbers computed by GROUP BY over the raw table
#      (each raw query run 3 times, median), and prints PASS/MISS for
#      p95 <= 50 ms and raw/p95 >= 100x;
#   4. drives ingest for BENCH_INGEST_SECONDS while sampling
#      bpmc_exporter_aggregation_lag_seconds every second: max and p95 lag (< 10 s).
#      BENCH_INGEST_MODE=paced (default): bpmc-bench-pacer sends batches of
#      BENCH_INGEST_BATCH events open-loop at BENCH_INGEST_RATE events/s (the exporter
#      core's target, 20,000/s); single: wrk, single events, as fast as they go
#   5. runs BENCH_READERS concurrent readers (bpmc-bench-readers: keep-alive, each its
#      own administrator, cycling over the endpoints) for BENCH_READ_SECONDS while the
#      pacer ingests at BENCH_INGEST_RATE, twice: every answer computed
#      (Cache-Control: no-cache), then the same questions with the answer cache on;
#      p50/p95 per endpoint (target p95 <= 50 ms).
#
# Throwaway PostgreSQL 15 cluster (Unix socket only, fsync on, shared_buffers=512MB,
# max_wal_size=4GB), removed on exit.
#
# Usage: bench/analytics_bench.sh
# Environment:
#   BENCH_EVENTS=10000000     raw events loaded
#   BENCH_ACCOUNTS=10000      distinct Make accounts
#   BENCH_REQUESTS=50         sequential requests per endpoint
#   BENCH_RAW_RUNS=3          runs of each raw query (median)
#   BENCH_INGEST_SECONDS=30   length of the ingest-while-aggregating run
#   BENCH_READERS=8           concurrent analytics readers in step 5 (0: skip it)
#   BENCH_READ_SECONDS=60     length of step 5 (readers while the pacer ingests)
#   BENCH_INGEST_MODE=paced   paced (batches at a fixed rate) or single (wrk, single events)
#   BENCH_INGEST_RATE=20000   paced: events/s
#   BENCH_INGEST_BATCH=500    paced: events per batch (batches of 100 at 20,000/s fall behind here)
#   BENCH_CONNECTIONS=64      wrk connections (single) or pacer connections / 8 (paced)
#   BENCH_WRK_THREADS=2       wrk threads
#   BENCH_NO_BUILD=0          1: use build/bin/bpmc-exporter as it is
#   BPMC_BIN=''               a bpmc-exporter binary to use as it is (no build), e.g.
#                             build/h3rel/bin/bpmc-exporter of a Release build dir
#   BENCH_EXPORTER=''         the same (older name)
#   BENCH_ORDER=time          time: events loaded in time order (as they arrive), random: in
#                             random time order (a backfill's worst case for the rollup)
#   BENCH_KEEP=0              1: keep the temporary directory
#   BENCH_LOCK=''             a lock file (e.g. /tmp/bench.lock) to wait for and hold from the
#                             measured aggregation (phase 2) to the end, so that other work on a
#                             shared machine can pause; the unmeasured SQL load runs without it
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BENCH_EVENTS=${BENCH_EVENTS:-10000000}
BENCH_REQUESTS=${BENCH_REQUESTS:-50}
BENCH_ACCOUNTS=${BENCH_ACCOUNTS:-10000}
BENCH_RAW_RUNS=${BENCH_RAW_RUNS:-3}
BENCH_INGEST_SECONDS=${BENCH_INGEST_SECONDS:-30}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-64}
BENCH_INGEST_MODE=${BENCH_INGEST_MODE:-paced}
BENCH_INGEST_RATE=${BENCH_INGEST_RATE:-20000}
BENCH_INGEST_BATCH=${BENCH_INGEST_BATCH:-500}
BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-2}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_ORDER=${BENCH_ORDER:-time}
BENCH_LOCK=${BENCH_LOCK:-}
BENCH_READERS=${BENCH_READERS:-8}
BENCH_READ_SECONDS=${BENCH_READ_SECONDS:-60}
LOCK_HELD=0
BENCH_EXPORTER=${BPMC_BIN:-${BENCH_EXPORTER:-}}
EXPORTER=${BENCH_EXPORTER:-$ROOT/build/bin/bpmc-exporter}
PACER=$(dirname "$EXPORTER")/bpmc-bench-pacer
READERS=$(dirname "$EXPORTER")/bpmc-bench-readers
LUA=$ROOT/bench/wrk_ingest.lua
ENDPOINTS=(overview connectors connectors/conn-1 users financial errors)

BENCH_NAME=analytics-bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # log, die, calc, bench_pg_start, q

for tool in wrk psql curl awk; do
  command -v "$tool" >/dev/null || die "$tool is missing"
done

# ---------------------------------------------------------------------------
# Build (Release) when needed.
# ---------------------------------------------------------------------------
needs_build() {
  [[ -x $EXPORTER ]] || return 0
  [[ -x $PACER ]] || return 0
  [[ -n $(find CMakeLists.txt cmake common exporter bench -newer "$EXPORTER" -type f -print -quit) ]]
}
if [[ ${BENCH_NO_BUILD:-0} == 1 || -n ${BENCH_EXPORTER:-} ]]; then
  [[ -x $EXPORTER ]] || die "$EXPORTER is missing"
elif needs_build; then
  log "building Release into build/"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPMC_BUILD_TESTS=OFF >/dev/null
  cmake --build build --target bpmc-exporter bpmc-bench-pacer bpmc-bench-readers >&2
fi
[[ $BENCH_INGEST_MODE == single || -x $PACER ]] || die "$PACER is missing (BENCH_INGEST_MODE=single needs no pacer)"
# The build type of the binary's build dir (bin/ sits in the build dir).
CACHE=$(dirname "$(dirname "$EXPORTER")")/CMakeCache.txt
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$CACHE" 2>/dev/null || true)
[[ ${build_type:-} == Release ]] || log "warning: $EXPORTER is a '${build_type:-?}' build, not Release"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before the run: $LOAD_BEFORE"

# ---------------------------------------------------------------------------
# Throwaway PostgreSQL 15 cluster.
# ---------------------------------------------------------------------------
EXPORTER_PID=
SAMPLER_PID=
bench_stop_children() {
  stop_pid "$SAMPLER_PID"
  stop_pid "$EXPORTER_PID"
  if [[ $LOCK_HELD == 1 ]]; then rm -f "$BENCH_LOCK"; fi
}
bench_pg_start bpmc-analytics-bench -c shared_buffers=512MB

bench_seed "$EXPORTER"
TOKEN=$("$EXPORTER" user add --database-url "$DB_URL" admin --role admin | tail -n 1)
[[ -n $KEY && -n $TOKEN ]] || die "could not create the API keys / admin user"
# One administrator per concurrent reader of step 5: eight people, not one person in eight
# tabs (one user's requests are capped at analytics_concurrent_per_user = 4 in flight).
READER_TOKENS=()
for r in $(seq "$BENCH_READERS"); do
  READER_TOKENS+=("$("$EXPORTER" user add --database-url "$DB_URL" "reader-$r" --role admin | tail -n 1)")
done
PG_SETTINGS=$(q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name)
                 FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'shared_buffers', 'max_wal_size')")
log "PostgreSQL $(q 'SHOW server_version'): $PG_SETTINGS"

# ---------------------------------------------------------------------------
# 1. Load the raw events (and billing rows) with SQL (bench/lib.sh).
# ---------------------------------------------------------------------------
bench_load_events "$EXPORTER"

# ---------------------------------------------------------------------------
# 2. Start the exporter; time the initial aggregation.
# ---------------------------------------------------------------------------
if [[ -n $BENCH_LOCK ]]; then
  log "waiting for $BENCH_LOCK to be free"
  while [[ -e $BENCH_LOCK ]]; do sleep 15; done
  touch "$BENCH_LOCK"
  LOCK_HELD=1
  log "holding $BENCH_LOCK"
fi
# The benchmark's sequential requests are one user's: no analytics rate limit.
printf 'analytics_requests_per_minute: 0\n' >"$TMP/exporter.yaml"
bench_exporter_start "$EXPORTER" "$TMP/exporter.yaml"
q "VACUUM ANALYZE"
AGG_SIZE=$(q "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_class c
              WHERE c.relkind = 'r' AND (c.relname LIKE 'connector_usage\_%ly' OR c.relname LIKE 'usage\_%'
                 OR c.relname LIKE 'account\_%')")
AGG_TABLES=$(q "SELECT string_agg(relname || ' ' || pg_size_pretty(pg_total_relation_size(oid)) || ' ' || reltuples::bigint || ' rows',
                '; ' ORDER BY pg_total_relation_size(oid) DESC) FROM pg_class
                WHERE relkind = 'r' AND (relname LIKE 'connector_usage\_%ly' OR relname LIKE 'usage\_%' OR relname LIKE 'account\_%')")
log "aggregate tables: $AGG_TABLES"

# ---------------------------------------------------------------------------
# 3. Endpoints vs raw GROUP BY.
# ---------------------------------------------------------------------------
P="\"timestamp\" >= date_trunc('day', now()) - interval '29 days' AND \"timestamp\" < date_trunc('day', now()) + interval '1 day'"
declare -A RAW
RAW[overview]="
SELECT count(*), count(*) FILTER (WHERE status = 'error'), count(DISTINCT make_account_id) FROM connector_usage WHERE $P;
SELECT connector_id, count(*), count(*) FILTER (WHERE status = 'error') FROM connector_usage WHERE $P GROUP BY 1;
SELECT date_trunc('day', \"timestamp\"), count(*), count(*) FILTER (WHERE status = 'error'), count(DISTINCT make_account_id)
  FROM connector_usage WHERE $P GROUP BY 1;
SELECT count(*), sum(amount_minor) FROM payments WHERE status = 'succeeded' AND occurred_at >= now() - interval '30 days';"
RAW[connectors]="
SELECT connector_id, count(*), count(*) FILTER (WHERE status = 'error'), count(DISTINCT make_account_id),
       avg(duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM connector_usage WHERE $P GROUP BY 1;
SELECT connector_id, operation, count(*), count(*) FILTER (WHERE status = 'error'),
       avg(duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM connector_usage WHERE $P GROUP BY 1, 2;
SELECT connector_id, error_type, count(*) FROM connector_usage WHERE $P AND status = 'error' GROUP BY 1, 2;"
RAW[connectors/conn-1]="
SELECT count(*), count(*) FILTER (WHERE status = 'error'), count(DISTINCT make_account_id),
       avg(duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM connector_usage WHERE $P AND connector_id = 'conn-1';
SELECT operation, count(*), count(*) FILTER (WHERE status = 'error'),
       avg(duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms) FROM connector_usage WHERE $P AND connector_id = 'conn-1' GROUP BY 1;
SELECT error_type, count(*) FROM connector_usage WHERE $P AND connector_id = 'conn-1' AND status = 'error' GROUP BY 1;
SELECT date_trunc('day', \"timestamp\"), count(*), count(*) FILTER (WHERE status = 'error') FROM connector_usage WHERE $P AND connector_id = 'conn-1' GROUP BY 1;"
RAW[users]="
SELECT count(DISTINCT make_account_id) FROM connector_usage WHERE $P;
SELECT date_trunc('day', \"timestamp\"), count(DISTINCT make_account_id) FROM connector_usage WHERE $P GROUP BY 1;
SELECT d, count(*) FROM (SELECT make_account_id, min(\"timestamp\")::date AS d FROM connector_usage GROUP BY 1) f
  WHERE d >= (now() - interval '29 days')::date GROUP BY 1;
SELECT CASE WHEN n = 1 THEN '1' WHEN n <= 10 THEN '2-10' WHEN n <= 100 THEN '11-100' WHEN n <= 1000 THEN '101-1000' ELSE '>1000' END, count(*)
  FROM (SELECT make_account_id, count(*) AS n FROM connector_usage WHERE $P GROUP BY 1) a GROUP BY 1;
SELECT make_account_id, count(*) FROM connector_usage WHERE $P GROUP BY 1 ORDER BY 2 DESC LIMIT 10;"
RAW[financial]="
SELECT currency, count(DISTINCT customer_id), sum(amount_minor) FROM payments WHERE status = 'succeeded' AND occurred_at >= now() - interval '30 days' GROUP BY 1;
SELECT date_trunc('day', occurred_at), currency, sum(amount_minor) FROM payments WHERE status = 'succeeded' AND occurred_at >= now() - interval '30 days' GROUP BY 1, 2;
SELECT connector_id, sum(amount_minor) FROM payments WHERE status = 'succeeded' AND occurred_at >= now() - interval '30 days' GROUP BY 1;
SELECT failure_reason, count(*), sum(amount_minor) FROM payments WHERE status = 'failed' AND occurred_at >= now() - interval '30 days' GROUP BY 1;
SELECT count(*) FILTER (WHERE cancelled_at >= now() - interval '30 days'), count(*) FILTER (WHERE started_at >= now() - interval '30 days') FROM subscriptions;"
RAW[errors]="
SELECT count(*), count(*) FILTER (WHERE status = 'error') FROM connector_usage WHERE $P;
SELECT date_trunc('day', \"timestamp\"), count(*) FROM connector_usage WHERE $P AND status = 'error' GROUP BY 1;
SELECT connector_id, error_type, count(*) FROM connector_usage WHERE $P AND status = 'error' GROUP BY 1, 2;
SELECT connector_id, operation, error_type, count(*), max(error_message) FROM connector_usage WHERE $P AND status = 'error' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 10;
SELECT count(*), count(*) FILTER (WHERE status = 'error') FROM connector_usage
  WHERE \"timestamp\" >= date_trunc('day', now()) - interval '59 days' AND \"timestamp\" < date_trunc('day', now()) - interval '29 days';"

declare -A EP_P50 EP_P95 EP_RAW
for ep in "${ENDPOINTS[@]}"; do
  url="$BASE_URL/api/v1/analytics/$ep?granularity=day"
  code=$(curl -s -o "$TMP/resp.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$url")
  [[ $code == 200 ]] || { cat "$TMP/resp.json" >&2; die "$ep answered $code"; }
  : >"$TMP/times-${ep//\//_}.txt"
  for _ in $(seq "$BENCH_REQUESTS"); do
    out=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Authorization: Bearer $TOKEN" -H "Cache-Control: no-cache" "$url")
    [[ ${out%% *} == 200 ]] || die "$ep answered ${out%% *}"
    calc "${out#* } * 1000" 3 >>"$TMP/times-${ep//\//_}.txt"
    echo >>"$TMP/times-${ep//\//_}.txt"
  done
  EP_P50[$ep]=$(pctl 50 <"$TMP/times-${ep//\//_}.txt")
  EP_P95[$ep]=$(pctl 95 <"$TMP/times-${ep//\//_}.txt")
  : >"$TMP/raw.txt"
  for _ in $(seq "$BENCH_RAW_RUNS"); do
    t0=$(now_ns)
    "${PSQL[@]}" -c "${RAW[$ep]}" >/dev/null
    t1=$(now_ns)
    calc "($t1 - $t0) / 1e6" 1 >>"$TMP/raw.txt"
    echo >>"$TMP/raw.txt"
  done
  EP_RAW[$ep]=$(pctl 50 <"$TMP/raw.txt")
  log "$ep: p50 ${EP_P50[$ep]} ms, p95 ${EP_P95[$ep]} ms; raw median ${EP_RAW[$ep]} ms"
done

# ---------------------------------------------------------------------------
# 4. Aggregation lag while ingest runs.
# ---------------------------------------------------------------------------
NOW=$(date -u +%s)
TS=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%S.000Z)
printf '%s' '{"connector":"conn-1","operation":"op-1","make_account_id":"12345","status":"success","duration_ms":42,"timestamp":"'$TS'"}' \
  >"$TMP/event.json"
: >"$TMP/lag.txt"
(
  while :; do
    metric bpmc_exporter_aggregation_lag_seconds >>"$TMP/lag.txt" || true
    sleep 1
  done
) &
SAMPLER_PID=$!
before_agg=$(metric bpmc_exporter_aggregated_events_total)
if [[ $BENCH_INGEST_MODE == single ]]; then
  INGEST_DESC="wrk, single events, $BENCH_CONNECTIONS connections"
  log "ingest: $INGEST_DESC, ${BENCH_INGEST_SECONDS}s, while sampling the lag"
  BENCH_KEY=$KEY BENCH_BODY_FILE=$TMP/event.json \
    wrk -t "$BENCH_WRK_THREADS" -c "$BENCH_CONNECTIONS" -d "${BENCH_INGEST_SECONDS}s" --timeout 30s -s "$LUA" \
    "$BASE_URL/v1/connector/usage" >"$TMP/wrk.txt" 2>&1 || { cat "$TMP/wrk.txt" >&2; die "wrk failed"; }
  line=$(grep '^BENCHRESULT ' "$TMP/wrk.txt") || { cat "$TMP/wrk.txt" >&2; die "no result from wrk"; }
  n201=$(sed 's/.* n201=\([0-9]*\).*/\1/' <<<"$line")
  nother=$(sed 's/.* nother=\([0-9]*\).*/\1/' <<<"$line")
  dur_us=$(sed 's/.* duration_us=\([0-9]*\).*/\1/' <<<"$line")
  INGEST_RATE=$(calc "$n201 / ($dur_us / 1e6)")
else
  req_rate=$(calc "$BENCH_INGEST_RATE / $BENCH_INGEST_BATCH" 3)
  pconns=$(( BENCH_CONNECTIONS / 8 > 0 ? BENCH_CONNECTIONS / 8 : 1 ))
  INGEST_DESC="bpmc-bench-pacer, batches of $BENCH_INGEST_BATCH at $BENCH_INGEST_RATE events/s, $pconns connections"
  log "ingest: $INGEST_DESC, ${BENCH_INGEST_SECONDS}s, while sampling the lag"
  "$PACER" "$BASE_URL" "$KEY" "$req_rate" "$BENCH_INGEST_SECONDS" "$pconns" lagbench \
    "usage-batch=$BENCH_INGEST_BATCH" >"$TMP/pacer.txt" 2>&1 ||
    { cat "$TMP/pacer.txt" >&2; die "some batches were not answered 201"; }
  line=$(grep '^PACERESULT ' "$TMP/pacer.txt") || { cat "$TMP/pacer.txt" >&2; die "no result from the pacer"; }
  ok=$(sed 's/.* ok=\([0-9]*\).*/\1/' <<<"$line")
  secs=$(sed 's/.* seconds=\([0-9.]*\).*/\1/' <<<"$line")
  n201=$((ok * BENCH_INGEST_BATCH))
  nother=$(sed 's/.* failed=\([0-9]*\).*/\1/' <<<"$line")
  INGEST_RATE=$(calc "$n201 / $secs")
  log "pacer: $line"
fi
sleep 2  # two more samples after the load stops
kill "$SAMPLER_PID" 2>/dev/null; wait "$SAMPLER_PID" 2>/dev/null || true
SAMPLER_PID=
LAG_MAX=$(pctl 100 <"$TMP/lag.txt")
LAG_P95=$(pctl 95 <"$TMP/lag.txt")
LAG_N=$(wc -l <"$TMP/lag.txt")
after_agg=$(metric bpmc_exporter_aggregated_events_total)
log "ingest $INGEST_RATE events/s ($n201 events in 201s, $nother requests failed); lag max $LAG_MAX s, p95 $LAG_P95 s ($LAG_N samples);" \
    "aggregated during the run: $((${after_agg%.*} - ${before_agg%.*}))"

# ---------------------------------------------------------------------------
# 5. Concurrent readers while ingest runs: BENCH_READERS readers
#    (bpmc-bench-readers, keep-alive, each its own administrator, cycling over
#    the endpoints) while the pacer ingests at BENCH_INGEST_RATE, twice:
#    no-cache (every answer computed: Cache-Control: no-cache) and shared (the
#    same questions, the exporter's answer cache on, analytics_cache_ms).
#    Reads never wait for the aggregation: they run beside it.
# ---------------------------------------------------------------------------
declare -A RD_P50 RD_P95 RD_N READ_NON200 READ_CODES READ_PACER
READ_MODES=(no-cache shared)
if ((BENCH_READERS > 0)); then
  req_rate=$(calc "$BENCH_INGEST_RATE / $BENCH_INGEST_BATCH" 3)
  pconns=$(( BENCH_CONNECTIONS / 8 > 0 ? BENCH_CONNECTIONS / 8 : 1 ))
  for mode in "${READ_MODES[@]}"; do
    log "readers ($mode): $BENCH_READERS concurrent for ${BENCH_READ_SECONDS}s while the pacer ingests $BENCH_INGEST_RATE events/s"
    "$PACER" "$BASE_URL" "$KEY" "$req_rate" "$BENCH_READ_SECONDS" "$pconns" "read$mode" \
      "usage-batch=$BENCH_INGEST_BATCH" >"$TMP/pacer-read.txt" 2>&1 &
    READ_PACER_PID=$!
    "$READERS" "$BASE_URL" "$BENCH_READ_SECONDS" "$mode" "${READER_TOKENS[@]}" -- "${ENDPOINTS[@]}" \
      >"$TMP/readers.txt"
    wait "$READ_PACER_PID" || { cat "$TMP/pacer-read.txt" >&2; die "some batches were not answered 201 while reading"; }
    READ_PACER[$mode]=$(grep '^PACERESULT ' "$TMP/pacer-read.txt" || true)
    READ_NON200[$mode]=$(awk '$2 != 200' "$TMP/readers.txt" | wc -l)
    # Which answers they were ("429×12 503×3"): a limit refusing, or the database too slow.
    READ_CODES[$mode]=$(awk '$2 != 200 { c[$2]++ } END { for (k in c) printf "%s%s×%d", (n++ ? " " : ""), k, c[k] }' \
      "$TMP/readers.txt")
    for ep in "${ENDPOINTS[@]}"; do
      awk -v ep="$ep" '$1 == ep && $2 == 200 { print $3 }' "$TMP/readers.txt" >"$TMP/rd.txt"
      RD_N[$mode/$ep]=$(wc -l <"$TMP/rd.txt")
      RD_P50[$mode/$ep]=$(pctl 50 <"$TMP/rd.txt")
      RD_P95[$mode/$ep]=$(pctl 95 <"$TMP/rd.txt")
      log "under ingest, $BENCH_READERS readers ($mode): $ep p50 ${RD_P50[$mode/$ep]} ms, p95 ${RD_P95[$mode/$ep]} ms (${RD_N[$mode/$ep]} requests)"
    done
    log "readers ($mode): ${READ_NON200[$mode]} answers other than 200 (${READ_CODES[$mode]:-none}); pacer: ${READ_PACER[$mode]}"
  done
  CACHE_COUNTS=$(curl -sf "$BASE_URL/metrics" | awk '/^bpmc_exporter_analytics_cache_total/ { printf "%s%s", (n++ ? ", " : ""), $0 }')
fi

# ---------------------------------------------------------------------------
# Summary.
# ---------------------------------------------------------------------------
CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
GIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
pass_le() { awk "BEGIN { exit !($1 <= $2) }" && echo PASS || echo MISS; }
pass_ge() { awk "BEGIN { exit !($1 >= $2) }" && echo PASS || echo MISS; }
{
  echo
  echo "=============================================================================="
  echo " bpmc-exporter analytics benchmark   $(date -u +%FT%TZ)   git $GIT"
  echo " $(nproc) CPUs ($CPU); loader, exporter and PostgreSQL share them"
  echo " PostgreSQL: $PG_SETTINGS"
  echo " load average before: $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine disturbs the figures)"
  echo " $BENCH_EVENTS raw events over 30 days ($RAW_SIZE with indexes), 10 connectors, 50 customers,"
  echo " 20 operations, $BENCH_ACCOUNTS accounts (one customer and 3 connectors each), 5 % errors; aggregates $AGG_SIZE"
  echo " aggregate tables: $AGG_TABLES"
  echo "=============================================================================="
  echo " SQL load: $LOAD_SECS s ($LOAD_RATE rows/s); events in $BENCH_ORDER order; initial aggregation: $AGG_SECS s ($AGG_RATE events/s)"
  echo
  echo "<!-- markdown fragment: $(date -u +%FT%TZ), git $GIT, BENCH_EVENTS=$BENCH_EVENTS -->"
  echo "| endpoint | p50 ms | p95 ms | raw GROUP BY median ms | raw / p95 | p95 ≤ 50 ms | ≥ 100× |"
  echo "|---|---:|---:|---:|---:|---|---|"
  for ep in "${ENDPOINTS[@]}"; do
    r=$(calc "${EP_RAW[$ep]} / ${EP_P95[$ep]}" 1)
    echo "| $ep | ${EP_P50[$ep]} | ${EP_P95[$ep]} | ${EP_RAW[$ep]} | ${r}× | $(pass_le "${EP_P95[$ep]}" 50) | $(pass_ge "$r" 100) |"
  done
  echo
  echo "| ingest while aggregating (${BENCH_INGEST_SECONDS}s; $INGEST_DESC) | value | target | |"
  echo "|---|---:|---|---|"
  echo "| ingest rate, events/s | $INGEST_RATE | 20,000 | $(pass_ge "$INGEST_RATE" 20000) |"
  echo "| aggregation lag max, s ($LAG_N samples, 1/s) | $LAG_MAX | < 10 | $(awk "BEGIN { exit !($LAG_MAX < 10) }" && echo PASS || echo MISS) |"
  echo "| aggregation lag p95, s | $LAG_P95 | | |"
  if ((BENCH_READERS > 0)); then
    for mode in "${READ_MODES[@]}"; do
      echo
      echo "| endpoint, $BENCH_READERS concurrent readers ($mode) while ingesting $BENCH_INGEST_RATE events/s | requests | p50 ms | p95 ms | p95 ≤ 50 ms |"
      echo "|---|---:|---:|---:|---|"
      for ep in "${ENDPOINTS[@]}"; do
        echo "| $ep | ${RD_N[$mode/$ep]} | ${RD_P50[$mode/$ep]} | ${RD_P95[$mode/$ep]} | $(pass_le "${RD_P95[$mode/$ep]}" 50) |"
      done
      echo "(answers other than 200: ${READ_NON200[$mode]} (${READ_CODES[$mode]:-none}); pacer: ${READ_PACER[$mode]})"
    done
    echo "(answer cache after both runs: $CACHE_COUNTS)"
  fi
}
exit 0
