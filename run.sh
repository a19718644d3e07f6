#!/usr/bin/env bash
# The newcomer's command: installs dependencies, builds the exporter and the receiver,
# starts a private PostgreSQL under var/pg, prepares the database (migrations, the demo
# connector, a demo API key; on a fresh database a month of demo data and one console login
# per role, in var/console-logins), starts bpmc-receiver in the background and runs the
# exporter, which serves the console at /console/, in the foreground until Ctrl-C. Everything it keeps lives under var/ in the repository,
# so a second run reuses the data, the key and the receiver's token.
#
# Environment:
#   BPMC_LISTEN            address of the exporter's HTTP server (default 127.0.0.1:9470)
#   BPMC_RECEIVER_LISTEN   address of bpmc-receiver (default 127.0.0.1:9471)
#   BPMC_SLACK_WEBHOOK_URL when set (first run), var/receiver.yaml routes critical and warning
#                          alerts to this Slack incoming webhook; otherwise alerts are stored
#                          and counted but page nobody until you add channels
set -euo pipefail

root=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
cd "$root"

listen=${BPMC_LISTEN:-127.0.0.1:9470}
receiver_listen=${BPMC_RECEIVER_LISTEN:-127.0.0.1:9471}
var=$root/var
pg_bin=/usr/lib/postgresql/15/bin
pg_dir=$var/pg
pg_data=$pg_dir/data
pg_run=$pg_dir/run # the Unix socket lives here; no TCP listener
pg_port=5470       # only names the socket file (.s.PGSQL.5470)
key_file=$var/demo-api-key
exporter=$root/build/bin/bpmc-exporter
receiver=$root/build/bin/bpmc-receiver
receiver_config=$var/receiver.yaml
receiver_token=$var/receiver-token
watchdog_token=$var/watchdog-token
logins_file=$var/console-logins
pseudonym_key_file=$var/pseudonym-key
exporter_config=$var/exporter.yaml

