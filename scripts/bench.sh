#!/usr/bin/env bash
# Set up (idempotent) and run the benchmarks (not part of the tests). --quick for a smoke run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python benchmarks/run.py "$@"
exec .venv/bin/python benchmarks/lightweight.py "$@"   # compressed DeepJSCC encoders: latency ratios
