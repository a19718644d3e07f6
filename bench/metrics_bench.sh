#!/usr/bin/env bash
# Benchmark of the exporter's /metrics at high label cardinality (issue 17 §5; results in
# docs/BENCHMARKS.md, "/metrics at 20,000 label sets").
#
# For each label-set count in BENCH_LABEL_SETS, BENCH_ROUNDS times and alternating, it runs
#   bpmc-bench-metrics           IngestMetrics filled through RecordStored (max_label_sets = the
#                                count; 20 connectors, count/20 operations, every 4th label set
#                                with an error; bench/metrics_shape.h), /metrics rendered
#                                BENCH_RENDERS times through the route the exporter serves, then
#                                once over HTTP (the exporter's server, loopback);
#   bpmc-bench-metrics-baseline  the baseline: a minimal prometheus-cpp program registering the
#                                same families with the same series and label shapes,
#                                rendered with prometheus::TextSerializer (the library's cost).
# Each is its own process, so its RSS is its own: "populated" after the series exist, "after"
# after the renders, "peak" VmHWM. The exposition of the first round is checked with
# `promtool check metrics` (when installed) and its series counted against the baseline's.
#
# Usage: bench/metrics_bench.sh
# Environment:
#   BENCH_LABEL_SETS='20000 5000'  label-set counts (5,000 is the default max_label_sets)
#   BENCH_ROUNDS=3                 runs of each program per count
#   BENCH_RENDERS=5                renders per run (min / median / max reported)
#   BENCH_BUILD_DIR=build/rel      where to build (Release, no tests) the two programs
#   BENCH_NO_BUILD=0               1: use the binaries as they are
# Targets at 20,000 label sets: render (median) <= 200 ms and RSS (peak) <= 150 MB.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_NAME=metrics
# shellcheck source=bench/lib.sh
source bench/lib.sh

LABEL_SETS=${BENCH_LABEL_SETS:-20000 5000}
ROUNDS=${BENCH_ROUNDS:-3}
RENDERS=${BENCH_RENDERS:-5}
BUILD=${BENCH_BUILD_DIR:-build/rel}
BIN=$BUILD/bin/bpmc-bench-metrics
BASE=$BUILD/bin/bpmc-bench-metrics-baseline

if [[ ${BENCH_NO_BUILD:-0} != 1 ]]; then
  log "building Release into $BUILD"
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DBPMC_BUILD_TESTS=OFF >/dev/null
  cmake --build "$BUILD" --target bpmc-bench-metrics bpmc-bench-metrics-baseline >&2
fi
[[ -x $BIN && -x $BASE ]] || die "missing $BIN or $BASE"

OUT=$(mktemp -d /tmp/metrics-bench.XXXXXX)
trap 'rm -rf "$OUT"' EXIT
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p; s/^$1=\([^ ]*\).*/\1/p" <<<"$2" | head -1; }
# stats FILE: "median (min–max)" of the numbers in FILE
stats() { sort -g "$1" | awk '{v[NR]=$1} END {printf "%s (%s–%s)", v[int((NR+1)/2)], v[1], v[NR]}'; }
median() { sort -g "$1" | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

for n in $LABEL_SETS; do
  for round in $(seq "$ROUNDS"); do
    extra_b=() extra_x=()
    if [[ $round == 1 ]]; then extra_b=("$OUT/base-$n.txt") extra_x=("$OUT/bpmc-$n.txt"); fi
    for prog in base bpmc; do
      if [[ $prog == base ]]; then line=$("$BASE" "$n" "$RENDERS" "${extra_b[@]}")
      else line=$("$BIN" "$n" "$RENDERS" "${extra_x[@]}"); fi
      log "$n label sets, round $round, $prog: $line"
      for k in series bytes render_ms_median rss_kb_start rss_kb_populated rss_kb_after hwm_kb http_ms record_ns; do
        v=$(field "$k" "$line")
        [[ -n $v ]] && echo "$v" >>"$OUT/$prog-$n-$k"
      done
    done
  done
  if command -v promtool >/dev/null; then
    if promtool check metrics <"$OUT/bpmc-$n.txt" >"$OUT/promtool-$n.log" 2>&1; then
      log "$n: promtool check metrics: OK"
    else
      # promtool also prints lint advice (exit 3 only for lint); show it, fail on parse errors
      log "$n: promtool check metrics said: $(head -3 "$OUT/promtool-$n.log")"
      grep -qi "error parsing" "$OUT/promtool-$n.log" && die "$n: exposition does not parse"
    fi
  fi
done

echo
echo "| label sets | program | series | MB | render ms, median of runs (min–max) | RSS populated MB | RSS after MB | peak RSS MB | HTTP GET ms | RecordStored ns |"
echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in $LABEL_SETS; do
  for prog in bpmc base; do
    name=$([[ $prog == bpmc ]] && echo "bpmc exporter" || echo "prometheus-cpp baseline")
    mb() { awk '{printf "%.1f\n", $1/1024}' "$OUT/$prog-$n-$1" >"$OUT/$prog-$n-$1.mb"; stats "$OUT/$prog-$n-$1.mb"; }
    http=""; rec=""
    [[ -f $OUT/$prog-$n-http_ms ]] && http=$(stats "$OUT/$prog-$n-http_ms")
    [[ -f $OUT/$prog-$n-record_ns ]] && rec=$(stats "$OUT/$prog-$n-record_ns")
    echo "| $n | $name | $(median "$OUT/$prog-$n-series") | $(calc "$(median "$OUT/$prog-$n-bytes")/1048576" 1) | $(stats "$OUT/$prog-$n-render_ms_median") | $(mb rss_kb_populated) | $(mb rss_kb_after) | $(mb hwm_kb) | $http | $rec |"
  done
done
echo
echo "| label sets | figure | bpmc | baseline | bpmc / baseline | target | |"
echo "|---:|---|---:|---:|---:|---|---|"
for n in $LABEL_SETS; do
  r=$(median "$OUT/bpmc-$n-render_ms_median") rb=$(median "$OUT/base-$n-render_ms_median")
  h=$(median "$OUT/bpmc-$n-hwm_kb") hb=$(median "$OUT/base-$n-hwm_kb")
  p=$(($(median "$OUT/bpmc-$n-rss_kb_populated") - $(median "$OUT/bpmc-$n-rss_kb_start")))
  pb=$(($(median "$OUT/base-$n-rss_kb_populated") - $(median "$OUT/base-$n-rss_kb_start")))
  rt="" rv="" ht="" hv=""
  if [[ $n == 20000 ]]; then
    rt="≤ 200 ms" ht="≤ 150 MB"
    rv=$(awk -v a="$r" 'BEGIN {print (a <= 200) ? "PASS" : "MISS"}')
    hv=$(awk -v a="$h" 'BEGIN {print (a <= 150 * 1024) ? "PASS" : "MISS"}')
  fi
  echo "| $n | render ms (median) | $r | $rb | $(calc "$r/$rb" 2) | $rt | $rv |"
  echo "| $n | peak RSS MB | $(calc "$h/1024" 1) | $(calc "$hb/1024" 1) | $(calc "$h/$hb" 2) | $ht | $hv |"
  echo "| $n | RSS of the series (populated - start), bytes per label set | $(calc "$p*1024/$n" 0) | $(calc "$pb*1024/$n" 0) | | | |"
done
