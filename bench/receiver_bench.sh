#!/usr/bin/env bash
# Benchmark of bpmc-receiver (issue 5, section 6; results in docs/BENCHMARKS.md):
#   (a) webhooks/s accepted durably: Alertmanager v4 webhooks of 1 new alert each, as fast as
#       the receiver answers (200 only after COMMIT), BENCH_CONNECTIONS keep-alive connections
#   (b) the same with BENCH_BATCH_ALERTS alerts per webhook (Alertmanager groups alerts)
#   (c) an open-loop paced load of BENCH_RATE alerts/s (1 alert per webhook, bpmc-bench-pacer)
#       for BENCH_SECONDS: the time from the webhook's transaction to the first delivery attempt
#       of its notification (p50/p99, from the outbox: first_attempt_at - created_at)
# Every alert is new (unique fingerprint), so each one is stored, routed and enqueued for one
# webhook channel whose peer is a loopback server answering 200 (bpmc-bench-peer). The channel
# keeps the notifier's defaults (webhook: at most 20 messages a second, bundling what would
# exceed that, up to max_bundle alerts per message), as a production receiver would. After each phase the script waits for the outbox to drain and checks that
# no message was lost: delivered = enqueued = alerts answered 200, failed = 0.
#
# It starts a throwaway PostgreSQL 15 cluster (Unix socket only, fsync and synchronous_commit
# on) and removes it on exit.
#
# Usage: bench/receiver_bench.sh
# Environment:
#   BENCH_SECONDS=10          length of each measured phase
#   BENCH_CONNECTIONS=16      wrk connections for (a) and (b)
#   BENCH_BATCH_ALERTS=10     alerts per webhook in (b)
#   BENCH_RATE=1000           alerts/s offered in (c)
#   BENCH_RATE_CONNECTIONS=64 keep-alive connections of the pacer in (c)
#   BENCH_RECEIVER_YAML=''    extra receiver config lines, e.g. $'database_connections: 8'
#   BENCH_CHANNEL_YAML=''     extra lines of the webhook channel (4-space indent), e.g.
#                             '    rate_limit: none' (one message per alert)
#   BENCH_PG_OPTS=''          extra PostgreSQL options, e.g. '-c shared_preload_libraries=pg_stat_statements'
#   BENCH_PHASES='a b c'      phases to run
#   BENCH_VACUUM=0            1: VACUUM ANALYZE the outbox after each phase has drained (else
#                             autovacuum decides, as in production)
#   BENCH_BUILD_DIR=build     where to build (Release) bpmc-receiver and the two bench tools
#   BENCH_NO_BUILD=0          1: use the binaries as they are
#   BENCH_KEEP=0              1: keep the temporary directory (cluster, logs)
#   BENCH_STRICT=0            1: exit 3 when a target is missed
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BENCH_SECONDS=${BENCH_SECONDS:-10}
BENCH_CONNECTIONS=${BENCH_CONNECTIONS:-16}
BENCH_BATCH_ALERTS=${BENCH_BATCH_ALERTS:-10}
BENCH_RATE=${BENCH_RATE:-1000}
BENCH_RATE_CONNECTIONS=${BENCH_RATE_CONNECTIONS:-64}
BENCH_RECEIVER_YAML=${BENCH_RECEIVER_YAML:-}
BENCH_CHANNEL_YAML=${BENCH_CHANNEL_YAML:-}
BENCH_PHASES=${BENCH_PHASES:-a b c}
BENCH_BUILD_DIR=${BENCH_BUILD_DIR:-build}
BENCH_KEEP=${BENCH_KEEP:-0}
BENCH_STRICT=${BENCH_STRICT:-0}
RECEIVER=$ROOT/$BENCH_BUILD_DIR/bin/bpmc-receiver
PEER=$ROOT/$BENCH_BUILD_DIR/bin/bpmc-bench-peer
PACER=$ROOT/$BENCH_BUILD_DIR/bin/bpmc-bench-pacer
LUA=$ROOT/bench/wrk_receiver.lua
TOKEN=bench-token-$RANDOM$RANDOM

BENCH_NAME=receiver-bench
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"  # log, die, has_phase, calc, bench_pg_start, q

for tool in wrk psql curl awk; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/deps.sh installs it)"
done

