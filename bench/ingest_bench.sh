#!/usr/bin/env bash
# Ingestion benchmark of bpmc-exporter, in one run on one schema (docs/BENCHMARKS.md):
#   (e) HTTP ceiling: single-event POSTs answered 201 without storing (sink: discard)
#   (a) single-event POSTs, 201 only once committed (group commit), 64 keep-alive connections
#   (k) the same on 1,000 keep-alive connections: no error, and no slower than (a)
#   (b) batches of 1,000 events per POST
#   (c) psql \copy of the same kind of rows into the same table
#   (d) one INSERT + COMMIT per event (pgbench, 1 client; also 64 clients for reference)
# and prints (a)/(e), (a)/(d), (b)/(c) with PASS/MISS against the targets.
#
# It starts a throwaway PostgreSQL 15 cluster (Unix socket only, durability on:
# fsync and synchronous_commit keep their defaults; shared_buffers=256MB and
# max_wal_size=4GB as a production server would have), migrates it, and removes
# it on exit.
#
# Usage: bench/ingest_bench.sh            (from anywhere; builds build/ if needed)
# Environment:
#   BENCH_SECONDS=10         length of each measured wrk / pgbench run
#   BENCH_WARMUP_SECONDS=2   unmeasured wrk run before each HTTP phase (then the table is emptied)
#   BENCH_COPY_ROWS=1000000  rows loaded by \copy in (c)
#   BENCH_COPY_IDS=v7        ids of the (c) rows: v7 (time-ordered, as the exporter makes them) or v4
#   BENCH_CONNECTIONS=64     wrk connections for (a) and (e)
#   BENCH_MANY_CONNECTIONS=1000  wrk connections for (k), a fleet of clients (each a keep-alive
#                            connection: the exporter's http_threads must be at least this)
#   BENCH_BATCH_CONNECTIONS=4  wrk connections for (b)
#   BENCH_WRK_THREADS=2      wrk threads
#   BENCH_PGBENCH_MANY=64    extra (d) run with this many clients (0: skip)
#   BENCH_ROLLUP=0           1: let the exporter also keep the aggregates up to date (issue 3's
#                            rollup) while it ingests; 0 measures ingestion alone, like (c)
#   BENCH_EXPORTER_YAML=''   extra exporter config lines for every phase,
#                            e.g. $'writer_connections: 3\nmax_commit_events: 5000'
#   BENCH_PHASES='e a k b c d' phases to run (the ratios need all of them)
#   BENCH_STRICT=0           1: exit 3 when a target is missed
#   BENCH_NO_BUILD=0         1: use build/bin/bpmc-exporter as it is, even if sources are newer
#   BENCH_KEEP=0             1: keep the temporary directory (cluster, logs, CSV)
#   BENCH_WAIT_IDLE=0        before each phase, wait up to this many seconds for the CPUs to be
#                            idle (<= 10 % busy): for a machine shared with other work
#   BENCH_NICE=''            run the whole benchmark (PostgreSQL, exporter, loaders) at this
#                            niceness, e.g. -10 (root) on a machine shared with builds
#   BENCH_SCHEMA_SQL=''      SQL run after the migrations, for experiments on the schema (printed
#                            in the summary; the figures are then not those of the real schema)
#   BENCH_EVENT_ID=0         1: every event of (a), (b) and (e) carries its own client event_id (a
#                            fresh UUID per event, made by wrk_ingest.lua), as a client that makes
#                            its retries safe sends them; 0: no event_id (the server assigns one)
#   BENCH_EXPORTER=''        a bpmc-exporter binary to use as it is (no build), e.g. one built
#                            from an older commit, to compare two versions on the same machine
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_WARMUP_SECONDS=${BENCH_WARMUP_SECONDS:-2}
BENCH_COPY_ROWS=${BENCH_COPY_ROWS:-1000000}
BENCH_COPY_IDS=${BENCH_COPY_IDS:-v7}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-64}
BENCH_BATCH_CONNECTIONS=${BENCH_BATCH_CONNECTIONS:-4}
BENCH_WRK_THREADS=${BENCH_WRK_THREADS:-2}
BENCH_PGBENCH_MANY=${BENCH_PGBENCH_MANY:-64}
BENCH_EXPORTER_YAML=${BENCH_EXPORTER_YAML:-}
BENCH_ROLLUP=${BENCH_ROLLUP:-0}
if [[ $BENCH_ROLLUP == 1 ]]; then ROLLUP_YAML='rollup_enabled: true'; else ROLLUP_YAML='rollup_enabled: false'; fi
BENCH_EXPORTER_YAML=$ROLLUP_YAML${BENCH_EXPORTER_YAML:+$'\n'$BENCH_EXPORTER_YAML}
BENCH_PHASES=${BENCH_PHASES:-e a k b c d}
BENCH_MANY_CONNECTIONS=${BENCH_MANY_CONNECTIONS:-1000}
BENCH_STRICT=${BENCH_STRICT:-0}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_WAIT_IDLE=${BENCH_WAIT_IDLE:-0}
BENCH_SCHEMA_SQL=${BENCH_SCHEMA_SQL:-}
BENCH_NICE=${BENCH_NICE:-}
BENCH_EVENT_ID=${BENCH_EVENT_ID:-0}
BENCH_EXPORTER=${BENCH_EXPORTER:-}
BATCH_SIZE=1000
EXPORTER=${BENCH_EXPORTER:-$ROOT/build/bin/bpmc-exporter}
LUA=$ROOT/bench/wrk_ingest.lua
BENCH_NAME=bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # log, die, has_phase, calc, bench_pg_start, q

