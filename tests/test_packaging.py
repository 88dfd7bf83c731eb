"""Set-up and packaging (issue 17 items 1 and 4, issue 15 item 4).

* Two clones on one machine stay independent: each compiles its flowgraphs with its own `.block.yml`
  files and runs its own block code, through `semcom.flowgraphs` (grcc on the clone's interpreter) and
  through `scripts/env.sh` (plain `grcc` / `/usr/bin/python3`); nothing system-wide is involved.
* The wheel carries the flowgraphs and `.block.yml` files, requires only numpy, pyzmq and sigmf (torch
  only in an extra), and `semcom loopback --frames 20` installed from it runs from a temporary directory.
"""

from __future__ import annotations

import email.parser
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from semcom.flowgraphs import REPO_ROOT

MARK = "SECOND_CLONE_YML = True"  # a statement: GRC copies block imports verbatim
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])  # this venv's: numpy<2, pyzmq, sigmf, torch


def run(cmd: list[str] | str, **kw) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def tracked_copy(dest: Path) -> Path:
    """The checkout's files as the tests see them (tracked + untracked, not ignored) copied to dest: a
    clone of this working tree."""
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listed = run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT)
    for name in filter(None, listed.stdout.split("\0")):
        src = REPO_ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


def venv_borrowing_packages(path: Path) -> Path:
    """A fresh venv on Debian's python (GNU Radio visible) that borrows this venv's installed packages
    (torch, sigmf, numpy<2) through a .pth placed AFTER its own site-packages: what it installs itself
    comes first, and nothing is downloaded."""
    run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", "--without-pip", str(path)])
    py = path / "bin" / "python"
    own_site = Path(run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                    .stdout.strip())
    (own_site / "zz_borrowed.pth").write_text(f"{SITE_PACKAGES}\n")
    return py


def pip(python: Path, *args: str) -> None:
    run([sys.executable, "-m", "pip", "--python", str(python), "--disable-pip-version-check", *args])


@pytest.fixture(scope="module")
def second_clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second checkout with its own venv and editable install, whose ofat_tx .block.yml and block code
    differ from this checkout's by a marker."""
    clone = tracked_copy(tmp_path_factory.mktemp("clone") / "gr-semcom")
    yml = clone / "gr-semcom" / "grc" / "semcom_ofat_tx.block.yml"
    text = yml.read_text()
    assert "from gnuradio import semcom" in text
    yml.write_text(text.replace("from gnuradio import semcom", f"from gnuradio import semcom; {MARK}", 1))
    with (clone / "gr-semcom" / "python" / "semcom" / "__init__.py").open("a") as init:
        init.write("\nCLONE = 'second'\n")
    py = venv_borrowing_packages(clone / ".venv")
    pip(py, "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(clone))
    return clone


@pytest.mark.slow
def test_second_clone_compiles_and_runs_its_own_code(second_clone: Path, tmp_path: Path) -> None:
    py = second_clone / ".venv" / "bin" / "python"
    script = f"""
import runpy, sys
from semcom.flowgraphs import compile_flowgraph
out = compile_flowgraph("loopback", out_dir=sys.argv[1])
print(out.read_text().count({MARK!r}))
semcom = runpy.run_path(str(out), run_name="generated")["semcom"]  # its imports, not its main()
print(semcom.__file__, getattr(semcom, "CLONE", None))
"""
    lines = run([str(py), "-c", script, str(tmp_path / "clone")], cwd=tmp_path).stdout.splitlines()
    assert lines[-2] == "1"  # the clone's .block.yml
    blocks, marker = lines[-1].split()
    assert blocks.startswith(str(second_clone)) and marker == "second"  # the clone's block code
    # ... while this checkout, on this interpreter, still builds and runs its own.
    lines = run([sys.executable, "-c", script, str(tmp_path / "main")], cwd=tmp_path).stdout.splitlines()
    assert lines[-2] == "0"
    blocks, marker = lines[-1].split()
    assert blocks.startswith(str(REPO_ROOT)) and marker == "None"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["clone", "main"])
def test_env_sh_points_plain_grcc_and_python3_at_its_own_checkout(second_clone: Path, tmp_path: Path,
                                                                   which: str) -> None:
    root = second_clone if which == "clone" else REPO_ROOT
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GRC_BLOCKS_PATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"  # Debian's grcc and python3, not a venv's
    # The clone's venv has no packages of its own (it borrows through a .pth, which PYTHONPATH does not
    # read): lend this venv's site-packages at the END, as its own installed dependencies would be.
    shell = (f'. "{root}/scripts/env.sh" && export PYTHONPATH="$PYTHONPATH:{SITE_PACKAGES}" && '
             f'grcc -o "{tmp_path}" "{root}/flowgraphs/loopback.grc" >/dev/null && '
             'python3 -c "import gnuradio.semcom as b, semcom; print(b.__file__, semcom.__file__)"')
    out = run(["bash", "-c", shell], env=env, cwd=tmp_path).stdout.split()
    assert all(path.startswith(str(root)) for path in out), out
    assert ((tmp_path / "loopback.py").read_text().count(MARK) == 1) == (which == "clone")


