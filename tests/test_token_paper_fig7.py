"""experiments/token_paper/fig7.py (accuracy vs the number of tokens K) and seeds.py (the headline over
training seeds, with paired tests): their --quick runs and the statistics they report."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parents[1] / "experiments" / "token_paper"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def test_fig7_quick_trains_each_k_and_puts_it_beside_the_receiver_ceiling(load_script,
                                                                           tmp_path: Path) -> None:
    fig7 = load_script(HERE / "fig7.py")
    assert fig7.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "fig7.csv")
    assert (tmp_path / "fig7.png").stat().st_size > 1000
    summary = json.loads((tmp_path / "fig7.json").read_text())
    assert summary["k"] == [1, 2] and summary["snrs_db"] == [0.0, 15.0]
    ceiling = {int(r["k_tokens"]): r for r in rows if r["method"] == "receiver_first_k_objects"}
    assert sorted(ceiling) == [1, 2, 3, 4, 5, 6]
    # A scene holds at most 6 objects: with k >= n tokens the n-object scenes get every object, so the
    # ceiling on them no longer changes with k.
    for n in (3, 4, 5, 6):
        col = f"acc_{n}_objects"
        assert {ceiling[k][col] for k in range(n, 7)} == {ceiling[6][col]}
    for k in (1, 2):
        mine = [r for r in rows if int(r["k_tokens"]) == k]
        jtcc = {float(r["snr_db"]): r for r in mine if r["method"] == "tokens_jtcc"}
        assert sorted(jtcc) == [0.0, 15.0]
        assert {float(r["channel_values"]) for r in jtcc.values()} == {16.0 * k}  # m = 16 per token
        # Each stage's own epochs (the JTCC stage starts from the raw-token transmitter).
        assert json.loads(jtcc[15.0]["epochs"]) == {"align": 0, "link": 1, "task": 1}
        raw = [r for r in mine if r["method"] == "tokens_raw"]
        assert [float(r["channel_values"]) for r in raw] == [128.0 * k]
        assert json.loads(raw[0]["epochs"]) == {"align": 1, "link": 0, "task": 1}
    # Trained checkpoints are reused: evaluating them again gives the same numbers.
    assert fig7.main(["--quick", "--eval-only", "--threads", "1", "--out", str(tmp_path)]) == 0
    again = _rows(tmp_path / "fig7.csv")
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in rows]


def test_fig7_plateau_is_the_first_k_no_later_k_beats_by_a_point(load_script) -> None:
    fig7 = load_script(HERE / "fig7.py")
    rows = [{"method": "tokens_jtcc", "budget": "reduced", "snr_db": "15.0", "k_tokens": k, "accuracy": a}
            for k, a in ((1, 0.5), (2, 0.7), (3, 0.85), (5, 0.92), (6, 0.925), (8, 0.915))]
    checks = fig7.checks(rows, [15.0])
    assert checks["jtcc_15db_flat_from_k"] == 5  # 5 gains 7 points over 3, 6 only 0.5 over 5
    assert checks["ceiling_flat_from_k"] is None  # no ceiling rows


def test_mcnemar_is_the_exact_binomial_test_of_the_discordant_questions(load_script) -> None:
    seeds = load_script(HERE / "seeds.py")
    a = np.array([True] * 10 + [False] * 2 + [True] * 30 + [False] * 8)
    b = np.array([False] * 10 + [True] * 2 + [True] * 30 + [False] * 8)
    out = seeds.mcnemar(a, b)
    assert (out["only_a_right"], out["only_b_right"]) == (10, 2)
    # two-sided: 2 P(X <= 2), X ~ Binomial(12, 1/2) = 2 (1 + 12 + 66) / 4096
    assert out["p_value"] == pytest.approx(2 * 79 / 4096)
    assert out["difference"] == pytest.approx(8 / 50)
    assert seeds.mcnemar(a, a)["p_value"] == 1.0


def test_seeds_quick_evaluates_every_run_and_summarises_over_seeds(load_script, tmp_path: Path) -> None:
    pytest.importorskip("gnuradio.digital")
    seeds = load_script(HERE / "seeds.py")
    assert seeds.main(["--quick", "--threads", "1", "--out", str(tmp_path)]) == 0
    rows = _rows(tmp_path / "seeds.csv")
    assert {r["seed"] for r in rows} == {"0", "1"}
    systems = {(r["system"], r["channel"], r["snr_db"]) for r in rows if r["seed"] == "0"}
    assert ("tokens_jtcc", "awgn", "15.0") in systems and ("raw_image_vqa", "clean image", "") in systems
    for s in ("deepjscc_scenes", "tokens_raw", "tokens_jtcc"):
        assert {(s, "awgn", "0.0"), (s, "awgn", "5.0")} <= systems
    # The same checkpoints twice: the analog systems' numbers agree, so the spread is zero.
    stats = {(r["system"], r["channel"], r["snr_db"]): r for r in _rows(tmp_path / "seeds_summary.csv")}
    for key in (("tokens_jtcc", "awgn", "15.0"), ("raw_image_vqa", "clean image", ""),
                ("deepjscc_scenes", "awgn", "0.0")):
        assert float(stats[key]["std"]) == 0.0 and stats[key]["n_seeds"] == "2"
    paired = _rows(tmp_path / "seeds_paired.csv")
    head = [p for p in paired if p["a"] == "tokens_jtcc awgn 15.0" and p["b"] == "raw_image_vqa clean image"]
    assert len(head) == 2
    for p in head:  # the discordant counts are the accuracy difference
        n = int(p["n_questions"])
        assert int(p["only_a_right"]) - int(p["only_b_right"]) == round(float(p["difference"]) * n)
    summary = json.loads((tmp_path / "seeds.json").read_text())
    assert summary["checks"]["seeds"] == [0, 1] and summary["checks"]["at_least_3_seeds"] is False
    assert (tmp_path / "seeds.png").stat().st_size > 1000
