#!/usr/bin/env bash
# Set up (idempotent) and run the main job on the embedded default: tensors from PyTorch through the
# loopback flowgraph (2 TX x 4 RX, Rayleigh multipath, CFO, timing offset, AWGN) and back, with NMSE
# against theory and every frame accounted for. Extra arguments go to `semcom loopback`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/semcom loopback "$@"
