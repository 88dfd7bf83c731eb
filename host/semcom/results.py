"""Writing experiment results: one CSV helper so every command's tables look alike, one figure saver."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_csv(path: str | Path, rows: Sequence[dict[str, Any]]) -> Path:
    """rows (same keys, in order) -> a CSV with a header; the parent directory is created."""
    if not rows:
        raise ValueError(f"no rows to write to {path}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _cell(text: str) -> Any:
    """One CSV cell as write_csv wrote it: int, float, bool or text ("" stays "")."""
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_csv(path: str | Path) -> list[dict[str, Any]]:
    """A CSV written by write_csv -> its rows with numbers and booleans read back as such (for replots)."""
    with Path(path).open(newline="") as f:
        return [{k: _cell(v) for k, v in row.items()} for row in csv.DictReader(f)]


FIGURE_DPI = 150
"""Resolution of every figure the project writes (readable when a PNG is zoomed or printed)."""


def save_figure(fig: Any, path: str | Path, dpi: int = FIGURE_DPI) -> Path:
    """A matplotlib figure -> PNG at ``path`` (tight layout, parent directory created), then closed."""
    import matplotlib.pyplot as plt

    path = Path(path)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# What a figure shows for a result id (a method, scheme, channel or system as the CSV and JSON files
# keep it, snake_case). The one table for every plot's legends, titles and tick labels.
PLOT_LABELS: dict[str, str] = {
    # channels (semcom.agents.experiment.NAMED_CHANNELS, partial sampling, digital PER table)
    "awgn": "AWGN",
    "rayleigh": "Rayleigh",
    "rayleigh_zf_ls": "Rayleigh, ZF on LS estimate",
    "rayleigh_mmse_ls": "Rayleigh, MMSE on LS estimate",
    "ofat_2x4_zf_ls": "OFAT 2x4, ZF on LS estimate",
    "ofat_2x4_mmse_ls": "OFAT 2x4, MMSE on LS estimate",
    "ofat_torch_2x4_zf": "OFAT 2x4 ZF, torch channel",
    "ofat_flowgraph_2x4_zf": "OFAT 2x4 ZF, loopback flowgraph",
    "ideal": "ideal channel",
    "none": "no channel",
    # equalisers (semcom loopback, the PHY experiment)
    "zf": "ZF",
    "mmse": "MMSE",
    "lmmse": "LMMSE",
    "sparse": "sparse (OMP)",
    # channel paths of the PHY impairments experiment
    "mimo_channel": "semcom MIMO Channel",
    "gr_channel_model": "GNU Radio Channel Model",
    # methods and systems (agents evaluation, token paper, DeepJSCC scenes)
    "tokens_jtcc": "tokens with JTCC",
    "tokens_with_jtcc": "tokens with JTCC",
    "tokens_raw": "tokens without JTCC",
    "tokens_without_jtcc": "tokens without JTCC",
    "jtcc": "JTCC",
    "raw": "raw tokens",
    "raw_image_vqa": "raw-image VQA",
    "raw_image_digital": "raw image: JPEG over digital OFDM",
    "deepjscc": "DeepJSCC",
    "deepjscc_raw_vqa": "DeepJSCC + raw-image VQA",
    "deepjscc_scenes": "DeepJSCC (scenes) + VQA",
    "deepjscc_scenes_raw_vqa": "DeepJSCC (scene codec) + raw-image VQA",
    "deepjscc_photo_raw_vqa": "DeepJSCC (photo codec) + raw-image VQA",
    "natural_language_digital": "natural language over digital OFDM",
    "natural_language_summary": "natural-language summary",
    "natural_language_utf8": "language (UTF-8)",
    "natural_language_word_indices": "language (word ids)",
    "jpeg_file": "JPEG file",
    "jpeg_payload": "JPEG payload (no headers)",
    "stored_file": "file as stored",
    "receiver_ground_truth": "receiver on ground-truth tokens",
    "receiver_first_k_objects": "receiver, first k ground-truth object tokens",
    # network schemes (semcom.network.agents.SCHEMES); a "_cf" suffix is read by plot_label
    "hierarchical": "hierarchical DRL",
    "hierarchical_ref": "hierarchical DRL, reference action split",
    "single_layer": "single-layer DRL",
    "single_layer_plain": "single-layer DRL, plain DQN",
    "greedy": "greedy",
    "fixed": "fixed (JTCC, 5 tokens)",
    "fp": "fractional programming",
    "random": "random",
    "oracle": "oracle (genie)",
    "oracle_stale": "oracle on last-slot CSI",
    "best_single_layer": "best single-layer",
    # interference mixes of the network link table
    "interference": "interference",
    "half": "half interference",
    "noise": "noise only",
    "one_interferer": "one interferer",
}


def plot_label(name: str) -> str:
    """A result id -> the words a plot shows: PLOT_LABELS, with two suffixes read on top of it.

    "<scheme>_cf": the scheme with counterfactual neighbour targets; "<link>_k<n>": the link's compression
    level of n tokens. An id not listed shows with spaces for its underscores (never snake_case).
    """
    if name in PLOT_LABELS:
        return PLOT_LABELS[name]
    base, _, tokens = name.rpartition("_k")
    if base and tokens.isdigit():
        return f"{plot_label(base)}, k = {tokens}"
    if name.endswith("_cf"):
        return f"{plot_label(name.removesuffix('_cf'))}, counterfactual"
    return name.replace("_", " ")
