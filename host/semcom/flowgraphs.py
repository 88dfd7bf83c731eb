"""Find, compile (grcc) and load the project's GNU Radio Companion flowgraphs.

The `.grc` files under `flowgraphs/` are the source; the Python that `grcc` generates from them is
rebuilt into a cache directory keyed by the file's content, never committed or edited by hand.

Per install, nothing global: grcc and GNU Radio Companion run on *this* interpreter (`sys.executable`,
the venv that has `semcom` and `gnuradio.semcom`; GNU Radio's own scripts would run on /usr/bin/python3,
which does not) with *this* install's `.block.yml` directory on GRC_BLOCKS_PATH. The `.grc` and
`.block.yml` files come from the checkout (editable install) or from the wheel, which carries them as
package data (`semcom/grc_flowgraphs/`, `semcom/grc_blocks/`). `semcom grc` opens GNU Radio Companion
the same way; `scripts/env.sh` gives a shell the same environment for the plain GNU Radio commands.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the wheel puts the .grc and .block.yml files (setup.py maps them into the package).
PACKAGED_FLOWGRAPHS = Path(__file__).resolve().parent / "grc_flowgraphs"
PACKAGED_BLOCKS = Path(__file__).resolve().parent / "grc_blocks"


class FlowgraphError(RuntimeError):
    """A flowgraph that cannot be found, compiled or loaded."""


def _checkout_or_packaged(checkout: Path, packaged: Path, what: str) -> Path:
    """The source checkout's directory (editable install), else the copy inside the installed package."""
    for path in (checkout, packaged):
        if path.is_dir():
            return path
    raise FlowgraphError(f"no {what}: neither {checkout} nor {packaged} exists (a broken install?)")


def flowgraph_dir() -> Path:
    """`$SEMCOM_FLOWGRAPHS`, else the checkout's flowgraphs/, else the flowgraphs the wheel carries."""
    env = os.environ.get("SEMCOM_FLOWGRAPHS")
    if env:
        if not Path(env).is_dir():
            raise FlowgraphError(f"flowgraph directory {env} (SEMCOM_FLOWGRAPHS) not found")
        return Path(env)
    return _checkout_or_packaged(REPO_ROOT / "flowgraphs", PACKAGED_FLOWGRAPHS, "flowgraph directory")


def block_yml_dir() -> Path:
    """The semcom `.block.yml` files: the checkout's gr-semcom/grc, else the copy in the package."""
    return _checkout_or_packaged(REPO_ROOT / "gr-semcom" / "grc", PACKAGED_BLOCKS, ".block.yml directory")


def list_flowgraphs() -> list[Path]:
    return sorted(flowgraph_dir().glob("*.grc"))


