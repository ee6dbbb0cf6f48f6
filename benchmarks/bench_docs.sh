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
echo "bench-docs: $lessons lessons, $(nproc) cores"

rm -rf "$BUILD/html" "$BUILD/jupyter_execute" "$BUILD/.jupyter_cache" "$BUILD/doctrees"
t0=$(now)
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html"
t1=$(now)
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html"
t2=$(now)

cold=$(elapsed "$t0" "$t1")
warm=$(elapsed "$t1" "$t2")
echo "cold build (empty cache, all lessons executed): ${cold} s   (goal <= 180 s)"
echo "warm rebuild (nothing changed):                 ${warm} s   (goal <= 10 s)"