if [[ -n $BENCH_NICE ]]; then
  renice -n "$BENCH_NICE" -p $$ >/dev/null || die "cannot set niceness $BENCH_NICE (negative values need root)"
fi

for tool in wrk pgbench psql curl awk; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install wrk postgresql-client-15 curl)"
done

# ---------------------------------------------------------------------------
# 1. Build (Release) when the binary is missing or older than a source file.
# ---------------------------------------------------------------------------
needs_build() {
  [[ -x $EXPORTER ]] || return 0
  [[ -n $(find CMakeLists.txt cmake common exporter -newer "$EXPORTER" -type f -print -quit) ]]
}
if [[ -n $BENCH_EXPORTER ]]; then
  [[ -x $EXPORTER ]] || die "$EXPORTER is missing"
  log "BENCH_EXPORTER: using $EXPORTER as it is ($(date -r "$EXPORTER" '+%F %T'))"
elif [[ ${BENCH_NO_BUILD:-0} == 1 ]]; then
  [[ -x $EXPORTER ]] || die "$EXPORTER is missing"
  log "BENCH_NO_BUILD=1: using $EXPORTER as it is ($(date -r "$EXPORTER" '+%F %T'))"
elif needs_build; then
  log "building Release into build/"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPMC_BUILD_TESTS=OFF >/dev/null
  cmake --build build --target bpmc-exporter >&2
fi
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' build/CMakeCache.txt 2>/dev/null || true)
[[ -n $BENCH_EXPORTER || $build_type == Release ]] || log "warning: build/ is configured as '${build_type:-?}', not Release"

# The figures only mean something on an otherwise idle machine: measure how
# busy the CPUs are (1 s sample of /proc/stat) before starting, and warn.
cpu_busy_pct() {
  local a b
  a=($(head -n 1 /proc/stat)); sleep 1; b=($(head -n 1 /proc/stat))
  awk -v u1="${a[1]}" -v n1="${a[2]}" -v s1="${a[3]}" -v i1="${a[4]}" -v w1="${a[5]}" -v q1="${a[6]}" -v sq1="${a[7]}" -v st1="${a[8]}" \
      -v u2="${b[1]}" -v n2="${b[2]}" -v s2="${b[3]}" -v i2="${b[4]}" -v w2="${b[5]}" -v q2="${b[6]}" -v sq2="${b[7]}" -v st2="${b[8]}" \
      'BEGIN { busy = (u2-u1)+(n2-n1)+(s2-s1)+(q2-q1)+(sq2-sq1)+(st2-st1); idle = (i2-i1)+(w2-w1);
               printf "%.0f", ((busy + idle) > 0 ? 100 * busy / (busy + idle) : 0) }'
}
# wait_idle LABEL: with BENCH_WAIT_IDLE > 0, wait (at most that many seconds)
# until the CPUs are <= 10 % busy; called before each phase, when nothing of
# the benchmark runs.
wait_idle() {
  ((BENCH_WAIT_IDLE > 0)) || return 0
  local busy deadline=$((SECONDS + BENCH_WAIT_IDLE))
  busy=$(cpu_busy_pct)
  ((busy > 10)) && log "$1: CPUs ${busy}% busy, waiting up to ${BENCH_WAIT_IDLE}s for an idle machine"
  while ((busy > 10 && SECONDS < deadline)); do busy=$(cpu_busy_pct); done
  ((busy <= 10)) || log "$1: WARNING: still ${busy}% busy; measuring anyway"
}
# flush_probe_ms: latency of one 8 kB synchronous write (O_DSYNC, over existing
# blocks, like a WAL flush) on the cluster's file system, average of 100. It
# is what a COMMIT waits for; a disk shared with other work shows here.
flush_probe_ms() {
  local f=$TMP/flush-probe out
  [[ -f $f ]] || dd if=/dev/zero of="$f" bs=8k count=100 conv=fsync status=none
  out=$(LC_ALL=C dd if=/dev/zero of="$f" bs=8k count=100 oflag=dsync conv=notrunc 2>&1 | tail -n 1)
  awk '{ for (i = 1; i < NF; i++) if ($(i + 1) == "s,") { printf "%.2f", $i * 10; exit } }' <<<"$out"
}
wait_idle "start"
BUSY_BEFORE=$(cpu_busy_pct)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "before the run: CPUs ${BUSY_BEFORE}% busy, load average $LOAD_BEFORE"
((BUSY_BEFORE <= 10)) || log "WARNING: the machine is busy before the benchmark starts; the figures will be low"

# ---------------------------------------------------------------------------
# 2. Throwaway PostgreSQL 15 cluster.
# ---------------------------------------------------------------------------
EXPORTER_PID=
bench_stop_children() { stop_pid "$EXPORTER_PID"; }
bench_pg_start bpmc-bench

"$EXPORTER" migrate --database-url "$DB_URL" >/dev/null
if [[ -n $BENCH_SCHEMA_SQL ]]; then
  log "schema experiment: $BENCH_SCHEMA_SQL"
  q "$BENCH_SCHEMA_SQL"
fi
"$EXPORTER" connector add --database-url "$DB_URL" crm-connector "CRM Connector" >/dev/null
KEY=$("$EXPORTER" api-key create --database-url "$DB_URL" bench | tail -n 1)
KEY_ID=$(q "SELECT id FROM api_keys WHERE owner = 'bench'")
[[ -n $KEY && -n $KEY_ID ]] || die "could not create an API key"
PG_SETTINGS=$(q "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ' ' ORDER BY name)
                 FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes',
                 'wal_sync_method', 'shared_buffers', 'max_wal_size')")