# Percent-encodes every byte except the URL-unreserved ones ("/" becomes "%2F").
urlencode() {
  local LC_ALL=C s=$1 out="" c i
  for ((i = 0; i < ${#s}; i++)); do
    c=${s:i:1}
    case $c in
      [A-Za-z0-9._~-]) out+=$c ;;
      *) printf -v c '%%%02X' "'$c" && out+=$c ;;
    esac
  done
  printf '%s' "$out"
}

# --- 1. Dependencies and build ------------------------------------------------------
scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPMC_BUILD_TESTS=OFF
cmake --build build --target bpmc-exporter bpmc-receiver -j"$(nproc)"

# --- 2. Private PostgreSQL cluster in var/pg ------------------------------------------
# initdb refuses to run as root: as root the cluster belongs to the `postgres` system user.
as_pg=()
if ((EUID == 0)); then
  as_pg=(runuser -u postgres --)
fi
pg() { (cd "$pg_dir" && "${as_pg[@]}" "$@"); } # cd: the postgres user may not enter $PWD

socket=$pg_run/.s.PGSQL.$pg_port
if ((${#socket} > 107)); then
  echo "run.sh: the socket path $socket is longer than the 107 bytes a Unix socket" \
    "allows; clone the repository into a shorter path" >&2
  exit 1
fi

mkdir -p "$pg_run"
if ((EUID == 0)); then
  chown -R postgres:postgres "$pg_dir"
  if ! runuser -u postgres -- test -w "$pg_dir"; then
    echo "run.sh: the postgres user cannot write to $pg_dir (is a parent directory" \
      "private, like /root?); clone the repository somewhere it can reach" >&2
    exit 1
  fi
fi

# A key in var/demo-api-key belongs to the database it was created in: whenever the
# cluster or the database is created anew, the old key goes (right away, so that an
# interrupted run cannot leave a stale key behind).
if [[ ! -f $pg_data/PG_VERSION ]]; then
  echo "run.sh: creating a PostgreSQL cluster in $pg_data"
  rm -f "$key_file"
  # initdb into data.new and rename when it succeeded: an interrupted initdb leaves no
  # half-made cluster behind that a later run would take for a good one.
  rm -rf "$pg_data" "$pg_data.new"
  pg "$pg_bin/initdb" -D "$pg_data.new" -A trust -U postgres -E UTF8 --locale=C \
    >"$pg_dir/initdb.log" 2>&1 || {
    cat "$pg_dir/initdb.log" >&2
    exit 1
  }
  mv "$pg_data.new" "$pg_data"
fi

# From here on, leaving the script (error, Ctrl-C, kill) stops the exporter and PostgreSQL.
exporter_pid=""
receiver_pid=""
prometheus_pid=""
alertmanager_pid=""
# stop_child NAME PID: SIGTERM to a background child (none if PID is empty or gone) and
# wait for it to exit.
# shellcheck disable=SC2317  # (called from the traps)
stop_child() {
  if [[ -n $2 ]] && kill -0 "$2" 2>/dev/null; then
    echo "run.sh: stopping $1"
    kill -TERM "$2" 2>/dev/null || true
    wait "$2" 2>/dev/null || true
  fi
}
# shellcheck disable=SC2317  # (called from the traps)
cleanup() {
  trap - EXIT INT TERM
  if [[ -n $receiver_pid ]] && kill -0 "$receiver_pid" 2>/dev/null; then
    echo "run.sh: stopping the receiver"
    kill -TERM "$receiver_pid" 2>/dev/null || true
    wait "$receiver_pid" 2>/dev/null || true
  fi
  if [[ -n $exporter_pid ]] && kill -0 "$exporter_pid" 2>/dev/null; then
    echo "run.sh: stopping the exporter"
    kill -TERM "$exporter_pid" 2>/dev/null || true
    wait "$exporter_pid" 2>/dev/null || true
  fi
  stop_child Alertmanager "$alertmanager_pid"
  stop_child Prometheus "$prometheus_pid"
  if pg "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
    echo "run.sh: stopping PostgreSQL"
    pg "$pg_bin/pg_ctl" -D "$pg_data" -m fast -w stop >/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! pg "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
  # pg_ctl passes -o through /bin/sh: the path is quoted and listen_addresses='' arrives
  # as an empty value, i.e. no TCP at all.
  pg "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/server.log" -w \
    -o "-k '$pg_run' -c listen_addresses='' -p $pg_port" start >/dev/null ||
    {
      echo "run.sh: PostgreSQL did not start; its log ($pg_dir/server.log) ends with:" >&2
      tail -n 20 "$pg_dir/server.log" >&2
      exit 1
    }
fi

psql=("$pg_bin/psql" -h "$pg_run" -p "$pg_port" -U postgres -X -q -v ON_ERROR_STOP=1)
exists=$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'bpmc'")
fresh=0
if [[ $exists != 1 ]]; then
  fresh=1
  rm -f "$key_file" "$logins_file"
  "${psql[@]}" -d postgres -c 'CREATE DATABASE bpmc'
fi

DB_URL="postgresql://postgres@/bpmc?host=$(urlencode "$pg_run")&port=$pg_port"

# --- 3. Schema, demo connector and API key --------------------------------------------
"$exporter" migrate --database-url "$DB_URL"
"$exporter" connector add --database-url "$DB_URL" crm-connector "CRM Connector"

if [[ ! -s $key_file ]]; then
  # The key is the last line of stdout.
  key=$("$exporter" api-key create --database-url "$DB_URL" demo-customer | tail -n 1)
  if [[ -z $key ]]; then
    echo "run.sh: 'bpmc-exporter api-key create' printed no key" >&2
    exit 1
  fi
  (umask 077 && printf '%s\n' "$key" >"$key_file.tmp")
  mv "$key_file.tmp" "$key_file"
fi
chmod 600 "$key_file"
key=$(<"$key_file")

# --- 4. Prometheus and Alertmanager ---------------------------------------------------
# Private instances with prometheus/ and alertmanager/ as they are: Prometheus on
# 127.0.0.1:9473, Alertmanager on 127.0.0.1:9474 (the Debian packages' system services
# use 9090/9093), clustering off, data in var/prometheus and var/alertmanager, logs in
# var/prometheus.log and var/alertmanager.log. Alertmanager posts to bpmc-receiver with
# the token in var/receiver-token (made in section 5; it is read at every notification).
prometheus_url=http://127.0.0.1:9473
alertmanager_url=http://127.0.0.1:9474
mkdir -p "$var/prometheus" "$var/alertmanager"
prometheus --config.file=prometheus/prometheus.yml --storage.tsdb.path="$var/prometheus" \
  --web.listen-address=127.0.0.1:9473 --log.level=warn >"$var/prometheus.log" 2>&1 &
prometheus_pid=$!
prometheus-alertmanager --config.file=alertmanager/alertmanager.yml \
  --storage.path="$var/alertmanager" --web.listen-address=127.0.0.1:9474 \
  --cluster.listen-address= --log.level=warn >"$var/alertmanager.log" 2>&1 &
alertmanager_pid=$!
for url in "$prometheus_url" "$alertmanager_url"; do
  for ((i = 0; i < 100; i++)); do # up to 20 s
    curl -fsS -o /dev/null "$url/-/ready" 2>/dev/null && break
    sleep 0.2
  done
  # Ours must be the ones answering (not a leftover instance on the same port).
  if ! curl -fsS -o /dev/null "$url/-/ready" 2>/dev/null ||
    ! kill -0 "$prometheus_pid" 2>/dev/null || ! kill -0 "$alertmanager_pid" 2>/dev/null; then
    echo "run.sh: Prometheus or Alertmanager did not start; their logs end with:" >&2
    tail -n 5 "$var/prometheus.log" "$var/alertmanager.log" >&2
    exit 1
  fi
done

# --- 5. The receiver (bpmc-receiver) ----------------------------------------------------
# A bearer token for webhook senders (Alertmanager's credentials_file), and one for the
# Watchdog's heartbeat (alertmanager.yml, receiver bpmc-heartbeat), made once.
for token_file in "$receiver_token" "$watchdog_token"; do
  if [[ ! -s $token_file ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 | tr -d '/+=\n' >"$token_file.tmp")
    mv "$token_file.tmp" "$token_file"
  fi
done
receiver_host=${receiver_listen%:*}
if [[ $receiver_host == "0.0.0.0" || -z $receiver_host ]]; then
  receiver_host=127.0.0.1
fi
receiver_url=http://$receiver_host:${receiver_listen##*:}
# The config is written on the first run only: edit var/receiver.yaml freely afterwards
# (every key: webhook_receiver/receiver.example.yaml).
if [[ ! -s $receiver_config ]]; then
  {
    echo "# Written by run.sh on the first run; see webhook_receiver/receiver.example.yaml."
    echo "auth:"
    echo "  bearer_tokens:"
    echo "    - token_file: $receiver_token"
    # Pages go by e-mail to an SMTP relay on 127.0.0.1:2525 (none runs here: they wait in
    # the outbox, retried, until you point smtp.url at yours) and to Slack when
    # BPMC_SLACK_WEBHOOK_URL is set. Critical and warning alerts open incidents that the
    # demo schedule's engineer is paged for (the console's Incidents and On-call pages).
    echo "channels:"
    echo "  oncall-email:"
    echo "    type: email"
    echo "    smtp: {url: \"smtp://127.0.0.1:2525\", starttls: none}"
    echo "    from: \"BPM Centr <oncall@localhost>\""
    echo "    to: [oncall@localhost]"
    notify="[]"
    if [[ -n ${BPMC_SLACK_WEBHOOK_URL:-} ]]; then
      echo "  ops-slack:"
      echo "    type: slack"
      echo "    url_env: BPMC_SLACK_WEBHOOK_URL"
      notify="[ops-slack]"
    fi
    echo "routes:"
    echo "  - name: incidents"
    echo "    match_re: {severity: \"critical|warning\"}"
    echo "    notify: $notify"
    echo "    escalation_policy: primary"
    echo "people:"
    echo "  ivan: {name: \"Иван Петров\", contact_methods: [{type: email, address: ivan@localhost}]}"
    echo "  maria: {name: \"Мария Смирнова\", contact_methods: [{type: email, address: maria@localhost}]}"
    echo "schedules:"
    echo "  primary:"
    echo "    name: \"Основная смена\""
    echo "    time_zone: Europe/Moscow"
    echo "    layers:"
    echo "      - {name: weekly, rotation: weekly, handoff: \"10:00\", start: 2026-01-05, participants: [ivan, maria]}"
    echo "escalation_policies:"
    echo "  primary:"
    echo "    name: \"Основная эскалация\""
    echo "    levels:"
    echo "      - {delay: 30m, targets: [{schedule: primary}]}"
    echo "incidents:"
    echo "  public_url: $receiver_url"
    echo "notices:"
    echo "  connector_problem_after: 15m"
    echo "# Alertmanager's Watchdog checks in every minute; missed 3 minutes: HeartbeatMissed."
    echo "heartbeats:"
    echo "  alertmanager-watchdog: {interval: 1m, grace: 2m, token_file: $watchdog_token}"
  } >"$receiver_config"
fi
# A config written by an earlier run.sh has no heartbeat for the Watchdog (its posts would be
# answered 404): add it once, unless the file has a heartbeats: section of its own.
if ! grep -q '^heartbeats:' "$receiver_config"; then
  {
    echo "# Added by run.sh: Alertmanager's Watchdog checks in every minute; missed 3 minutes: HeartbeatMissed."
    echo "heartbeats:"
    echo "  alertmanager-watchdog: {interval: 1m, grace: 2m, token_file: $watchdog_token}"
  } >>"$receiver_config"
fi
"$receiver" check-config --config "$receiver_config" >/dev/null
"$receiver" serve --config "$receiver_config" --listen "$receiver_listen" --database-url "$DB_URL" &
receiver_pid=$!

# --- 6. The console: demo people, a pseudonym key, a month of demo data ---------------
# The key that turns customer ids into pseudonyms for managers and support (made once).
if [[ ! -s $pseudonym_key_file ]]; then
  (umask 077 && head -c 32 /dev/urandom | base64 >"$pseudonym_key_file.tmp")
  mv "$pseudonym_key_file.tmp" "$pseudonym_key_file"
fi
# One person per role, each with a random password, kept in var/console-logins (made once
# per database; the customer "acme" is one of the demo data's customers).
if [[ ! -s $logins_file ]]; then
  : >"$logins_file.tmp"
  chmod 600 "$logins_file.tmp"
  for spec in "admin admin" "manager manager" "support support" "customer user acme"; do
    read -r name role customer <<<"$spec"
    "$exporter" user add --database-url "$DB_URL" "$name" --role "$role" \
      ${customer:+--customer "$customer"} >/dev/null 2>&1 || true # exists from an earlier run
    password=$(head -c 12 /dev/urandom | base64 | tr -d '/+=\n')
    printf '%s\n' "$password" |
      "$exporter" user set-password --database-url "$DB_URL" "$name" >/dev/null
    printf '%s %s\n' "$name" "$password" >>"$logins_file.tmp"
  done
  mv "$logins_file.tmp" "$logins_file"
fi
read -r admin_name admin_password <"$logins_file"
# A realistic month (connectors, customers, subscriptions, payments, usage with errors, one
# resolved and one open incident) on a fresh database only.
if ((fresh)); then
  "$receiver" migrate --database-url "$DB_URL" >/dev/null
  "$exporter" demo-data --database-url "$DB_URL"
fi
{
  echo "# Written by run.sh at every start; its own settings go in exporter/exporter.example.yaml's keys."
  echo "receiver_url: $receiver_url"
  echo "pseudonym_key_file: $pseudonym_key_file"
} >"$exporter_config"

# --- 7. The exporter -----------------------------------------------------------------
host=${listen%:*}
if [[ $host == "0.0.0.0" || -z $host ]]; then
  host=127.0.0.1
fi
base_url=http://$host:${listen##*:}

cat <<EOF

BPM Centr exporter on $base_url (Ctrl-C stops it and PostgreSQL).
Database: $DB_URL

The console: $base_url/console/
  log in as $admin_name / $admin_password
  (a manager, support and a customer's login are in var/console-logins; add people with
   BPMC_DATABASE_URL='$DB_URL' build/bin/bpmc-exporter user add NAME --role manager
   and give them a password with ... user set-password NAME, which reads it from stdin)
Demo API key (also in var/demo-api-key): $key

Register one usage event, like the seed's registerUsage call:

  curl -sS -X POST $base_url/v1/connector/usage \\
    -H "Authorization: Bearer $key" \\
    -H 'Content-Type: application/json' \\
    -d "{\"connector\":\"crm-connector\",\"operation\":\"getContact\",\"make_account_id\":\"12345\",\"timestamp\":\"\$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\"}"

See the counters:

  curl -s $base_url/metrics | grep connector_

bpmc-receiver on $receiver_url (config var/receiver.yaml, token var/receiver-token).
Send it an alert as any tool can (Alertmanager posts to $receiver_url/v1/alertmanager
with the same token: see docs/RECEIVER.md):

  curl -sS -X POST $receiver_url/v1/generic \\
    -H "Authorization: Bearer \$(cat $receiver_token)" \\
    -d '{"summary":"Demo: connector crm-connector is down","severity":"critical","dedup_key":"demo"}'

  curl -s $receiver_url/metrics | grep bpmc_receiver_alerts_total

Prometheus on $prometheus_url (scrapes the exporter and the receiver every 15 s; alerts:
$prometheus_url/alerts), Alertmanager on $alertmanager_url (routes to bpmc-receiver).
Grafana is not started here: import grafana/dashboards/*.json (README, "Monitoring").

EOF

# In the background so that the traps run as soon as a signal arrives; `wait` returns
# the exporter's exit code.
mkdir -p "$var/exporter"
"$exporter" serve --config "$exporter_config" --database-url "$DB_URL" --listen "$listen" \
  --data-dir "$var/exporter" &
exporter_pid=$!
status=0
wait "$exporter_pid" || status=$?
exporter_pid=""
exit "$status"
