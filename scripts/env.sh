# shellcheck shell=bash
# Source this file (`. scripts/env.sh`) for a shell in which GNU Radio's own commands -- gnuradio-companion,
# grcc, /usr/bin/python3 (ctest, generated flowgraphs) -- use THIS checkout's blocks and host package.
# Nothing outside the checkout is touched: it only sets variables in the current shell, so two clones
# stay independent (each shell sources its own). Undo: close the shell, or `semcom_env_off`.
#   GRC_BLOCKS_PATH  += <checkout>/gr-semcom/grc                (the .block.yml files)
#   PYTHONPATH       += <checkout>/host:<checkout>/.venv/gr-path (`import semcom`, `from gnuradio import semcom`)
#                       and .venv's site-packages (the Python dependencies setup.sh installed there)
# Without sourcing anything, `.venv/bin/semcom grc [FLOWGRAPH]` opens GRC the same way.
_semcom_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
# gnuradio/semcom -> the checkout's blocks: a `gnuradio` package portion that gnuradio/__init__.py's
# pkgutil.extend_path picks up (setup.sh makes it too).
mkdir -p "$_semcom_root/.venv/gr-path/gnuradio"
ln -sfn "$_semcom_root/gr-semcom/python/semcom" "$_semcom_root/.venv/gr-path/gnuradio/semcom"
export SEMCOM_ENV_OLD_GRC_BLOCKS_PATH="${GRC_BLOCKS_PATH-}" SEMCOM_ENV_OLD_PYTHONPATH="${PYTHONPATH-}"
export GRC_BLOCKS_PATH="$_semcom_root/gr-semcom/grc${GRC_BLOCKS_PATH:+:$GRC_BLOCKS_PATH}"
_semcom_site=$(echo "$_semcom_root"/.venv/lib/python3*/site-packages)
export PYTHONPATH="$_semcom_root/host:$_semcom_root/.venv/gr-path:$_semcom_site${PYTHONPATH:+:$PYTHONPATH}"
unset _semcom_root _semcom_site
semcom_env_off() {
  export GRC_BLOCKS_PATH="$SEMCOM_ENV_OLD_GRC_BLOCKS_PATH" PYTHONPATH="$SEMCOM_ENV_OLD_PYTHONPATH"
  unset SEMCOM_ENV_OLD_GRC_BLOCKS_PATH SEMCOM_ENV_OLD_PYTHONPATH
  unset -f semcom_env_off
}
