# shellcheck shell=bash
# Shared by the benchmark scripts of bench/ (sourced, not run): logging, arithmetic and a
# throwaway PostgreSQL 15 cluster under a temporary directory.
#
# The sourcing script sets BENCH_NAME (the log prefix), BENCH_KEEP (1: keep the directory) and
# BENCH_PHASES, and may define bench_stop_children, which the exit handler calls first to stop
# the processes it started. Then `bench_pg_start PREFIX [postgres options]` sets:
#   TMP     the temporary directory (cluster in $TMP/data, log in $TMP/postgres.log)
#   as_pg   runs a command as the cluster's owner (postgres when run as root)
#   PSQL    psql argv for the database `bench`;  q SQL  runs one statement
#   DB_URL  the libpq URL of `bench` (Unix socket in $TMP, no TCP)
# The analytics data set and the exporter on it: bench_seed, bench_load_events,
# bench_exporter_start (below).

PGBIN=/usr/lib/postgresql/15/bin

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${BENCH_NAME:-bench}" -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
has_phase() { [[ " $BENCH_PHASES " == *" $1 "* ]]; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", $1 }"; }

# stop_pid PID: TERM and reap one child, quietly.
stop_pid() { [[ -n ${1:-} ]] && kill -TERM "$1" 2>/dev/null && wait "$1" 2>/dev/null; return 0; }

