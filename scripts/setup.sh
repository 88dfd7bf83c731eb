#!/usr/bin/env bash
# One setup path for users, developers and CI: apt packages (GNU Radio 3.10 and friends), a venv that
# sees Debian's GNU Radio bindings, CPU PyTorch and this project in editable mode (numpy kept < 2).
# Idempotent: a second run only checks. Nothing is written outside this checkout and its .venv except
# the apt packages: GNU Radio Companion and grcc find this checkout's blocks through `semcom grc` (or a
# shell that sourced scripts/env.sh), never through a system-wide path.
set -euo pipefail
cd "$(dirname "$0")/.."

# gir1.2-gtk-3.0 + python3-gi-cairo: GNU Radio Companion's GTK window (Debian's gnuradio does not pull
# them); xvfb: a headless X server for the GRC / QT GUI tests; python3-scipy: only a Recommends of
# gnuradio (apt may skip it), and the receiver's DC-offset removal filters with scipy.signal.lfilter;
# libzmq3-dev, cppzmq-dev, nlohmann-json3-dev: the compiled bridge blocks (ZeroMQ, the wire's JSON).
APT_PACKAGES=(gnuradio gnuradio-dev python3-zmq python3-uhd python3-venv cmake pybind11-dev
              gir1.2-gtk-3.0 python3-gi-cairo xvfb python3-scipy libzmq3-dev cppzmq-dev nlohmann-json3-dev)
need_apt=0
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt=1
done
if [ "$need_apt" = 1 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "[setup] installing apt packages: ${APT_PACKAGES[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
fi

# Debian's GNU Radio is built for /usr/bin/python3, so the venv must come from it and see its site-packages.
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv (system site packages visible, for gnuradio)"
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
PY=.venv/bin/python
stamp=.venv/.semcom-setup-stamp
want=$(cat pyproject.toml setup.py scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing torch (CPU) and the project into .venv"
  $PY -m pip install -q --upgrade "pip>=23" >/dev/null
  # torch==2.13.0 is the local CPU wheel; any other spec would pull CUDA wheels.
  $PY -m pip install -q "torch==2.13.0" "numpy<2"
  $PY -m pip install -q -e ".[all,dev]" -c scripts/constraints.txt
  echo "$want" > "$stamp"
fi
# Plain GNU Radio commands (gnuradio-companion, grcc, python3) see this checkout only in a shell that
# sourced scripts/env.sh; it puts .venv/gr-path (gnuradio/semcom -> the checkout's blocks) on PYTHONPATH.
REPO=$(pwd)
mkdir -p .venv/gr-path/gnuradio
ln -sfn "$REPO/gr-semcom/python/semcom" .venv/gr-path/gnuradio/semcom
# Migration: earlier versions of this script pointed the whole machine at one checkout (a .pth in the
# system site-packages and a GNU Radio conf.d entry). Remove both; they named only this project.
SYS_SITE=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
for old in "$SYS_SITE/gr-semcom-checkout.pth" /etc/gnuradio/conf.d/semcom.conf; do
  if [ -e "$old" ]; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "[setup] removing $old (written by an earlier setup; GRC now uses 'semcom grc' or scripts/env.sh)"
    $SUDO rm -f "$old"
  fi
done

# The compiled blocks (ofat_tx_fast, gr-semcom/lib + python/semcom/bindings): a CMake build inside this
# checkout ($SEMCOM_BUILD_DIR, default build/, git-ignored; the tree scripts/test.sh runs ctest in), rebuilt
# by cmake --build when a source changed (a no-op otherwise). `from gnuradio import semcom` loads it from
# there (gr-semcom/python/semcom/ofat_tx.py); nothing is installed. Quiet: the log stays in the build dir.
BUILD=${SEMCOM_BUILD_DIR:-build}
mkdir -p "$BUILD"
if ! { { [ -f "$BUILD/CMakeCache.txt" ] || cmake -S . -B "$BUILD" -DPYTHON_EXECUTABLE="$PWD/$PY"; } &&
       cmake --build "$BUILD" --parallel 2; } > "$BUILD/setup-build.log" 2>&1; then
  tail -n 30 "$BUILD/setup-build.log"
  echo "[setup] building the compiled blocks failed (log: $BUILD/setup-build.log)" >&2
  exit 1
fi

$PY - <<'PYCHECK'
import numpy, torch
from gnuradio import gr, semcom as gr_semcom  # noqa: F401
assert gr_semcom.semcom_python is not None, "the compiled blocks (build/) do not load"
import semcom  # noqa: F401
import tempfile
from semcom.flowgraphs import compile_flowgraph
with tempfile.TemporaryDirectory() as tmp:  # grcc finds this checkout's blocks, nothing system-wide
    compile_flowgraph("loopback", out_dir=tmp)
assert int(numpy.__version__.split(".")[0]) < 2, "numpy 2 breaks Debian's GNU Radio bindings"
print(f"[setup] ok: GNU Radio {gr.version()}, numpy {numpy.__version__}, torch {torch.__version__}")
PYCHECK
