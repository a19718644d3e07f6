  # The spool may still hold acknowledged events that never reached PostgreSQL: kept then.
  if [ -d /var/lib/bpmc/exporter/spool ] &&
    [ -n "$(find /var/lib/bpmc/exporter/spool -type f -size +0c -print -quit)" ]; then
    echo "bpmc-exporter: /var/lib/bpmc/exporter/spool holds events not yet in PostgreSQL; kept" >&2
  else
    rm -rf /var/lib/bpmc/exporter
  fi
