"""Exit codes of the `semcom` CLI (issue 17, item 2): 0 done, 1 ran but did not do its job, 2 bad input.

Every bad input ends in ONE line on stderr (argparse's usage line aside) and never a traceback; each
case runs `semcom.cli.main` in-process and stops before any flowgraph or training starts.
"""

from __future__ import annotations

import argparse
import importlib
import os
import stat
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import semcom.cli
import semcom.errors
from semcom.cli import build_parser, main
from semcom.flowgraphs import FlowgraphError, compile_flowgraph, flowgraph_dir
from semcom.loopback import check_delivery, free_tcp_port

DEAD = ["tcp://127.0.0.1:1", "tcp://127.0.0.1:2"]  # never reached: these cases fail before connecting


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert err.count("\n") == 0, err
    assert err.startswith("semcom: ")
    return err


def argparse_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    return err.splitlines()[-1]  # argparse: usage line(s), then one "error:" line


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"semcom {version('gr-semcom')}"


def test_version_help_and_grc_help_import_no_torch(capsys: pytest.CaptureFixture[str]) -> None:
    """`semcom --version` and `semcom --help` import no command module (they import torch, 1.5 s);
    `semcom grc` only its own (no torch). The top-level help still lists every command."""
    code = ("import sys; from semcom.cli import main\n"
            "for argv in (['--version'], ['--help'], ['grc', '--help']):\n"
            "    try: main(argv)\n"
            "    except SystemExit: pass\n"
            "print('torch' in sys.modules, 'semcom.loopback' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.splitlines()[-1] == "False False", proc.stderr
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = capsys.readouterr().out
    assert all(name in listed for name in semcom.cli.COMMANDS)


def test_commands_table_matches_the_modules() -> None:
    """COMMANDS (which module a `semcom <command>` imports, and the help `semcom --help` lists without
    importing it) names exactly what each module registers, with the module's own help text."""
    for module in semcom.cli.COMMAND_MODULES:
        sub = argparse.ArgumentParser().add_subparsers()
        importlib.import_module(module).register(sub)
        registered = {a.dest: a.help for a in sub._choices_actions}
        assert registered == {c: h for c, (m, h) in semcom.cli.COMMANDS.items() if m == module}, module
    assert {m for m, _ in semcom.cli.COMMANDS.values()} == set(semcom.cli.COMMAND_MODULES)


def test_unknown_command_is_an_argparse_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert "invalid choice: 'loopbak'" in argparse_error(capsys, ["loopbak", "--frames", "1"])


def test_command_with_missing_extra_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """A base install (no torch): the command says which extra to install, the others still list."""
    real_import = importlib.import_module

    def without_torch(name: str, *args: object) -> object:
        if name == "semcom.loopback":
            raise ModuleNotFoundError("No module named 'torch'", name="torch")
        return real_import(name, *args)

    monkeypatch.setattr(semcom.cli.importlib, "import_module", without_torch)
    assert main(["loopback", "--frames", "1"]) == 2
    assert one_line_error(capsys) == ("semcom: `semcom loopback` needs the Python package 'torch', which is "
                                      "not installed: pip install 'gr-semcom[host]'")
    monkeypatch.setattr(semcom.cli, "COMMAND_MODULES", ("semcom.loopback", "semcom.flowgraphs"))
    helps = {a.dest: a.help for a in semcom.cli.build_parser()._subparsers._group_actions[0]._choices_actions}
    assert "not installed" in helps["loopback"] and "not installed" not in helps["grc"]


def test_loopback_nothing_delivered_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = [f"tcp://127.0.0.1:{free_tcp_port()}" for _ in range(2)]  # nothing listens there
    rc = main(["loopback", "--connect", *ports, "--frames", "2", "--snr", "10", "--timeout", "0.3",
               "--shape", "2x8", "--out", str(tmp_path), "--no-progress"])
    assert rc == 1
    assert "delivered 0 of 2 frames" in one_line_error(capsys)


def test_loss_tolerance() -> None:
    row = {"snr_db": 10.0, "sent": 100, "delivered": 95, "lost": 5}
    check_delivery([row], max_loss=0.05)  # exactly at the tolerance: done
    with pytest.raises(semcom.errors.IncompleteRun, match="6% lost"):
        check_delivery([dict(row, delivered=94, lost=6)], max_loss=0.05)


def test_send_all_frames_lost_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    import semcom.send

    lost = [{"channel": "torch OFAT", "snr_db": 20.0, "psnr_db": 30.0, "frames": 0, "lost": 0},
            {"channel": "GNU Radio flowgraph", "snr_db": 20.0, "psnr_db": 0.0, "frames": 4, "lost": 4}]
    monkeypatch.setattr(semcom.send, "compare_channels", lambda *a, **k: lost)
    args = argparse.Namespace(connect=None, snr=20.0, seed=0, no_progress=True, out=str(tmp_path),
                              max_loss=0.05)
    with pytest.raises(semcom.errors.IncompleteRun, match="GNU Radio flowgraph delivered 0 of 4 frames"):
        semcom.send._compare(args, lambda ch: 0.0, "psnr_db", "jscc")
    assert (tmp_path / "send_jscc.csv").is_file()  # the CSV is still written, for the record
    capsys.readouterr()


@pytest.mark.parametrize("argv, option", [
    (["--frames", "-5"], "--frames"),
    (["--frames", "0"], "--frames"),
    (["--shape", "5xq"], "--shape"),
    (["--shape", "5x0"], "--shape"),
    (["--snr", "garbage"], "--snr"),
    (["--snr", "nan"], "--snr"),
    (["--max-loss", "1.5"], "--max-loss"),
    (["--timeout", "-1"], "--timeout"),  # was accepted: every frame then timed out at once (exit 1)
    (["--timeout", "0"], "--timeout"),
    (["--max-int-delay", "-3"], "--max-int-delay"),
])
def test_loopback_bad_option(argv: list[str], option: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert f"error: argument {option}" in argparse_error(capsys, ["loopback", *argv])


@pytest.mark.parametrize("argv, option", [
    # each of these ended in a traceback (ValueError from the env's config or torch) or ran anyway
    (["network", "eval", "--slots", "-5"], "--slots"),
    (["network", "eval", "--cells", "1"], "--cells"),
    (["network", "eval", "--threads", "0"], "--threads"),
    (["network", "eval", "--seeds", "-1"], "--seeds"),
    (["network", "train", "--slots", "0"], "--slots"),
    (["network", "train", "--ue-min-frac", "1"], "--ue-min-frac"),
    (["network", "train", "--scaling-cells", "3", "0"], "--scaling-cells"),
    (["network", "curves", "--n-test", "0"], "--n-test"),  # ran the whole measurement
    (["network", "live", "--frames", "-1"], "--frames"),
    (["network", "linktable", "--frames", "0"], "--frames"),  # 0 read as "the default": a full sweep
    (["lab", "run", "b210", "--duration", "-3"], "--duration"),
    (["lab", "run", "b210", "--report-every", "0"], "--report-every"),
    # a negative seed: numpy's "expected non-negative integer" traceback after the flowgraph had started
    (["loopback", "--seed", "-1"], "--seed"),
    (["record-loopback", "out", "--seed", "-1"], "--seed"),
    (["send", "jscc", "--seed", "-1"], "--seed"),
    (["train", "agents", "--epochs-vision", "-1"], "--epochs-vision"),
    (["usrp", "probe", "--find-timeout", "-1"], "--find-timeout"),
    (["usrp", "probe", "--rx-gain", "nan"], "--rx-gain"),
])
def test_numeric_option_out_of_range(argv: list[str], option: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert f"error: argument {option}" in argparse_error(capsys, argv)


@pytest.mark.parametrize("argv", [["loopback"], ["partial", "--quick"], ["network", "eval"],
                                  ["eval", "agents"], ["adapt", "--quick"], ["lightweight", "--quick"],
                                  ["offsets"], ["jscc"]])
def test_out_under_a_file_is_refused_before_any_work(argv: list[str], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """`--out` where a file is in the way ended in a NotADirectoryError traceback (exit 1) when the command
    came to write (partial --quick: 10 s into its run)."""
    blocker = tmp_path / "results.csv"
    blocker.write_text("")
    err = argparse_error(capsys, [*argv, "--out", str(blocker / "out")])
    assert (f"error: argument --out: {blocker / 'out'} is under {blocker}, which is a file, not a folder"
            in err)


def test_output_dir_type(tmp_path: Path) -> None:
    from semcom.errors import output_dir

    assert output_dir(str(tmp_path)) == str(tmp_path)
    assert output_dir(str(tmp_path / "new" / "deeper")) == str(tmp_path / "new" / "deeper")  # made later
    assert not (tmp_path / "new").exists()  # checking creates nothing
    (tmp_path / "f").write_text("")
    with pytest.raises(argparse.ArgumentTypeError, match="is a file, not a folder"):
        output_dir(str(tmp_path / "f"))
    with pytest.raises(argparse.ArgumentTypeError, match="empty path"):
        output_dir("")


def _write_npy(path: Path, case: str) -> None:
    arrays = {"pickled": np.array([{"a": 1}], dtype=object), "complex": np.ones(4, np.complex64),
              "nan": np.array([1.0, np.nan], np.float32), "empty": np.zeros((0,), np.float32),
              "oversize": np.zeros(1000, np.float32)}
    if case == "corrupt":
        path.write_bytes(b"not an npy file")
    elif case != "missing":
        np.save(path, arrays[case], allow_pickle=True)


@pytest.mark.parametrize("case, reason", [
    ("missing", "no such .npy file"), ("corrupt", "not a .npy array file"),
    ("pickled", "object (pickled) array"), ("complex", "complex dtype"), ("nan", "NaN or Inf"),
    ("empty", "empty array"), ("oversize", "over the 1000-byte limit"),
])
def test_bad_npy_exits_2(case: str, reason: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(semcom.errors, "MAX_NPY_BYTES", 1000)
    path = tmp_path / f"{case}.npy"
    _write_npy(path, case)
    rc = main(["loopback", "--npy", str(path), "--connect", *DEAD, "--out", str(tmp_path)])
    assert rc == 2
    err = one_line_error(capsys)
    assert str(path) in err and reason in err


@pytest.mark.parametrize("source", ["npy", "shape"])
def test_tensor_over_frame_capacity_exits_2(source: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """A tensor no frame can carry is refused before any flowgraph starts (it used to be sent, rejected by
    ofat_tx each time, and time out frame by frame). wifi64 2x4 complex carries 12 288 values."""
    if source == "npy":
        path = tmp_path / "big.npy"
        np.save(path, np.zeros(12_289, np.float32))
        argv, named = ["--npy", str(path)], str(path)
    else:
        argv, named = ["--shape", "3x4097"], "--shape 3x4097"
    assert main(["loopback", *argv, "--connect", *DEAD, "--out", str(tmp_path)]) == 2
    err = one_line_error(capsys)
    assert named in err and "at most 12288" in err


def test_npy_batched_needs_a_batch_axis(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "flat.npy"
    np.save(path, np.ones(8, np.float32))
    assert main(["loopback", "--npy", str(path), "--npy-batched", "--connect", *DEAD]) == 2
    assert "--npy-batched needs" in one_line_error(capsys)


def test_eval_agents_missing_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval", "agents", "--checkpoints", str(tmp_path / "nonexistent"), "--out", str(tmp_path)])
    assert rc == 2
    assert "no such directory" in one_line_error(capsys)


@pytest.mark.parametrize("argv", [["eval", "jscc"], ["send", "jscc"], ["send", "tokens"]])
def test_missing_checkpoint_is_one_line_on_stderr(argv: list[str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """These commands printed "error: ..." on stdout themselves; now semcom.cli.main reports it as every
    other bad input: one `semcom:` line on stderr, exit 2."""
    missing = tmp_path / "nonexistent"
    assert main([*argv, "--checkpoint", str(missing), "--out", str(tmp_path)]) == 2
    assert str(missing) in error_line_and_nothing_on_stdout(capsys)  # (its stdout was read twice before)


def error_line_and_nothing_on_stdout(capsys: pytest.CaptureFixture[str]) -> str:
    """The one `semcom:` line on stderr of a command that printed nothing on stdout (read once)."""
    cap = capsys.readouterr()
    assert cap.out == "", cap.out
    err = cap.err.strip()
    assert err.startswith("semcom: ") and "\n" not in err and "Traceback" not in err, err
    return err


def test_lightweight_errors_are_one_line_on_stderr(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """semcom lightweight printed "error: ..." on stdout itself (a missing teacher, a --parts run without
    an earlier run's summary.json); now one `semcom:` line on stderr, exit 2, like every command."""
    missing = tmp_path / "nonexistent"
    assert main(["lightweight", "--quick", "--teacher", str(missing), "--out", str(tmp_path)]) == 2
    assert str(missing) in error_line_and_nothing_on_stdout(capsys)
    assert main(["lightweight", "--parts", "tokens", "--out", str(tmp_path / "fresh")]) == 2
    assert "run with --parts jscc first" in error_line_and_nothing_on_stdout(capsys)


@pytest.mark.parametrize("argv, reason", [(["partial", "--agents", "1000"], "agents"),
                                          (["adapt", "--snrs", "10"], "at least two SNRs")])
def test_invalid_experiment_settings_are_one_line_on_stderr(argv: list[str], reason: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`semcom partial` / `semcom adapt` printed "error: ..." themselves; now the one `semcom:` form."""
    assert main([*argv, "--out", str(tmp_path)]) == 2
    assert reason in one_line_error(capsys)


def test_eval_agents_empty_checkpoint_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval", "agents", "--checkpoints", str(tmp_path), "--out", str(tmp_path)])
    assert rc == 2  # CheckpointError, through cli.main's handler
    assert "receiver.json not found" in one_line_error(capsys)


@pytest.mark.parametrize("n", ["0", "-3"])
def test_eval_agents_n_test_positive(n: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "error: argument --n-test" in argparse_error(capsys, ["eval", "agents", "--n-test", n])


@pytest.fixture
def grcc_without_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `grcc` on PATH that writes what the real one writes when it finds no semcom .block.yml: a
    flowgraph with the Options/variables only, and exit status 0."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "grcc"
    # A Python script like the real one (semcom.flowgraphs runs grcc on its own interpreter).
    fake.write_text('#!/usr/bin/python3\n# grcc -o DIR FILE\nimport pathlib, sys\n'
                    'pathlib.Path(sys.argv[2], "loopback.py").write_text("class loopback:\\n    pass\\n")\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("SEMCOM_CACHE", str(tmp_path / "cache"))  # not the good cached build


def test_flowgraph_without_semcom_blocks_is_an_error(grcc_without_blocks: None, tmp_path: Path) -> None:
    with pytest.raises(FlowgraphError, match="lacks the semcom blocks ofat_layout, semcom_tensor_source_0"):
        compile_flowgraph(flowgraph_dir() / "loopback.grc", out_dir=tmp_path / "gen")


def test_loopback_with_blockless_flowgraph_exits_2(grcc_without_blocks: None, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["loopback", "--frames", "1", "--out", str(tmp_path), "--no-progress"])
    assert rc == 2
    assert "lacks the semcom blocks" in one_line_error(capsys)


def _leaf_parsers(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
    """Every command path of the CLI, e.g. ['network', 'train'] (the parsers with no subcommands)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [path]
    return [leaf for name, sub in subs[0].choices.items() for leaf in _leaf_parsers(sub, [*path, name])]


def _subparser(parser: argparse.ArgumentParser, path: list[str]) -> argparse.ArgumentParser:
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


EVERY_COMMAND = _leaf_parsers(build_parser(), [])


def test_every_command_is_checked() -> None:
    assert ["network", "train"] in EVERY_COMMAND and ["lab", "run"] in EVERY_COMMAND
    assert len(EVERY_COMMAND) >= 25


@pytest.mark.parametrize("path", EVERY_COMMAND, ids=" ".join)
def test_every_option_has_help_with_default(path: list[str]) -> None:
    parser = _subparser(build_parser(), path)
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        assert action.help, f"{path} {action.option_strings}: no help"
        flag = isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction)
        assert action.required or flag or "default" in action.help, f"{path} {action.option_strings}"
