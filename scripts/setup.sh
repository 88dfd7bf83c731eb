#!/usr/bin/env bash
# One setup path for users, developers and CI: apt packages (GNU Radio 3.10 and friends), a venv that
# sees Debian's GNU Radio bindings, CPU PyTorch and this project in editable mode (numpy kept < 2).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(gnuradio gnuradio-dev python3-zmq python3-uhd python3-venv cmake pybind11-dev)
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
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing torch (CPU) and the project into .venv"
  $PY -m pip install -q --upgrade "pip>=23" >/dev/null
  # torch==2.13.0 is the local CPU wheel; any other spec would pull CUDA wheels.
  $PY -m pip install -q "torch==2.13.0" "numpy<2"
  $PY -m pip install -q -e ".[dev]" -c scripts/constraints.txt
  echo "$want" > "$stamp"
fi
# GNU Radio Companion and grcc run on the system Python and read GNU Radio's preferences: point both
# at this checkout (a .pth for `import semcom` / `from gnuradio import semcom`, and a conf.d entry for
# the .block.yml files), as an installed module would be found. Rewritten if the checkout moves.
REPO=$(pwd)
GR_PATH_DIR="$REPO/.venv/gr-path"
mkdir -p "$GR_PATH_DIR/gnuradio"
ln -sfn "$REPO/gr-semcom/python/semcom" "$GR_PATH_DIR/gnuradio/semcom"
SYS_SITE=$(/usr/bin/python3 -c 'import site; print(site.getsitepackages()[0])')
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
PTH="$SYS_SITE/gr-semcom-checkout.pth"
# Only the system interpreter (GRC, grcc, ctest) reads these paths; a venv keeps its own install.
PTH_LINE="import sys; sys.prefix == sys.base_prefix and sys.path.extend(['$REPO/host', '$GR_PATH_DIR'])"
if [ "$(cat "$PTH" 2>/dev/null)" != "$PTH_LINE" ]; then
  $SUDO mkdir -p "$SYS_SITE"
  printf '%s\n' "$PTH_LINE" | $SUDO tee "$PTH" >/dev/null
fi
GR_CONF=/etc/gnuradio/conf.d/semcom.conf  # read after grc.conf: conf.d is read in name order
WANT_CONF=$(printf '[grc]\nlocal_blocks_path = %s\n' "$REPO/gr-semcom/grc")
if [ "$(cat "$GR_CONF" 2>/dev/null)" != "$WANT_CONF" ]; then
  printf '%s\n' "$WANT_CONF" | $SUDO tee "$GR_CONF" >/dev/null
fi

$PY - <<'PYCHECK'
import numpy, torch
from gnuradio import gr, semcom as gr_semcom  # noqa: F401
import semcom  # noqa: F401
assert int(numpy.__version__.split(".")[0]) < 2, "numpy 2 breaks Debian's GNU Radio bindings"
print(f"[setup] ok: GNU Radio {gr.version()}, numpy {numpy.__version__}, torch {torch.__version__}")
PYCHECK
