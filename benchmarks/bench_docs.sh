#!/usr/bin/env bash
# Site build time: a cold build (no _build/: empty jupyter-cache and experiment cache, every
# lesson executed), a warm rebuild (nothing changed: nothing executed, nothing re-read), and
# the edit loop (one comment line added to a code cell of the slowest lesson, in place and
# put back after: that lesson re-executes, its training runs come from the experiment cache).
# A benchmark, not a test: it prints the times and fails only if a build fails.
# Goals on an idle 2-core machine: cold <= 180 s, warm <= 10 s, edit <= 20 s.
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

rm -rf "$BUILD/html" "$BUILD/jupyter_execute" "$BUILD/.jupyter_cache" "$BUILD/doctrees" \
  "$BUILD/experiment-cache"
# Time both builds even when one fails (-W: a warning fails it), then exit with its status.
t0=$(now)
cold_rc=0
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html" || cold_rc=$?
t1=$(now)
warm_rc=0
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html" || warm_rc=$?
t2=$(now)

# The edit loop, as an author works: one comment line added to a code cell of the slowest
# lesson, in place; the file is put back afterwards (its original stays in the notebook cache,
# so the next build only re-reads it).
slowest=lessons/05_covariate_shift_figure1.md
original="$BUILD/bench-docs-original.md"
cp "$slowest" "$original"
trap 'cp "$original" "$slowest" && rm -f "$original"' EXIT
# a comment line at the end of the lesson's first code cell
awk '/^```\{code-cell\}/ { inside = 1 } inside && /^```$/ && !done { print "# edited by bench-docs"; done = 1 } { print }' \
  "$original" >"$slowest"
t3=$(now)
edit_rc=0
"$BIN/sphinx-build" "${OPTS[@]}" . "$BUILD/html" || edit_rc=$?
t4=$(now)

cold=$(elapsed "$t0" "$t1")
warm=$(elapsed "$t1" "$t2")
edit=$(elapsed "$t3" "$t4")
echo "cold build (empty caches, all lessons executed): ${cold} s   (goal <= 180 s)"
echo "warm rebuild (nothing changed):                  ${warm} s   (goal <= 10 s)"
echo "edit one cell of ${slowest#lessons/}, rebuild:   ${edit} s   (goal <= 20 s)"
if [ "$cold_rc" != 0 ] || [ "$warm_rc" != 0 ] || [ "$edit_rc" != 0 ]; then
  echo "bench-docs: a build failed (cold exit $cold_rc, warm exit $warm_rc, edit exit $edit_rc)" >&2
  exit 1
fi