PG_STARTED=0
bench_cleanup() {
  local rc=$?
  set +e
  declare -F bench_stop_children >/dev/null && bench_stop_children
  [[ $PG_STARTED == 1 ]] && as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -m fast -w stop >/dev/null 2>&1
  if [[ -n ${TMP:-} ]]; then
    if [[ ${BENCH_KEEP:-0} == 1 ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit $rc
}

bench_pg_start() {
  local prefix=$1
  shift
  [[ -x $PGBIN/initdb ]] || die "$PGBIN/initdb is missing (postgresql-15)"
  TMP=$(mktemp -d "/tmp/$prefix.XXXXXX")
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$TMP"
    as_pg() { (cd "$TMP" && runuser -u postgres -- "$@"); }
  else
    as_pg() { (cd "$TMP" && "$@"); }
  fi
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
  log "PostgreSQL 15 cluster in $TMP"
  as_pg "$PGBIN/initdb" -D "$TMP/data" -U postgres --auth=trust -E UTF8 --no-locale >"$TMP/initdb.log" 2>&1 ||
    { cat "$TMP/initdb.log" >&2; die "initdb failed"; }
  as_pg "$PGBIN/pg_ctl" -D "$TMP/data" -l "$TMP/postgres.log" \
    -o "-c listen_addresses='' -k $TMP -c shared_buffers=256MB -c max_wal_size=4GB $*" -w start >/dev/null ||
    { cat "$TMP/postgres.log" >&2; die "PostgreSQL did not start"; }
  PG_STARTED=1
  PSQL=(psql -X -q -v ON_ERROR_STOP=1 -h "$TMP" -U postgres -At)
  "${PSQL[@]}" -d postgres -c "CREATE DATABASE bench"
  PSQL+=(-d bench)
  DB_URL="postgresql:///bench?host=$TMP&user=postgres"
}
q() { "${PSQL[@]}" -c "$1"; }
now_ns() { date +%s%N; }
# Percentile (nearest rank) of the numbers on stdin: $1 = percentile.
pctl() { sort -g | awk -v p="$1" '{ a[NR] = $1 } END { if (NR == 0) { print "n/a"; exit }
  i = int((p / 100) * NR + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.2f", a[i] }'; }

# bench_seed EXPORTER: the schema, 10 connectors (conn-1..conn-10) and 50 customers
# (cust-1..cust-50) with an API key each; KEY = the last key.
bench_seed() {
  local EXPORTER=$1 i
  "$EXPORTER" migrate --database-url "$DB_URL" >/dev/null
  for i in $(seq 1 10); do
    "$EXPORTER" connector add --database-url "$DB_URL" "conn-$i" "Connector $i" >/dev/null
  done
  for i in $(seq 1 50); do
    # shellcheck disable=SC2034  # KEY is for the caller
    KEY=$("$EXPORTER" api-key create --database-url "$DB_URL" "cust-$i" | tail -n 1)
  done
}

# bench_load_events EXPORTER: the data set of the analytics benchmarks, loaded with SQL
# (bench_seed first): BENCH_EVENTS events spread over the last 30 days (BENCH_ACCOUNTS
# accounts, BENCH_ORDER time|random), 3,000 subscriptions and 6,000 payments, then
# VACUUM ANALYZE. Sets LOAD_SECS, LOAD_RATE and RAW_SIZE.
bench_load_events() {
  local d day next t0 t1 TS_EXPR
  # Day partitions (UTC days) from 31 days ago to tomorrow, named as the exporter names them.
  for d in $(seq -31 1); do
    day=$(date -u -d "$d day" +%F)
    next=$(date -u -d "$day + 1 day" +%F)
    q "CREATE TABLE IF NOT EXISTS connector_usage_p${day//-/} PARTITION OF connector_usage
       FOR VALUES FROM ('$day 00:00:00+00') TO ('$next 00:00:00+00')"
  done

  # Events arrive in time order in production (a few minutes late at most), so
  # by default the sequence numbers follow the timestamps, with jitter;
  # BENCH_ORDER=random loads them in random time order: the worst case of a
  # backfill, where every rollup step touches every hour of the 30 days.
  if [[ $BENCH_ORDER == random ]]; then
    TS_EXPR="now() - random() * interval '30 days'"
  else
    TS_EXPR="now() - interval '30 days' + (g::float8 / $BENCH_EVENTS) * interval '30 days' - random() * interval '5 minutes'"
  fi
  log "loading $BENCH_EVENTS events over the last 30 days (order: $BENCH_ORDER)"
  t0=$(now_ns)
  q "INSERT INTO connector_usage (id, api_key_id, connector_id, make_account_id, operation, \"timestamp\",
                                  status, error_type, error_message, duration_ms)
     SELECT gen_random_uuid(), k.ids[1 + (a % 50)], 'conn-' || (1 + (a + 3 * (g % 3)) % 10),
            a::text, 'op-' || (1 + (g / 3) % 20),
            $TS_EXPR,
            CASE WHEN e THEN 'error' ELSE 'success' END,
            CASE WHEN e THEN (ARRAY['timeout','auth','rate_limit','validation','server'])[1 + g % 5] END,
            CASE WHEN e THEN 'request failed for user' || g % 1000 || '@example.com' END,
            round((20 + 2000 * random() ^ 4)::numeric, 1)
     FROM (SELECT g, random() < 0.05 AS e, floor($BENCH_ACCOUNTS * random() ^ 2)::int AS a
           FROM generate_series(1, $BENCH_EVENTS) g) s,
          (SELECT array_agg(id ORDER BY owner) AS ids FROM api_keys) k"
  t1=$(now_ns)
  LOAD_SECS=$(calc "($t1 - $t0) / 1e9" 1)
  LOAD_RATE=$(calc "$BENCH_EVENTS / (($t1 - $t0) / 1e9)")
  log "loaded in $LOAD_SECS s ($LOAD_RATE rows/s)"
  q "INSERT INTO subscriptions (id, customer_id, connector_id, plan, trial, price_minor, currency, started_at,
                                trial_converted_at, cancelled_at, cancel_reason)
     SELECT 'sub-' || g, 'cust-' || (1 + g % 50), 'conn-' || (1 + g % 10), 'plan-' || (g % 3), g % 4 = 0,
            (1 + g % 3) * 99000, 'RUB', now() - (g % 60) * interval '1 day',
            CASE WHEN g % 8 = 0 THEN now() - (g % 20) * interval '1 day' END,
            CASE WHEN g % 10 = 3 THEN now() - (g % 15) * interval '1 day' END,
            CASE WHEN g % 10 = 3 THEN 'too expensive' END
     FROM generate_series(1, 3000) g"
  q "INSERT INTO payments (id, subscription_id, customer_id, connector_id, amount_minor, currency, status,
                           failure_reason, occurred_at)
     SELECT 'pay-' || g, 'sub-' || (1 + g % 3000), 'cust-' || (1 + (g % 3000) % 50), 'conn-' || (1 + (g % 3000) % 10),
            (1 + g % 3) * 99000, 'RUB', CASE WHEN g % 20 = 0 THEN 'failed' ELSE 'succeeded' END,
            CASE WHEN g % 20 = 0 THEN 'card_declined' END, now() - random() * interval '35 days'
     FROM generate_series(1, 6000) g"
  log "VACUUM ANALYZE"
  q "VACUUM ANALYZE"
  # shellcheck disable=SC2034  # RAW_SIZE is for the caller
  RAW_SIZE=$(q "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i
                JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'connector_usage'::regclass")
}

# metric NAME: its value on $BASE_URL/metrics (first sample).
metric() {
  # awk reads to the end: an early exit would kill curl with SIGPIPE, and
  # pipefail would then end the script silently.
  curl -sf "$BASE_URL/metrics" | awk -v n="$1" '$1 == n && !done { print $2; done = 1 }'
}

# bench_exporter_serve EXPORTER LOG [ARGS...]: starts `EXPORTER serve ARGS` on a free loopback
# port with the benchmark's database and data dir, stderr appended to LOG, and waits until it is
# ready. Sets EXPORTER_PID, PORT and BASE_URL; dies (showing LOG) when it exits or never gets ready.
bench_exporter_serve() {
  local EXPORTER=$1 log_file=$2
  shift 2
  "$EXPORTER" serve --listen 127.0.0.1:0 --database-url "$DB_URL" --data-dir "$TMP/exporter-data" \
    "$@" 2>>"$log_file" &
  EXPORTER_PID=$!
  PORT=
  for _ in $(seq 300); do
    PORT=$(sed -n 's/.*listening on [0-9.]*:\([0-9]*\).*/\1/p' "$log_file" | tail -n 1)
    if [[ -n $PORT ]] && curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null; then break; fi
    kill -0 "$EXPORTER_PID" 2>/dev/null || { cat "$log_file" >&2; die "the exporter exited"; }
    PORT=
    sleep 0.1
  done
  [[ -n $PORT ]] || { cat "$log_file" >&2; die "the exporter did not become ready"; }
  BASE_URL=http://127.0.0.1:$PORT
}

# bench_exporter_start EXPORTER CONFIG: starts `EXPORTER serve` (the caller's environment,
# log in $TMP/exporter.log) on a free loopback port and waits until the rollup has caught up
# with the BENCH_EVENTS loaded events. Sets EXPORTER_PID, PORT, BASE_URL, AGG_SECS, AGG_RATE.
bench_exporter_start() {
  local EXPORTER=$1 config=$2 t0 t1 deadline lag agg
  : >"$TMP/exporter.log"
  t0=$(now_ns)
  bench_exporter_serve "$EXPORTER" "$TMP/exporter.log" --config "$config"
  log "exporter on port $PORT; waiting for the rollup to catch up"
  deadline=$((SECONDS + ${BENCH_AGG_TIMEOUT:-3600}))
  while :; do
    ((SECONDS < deadline)) || die "the rollup did not catch up within ${BENCH_AGG_TIMEOUT:-3600} s (aggregated ${agg:-?}, lag ${lag:-?} events)"
    lag=$(metric bpmc_exporter_aggregation_lag_events || true)
    agg=$(metric bpmc_exporter_aggregated_events_total || true)
    if [[ -n $agg ]] && awk "BEGIN { exit !(${agg:-0} >= $BENCH_EVENTS && ${lag:-1} == 0) }"; then break; fi
    kill -0 "$EXPORTER_PID" 2>/dev/null || { tail -n 20 "$TMP/exporter.log" >&2; die "the exporter exited"; }
    sleep 0.5
  done
  t1=$(now_ns)
  AGG_SECS=$(calc "($t1 - $t0) / 1e9" 1)
  AGG_RATE=$(calc "$BENCH_EVENTS / (($t1 - $t0) / 1e9)")
  log "initial aggregation: $AGG_SECS s ($AGG_RATE events/s)"
}
