"""`semcom adapt --quick`: the schedule runs end to end over the loopback flowgraph and writes its outputs."""

import csv
import json

from semcom.adapt.experiment import ARMS, quick_config, recovery_rows
from semcom.cli import main


def test_quick_run_writes_outputs(tmp_path):
    out = tmp_path / "adapt"
    assert main(["adapt", "--quick", "--out", str(out), "--no-progress"]) == 0
    (out / "fig5.png").unlink()
    assert main(["adapt", "--replot", "--out", str(out)]) == 0  # redrawn from epochs.csv alone
    for name in ("epochs.csv", "recovery.csv", "fidelity.csv", "final.csv", "fig5.png", "summary.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    cfg = quick_config()
    rows = list(csv.DictReader((out / "epochs.csv").open()))
    # Initial training: epochs 0..initial_epochs; then every arm: epoch 0 + step_epochs per SNR step.
    assert sum(r["arm"] == "initial" for r in rows) == cfg.initial_epochs + 1
    for arm in ARMS:
        assert sum(r["arm"] == arm for r in rows) == (len(cfg.snrs) - 1) * (cfg.step_epochs + 1)
    assert all(int(r["lost"]) <= int(r["sent"]) for r in rows)
    fid = list(csv.DictReader((out / "fidelity.csv").open()))
    assert [float(r["snr_db"]) for r in fid] == list(cfg.snrs)
    final = list(csv.DictReader((out / "final.csv").open()))
    assert {r["arm"] for r in final} == set(ARMS)
    assert all(int(r["sent"]) == cfg.n_final == int(r["delivered"]) + int(r["lost"]) for r in final)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["real"] == "flowgraph" and "cgan_recovery_epochs_max" in summary["acceptance"]
    assert summary["frames"]["0"]["sent"] > 0


def test_recovery_epochs_and_bad_arguments(tmp_path):
    cfg = quick_config(step_epochs=4)
    curve = [27.0, 28.5, 29.0, 29.1, 29.1]  # settled 29.1: within 0.3 dB from epoch 2
    rows = [{"seed": 0, "arm": "cgan", "snr_db": 9.0, "epoch_in_step": e, "psnr_db": p}
            for e, p in enumerate(curve)]
    (rec,) = recovery_rows(cfg, rows)
    assert rec["recovery_epochs"] == 2 and abs(rec["settled_psnr_db"] - 29.1) < 1e-9
    assert main(["adapt", "--quick", "--snrs", "21", "--out", str(tmp_path)]) == 2
