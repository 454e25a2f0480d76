#!/usr/bin/env bash
# The SVG chart of bench/run.sh (docs/src/bench/session.svg): the session query's throughput and
# p99 latency by concurrency, PostgreSQL and SQLite, production and development mode.
#   bench/chart.sh DATA OUT.svg
# DATA: the lines bench/run.sh prints after "# data": backend mode conns rps p99_ms cpu_us.
# Needs gnuplot (apt-get install gnuplot-nox).
set -euo pipefail
DATA=$1 OUT=$2
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$(dirname "$OUT")"
plots() { # plots COLUMN: one line per backend and mode that has data
  local sep="" b m t
  for b in postgres sqlite; do for m in production development; do
    awk -v b=$b -v m=$m '$1 == b && $2 == m' "$DATA" >"$WORK/$b-$m.dat"
    [[ -s "$WORK/$b-$m.dat" ]] || continue
    t="PostgreSQL"; [[ $b == sqlite ]] && t="SQLite"
    [[ $m == development ]] && t="$t (development)"
    printf '%s"%s" using 3:%s with linespoints title "%s" dt %s lw 2' "$sep" "$WORK/$b-$m.dat" "$1" "$t" \
      "$([[ $m == production ]] && echo 1 || echo 2)"
    sep=", "
  done; done
}
gnuplot <<GNUPLOT
set terminal svg size 960,440 dynamic font "sans,12" background "#ffffff"
set output "$OUT"
set multiplot layout 1,2 title "session query by concurrency, $(nproc)-core machine (wrk, service and database on the same cores)"
set logscale x 2
set xlabel "connections"
set grid
set key bottom right
set ylabel "requests/s"
set yrange [0:*]
plot $(plots 4)
set ylabel "p99 latency (ms, log scale)"
set logscale y
set yrange [*:*]
set key top left
plot $(plots 5)
unset multiplot
GNUPLOT
