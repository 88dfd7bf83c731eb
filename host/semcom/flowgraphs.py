"""Find, compile (grcc) and load the project's GNU Radio Companion flowgraphs.

The `.grc` files under `flowgraphs/` are the source; the Python that `grcc` generates from them is
rebuilt into a cache directory keyed by the file's content, never committed or edited by hand. Our
`.block.yml` files are put on GRC_BLOCKS_PATH for grcc, so this works from a source checkout
(`pip install -e .`) without installing the module the CMake way.
"""

from __future__ import annotations

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


class FlowgraphError(RuntimeError):
    """A flowgraph that cannot be found, compiled or loaded."""


def flowgraph_dir() -> Path:
    """`$SEMCOM_FLOWGRAPHS`, else the checkout's flowgraphs/ directory."""
    env = os.environ.get("SEMCOM_FLOWGRAPHS")
    path = Path(env) if env else REPO_ROOT / "flowgraphs"
    if not path.is_dir():
        raise FlowgraphError(f"flowgraph directory {path} not found (set SEMCOM_FLOWGRAPHS)")
    return path


def block_yml_dir() -> Path:
    return REPO_ROOT / "gr-semcom" / "grc"


def list_flowgraphs() -> list[Path]:
    return sorted(flowgraph_dir().glob("*.grc"))


def _cache_root() -> Path:
    base = os.environ.get("SEMCOM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "gr-semcom")
    return Path(base) / "flowgraphs"


def grcc_env() -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(block_yml_dir())]
    if env.get("GRC_BLOCKS_PATH"):
        paths.append(env["GRC_BLOCKS_PATH"])
    env["GRC_BLOCKS_PATH"] = os.pathsep.join(paths)
    return env


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


def compile_flowgraph(grc: str | Path, out_dir: str | Path | None = None) -> Path:
    """Run grcc on a .grc (a path, or a name under flowgraphs/); returns the generated .py."""
    grc_path = Path(grc)
    if not grc_path.suffix:
        grc_path = flowgraph_dir() / f"{grc}.grc"
    if not grc_path.is_file():
        raise FlowgraphError(f"no flowgraph {grc_path}")
    grcc = shutil.which("grcc")
    if grcc is None:
        raise FlowgraphError("grcc not found: install GNU Radio (scripts/setup.sh does)")
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
        proc = subprocess.run([grcc, "-o", tmp, str(grc_path)], capture_output=True, text=True,
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
