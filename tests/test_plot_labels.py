"""Plots show readable names, not the snake_case ids of the CSVs (semcom.results.plot_label).

The ids come from where the code defines them (schemes, channels, link levels, mixes, token-paper systems),
and a few plot functions are drawn on real result rows with every figure's legend, titles and tick labels
read back at savefig.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

from semcom.errors import UsageError  # noqa: E402
from semcom.results import PLOT_LABELS, plot_label  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def plotted_ids(load_script: Any) -> set[str]:
    from semcom.agents.experiment import NAMED_CHANNELS
    from semcom.network.agents import SCHEMES
    from semcom.network.curves import LINKS
    from semcom.network.linktable import MIXES

    fig5 = load_script("experiments/token_paper/fig5.py")
    fig6 = load_script("experiments/token_paper/fig6.py")
    ids = {*SCHEMES, *NAMED_CHANNELS, *MIXES, *fig5.METHODS, *fig6.SYSTEMS,
           *(channel for pair in fig6.PANELS.values() for channel in pair)}
    ids |= {f"{link}_k{k}" for link in LINKS for k in range(1, 6)}
    # ids only the result files name: the agents' methods, partial sampling's channels
    for table, column in (("experiments/agents/output/results.csv", "method"),
                          ("experiments/partial_sampling/output/summary.csv", "channel"),
                          ("experiments/phy/output/impairments_sfo_loss.csv", "path")):
        with (ROOT / table).open() as f:
            ids |= {row[column] for row in csv.DictReader(f)}
    return ids


def test_every_plotted_id_has_a_readable_label(load_script):
    ids = plotted_ids(load_script)
    assert {"hierarchical_cf", "ofat_2x4_zf_ls", "tokens_jtcc", "jtcc_k3", "one_interferer"} <= ids
    for name in sorted(ids):
        shown = plot_label(name)
        assert "_" not in shown, (name, shown)
        # named in the table, or by a suffix rule on a named id: not left to the fallback
        assert {name, name.removesuffix("_cf"), name.rpartition("_k")[0]} & set(PLOT_LABELS), name


def test_suffix_rules_and_fallback():
    assert plot_label("jtcc_k4") == "JTCC, k = 4"
    assert plot_label("raw_k1") == f"{PLOT_LABELS['raw']}, k = 1"
    assert plot_label("hierarchical_ref_cf") == f"{PLOT_LABELS['hierarchical_ref']}, counterfactual"
    assert plot_label("single_layer_cf").startswith(PLOT_LABELS["single_layer"])
    assert plot_label("some_new_id") == "some new id"
    assert plot_label("clean image") == "clean image"


@pytest.fixture
def shown_text(monkeypatch) -> list[str]:
    """Every legend entry, title and tick label of each figure saved while the test runs."""
    seen: list[str] = []

    def record(fig: Figure, *args: Any, **kwargs: Any) -> None:
        for ax in fig.axes:
            legend = ax.get_legend()
            seen.extend(t.get_text() for t in (legend.get_texts() if legend else []))
            seen.append(ax.get_title())
            seen.extend(t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels())
        seen.extend(t.get_text() for legend in fig.legends for t in legend.get_texts())
        if fig._suptitle is not None:
            seen.append(fig._suptitle.get_text())

    monkeypatch.setattr(Figure, "savefig", record)
    return seen


def test_agents_figures_show_labels(shown_text, tmp_path):
    """`semcom eval agents --replot` redraws the shipped results' figures from results.csv + summary.json."""
    from semcom.cli import main

    for name in ("results.csv", "summary.json"):
        shutil.copy(ROOT / "experiments/agents/output" / name, tmp_path / name)
    assert main(["eval", "agents", "--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    assert "OFAT 2x4, ZF on LS estimate" in text and "tokens with JTCC" in text
    assert "receiver, first k ground-truth object tokens" in text  # the second figure was drawn
    assert "_" not in text, text


def test_agents_replot_without_results_is_a_usage_error(tmp_path, capsys):
    from semcom.cli import main

    assert main(["eval", "agents", "--replot", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"semcom: --replot: no results.csv or summary.json in {tmp_path} "
                   "(run semcom eval agents first)")


def test_network_figures_show_labels(shown_text, tmp_path):
    from semcom.network.curves import DEFAULT_TABLE, plot_table
    from semcom.network.env import load_table
    from semcom.network.experiment import Fig7Config, plot_fig7, plot_scaling

    schemes = ("hierarchical", "hierarchical_cf", "single_layer", "greedy", "fp")
    fc = Fig7Config(seeds=(0, 1), n_slots=40, schemes=schemes, smooth=5)
    rng = np.random.default_rng(0)
    stats = {n: (0.5 + 0.1 * rng.random(fc.n_slots), 0.05 * rng.random(fc.n_slots)) for n in schemes}
    acc = {"best_hierarchical": "hierarchical_cf", "best_single_layer": "single_layer",
           "best_hierarchical_gain_over_best_single_layer_pct": 3.0}
    plot_fig7(tmp_path / "fig7.png", np.arange(1, fc.n_slots + 1), stats, fc, acc, ceiling=0.7)
    rows = []
    for axis, cells, period in (("cells", 3, 20), ("cells", 7, 20), ("period", 7, 5)):
        row: dict[str, Any] = {"axis": axis, "n_cells": cells, "period": period, "n_seeds": 2, "n_slots": 40}
        for n in schemes:
            row[f"{n}_mean"], row[f"{n}_std"] = 0.6, 0.01
        for h in ("hierarchical", "hierarchical_cf"):
            row[f"{h}_gain_over_best_single_layer_pct"] = row[f"{h}_gain_over_greedy_pct"] = 1.0
        rows.append(row)
    plot_scaling(tmp_path / "scaling.png", rows, schemes)
    plot_table(tmp_path / "table.png", load_table(str(DEFAULT_TABLE)))
    text = " | ".join(shown_text)
    assert "hierarchical DRL, counterfactual" in text and "JTCC, k = 5" in text
    assert "_" not in text, text


def test_network_replots_show_labels(shown_text, tmp_path, capsys):
    """`semcom network curves --replot` and `train --replot` redraw the semantic table, Fig. 7 (from
    fig7.csv + summary.json) and the scaling figure from the shipped files; without them, or with a
    fig7.csv naming a scheme this version lacks, one usage line and exit 2."""
    from semcom.cli import main

    shipped = ROOT / "experiments/network/output"
    for name in ("scaling.json", "fig7.csv", "summary.json"):
        shutil.copy(shipped / name, tmp_path / name)
    assert main(["network", "curves", "--replot", "--out", str(tmp_path)]) == 0
    assert main(["network", "train", "--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    assert "JTCC, k = 5" in text and "single-layer DRL, counterfactual" in text
    assert "oracle on last-slot CSI (centralised)" in text and "interference-free ceiling (bound)" in text
    assert "_" not in text, text
    capsys.readouterr()
    empty = tmp_path / "empty"
    assert main(["network", "train", "--replot", "--out", str(empty)]) == 2
    assert capsys.readouterr().err.startswith(f"semcom: --replot: {empty} has neither fig7.csv nor scaling")
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    shutil.copy(shipped / "summary.json", unknown / "summary.json")
    (unknown / "fig7.csv").write_text((shipped / "fig7.csv").read_text().replace(",greedy,", ",gready,"))
    assert main(["network", "train", "--replot", "--out", str(unknown)]) == 2
    assert "a scheme 'gready' this version does not know" in capsys.readouterr().err
    assert main(["network", "curves", "--replot", "--table", str(empty / "t.csv"), "--out", str(empty)]) == 2


def test_seeds_replot_shows_labels(shown_text, load_script, tmp_path):
    """experiments/token_paper/seeds.py --replot redraws seeds.png from the shipped seeds.csv."""
    seeds = load_script("experiments/token_paper/seeds.py")
    shutil.copy(ROOT / "experiments/token_paper/output/seeds.csv", tmp_path / "seeds.csv")
    assert seeds.main(["--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    assert "tokens with JTCC\nOFAT 2x4, ZF on LS estimate 15 dB" in text and "seeds [0, 1, 2]" in text
    assert "_" not in text, text
    with pytest.raises(UsageError, match="no seeds.csv"):
        seeds.main(["--replot", "--out", str(tmp_path / "empty")])


def test_impairments_replot_reads_the_csvs_back(shown_text, load_script, tmp_path):
    """experiments/phy/impairments.py --replot: the shipped CSVs read back typed (tracking as a bool, the
    SNRs as numbers: every curve is drawn) with the paths' readable names."""
    impairments = load_script("experiments/phy/impairments.py")
    for name in ("sfo_loss", "sfo_timing", "impairments"):
        shutil.copy(ROOT / f"experiments/phy/output/impairments_{name}.csv", tmp_path)
    assert impairments.main(["--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    for path in ("GNU Radio Channel Model", "semcom MIMO Channel"):
        for snr in (20, 30):
            assert f"{path}, {snr} dB, vs 0 ppm on grid" in text and f"{path}, {snr} dB, receiver" in text
    assert "gr_channel_model" not in text and "mimo_channel," not in text


def test_read_csv_gives_back_what_write_csv_wrote(tmp_path):
    from semcom.results import read_csv, write_csv

    rows = [{"method": "tokens_jtcc", "seed": 3, "snr_db": 15.0, "tracking": True, "k": "", "acc": 0.925},
            {"method": "shipped", "seed": "shipped", "snr_db": -2.5, "tracking": False, "k": 5, "acc": 1e-9}]
    assert read_csv(write_csv(tmp_path / "t.csv", rows)) == rows


def test_partial_replot_shows_labels(shown_text, tmp_path, capsys):
    """`semcom partial --replot` redraws both PNGs from the shipped summary.csv + summary.json."""
    from semcom.cli import main

    for name in ("summary.csv", "summary.json"):
        shutil.copy(ROOT / "experiments/partial_sampling/output" / name, tmp_path / name)
    assert main(["partial", "--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    assert "OFAT 2x4 ZF, loopback flowgraph, guided" in text and "guided, 4 rounds" in text
    assert "_" not in text, text
    capsys.readouterr()
    assert main(["partial", "--replot", "--out", str(tmp_path / "empty")]) == 2
    assert "semcom: --replot: no summary.csv or summary.json" in capsys.readouterr().err


def test_lightweight_replot_shows_labels(shown_text, tmp_path):
    """`semcom lightweight --replot` redraws results.png and tokens.png from the shipped CSVs."""
    from semcom.cli import main

    for name in ("summary.csv", "summary.json", "tokens.csv"):
        shutil.copy(ROOT / "experiments/lightweight/output" / name, tmp_path / name)
    assert main(["lightweight", "--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    assert "PSNR vs sparsity (OFAT 2x4, ZF on LS estimate)" in text and "fp32, AWGN 10 dB" in text
    assert "ofat_2x4_zf_ls" not in text


def test_scene_codec_replot_shows_labels(shown_text, tmp_path):
    """experiments/jscc/scenes.py --replot redraws results.png from the shipped results.csv."""
    from semcom.jscc.scenes import main

    shutil.copy(ROOT / "experiments/jscc/output_scenes/results.csv", tmp_path / "results.csv")
    assert main(["--replot", "--out", str(tmp_path)]) == 0
    text = " | ".join(shown_text)
    assert "scene codec, OFAT 2x4, ZF on LS estimate" in text and "photo codec, AWGN" in text
    assert "_" not in text, text
    with pytest.raises(UsageError, match="no results.csv"):
        main(["--replot", "--out", str(tmp_path / "empty")])
