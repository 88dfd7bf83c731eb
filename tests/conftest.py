"""Fixtures shared by the test files."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[1]


def load_script_module(script: str | Path, name: str | None = None) -> ModuleType:
    """A script that is not part of a package (experiments/, benchmarks/), loaded as a fresh module.

    `script`: absolute or relative to the repository root. It runs as `python script.py` would see it:
    its folder first on sys.path while it loads (so it can import the scripts beside it), and registered
    in sys.modules under `name` (default `<folder>_<stem>`, e.g. `phy_impairments`), where dataclasses
    and pickle look their module up. Its `if __name__ == "__main__"` block does not run.
    """
    path = REPO / script
    if not path.is_file():
        raise FileNotFoundError(f"no script {path}")
    name = name or f"{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    finally:
        sys.path.remove(str(path.parent))
    return module


def modules_loaded_by(module: str, watched: tuple[str, ...]) -> list[str]:
    """Which of `watched` a fresh interpreter has in sys.modules after `import module` (sorted)."""
    code = (f"import json, sys, {module}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m in {watched!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def load_script() -> Callable[..., ModuleType]:
    """`load_script_module` for tests and module-scoped fixtures: `load_script("experiments/phy/run.py")`."""
    return load_script_module


@pytest.fixture(scope="session")
def loaded_modules() -> Callable[[str, tuple[str, ...]], list[str]]:
    """`modules_loaded_by`: `loaded_modules("semcom.burst", ("torch",))` -> [] when it imports no torch."""
    return modules_loaded_by
