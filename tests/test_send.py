"""`semcom send jscc`: the shipped DeepJSCC checkpoint, unchanged, over the torch OFAT channel and over
the GNU Radio loopback flowgraph gives the same quality."""

import csv
from pathlib import Path

from semcom.cli import main

CHECKPOINT = Path(__file__).resolve().parents[1] / "host/semcom/jscc/checkpoints/deepjscc_kn1-6_32px"


def test_same_checkpoint_over_torch_channel_and_flowgraph(tmp_path):
    assert main(["send", "jscc", "--checkpoint", str(CHECKPOINT), "--n", "30", "--snr", "20",
                 "--no-progress", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "send_jscc.csv").open()))
    torch_psnr, flowgraph_psnr = (float(r["psnr_db"]) for r in rows)
    assert rows[1]["lost"] == "0"
    assert torch_psnr > 25  # a trained codec, not noise
    assert abs(torch_psnr - flowgraph_psnr) < 1.0


def test_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["send", "jscc", "--checkpoint", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "error:" in capsys.readouterr().out


TOKENS = Path(__file__).resolve().parents[1] / "host/semcom/agents/checkpoints/tokens_jtcc"


def test_same_token_pipeline_over_torch_channel_and_flowgraph(tmp_path):
    """The acceptance check of the machine-token agents: the shipped JTCC pipeline, unchanged, answers
    1000 test questions over the torch OFAT 2x4 channel and over the GNU Radio loopback flowgraph at
    20 dB within 2 accuracy points, every frame delivered."""
    assert main(["send", "tokens", "--checkpoint", str(TOKENS), "--n", "1000", "--snr", "20",
                 "--no-progress", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader((tmp_path / "send_tokens.csv").open()))
    torch_acc, flowgraph_acc = (float(r["accuracy"]) for r in rows)
    assert rows[1]["frames"] == "1000" and rows[1]["lost"] == "0"
    assert torch_acc > 0.5  # a trained pipeline (chance is well below)
    assert abs(torch_acc - flowgraph_acc) <= 0.02


def test_bad_token_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "x.json").write_text("{}")
    assert main(["send", "tokens", "--checkpoint", str(tmp_path / "x"), "--no-progress"]) == 2
    assert "error:" in capsys.readouterr().out