def _cache_root() -> Path:
    base = os.environ.get("SEMCOM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "gr-semcom")
    return Path(base) / "flowgraphs"


def grcc_env() -> dict[str, str]:
    """The environment for grcc, GNU Radio Companion and generated flowgraphs: this install's
    `.block.yml` directory first on GRC_BLOCKS_PATH (before any the user set)."""
    env = dict(os.environ)
    paths = [str(block_yml_dir())]
    if env.get("GRC_BLOCKS_PATH"):
        paths.append(env["GRC_BLOCKS_PATH"])
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(paths)
    return env


def gnuradio_tool(name: str) -> list[str]:
    """Command line that runs GNU Radio's `grcc` / `gnuradio-companion` on this interpreter: the tools
    are Python scripts with a /usr/bin/python3 shebang, and that interpreter cannot import this install."""
    path = shutil.which(name)
    if path is None:
        raise FlowgraphError(f"{name} not found: install GNU Radio (scripts/setup.sh does)")
    return [sys.executable, path]


def semcom_blocks(grc_path: Path) -> list[str]:
    """Names of the enabled semcom blocks (ids `semcom_*`) a .grc places, variables included."""
    import yaml  # GNU Radio's dependency (grcc parses .grc with it), present wherever grcc is

    doc = yaml.safe_load(grc_path.read_text()) or {}
    return [b["name"] for b in doc.get("blocks", []) or []
            if str(b.get("id", "")).startswith("semcom_")
            and (b.get("states") or {}).get("state", "enabled") != "disabled"]


def check_generated(grc_path: Path, py: Path) -> None:
    """FlowgraphError unless the generated Python instantiates every semcom block of the .grc: grcc
    without our block definitions drops them with a warning and still writes a (useless) flowgraph."""
    text = py.read_text()
    missing = [name for name in semcom_blocks(grc_path) if f"self.{name} = " not in text]
    if missing:
        raise FlowgraphError(f"{py} (from {grc_path}) lacks the semcom blocks {', '.join(missing)}: grcc did "
                             f"not find their .block.yml (put {block_yml_dir()} on GRC_BLOCKS_PATH)")


def resolve_flowgraph(grc: str | Path) -> Path:
    """A .grc given as a path, or by name (`loopback`, `loopback.grc`) from flowgraph_dir()."""
    path = Path(grc)
    if path.is_file():
        return path
    if len(path.parts) > 1:  # a path, not a name: never silently swap in the project's flowgraph
        raise FlowgraphError(f"no flowgraph {path}")
    named = flowgraph_dir() / (path.name if path.suffix == ".grc" else f"{path.name}.grc")
    if not named.is_file():
        raise FlowgraphError(f"no flowgraph {grc} (neither a file nor one of {flowgraph_dir()})")
    return named


def compile_flowgraph(grc: str | Path, out_dir: str | Path | None = None) -> Path:
    """Run grcc on a .grc (a path, or a name under flowgraphs/); returns the generated .py."""
    grc_path = resolve_flowgraph(grc)
    grcc = gnuradio_tool("grcc")
    digest = hashlib.sha256(grc_path.read_bytes())
    for yml in sorted(block_yml_dir().glob("*.yml")):
        digest.update(yml.read_bytes())
    target = Path(out_dir) if out_dir else _cache_root() / f"{grc_path.stem}-{digest.hexdigest()[:12]}"
    generated = sorted(target.glob("*.py")) if target.is_dir() else []
    if generated and out_dir is None:
        check_generated(grc_path, generated[0])
        return generated[0]
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        proc = subprocess.run([*grcc, "-o", tmp, str(grc_path)], capture_output=True, text=True,
                              env=grcc_env(), timeout=120)
        outputs = sorted(Path(tmp).glob("*.py"))
        if proc.returncode != 0 or not outputs:
            raise FlowgraphError(f"grcc failed on {grc_path}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        check_generated(grc_path, outputs[0])  # before it enters the cache
        for py in outputs:
            shutil.copy2(py, target / py.name)
    return target / outputs[0].name


def load_flowgraph(grc: str | Path) -> ModuleType:
    """Compile if needed and import the generated module (its top block class has the .grc's id)."""
    py = compile_flowgraph(grc)
    name = f"semcom_generated_{py.stem}"
    spec = importlib.util.spec_from_file_location(name, py)
    if spec is None or spec.loader is None:
        raise FlowgraphError(f"cannot import {py}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def top_block_class(grc: str | Path, class_name: str | None = None) -> type:
    module = load_flowgraph(grc)
    name = class_name or Path(str(grc)).stem
    try:
        return getattr(module, name)
    except AttributeError as err:
        raise FlowgraphError(f"{module.__file__} has no top block class {name!r}") from err


def _open_in_grc(args: argparse.Namespace) -> int:
    files = [str(resolve_flowgraph(name)) for name in args.flowgraphs]
    return subprocess.call([*gnuradio_tool("gnuradio-companion"), *files], env=grcc_env())


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "grc", help="open flowgraphs in GNU Radio Companion with this install's blocks (nothing global)",
        description="Runs gnuradio-companion on this interpreter with this install's .block.yml files on "
                    "GRC_BLOCKS_PATH, so GRC uses this checkout's (or this venv's) semcom blocks.")
    p.add_argument("flowgraphs", nargs="*", metavar="FLOWGRAPH",
                   help="a .grc path or a name from the project's flowgraphs (e.g. loopback_gui); "
                        "default: none (GRC opens empty)")
    p.set_defaults(func=_open_in_grc)
