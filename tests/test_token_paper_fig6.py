"""experiments/token_paper/fig6.py --quick: the five systems of Fig. 6, each over its channel, written as
CSV + PNG + JSON; the digital baselines follow the measured packet error rates and run through the
flowgraph with every packet counted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("gnuradio.digital")

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "token_paper" / "fig6.py"


@pytest.fixture
def fig6(load_script):
    return load_script(SCRIPT)


def test_quick_run_covers_every_system_over_its_channel(fig6, tmp_path: Path) -> None:
    assert fig6.main(["--quick", "--out", str(tmp_path)]) == 0
    with (tmp_path / "fig6.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert (tmp_path / "fig6.png").stat().st_size > 0
    summary = json.loads((tmp_path / "fig6.json").read_text())
    assert set(summary["checks"]) == {"awgn"}
    curves = {(r["system"], r["evaluated"], float(r["snr_db"])): r for r in rows}
    for system in fig6.SYSTEMS:
        assert {s for (sy, _, s) in curves if sy == system} >= {0.0, 10.0, 20.0}
    uses = {r["system"]: float(r["complex_channel_uses"]) for r in rows if r["evaluated"] != "flowgraph"}
    assert uses["tokens_jtcc"] == 40 and uses["tokens_raw"] == 320 and uses["deepjscc_scenes"] == 2048
    assert uses["raw_image_digital"] > uses["natural_language_digital"] > uses["deepjscc_scenes"]
    # The measured table: nothing arrives at 0 dB over AWGN, everything at 20 dB.
    for system in ("raw_image_digital", "natural_language_digital"):
        assert float(curves[(system, "PER table", 0.0)]["messages_delivered"]) == 0.0
        assert float(curves[(system, "PER table", 20.0)]["messages_delivered"]) == 1.0
        fg = curves[(system, "flowgraph", 20.0)]
        assert int(fg["packets_sent"]) > 0 and int(fg["packets_lost"]) == 0
        assert float(fg["messages_delivered"]) == 1.0
    # With nothing delivered the answers are the receivers' fallbacks: worse than when all arrives.
    for system in ("raw_image_digital", "natural_language_digital"):
        assert float(curves[(system, "PER table", 0.0)]["accuracy"]) < \
            float(curves[(system, "PER table", 20.0)]["accuracy"])
    # The analog systems over the OFAT loopback flowgraph, every frame counted, added to the figure.
    assert fig6.main(["--quick", "--flowgraph-only", "--analog-flowgraph-systems", "deepjscc_scenes",
                      "tokens_raw", "--analog-flowgraph-snrs", "20", "--analog-flowgraph-questions", "4",
                      "--out", str(tmp_path)]) == 0
    with (tmp_path / "fig6_flowgraph.csv").open() as f:
        fg_rows = {r["system"]: r for r in csv.DictReader(f)}
    assert set(fg_rows) == {"deepjscc_scenes", "tokens_raw"}
    for r in fg_rows.values():
        assert int(r["packets_sent"]) == 4 and int(r["packets_lost"]) == 0
    assert float(fg_rows["deepjscc_scenes"]["image_psnr_db"]) > 25.0  # torch AWGN/OFAT at 20 dB: 29 dB