# --- 1. Build (Release) -------------------------------------------------------------------
if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building Release bpmc-receiver, bpmc-bench-peer and bpmc-bench-pacer into $BENCH_BUILD_DIR/"
  cmake -S . -B "$BENCH_BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPMC_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BENCH_BUILD_DIR" --target bpmc-receiver bpmc-bench-peer bpmc-bench-pacer >&2
fi
for bin in "$RECEIVER" "$PEER" "$PACER"; do [[ -x $bin ]] || die "$bin is missing"; done
build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$BENCH_BUILD_DIR/CMakeCache.txt" 2>/dev/null || true)
[[ $build_type == Release ]] || log "warning: $BENCH_BUILD_DIR is configured as '${build_type:-?}', not Release"
log "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 2. Throwaway PostgreSQL 15, the peer, the receiver -------------------------------------
RECEIVER_PID= PEER_PID=
bench_stop_children() { stop_pid "$RECEIVER_PID"; stop_pid "$PEER_PID"; }
bench_pg_start bpmc-receiver-bench "${BENCH_PG_OPTS:-}"

"$PEER" >"$TMP/peer.log" 2>&1 &
PEER_PID=$!
for _ in $(seq 100); do
  PEER_PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$TMP/peer.log")
  [[ -n $PEER_PORT ]] && break
  sleep 0.05
done
[[ -n ${PEER_PORT:-} ]] || die "bpmc-bench-peer did not start"

printf '%s\n' "$TOKEN" >"$TMP/token"
cat >"$TMP/receiver.yaml" <<EOF
http_threads: 128
# Every loader connects from 127.0.0.1: no per-address cap (docs/SECURITY.md).
max_requests_per_client: 0
auth:
  bearer_tokens:
    - token_file: $TMP/token
channels:
  bench-hook:
    type: webhook
    url: http://127.0.0.1:$PEER_PORT/hook
$BENCH_CHANNEL_YAML
routes:
  - match: {severity: critical}
    notify: [bench-hook]
$BENCH_RECEIVER_YAML
EOF
"$RECEIVER" check-config --config "$TMP/receiver.yaml" >/dev/null || die "bad receiver config"
RECEIVER_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$RECEIVER" serve --config "$TMP/receiver.yaml" --listen "127.0.0.1:$RECEIVER_PORT" \
  --database-url "$DB_URL" 2>"$TMP/receiver.log" &
RECEIVER_PID=$!
BASE_URL=http://127.0.0.1:$RECEIVER_PORT
for _ in $(seq 300); do
  curl -sf "$BASE_URL/readyz" >/dev/null && break
  kill -0 "$RECEIVER_PID" 2>/dev/null || { cat "$TMP/receiver.log" >&2; die "the receiver exited"; }
  sleep 0.1
done
curl -sf "$BASE_URL/readyz" >/dev/null || die "the receiver did not become ready"
log "PostgreSQL $(q 'SHOW server_version') (fsync $(q 'SHOW fsync'), synchronous_commit $(q 'SHOW synchronous_commit')); receiver on $RECEIVER_PORT, peer on $PEER_PORT"

# --- 3. Phases ---------------------------------------------------------------------------
# CPU accounting, to read the figures on a shared machine: CPU seconds used during a phase by
# the receiver, by this cluster's PostgreSQL, and by the whole machine (/proc/stat).
CLK_TCK=$(getconf CLK_TCK)
pid_ticks() {  # utime + stime (+ cutime + cstime with $2 = children) of pid $1
  local f
  f=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  f=${f##*) }
  if [[ ${2:-} == children ]]; then awk '{ print $12 + $13 + $14 + $15 }' <<<"$f"; else awk '{ print $12 + $13 }' <<<"$f"; fi
}
pg_ticks() {
  local pm total child
  pm=$(head -n 1 "$TMP/data/postmaster.pid")
  total=$(pid_ticks "$pm" children)
  for child in $(ps --ppid "$pm" -o pid=); do total=$((total + $(pid_ticks "$child"))); done
  echo "$total"
}
machine_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat; }
cpu_start() { C_R0=$(pid_ticks "$RECEIVER_PID"); C_P0=$(pg_ticks); C_M0=$(machine_ticks); C_T0=$(date +%s%N); }
cpu_end() {  # sets RES[${1}_cpu]: "receiver R%, PostgreSQL P%, machine M% busy" (% of all CPUs)
  local secs n
  secs=$(calc "($(date +%s%N) - $C_T0) / 1e9" 3)
  n=$(nproc)
  RES[${1}_cpu]="receiver $(calc "100 * ($(pid_ticks "$RECEIVER_PID") - $C_R0) / $CLK_TCK / $secs / $n")%,\
 PostgreSQL $(calc "100 * ($(pg_ticks) - $C_P0) / $CLK_TCK / $secs / $n")%,\
 whole machine $(calc "100 * ($(machine_ticks) - $C_M0) / $CLK_TCK / $secs / $n")% busy"
  log "($1) CPU: ${RES[${1}_cpu]}"
}

