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