log "PostgreSQL $(q 'SHOW server_version'): $PG_SETTINGS"

# Every event of every phase carries the same timestamp, so all rows go to one
# day partition, created here exactly as the exporter creates it (store.cpp).
NOW=$(date -u +%s)
TS=$(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%S.000Z)
DAY=$(date -u -d "@$NOW" +%F)
NEXT_DAY=$(date -u -d "$DAY + 1 day" +%F)
PARTITION=connector_usage_p${DAY//-/}
q "CREATE TABLE IF NOT EXISTS $PARTITION PARTITION OF connector_usage
   FOR VALUES FROM ('$DAY 00:00:00+00') TO ('$NEXT_DAY 00:00:00+00')"

EVENT='{"connector":"crm-connector","operation":"getContact","make_account_id":"12345","timestamp":"'$TS'"}'
printf '%s' "$EVENT" >"$TMP/event.json"
{
  printf '['
  for ((i = 0; i < BATCH_SIZE; i++)); do
    ((i > 0)) && printf ','
    printf '%s' "$EVENT"
  done
  printf ']'
} >"$TMP/batch.json"

# Each phase starts from the same state: an empty partition, a fresh checkpoint
# (so every phase pays the same full-page writes), statistics reset.
reset_table() {
  # connector_usage_ids (migration 0009) registers the event ids; older
  # schemas (BENCH_EXPORTER built from an older commit) do not have it.
  q "DO \$\$ BEGIN IF to_regclass('connector_usage_ids') IS NOT NULL THEN
       TRUNCATE connector_usage_ids; END IF; END \$\$"
  q "TRUNCATE connector_usage"
  q "CHECKPOINT"
}
row_count() { q "SELECT count(*) FROM connector_usage"; }

# ---------------------------------------------------------------------------
# The exporter and wrk.
# ---------------------------------------------------------------------------
start_exporter() {  # $1 = sink (postgres | discard)
  local cfg=$TMP/exporter-$1.yaml
  # Every loader connects from 127.0.0.1: no per-address cap (docs/SECURITY.md); a key in
  # BENCH_EXPORTER_YAML comes later and wins.
  { printf 'sink: %s\nmax_requests_per_client: 0\n' "$1"; printf '%s\n' "${PHASE_YAML:-}" "$BENCH_EXPORTER_YAML"; } >"$cfg"
  : >"$TMP/exporter-$1.log"
  bench_exporter_serve "$EXPORTER" "$TMP/exporter-$1.log" --config "$cfg"
  log "exporter (sink: $1${PHASE_YAML:+, $PHASE_YAML}${BENCH_EXPORTER_YAML:+, $(tr '\n' ' ' <<<"$BENCH_EXPORTER_YAML")}) on port $PORT"
}

stop_exporter() {  # SIGTERM: the exporter finishes and commits in-flight requests first
  [[ -n $EXPORTER_PID ]] || return 0
  kill -TERM "$EXPORTER_PID"
  wait "$EXPORTER_PID" || die "the exporter exited with status $?"
  EXPORTER_PID=
}

metric_sum() {  # sum of a metric's samples in a /metrics text file: $1 = file, $2 = name, $3 = decimals
  awk -v n="$2" -v d="${3:-0}" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%.*f", d, s }' "$1"
}

# CPU accounting, to tell a disturbed measurement from a real one on a shared
# machine: during a phase, CPU time used by everything (/proc/stat) minus CPU
# time used by the benchmark itself (exporter, this cluster's PostgreSQL
# processes, the load client) = CPU taken by other processes (and the
# hypervisor: steal). Reported as a share of the machine, "other %".
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
machine_busy_ticks() {  # user nice system irq softirq steal
  awk '$1 == "cpu" { printf "%d", $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
proc_ticks() {  # utime + stime of the given pids (all their threads); gone pids count 0
  local pid total=0 f
  for pid in "$@"; do
    f=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    f=${f##*) }  # fields after "(comm) "; utime and stime are fields 14 and 15
    total=$((total + $(awk '{ print $12 + $13 }' <<<"$f")))
  done
  echo "$total"
}
bench_ticks() {  # the exporter, the postmaster, its children, and its exited children (cutime + cstime)
  local pm pids=() reaped=0 f
  pm=$(head -n 1 "$TMP/data/postmaster.pid" 2>/dev/null || true)
  if [[ -n $pm ]]; then
    pids+=("$pm" $(ps --ppid "$pm" -o pid= 2>/dev/null || true))
    f=$(cat "/proc/$pm/stat" 2>/dev/null) && f=${f##*) } && reaped=$(awk '{ print $14 + $15 }' <<<"$f")
  fi
  [[ -n $EXPORTER_PID ]] && pids+=("$EXPORTER_PID")
  echo $(( $(proc_ticks "${pids[@]}") + reaped ))
}
acct_start() {
  A_BUSY0=$(machine_busy_ticks); A_OURS0=$(bench_ticks); A_T0=$(date +%s%N)
  A_EXP0=$(proc_ticks ${EXPORTER_PID:-})
}
# acct_end CLIENT_CPU_SECONDS: sets A_OTHER (% of all CPUs used by other
# processes), A_BUSY (% of all CPUs busy) and A_OURS_S (CPU seconds used by
# the exporter and PostgreSQL, not the client) and A_EXP_S (of which the
# exporter's) over the phase.
acct_end() {
  local busy1 ours1 t1
  busy1=$(machine_busy_ticks); ours1=$(bench_ticks); t1=$(date +%s%N)
  A_EXP_S=$(calc "($(proc_ticks ${EXPORTER_PID:-}) - $A_EXP0) / $CLK_TCK" 3)
  A_BUSY=$(calc "100 * ($busy1 - $A_BUSY0) / ($NCPU * $CLK_TCK * ($t1 - $A_T0) / 1e9)")
  A_OTHER=$(calc "100 * (($busy1 - $A_BUSY0) - ($ours1 - $A_OURS0) - $1 * $CLK_TCK) / ($NCPU * $CLK_TCK * ($t1 - $A_T0) / 1e9)")
  ((A_OTHER >= 0)) || A_OTHER=0
  A_OURS_S=$(calc "($ours1 - $A_OURS0) / $CLK_TCK" 3)
}
# timed_client OUTFILE CMD...: runs a client (wrk, psql, pgbench) with its
# output in OUTFILE and its CPU time (user + system seconds) in CLIENT_CPU.
timed_client() {
  local out=$1 tf=$TMP/time.txt rc=0
  shift
  local TIMEFORMAT='%U %S'
  { time "$@" >"$out" 2>&1; } 2>"$tf" || rc=$?
  CLIENT_CPU=$(awk 'END { printf "%.2f", $1 + $2 }' "$tf")
  return $rc
}
other_note() {  # $1 = phase key: the "other %" of that phase, flagged when large
  local v=${RES[${1}_other]:-}
  [[ -z $v ]] && return
  if ((v > 10)); then echo "$v % DISTURBED"; else echo "$v %"; fi
}
flush_note() { echo "${RES[${1}_flush]:-}"; }

# run_wrk LABEL CONNECTIONS BODY_FILE PATH SECONDS: sets R_* from the BENCHRESULT line.
run_wrk() {
  local label=$1 conns=$2 body=$3 path=$4 secs=$5 out=$TMP/wrk-$1.txt
  acct_start
  BENCH_KEY=$KEY BENCH_BODY_FILE=$body BENCH_EVENT_ID=$BENCH_EVENT_ID timed_client "$out" \
    wrk -t "$BENCH_WRK_THREADS" -c "$conns" -d "${secs}s" --timeout 30s --latency -s "$LUA" \
    "$BASE_URL$path" || { cat "$out" >&2; die "wrk failed ($label)"; }
  acct_end "$CLIENT_CPU"
  R_client_cpu=$CLIENT_CPU
  local line
  line=$(grep '^BENCHRESULT ' "$out") || { cat "$out" >&2; die "no result from wrk ($label)"; }
  for k in requests duration_us n201 nother other_status p50_us p99_us err_connect err_read \
           err_write err_status err_timeout mean_us; do
    printf -v "R_$k" '%s' "$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<" $line")"
  done
  R_sockerr=$((R_err_connect + R_err_read + R_err_write + R_err_timeout))
}

show_wrk() {  # the interesting part of wrk's own report
  sed -n '/Thread Stats/,/Transfer\/sec/p' "$TMP/wrk-$1.txt" | grep -v '^BENCHRESULT' | sed 's/^/    | /' >&2
}

check_statuses() {  # $1 = label: fail on any non-201 or socket error
  if ((R_nother > 0)); then
    die "($1) $R_nother responses were not 201 (last: $R_other_status); see $TMP/exporter-*.log (BENCH_KEEP=1)"
  fi
  if ((R_sockerr > 0)); then
    die "($1) socket errors: connect $R_err_connect, read $R_err_read, write $R_err_write, timeout $R_err_timeout"
  fi
}

declare -A RES=()

# ---------------------------------------------------------------------------
# (e) the HTTP ceiling: same stack, 201 without storing.
# ---------------------------------------------------------------------------
if has_phase e; then
  wait_idle "(e)"
  RES[e_flush]=$(flush_probe_ms)
  start_exporter discard
  if ((BENCH_WARMUP_SECONDS > 0)); then run_wrk e-warmup "$BENCH_CONNECTIONS" "$TMP/event.json" /v1/connector/usage "$BENCH_WARMUP_SECONDS"; fi
  log "(e) ceiling: ${BENCH_CONNECTIONS} connections, ${BENCH_SECONDS}s, sink: discard"
  run_wrk e "$BENCH_CONNECTIONS" "$TMP/event.json" /v1/connector/usage "$BENCH_SECONDS"
  show_wrk e
  check_statuses e
  stop_exporter
  [[ $(row_count) == 0 ]] || die "(e) sink: discard stored rows"
  RES[e_rate]=$(calc "$R_n201 / ($R_duration_us / 1e6)")
  RES[e_other]=$A_OTHER
  RES[e_cpu]=$(calc "1e6 * $A_OURS_S / $R_n201" 1)
  RES[e_cpu_exporter]=$(calc "1e6 * $A_EXP_S / $R_n201" 1)
  RES[e_client]=$(calc "100 * $R_client_cpu / ($NCPU * $R_duration_us / 1e6)")
  RES[e_p50]=$(calc "$R_p50_us / 1000" 2)
  RES[e_p99]=$(calc "$R_p99_us / 1000" 2)
  RES[e_n]=$R_n201
  log "(e) ${RES[e_rate]} requests/s, p50 ${RES[e_p50]} ms, p99 ${RES[e_p99]} ms;" \
      "wrk used ${RES[e_client]} % of the CPUs, other processes ${RES[e_other]} %"
fi

# ---------------------------------------------------------------------------
# (a) single events, durable before 201.
# ---------------------------------------------------------------------------
# single_phase KEY CONNECTIONS: single-event POSTs on CONNECTIONS keep-alive
# connections, each 201 only once committed; results in RES[KEY_*].
single_phase() {
  local p=$1 conns=$2 count commits spooled commit_secs
  wait_idle "($p)"
  RES[${p}_flush]=$(flush_probe_ms)
  start_exporter postgres
  if ((BENCH_WARMUP_SECONDS > 0)); then run_wrk $p-warmup "$conns" "$TMP/event.json" /v1/connector/usage "$BENCH_WARMUP_SECONDS"; fi
  reset_table
  curl -sf "$BASE_URL/metrics" >"$TMP/metrics-$p-0.txt"
  log "($p) single events: ${conns} connections, ${BENCH_SECONDS}s, stored"
  run_wrk $p "$conns" "$TMP/event.json" /v1/connector/usage "$BENCH_SECONDS"
  curl -sf "$BASE_URL/metrics" >"$TMP/metrics-$p-1.txt"
  show_wrk $p
  check_statuses $p
  stop_exporter
  count=$(row_count)
  RES[${p}_rate]=$(calc "$R_n201 / ($R_duration_us / 1e6)")
  RES[${p}_other]=$A_OTHER
  RES[${p}_cpu]=$(calc "1e6 * $A_OURS_S / $R_n201" 1)
  RES[${p}_cpu_exporter]=$(calc "1e6 * $A_EXP_S / $R_n201" 1)
  RES[${p}_client]=$(calc "100 * $R_client_cpu / ($NCPU * $R_duration_us / 1e6)")
  RES[${p}_p50]=$(calc "$R_p50_us / 1000" 2)
  RES[${p}_p99]=$(calc "$R_p99_us / 1000" 2)
  RES[${p}_n]=$R_n201
  RES[${p}_count]=$count
  commits=$(( $(metric_sum "$TMP/metrics-$p-1.txt" bpmc_exporter_commit_batch_events_count) - \
              $(metric_sum "$TMP/metrics-$p-0.txt" bpmc_exporter_commit_batch_events_count) ))
  spooled=$(( $(metric_sum "$TMP/metrics-$p-1.txt" bpmc_exporter_spooled_events_total) - \
              $(metric_sum "$TMP/metrics-$p-0.txt" bpmc_exporter_spooled_events_total) ))
  commit_secs=$(awk -v a="$(metric_sum "$TMP/metrics-$p-0.txt" bpmc_exporter_commit_duration_seconds_sum 6)" \
                     -v b="$(metric_sum "$TMP/metrics-$p-1.txt" bpmc_exporter_commit_duration_seconds_sum 6)" \
                     'BEGIN { printf "%.6f", b - a }')
  RES[${p}_commit_ms]=$( ((commits > 0)) && calc "1000 * $commit_secs / $commits" 2 || echo 0)
  RES[${p}_commits]=$(calc "$commits / ($R_duration_us / 1e6)")
  RES[${p}_per_commit]=$( ((commits > 0)) && calc "$R_n201 / $commits" 1 || echo 0)
  log "($p) ${RES[${p}_rate]} events/s, p50 ${RES[${p}_p50]} ms, p99 ${RES[${p}_p99]} ms;" \
      "${RES[${p}_commits]} commits/s, ${RES[${p}_per_commit]} events per commit, ${RES[${p}_commit_ms]} ms per commit"
  log "($p) wrk used ${RES[${p}_client]} % of the CPUs, other processes ${RES[${p}_other]} %"
  log "($p) durable: 201 responses $R_n201, rows in connector_usage $count"
  ((spooled == 0)) || die "($p) $spooled events went to the spool instead of PostgreSQL"
  # Every 201 must be a stored row. Requests still in flight when wrk stops
  # (at most one per connection) are committed too, without wrk seeing the 201.
  ((count >= R_n201)) || die "($p) only $count rows for $R_n201 acknowledged events"
  ((count <= R_n201 + conns)) || die "($p) $count rows for $R_n201 acknowledged events"
  # Clients served (Little's law over the answered requests): each answered
  # connection has one request in flight all the time, a client left waiting
  # for a worker has none answered. wrk counts no error for a client that is
  # never answered, so this is how one shows. It reads ~10 % low when every
  # client is served (wrk's connecting ramp and the run's last requests):
  # measured 89 % with 1,100 workers for 1,000 clients, 47 % with 512; the
  # target is 80 %.
  RES[${p}_served]=$(calc "$R_n201 / ($R_duration_us / 1e6) * $R_mean_us / 1e6")
  log "($p) clients served at once: ${RES[${p}_served]} of $conns (answered/s x mean latency)"
}

if has_phase a; then
  single_phase a "$BENCH_CONNECTIONS"
fi

# ---------------------------------------------------------------------------
# (k) the same with many clients: a fleet of scenario workers, each on its own
# keep-alive connection (issue 17: no error, and no slower than (a)).
# ---------------------------------------------------------------------------
# Each keep-alive connection holds a CivetWeb worker while it is open, so the
# exporter gets more workers than clients (docs/SCALING.md). A client left
# waiting for a worker shows in "clients served at once", not as a wrk error.
if has_phase k; then
  PHASE_YAML="http_threads: $((BENCH_MANY_CONNECTIONS + 100))" single_phase k "$BENCH_MANY_CONNECTIONS"
fi

# ---------------------------------------------------------------------------
# (b) batches of 1,000 events.
# ---------------------------------------------------------------------------
if has_phase b; then
  wait_idle "(b)"
  RES[b_flush]=$(flush_probe_ms)
  start_exporter postgres
  if ((BENCH_WARMUP_SECONDS > 0)); then run_wrk b-warmup "$BENCH_BATCH_CONNECTIONS" "$TMP/batch.json" /v1/connector/usage/batch "$BENCH_WARMUP_SECONDS"; fi
  reset_table
  log "(b) batches of $BATCH_SIZE: ${BENCH_BATCH_CONNECTIONS} connections, ${BENCH_SECONDS}s"
  run_wrk b "$BENCH_BATCH_CONNECTIONS" "$TMP/batch.json" /v1/connector/usage/batch "$BENCH_SECONDS"
  show_wrk b
  check_statuses b
  stop_exporter
  count=$(row_count)
  RES[b_rate]=$(calc "$R_n201 * $BATCH_SIZE / ($R_duration_us / 1e6)")
  RES[b_other]=$A_OTHER
  RES[b_cpu]=$(calc "1e6 * $A_OURS_S / ($R_n201 * $BATCH_SIZE)" 1)
  RES[b_client]=$(calc "100 * $R_client_cpu / ($NCPU * $R_duration_us / 1e6)")
  RES[b_p50]=$(calc "$R_p50_us / 1000" 2)
  RES[b_p99]=$(calc "$R_p99_us / 1000" 2)
  RES[b_n]=$((R_n201 * BATCH_SIZE))
  RES[b_count]=$count
  log "(b) ${RES[b_rate]} events/s ($R_n201 batches); durable: acknowledged ${RES[b_n]}, rows $count;" \
      "other processes ${RES[b_other]} % of the CPUs"
  ((count >= R_n201 * BATCH_SIZE)) || die "(b) only $count rows for ${RES[b_n]} acknowledged events"
  ((count <= (R_n201 + BENCH_BATCH_CONNECTIONS) * BATCH_SIZE)) || die "(b) $count rows for ${RES[b_n]} acknowledged events"
fi

# ---------------------------------------------------------------------------
# (c) psql \copy of the same rows into the same table (same partition, same indexes).
# ---------------------------------------------------------------------------
COLS='id, api_key_id, connector_id, make_account_id, operation, "timestamp", status'
if has_phase c; then
  log "(c) generating $BENCH_COPY_ROWS rows ($BENCH_COPY_IDS ids)"
  if [[ $BENCH_COPY_IDS == v4 ]]; then
    id_expr="gen_random_uuid()"
  else
    # UUIDv7 layout as common/ids.cpp makes it: 48-bit milliseconds, version 7,
    # variant 10, random rest; ~50 ids per millisecond (the order of (a)'s rate).
    base_ms=$((NOW * 1000))
    id_expr="(lpad(to_hex($base_ms + i / 50), 12, '0') || '7' || substr(r, 1, 3) || '8' || substr(r, 4, 15))::uuid"
  fi
  "${PSQL[@]}" -c "\\copy (SELECT $id_expr, '$KEY_ID', 'crm-connector', '12345', 'getContact', '$TS', 'success'
      FROM (SELECT i, md5(random()::text || i) AS r FROM generate_series(1, $BENCH_COPY_ROWS) i) s)
      TO '$TMP/rows.csv' CSV"
  reset_table
  wait_idle "(c)"
  RES[c_flush]=$(flush_probe_ms)
  log "(c) \\copy $BENCH_COPY_ROWS rows"
  acct_start
  t0=$(date +%s%N)
  timed_client "$TMP/copy.txt" "${PSQL[@]}" -c "\\copy connector_usage ($COLS) FROM '$TMP/rows.csv' CSV" ||
    { cat "$TMP/copy.txt" >&2; die "(c) \\copy failed"; }
  t1=$(date +%s%N)
  acct_end "$CLIENT_CPU"
  RES[c_other]=$A_OTHER
  RES[c_cpu]=$(calc "1e6 * $A_OURS_S / $BENCH_COPY_ROWS" 1)
  count=$(row_count)
  [[ $count == "$BENCH_COPY_ROWS" ]] || die "(c) $count rows after \\copy of $BENCH_COPY_ROWS"
  RES[c_secs]=$(calc "($t1 - $t0) / 1e9" 2)
  RES[c_rate]=$(calc "$BENCH_COPY_ROWS / (($t1 - $t0) / 1e9)")
  log "(c) ${RES[c_rate]} rows/s (${RES[c_secs]} s); other processes ${RES[c_other]} % of the CPUs"
  rm -f "$TMP/rows.csv"
fi

# ---------------------------------------------------------------------------
# (d) one INSERT + COMMIT per event (autocommit, prepared), pgbench.
# ---------------------------------------------------------------------------
if has_phase d; then
  cat >"$TMP/insert.sql" <<EOF
INSERT INTO connector_usage ($COLS) VALUES (gen_random_uuid(), '$KEY_ID', 'crm-connector', '12345', 'getContact', '$TS', 'success');
EOF
  run_pgbench() {  # $1 = clients, $2 = result key: sets RES[key_rate], RES[key_other]
    local c=$1 j=$(( $1 < 2 ? 1 : 2 )) out=$TMP/pgbench-$1.txt before
    reset_table
    wait_idle "(d) $c clients"
    RES[${2}_flush]=$(flush_probe_ms)
    acct_start
    PGHOST=$TMP PGUSER=postgres timed_client "$out" pgbench -n -M prepared -f "$TMP/insert.sql" \
      -c "$c" -j "$j" -T "$BENCH_SECONDS" bench || { cat "$out" >&2; die "pgbench failed"; }
    acct_end "$CLIENT_CPU"
    RES[${2}_rate]=$(sed -n 's/^tps = \([0-9.]*\) (without initial connection time).*/\1/p' "$out" | cut -d. -f1)
    RES[${2}_other]=$A_OTHER
  }
  log "(d) INSERT + COMMIT per event: 1 client, ${BENCH_SECONDS}s"
  run_pgbench 1 d
  log "(d) ${RES[d_rate]} rows/s (1 client); other processes: ${RES[d_other]} % of the CPUs"
  if ((BENCH_PGBENCH_MANY > 0)); then
    log "(d) INSERT + COMMIT per event: $BENCH_PGBENCH_MANY clients, ${BENCH_SECONDS}s"
    run_pgbench "$BENCH_PGBENCH_MANY" dm
    log "(d) ${RES[dm_rate]} rows/s ($BENCH_PGBENCH_MANY clients); other processes: ${RES[dm_other]} % of the CPUs"
  fi
fi

# ---------------------------------------------------------------------------
# Summary.
# ---------------------------------------------------------------------------
val() { echo "${RES[$1]:-n/a}"; }
ratio() {  # $1 / $2 in percent, or n/a
  if [[ -n ${RES[$1]:-} && -n ${RES[$2]:-} && ${RES[$2]} != 0 ]]; then calc "100 * ${RES[$1]} / ${RES[$2]}" 1; else echo n/a; fi
}
verdict() {  # $1 = value, $2 = threshold
  if [[ $1 == n/a ]]; then echo n/a; elif awk "BEGIN { exit !($1 >= $2) }"; then echo PASS; else echo MISS; fi
}
r_ae=$(ratio a_rate e_rate)
r_ad=$(ratio a_rate d_rate)
r_bc=$(ratio b_rate c_rate)
v_a=$(verdict "$(val a_rate)" 20000)
v_ae=$(verdict "$r_ae" 50)
v_bc=$(verdict "$r_bc" 70)
r_ka=$(ratio k_rate a_rate)
v_ka=$(verdict "$r_ka" 100)
r_kserved=$(if [[ -n ${RES[k_served]:-} ]]; then calc "100 * ${RES[k_served]} / $BENCH_MANY_CONNECTIONS" 1; else echo n/a; fi)
v_kserved=$(verdict "$r_kserved" 80)

CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
GIT=$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
CFG_DESC=$(if [[ -n $BENCH_EXPORTER_YAML ]]; then tr '\n' ';' <<<"$BENCH_EXPORTER_YAML" | sed 's/;*$//; s/;/; /g'; else echo defaults; fi)

{
  echo
  echo "=============================================================================="
  echo " bpmc-exporter ingestion benchmark   $(date -u +%FT%TZ)   git $GIT"
  echo " $NCPU CPUs ($CPU); loader, exporter and PostgreSQL share them"
  echo " PostgreSQL: $PG_SETTINGS"
  echo " exporter config: $CFG_DESC; ${BENCH_SECONDS}s per run; niceness $(nice); event_id: $( ((BENCH_EVENT_ID)) && echo 'one per event' || echo none)"
  [[ -n $BENCH_EXPORTER ]] && echo " binary: $BENCH_EXPORTER"
  [[ -n $BENCH_SCHEMA_SQL ]] && echo " SCHEMA MODIFIED for an experiment: $BENCH_SCHEMA_SQL"
  echo " CPUs busy before the run: ${BUSY_BEFORE}% (load average $LOAD_BEFORE; after: $(cut -d' ' -f1-3 /proc/loadavg))"
  echo " flush = ms per 8 kB O_DSYNC write on the cluster's disk just before the phase (what a COMMIT waits for)"
  echo " other = CPU taken by processes outside the benchmark during the phase (> 10 %: DISTURBED)"
  echo "=============================================================================="
  row() { printf ' %-50s %10s %8s %8s %7s %8s  %s\n' "$@"; }
  row "phase" "events/s" "p50 ms" "p99 ms" "flush" "cpu µs" "other"
  row "(a) single event, HTTP, ${BENCH_CONNECTIONS} conns, durable" "$(val a_rate)" "$(val a_p50)" "$(val a_p99)" "$(flush_note a)" "$(val a_cpu)" "$(other_note a)"
  row "(k) single event, HTTP, ${BENCH_MANY_CONNECTIONS} conns, durable" "$(val k_rate)" "$(val k_p50)" "$(val k_p99)" "$(flush_note k)" "$(val k_cpu)" "$(other_note k)"
  row "(b) batches of $BATCH_SIZE, HTTP, ${BENCH_BATCH_CONNECTIONS} conns, durable" "$(val b_rate)" "$(val b_p50)" "$(val b_p99)" "$(flush_note b)" "$(val b_cpu)" "$(other_note b)"
  row "(c) psql \\copy, $BENCH_COPY_ROWS rows" "$(val c_rate)" "" "" "$(flush_note c)" "$(val c_cpu)" "$(other_note c)"
  row "(d) INSERT + COMMIT per event, 1 client" "$(val d_rate)" "" "" "$(flush_note d)" "" "$(other_note d)"
  if [[ -n ${RES[dm_rate]:-} ]]; then
    row "    INSERT + COMMIT per event, $BENCH_PGBENCH_MANY clients" "$(val dm_rate)" "" "" "$(flush_note dm)" "" "$(other_note dm)"
  fi
  row "(e) HTTP ceiling (201 without storing), ${BENCH_CONNECTIONS} conns" "$(val e_rate)" "$(val e_p50)" "$(val e_p99)" "$(flush_note e)" "$(val e_cpu)" "$(other_note e)"
  echo " cpu µs = CPU time of the exporter and PostgreSQL per event (not the client): a cost that a"
  echo "          busy machine slows down but does not inflate much, unlike events/s"
  echo
  if [[ -n ${RES[a_n]:-} ]]; then
    echo " (a) durable: 201 responses ${RES[a_n]}, rows ${RES[a_count]} (the excess: requests in flight when wrk stopped)"
    echo " (a) group commit: ${RES[a_commits]} commits/s, ${RES[a_per_commit]} events/commit, ${RES[a_commit_ms]} ms/commit; wrk used ${RES[a_client]} % of the CPUs"
    echo " (a) cpu µs per event: exporter ${RES[a_cpu_exporter]}, PostgreSQL $(calc "${RES[a_cpu]} - ${RES[a_cpu_exporter]}" 1)"
  fi
  if [[ -n ${RES[k_n]:-} ]]; then
    echo " (k) durable: 201 responses ${RES[k_n]}, rows ${RES[k_count]}, no error; ${RES[k_per_commit]} events/commit"
    echo " (k) cpu µs per event: exporter ${RES[k_cpu_exporter]}, PostgreSQL $(calc "${RES[k_cpu]} - ${RES[k_cpu_exporter]}" 1)"
  fi
  [[ -n ${RES[e_n]:-} ]] && echo " (e) wrk used ${RES[e_client]} % of the CPUs; cpu µs per request: exporter ${RES[e_cpu_exporter]}"
  [[ -n ${RES[b_n]:-} ]] && echo " (b) durable: acknowledged ${RES[b_n]}, rows ${RES[b_count]}"
  echo
  printf ' %-34s %8s %%   target %-10s %s\n' "(a)/(e) single vs ceiling" "$r_ae" ">= 50 %" "$v_ae"
  printf ' %-34s %8s %%   target %-10s %s\n' "(a)/(d) single vs INSERT+COMMIT" "$r_ad" "-" ""
  printf ' %-34s %8s %%   target %-10s %s\n' "(b)/(c) batch vs \\copy" "$r_bc" ">= 70 %" "$v_bc"
  printf ' %-34s %8s %%   target %-10s %s\n' "(k)/(a) ${BENCH_MANY_CONNECTIONS} vs ${BENCH_CONNECTIONS} clients" "$r_ka" ">= 100 %" "$v_ka"
  printf ' %-34s %8s %%   target %-10s %s\n' "(k) clients served at once" "$r_kserved" ">= 80 %" "$v_kserved"
  printf ' %-34s %8s      target %-10s %s\n' "(a) events/s" "$(val a_rate)" ">= 20000" "$v_a"
  echo
  echo "<!-- markdown fragment for docs/BENCHMARKS.md: $(date -u +%FT%TZ), git $GIT, exporter config: $CFG_DESC, BENCH_EVENT_ID=$BENCH_EVENT_ID${BENCH_EXPORTER:+, binary $BENCH_EXPORTER} -->"
  [[ -n $BENCH_SCHEMA_SQL ]] && echo "Schema modified for an experiment: \`$BENCH_SCHEMA_SQL\`"
  echo
  echo "| phase | events/s | p50 ms | p99 ms | flush ms | CPU µs/event | other processes |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  echo "| (a) single event over HTTP, ${BENCH_CONNECTIONS} keep-alive connections, 201 after COMMIT | $(val a_rate) | $(val a_p50) | $(val a_p99) | $(flush_note a) | $(val a_cpu) | $(other_note a) |"
  echo "| (k) single event over HTTP, ${BENCH_MANY_CONNECTIONS} keep-alive connections, 201 after COMMIT | $(val k_rate) | $(val k_p50) | $(val k_p99) | $(flush_note k) | $(val k_cpu) | $(other_note k) |"
  echo "| (b) batches of $BATCH_SIZE over HTTP, ${BENCH_BATCH_CONNECTIONS} connections | $(val b_rate) | $(val b_p50) | $(val b_p99) | $(flush_note b) | $(val b_cpu) | $(other_note b) |"
  echo "| (c) \`psql \\copy\`, $BENCH_COPY_ROWS rows | $(val c_rate) | | | $(flush_note c) | $(val c_cpu) | $(other_note c) |"
  echo "| (d) one INSERT + COMMIT per event, 1 client | $(val d_rate) | | | $(flush_note d) | | $(other_note d) |"
  if [[ -n ${RES[dm_rate]:-} ]]; then
    echo "| (d') one INSERT + COMMIT per event, $BENCH_PGBENCH_MANY clients | $(val dm_rate) | | | $(flush_note dm) | | $(other_note dm) |"
  fi
  echo "| (e) same HTTP stack, 201 without storing | $(val e_rate) | $(val e_p50) | $(val e_p99) | $(flush_note e) | $(val e_cpu) | $(other_note e) |"
  echo
  echo "| ratio | value | target | |"
  echo "|---|---:|---|---|"
  echo "| (a)/(e) | $r_ae % | ≥ 50 % | $v_ae |"
  echo "| (a)/(d) | $r_ad % | | |"
  echo "| (b)/(c) | $r_bc % | ≥ 70 % | $v_bc |"
  echo "| (k)/(a) | $r_ka % | ≥ 100 % | $v_ka |"
  echo "| (k) clients served at once | $r_kserved % of ${BENCH_MANY_CONNECTIONS} | ≥ 80 % | $v_kserved |"
  echo "| (a) | $(val a_rate) events/s | ≥ 20,000 | $v_a |"
}

if [[ $BENCH_STRICT == 1 && ( $v_a == MISS || $v_ae == MISS || $v_bc == MISS || $v_ka == MISS || $v_kserved == MISS ) ]]; then exit 3; fi
exit 0
