#!/usr/bin/env bash
# Site build time: a cold build (no _build/: empty jupyter-cache, every lesson executed)
# and a warm rebuild (nothing changed: nothing executed, nothing re-read).
# A benchmark, not a test: it prints the times and fails only if a build fails.
# Goal on a 2-core machine once every lesson exists: cold <= 180 s, warm <= 10 s.
# Run with `make bench-docs` (which fetches the venv and MathJax first).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=.venv/bin
BUILD=_build
OPTS=(-b html -W --keep-going -n -q)
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

lessons=$(find lessons -maxdepth 1 -name '*.md' | wc -l)
echo "bench-docs: $lessons lessons, $(getconf _NPROCESSORS_ONLN) cores"

rm -rf "$BUILD/html" "$BUILD/jupyter_execute" "$BUILD/.jupyter_cache" "$BUILD/doctrees"
# Time both builds even when one fails (-W: a warning fails it), then exit with its status.
t0=$(now)
cold_rc=0
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html" || cold_rc=$?
t1=$(now)
warm_rc=0
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html" || warm_rc=$?
t2=$(now)

cold=$(elapsed "$t0" "$t1")
warm=$(elapsed "$t1" "$t2")
echo "cold build (empty cache, all lessons executed): ${cold} s   (goal <= 180 s)"
echo "warm rebuild (nothing changed):                 ${warm} s   (goal <= 10 s)"
if [ "$cold_rc" != 0 ] || [ "$warm_rc" != 0 ]; then
  echo "bench-docs: a build failed (cold exit $cold_rc, warm exit $warm_rc); see the log above" >&2
  exit 1
fi
