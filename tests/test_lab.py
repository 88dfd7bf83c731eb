"""`semcom lab` without a radio: the bench list, and a clear "no USRP found" exit, never a traceback."""

import subprocess
import sys

from semcom.cli import main
from semcom.flowgraphs import list_flowgraphs
from semcom.lab import BENCHES


def test_every_bench_has_its_flowgraph(capsys):
    assert main(["lab", "list"]) == 0
    out = capsys.readouterr().out
    stems = {p.stem for p in list_flowgraphs()}
    for name, (grc, _) in BENCHES.items():
        assert grc in stems and name in out


def test_lab_run_without_radio_fails_clearly():
    argv = ["lab", "run", "b210", "--tx-args", "serial=NOPE", "--rx-args", "serial=NOPE"]
    proc = subprocess.run([sys.executable, "-m", "semcom.cli", *argv], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert 'no USRP found for "serial=NOPE"' in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
