#!/usr/bin/env bash
# Set up (idempotent) and run every test: lint, pytest (unit, flowgraph, loopback integration), then the
# GNU Radio way: cmake configure + build + ctest (the gr_unittest QA files, run only there) + a staged install.
# Timing goals are not tested here: see benchmarks/ (scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each step says when it starts, in seconds since this script started (bash's SECONDS).
step() { echo "[test] $* (at ${SECONDS} s)"; }
bash scripts/setup.sh
PY=.venv/bin/python

step ruff
.venv/bin/ruff check .

WORKERS=${SEMCOM_TEST_WORKERS:-2}
step pytest
# On SEMCOM_TEST_WORKERS worker processes (pytest-xdist, default 2: this machine's cores), each taking
# whole test files (--dist loadfile), so a file's module fixtures are built once; 0 runs every test in
# this process. Exit status 5 (no tests collected) must fail too: a suite that ran nothing is not a pass.
$PY -m pytest -q -p no:cacheprovider -n "$WORKERS" --dist loadfile "$@"

step "cmake + ctest (QA tests the GNU Radio way)"
BUILD=${SEMCOM_BUILD_DIR:-build}
# The QA tests run on the venv's interpreter (Debian's GNU Radio + the Python dependencies setup installed
# there); ctest puts the build tree's blocks and host/ on PYTHONPATH itself.
cmake -S . -B "$BUILD" -DPYTHON_EXECUTABLE="$PWD/$PY" >/dev/null
cmake --build "$BUILD" >/dev/null
ctest --test-dir "$BUILD" --output-on-failure -j "$(( WORKERS > 1 ? WORKERS : 1 ))"
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cmake --install "$BUILD" --prefix "$STAGE" >/dev/null
SITE="$STAGE"/lib/python3/dist-packages
test -f "$SITE"/gnuradio/semcom/ofat_tx.py
test -f "$STAGE"/share/gnuradio/grc/blocks/semcom_ofat_tx.block.yml
# Only what the blocks import goes into GNU Radio's prefix: no QA files, models or checkpoints.
test ! -e "$SITE"/gnuradio/semcom/qa_ofat_tx.py
test ! -e "$SITE"/semcom/agents
# The staged blocks import from the staged host package alone (the venv only lends numpy/pyzmq/sigmf/threadpoolctl).
(cd "$STAGE" && PYTHONPATH="$SITE" "$OLDPWD/$PY" -I -c "import sys; sys.path[:0] = ['$SITE']
import gnuradio.semcom, semcom.wire
assert gnuradio.semcom.__file__.startswith('$STAGE') and semcom.wire.__file__.startswith('$STAGE')")
step "done: staged cmake install ok: blocks, the host modules they import and GRC yml in place"
