#!/usr/bin/env bash
# Set up (idempotent) and run every test: lint, pytest (unit, flowgraph, loopback integration and the
# gr_unittest QA files), then the GNU Radio way: cmake configure + build + ctest + a staged install.
# Timing goals are not tested here: see benchmarks/ (scripts/bench.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python

echo "[test] ruff"
.venv/bin/ruff check .

echo "[test] pytest"
# Exit status 5 (no tests collected) must fail too: a suite that ran nothing is not a pass.
$PY -m pytest -q -p no:cacheprovider "$@"

echo "[test] cmake + ctest (QA tests the GNU Radio way)"
BUILD=${SEMCOM_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DPYTHON_EXECUTABLE=/usr/bin/python3 >/dev/null
cmake --build "$BUILD" >/dev/null
ctest --test-dir "$BUILD" --output-on-failure
STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cmake --install "$BUILD" --prefix "$STAGE" >/dev/null
test -f "$STAGE"/lib/python3/dist-packages/gnuradio/semcom/ofat_tx.py
test -f "$STAGE"/share/gnuradio/grc/blocks/semcom_ofat_tx.block.yml
test -f "$STAGE"/lib/python3/dist-packages/semcom/ofat/frame.py
echo "[test] staged cmake install ok: blocks, host package and GRC yml in place"
