"""`semcom send jscc`: the shipped DeepJSCC checkpoint, unchanged, over the torch OFAT channel and over
the GNU Radio loopback flowgraph gives the same quality; bad checkpoints are clear errors."""

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
    out, err = capsys.readouterr()  # one `semcom:` line on stderr, as every command's usage error
    assert out == "" and err.startswith("semcom: ") and err.count("\n") == 1
    assert "missing.json not found" in err


# `semcom send tokens` with the shipped pipeline over both channels: tests/test_agents_shipped.py, which
# shares its test split (generated once per file, ~30 s).


def test_bad_token_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "x.json").write_text("{}")
    assert main(["send", "tokens", "--checkpoint", str(tmp_path / "x"), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("semcom: ") and "not a token-pipeline checkpoint" in err