def test_setup_writes_nothing_system_wide() -> None:
    """setup.sh names no path outside the checkout except the ones it removes (migration)."""
    text = (REPO_ROOT / "scripts" / "setup.sh").read_text()
    assert "tee" not in text and "conf.d/semcom.conf" in text  # only in the removal loop
    assert 'rm -f "$old"' in text
    assert not Path("/etc/gnuradio/conf.d/semcom.conf").exists()
    import site
    assert not any(Path(d, "gr-semcom-checkout.pth").exists() for d in site.getsitepackages())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built from a copy of the tracked files (nothing written into the checkout)."""
    src = tracked_copy(tmp_path_factory.mktemp("src") / "gr-semcom")
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
         str(src)])
    (whl,) = out.glob("gr_semcom-*.whl")
    return whl


def test_wheel_carries_grc_files_and_needs_no_torch(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        meta_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(meta_name).decode())
    grc = {p.name for p in (REPO_ROOT / "flowgraphs").glob("*.grc")}
    yml = {p.name for p in (REPO_ROOT / "gr-semcom" / "grc").glob("*.block.yml")}
    assert {n.rsplit("/", 1)[-1] for n in names if n.startswith("semcom/grc_flowgraphs/")} == grc
    assert {n.rsplit("/", 1)[-1] for n in names if n.startswith("semcom/grc_blocks/")} == yml
    assert "gnuradio/semcom/ofat_tx.py" in names
    assert not [n for n in names if "/qa_" in n or n == "gnuradio/__init__.py"]
    requires = meta.get_all("Requires-Dist")
    base = sorted(re.split(r"[<>=!~ ;]", r)[0] for r in requires if "extra ==" not in r)
    assert base == ["numpy", "pyzmq", "sigmf", "threadpoolctl"]
    torch = [r for r in requires if r.startswith("torch")]
    assert torch and all('extra == "host"' in r for r in torch) and "==" not in torch[0].split(";")[0]
    # What a plain `pip install` resolves, from the installed packages' own metadata (offline): no torch.
    assert "torch" not in dependency_closure(base), dependency_closure(base)


def dependency_closure(names: list[str]) -> set[str]:
    """The distributions `names` pull in (no extras), by their installed metadata."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in reqs:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


@pytest.mark.slow
def test_wheel_install_runs_loopback_from_any_directory(wheel: Path, tmp_path: Path) -> None:
    """Non-editable install into a fresh venv (the borrowed torch: no download), then the demo and
    `--version` from a directory with no checkout in sight."""
    py = venv_borrowing_packages(tmp_path / "venv")
    pip(py, "install", "-q", "--no-deps", str(wheel))
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "GRC_BLOCKS_PATH", "SEMCOM_FLOWGRAPHS")}
    env["SEMCOM_CACHE"] = str(tmp_path / "cache")
    semcom = tmp_path / "venv" / "bin" / "semcom"
    code = ("import semcom, gnuradio.semcom as b, sys; from semcom import flowgraphs as f; "
            "print(semcom.__file__, b.__file__, f.flowgraph_dir(), f.block_yml_dir(), "
            "'torch' in sys.modules)")
    where = run([str(py), "-c", code], cwd=work, env=env).stdout.split()
    # Blocks, host package, .grc and .block.yml (what `semcom grc` puts on GRC_BLOCKS_PATH): the wheel's.
    assert all(p.startswith(str(tmp_path / "venv")) for p in where[:4]), where
    assert where[4] == "False"  # the blocks and the host package import no torch
    assert run([str(semcom), "--version"], cwd=work, env=env).stdout.strip() == "semcom 0.1.0"
    proc = run([str(semcom), "loopback", "--frames", "20", "--snr", "20", "--out", str(work / "out")],
               cwd=work, env=env)
    assert "sent 20 delivered 20 lost 0" in proc.stdout + proc.stderr


def test_host_core_imports_no_gnu_radio() -> None:
    """docs/ARCHITECTURE.md: the host's core (wire, link, layout + receiver, channels, training, the
    command modules that drive a flowgraph over ZeroMQ) imports no GNU Radio module; only starting a
    flowgraph in the same process does (semcom.loopback's launcher, semcom.network.air, semcom.digital)."""
    core = ["semcom.wire", "semcom.link", "semcom.ofat.frame", "semcom.ofat.receiver", "semcom.ofat.equalize",
            "semcom.ofat.papr", "semcom.ofat.clipping", "semcom.channels", "semcom.training",
            "semcom.transfer", "semcom.loopback", "semcom.burst", "semcom.flowgraph_channel",
            "semcom.capture", "semcom.send", "semcom.cli"]
    code = (f"import importlib, sys\nfor m in {core!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gnuradio', 'pmt')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_one_process_burst_is_its_own_module(loaded_modules) -> None:
    """semcom.burst (run_burst and its helpers) loads neither torch nor the `semcom loopback` command module,
    whose names for it stay importable as the same objects."""
    assert loaded_modules("semcom.burst", ("torch", "semcom.loopback", "semcom.cli")) == []
    import semcom.burst
    import semcom.loopback

    for name in ("run_burst", "gr_channel_models", "seeded_payloads", "burst_nmse"):
        assert getattr(semcom.loopback, name) is getattr(semcom.burst, name)