# run_wrk LABEL CONNECTIONS ALERTS_PER_WEBHOOK: sets R_* from the BENCHRESULT line.
run_wrk() {
  local out=$TMP/wrk-$1.txt line
  BENCH_TOKEN=$TOKEN BENCH_ALERTS=$3 BENCH_RUN=$1 \
    BENCH_STARTS_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
    wrk -t 2 -c "$2" -d "${BENCH_SECONDS}s" --timeout 30s --latency -s "$LUA" \
    "$BASE_URL/v1/alertmanager" >"$out" 2>&1 || { cat "$out" >&2; die "wrk failed ($1)"; }
  line=$(grep '^BENCHRESULT ' "$out") || { cat "$out" >&2; die "no result from wrk ($1)"; }
  for k in requests duration_us n200 nother other_status p50_us p99_us err_connect err_read \
           err_write err_timeout; do
    printf -v "R_$k" '%s' "$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<<" $line")"
  done
  ((R_nother == 0)) || die "($1) $R_nother answers were not 200 (last $R_other_status); see $TMP/receiver.log (BENCH_KEEP=1)"
  ((R_err_connect + R_err_read + R_err_write + R_err_timeout == 0)) ||
    die "($1) socket errors: $(grep -i 'socket errors' "$out")"
}

# drained LABEL ALERTS: waits for the phase's outbox rows to be delivered; checks nothing is lost.
drained() {
  local label=$1 want=$2 deadline=$((SECONDS + 300)) queued
  while :; do
    queued=$(q "SELECT count(*) FROM notification_outbox WHERE state = 'queued' AND dedup_key LIKE '$label-%'")
    ((queued == 0)) && break
    ((SECONDS < deadline)) || die "($label) $queued messages still queued after 300 s"
    sleep 0.5
  done
  local stored enqueued delivered failed
  stored=$(q "SELECT count(*) FROM receiver_alert_events WHERE dedup_key LIKE '$label-%'")
  enqueued=$(q "SELECT count(*) FROM notification_outbox WHERE dedup_key LIKE '$label-%'")
  delivered=$(q "SELECT count(*) FROM notification_outbox WHERE state = 'delivered' AND dedup_key LIKE '$label-%'")
  failed=$(q "SELECT count(*) FROM notification_outbox WHERE state = 'failed' AND dedup_key LIKE '$label-%'")
  # Webhooks still in flight when wrk stopped were stored but not counted: stored >= answered.
  log "($label) answered 200: $want alerts; stored $stored, enqueued $enqueued, delivered $delivered, failed $failed"
  ((stored >= want && enqueued == stored && delivered == enqueued && failed == 0)) ||
    die "($label) messages lost or failed"
  RES[${label}_lost]=0
  if [[ ${BENCH_VACUUM:-0} == 1 ]]; then
    q "VACUUM ANALYZE notification_outbox"
    q "VACUUM ANALYZE notification_destinations"
    log "($label) vacuumed the outbox"
  fi
}

declare -A RES=()

throughput_phase() {  # LABEL ALERTS_PER_WEBHOOK
  local label=$1 per=$2
  log "($label) $BENCH_CONNECTIONS connections, $per alert(s) per webhook, ${BENCH_SECONDS}s, as fast as answered"
  cpu_start
  run_wrk "$label" "$BENCH_CONNECTIONS" "$per"
  cpu_end "$label"
  RES[${label}_webhooks]=$(calc "$R_n200 / ($R_duration_us / 1e6)")
  RES[${label}_alerts]=$(calc "$R_n200 * $per / ($R_duration_us / 1e6)")
  RES[${label}_p50]=$(calc "$R_p50_us / 1000" 1)
  RES[${label}_p99]=$(calc "$R_p99_us / 1000" 1)
  log "($label) ${RES[${label}_webhooks]} webhooks/s = ${RES[${label}_alerts]} alerts/s accepted;" \
      "HTTP p50 ${RES[${label}_p50]} ms, p99 ${RES[${label}_p99]} ms"
  drained "$label" $((R_n200 * per))
}

