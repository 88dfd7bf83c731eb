"""benchmarks/run.py --quick into a temporary folder: the benchmark harness runs end to end (transmit,
channel, receive, reconstruction, bridge, loopback) and the loopback delivers every frame. No timing is
asserted here (timing goals live in the benchmarks' own results); the committed results are untouched."""

import csv
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("## Transmit chain", "## MIMO channel", "## Receive chain", "## Host reconstruction",
            "## ZeroMQ round trip", "## Loopback latency", "## End to end in loopback")


def test_quick_benchmark_runs_into_its_out_folder(tmp_path) -> None:
    committed = {p.name: p.stat().st_mtime_ns for p in (REPO / "benchmarks" / "results").iterdir()}
    script = REPO / "benchmarks" / "run.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = (tmp_path / "summary.md").read_text()
    assert [s for s in SECTIONS if s not in summary] == []
    with (tmp_path / "loopback_end_to_end.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows and all(float(r["delivered_fraction"]) == 1.0 for r in rows), rows
    after = {p.name: p.stat().st_mtime_ns for p in (REPO / "benchmarks" / "results").iterdir()}
    assert after == committed  # --out, not the committed results
