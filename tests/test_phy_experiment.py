"""experiments/phy/run.py --quick: the PHY figures' script runs through the real chain and its numbers
hold on a few frames (real-mode MMSE near the stacked-real bound, CFO 2.5 subcarriers delivered, LMMSE
unbiased)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "phy" / "run.py"


def test_quick_run_writes_tables_that_agree_with_theory(load_script, tmp_path: Path) -> None:
    assert load_script(SCRIPT).main(["--quick", "--frames", "12", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["cfo_min_delivered_share"] == 1.0
    assert summary["real_mode_max_excess_db"] < 1.5   # 12 frames: wider than the 1 dB of the full run
    lo, hi = summary["lmmse_gain_range"]
    assert 0.97 < lo <= hi < 1.03
    with (tmp_path / "mmse_bias.csv").open() as f:
        rows = {r["method"]: float(r["gain"]) for r in csv.DictReader(f)}
    assert rows["mmse"] < rows["lmmse"]              # the biased MMSE shrinks, the LMMSE does not


def test_frames_must_be_positive(load_script, tmp_path: Path) -> None:
    import pytest

    with pytest.raises(SystemExit) as err:
        load_script(SCRIPT).main(["--frames", "0", "--out", str(tmp_path)])
    assert err.value.code == 2


IMPAIRMENTS = SCRIPT.parent / "impairments.py"


def test_impairments_quick_run_tracks_sfo_and_delivers_with_every_impairment(load_script,
                                                                             tmp_path: Path) -> None:
    """experiments/phy/impairments.py --quick: 20 ppm through GNU Radio's channels.channel_model is
    estimated and tracked, and with every impairment on all frames come back at 5 dB."""
    assert load_script(IMPAIRMENTS).main(["--quick", "--frames", "10", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "impairments_summary.json").read_text())
    assert summary["delivery_5db_all_impairments"] == 1.0
    with (tmp_path / "impairments_sfo.csv").open() as f:
        rows = list(csv.DictReader(f))
    tracked = [r for r in rows if float(r["sfo_ppm"]) == 20.0]
    assert abs(float(tracked[0]["sfo_estimate_median_ppm"]) - 20.0) < 3.0
    assert (tmp_path / "impairments.png").stat().st_size > 0