has_phase a && throughput_phase a 1
has_phase b && throughput_phase b "$BENCH_BATCH_ALERTS"

if has_phase c; then
  # Open loop: webhook i is due at start + i / rate, whatever the answers' latency.
  log "(c) $BENCH_RATE alerts/s paced (1 per webhook, $BENCH_RATE_CONNECTIONS connections), ${BENCH_SECONDS}s"
  cpu_start
  "$PACER" "$BASE_URL" "$TOKEN" "$BENCH_RATE" "$BENCH_SECONDS" "$BENCH_RATE_CONNECTIONS" c \
    >"$TMP/pacer.txt" 2>&1 || { cat "$TMP/pacer.txt" >&2; die "(c) some webhooks were not answered 200"; }
  cpu_end c
  line=$(grep '^PACERESULT ' "$TMP/pacer.txt") || die "no result from bpmc-bench-pacer"
  for k in ok seconds p50_us p99_us; do
    printf -v "P_$k" '%s' "$(sed -n "s/.* $k=\([0-9.]*\).*/\1/p" <<<" $line")"
  done
  RES[c_alerts]=$(calc "$P_ok / $P_seconds")
  RES[c_http_p99]=$(calc "$P_p99_us / 1000" 1)
  drained c "$P_ok"
  read -r p50 p99 max < <(q "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY d)::numeric, 1),
                                  round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY d)::numeric, 1),
                                  round(1000 * max(d)::numeric, 1)
                           FROM (SELECT extract(epoch FROM first_attempt_at - created_at) AS d
                                 FROM notification_outbox WHERE dedup_key LIKE 'c-%') t" | tr '|' ' ')
  RES[c_p50]=$p50 RES[c_p99]=$p99
  log "(c) ${RES[c_alerts]} alerts/s accepted (HTTP p99 ${RES[c_http_p99]} ms from when due);" \
      "webhook to first attempt p50 $p50 ms, p99 $p99 ms, max $max ms"
fi

# --- 4. Summary ----------------------------------------------------------------------------
missed=0
verdict() { if awk "BEGIN { exit !($1) }"; then echo PASS; else missed=1; echo MISS; fi; }
echo
echo "bpmc-receiver benchmark ($(nproc) CPUs; PostgreSQL with fsync on; ${BENCH_SECONDS}s per phase)"
if has_phase a; then
  echo "  (a) 1 alert/webhook:   ${RES[a_webhooks]} webhooks/s accepted durably" \
       "(HTTP p50 ${RES[a_p50]} ms, p99 ${RES[a_p99]} ms), lost ${RES[a_lost]}" \
       "  [>= 1000 alerts/s: $(verdict "${RES[a_alerts]} >= 1000")]"
  echo "      CPU: ${RES[a_cpu]}"
fi
if has_phase b; then
  echo "  (b) $BENCH_BATCH_ALERTS alerts/webhook: ${RES[b_webhooks]} webhooks/s = ${RES[b_alerts]} alerts/s" \
       "(HTTP p50 ${RES[b_p50]} ms, p99 ${RES[b_p99]} ms), lost ${RES[b_lost]}" \
       "  [>= 1000 alerts/s: $(verdict "${RES[b_alerts]} >= 1000")]"
  echo "      CPU: ${RES[b_cpu]}"
fi
if has_phase c; then
  echo "  (c) paced ${RES[c_alerts]} alerts/s: webhook to first attempt p50 ${RES[c_p50]} ms," \
       "p99 ${RES[c_p99]} ms, lost ${RES[c_lost]}  [p99 <= 100 ms: $(verdict "${RES[c_p99]} <= 100")]"
  echo "      CPU: ${RES[c_cpu]}"
fi
if [[ $BENCH_STRICT == 1 && $missed == 1 ]]; then exit 3; fi
