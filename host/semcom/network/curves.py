"""The semantic quality table of the network environment, measured on the project's own token link.

A *compression level* is (link, k): the shipped machine-language-token pipeline sends only its first k of
K = 5 tokens (the receiver reads the missing ones as zero tokens, "no object", as it was trained to), either
JTCC-coded (m = 16 real values per token) or raw (d = 128 values per token). So the levels span 16 .. 640
real channel values per question: fewer values = more compression = a higher semantic rate, paid for in
accuracy (fewer tokens) or in robustness (JTCC fails earlier at low SNR than raw tokens).

``measure_curves`` evaluates every level over the AWGN channel at a grid of SNRs on the agents' test
questions (``semcom network curves``); ``SemanticTable`` is the result as the environment uses it:
accuracy(level, SINR) by linear interpolation in dB between measured points, held flat outside the grid.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.progress import progress_bar
from semcom.results import plot_label, save_figure, write_csv

log = logging.getLogger(__name__)

# The table shipped with the package (measured by `semcom network curves`, command in its JSON).
DEFAULT_TABLE = Path(__file__).resolve().parent / "semantic_curves.csv"
DEFAULT_SNRS: tuple[float, ...] = tuple(float(s) for s in np.arange(-10.0, 25.01, 2.5))
LINKS: tuple[str, ...] = ("jtcc", "raw")


@dataclass(frozen=True)
class SemanticTable:
    """Measured accuracy per compression level and SNR.

    names (C,) level names, values (C,) real channel values per question, snr_db (S,) ascending grid,
    accuracy (C, S) in [0, 1]. Levels are ordered from the most values (least compression) to the fewest.
    """

    names: tuple[str, ...]
    values: np.ndarray
    snr_db: np.ndarray
    accuracy_table: np.ndarray

    def __post_init__(self) -> None:
        c, s = len(self.names), len(self.snr_db)
        if self.accuracy_table.shape != (c, s) or self.values.shape != (c,):
            raise ValueError(f"table shapes disagree: {c} names, values {self.values.shape}, "
                             f"snr {self.snr_db.shape}, accuracy {self.accuracy_table.shape}")
        if s < 2 or np.any(np.diff(self.snr_db) <= 0):
            raise ValueError("the SNR grid must have >= 2 strictly ascending points")

    @property
    def n_levels(self) -> int:
        return len(self.names)

    def accuracy(self, level: np.ndarray, sinr_db: np.ndarray) -> np.ndarray:
        """level (...) int in [0, C), sinr_db (...) -> accuracy (...), linear in dB between grid points."""
        level = np.asarray(level)
        if np.any((level < 0) | (level >= self.n_levels)):
            raise ValueError(f"compression level out of range [0, {self.n_levels})")
        x = np.clip(np.asarray(sinr_db, dtype=np.float64), self.snr_db[0], self.snr_db[-1])
        i = np.clip(np.searchsorted(self.snr_db, x, side="right") - 1, 0, len(self.snr_db) - 2)
        t = (x - self.snr_db[i]) / (self.snr_db[i + 1] - self.snr_db[i])
        lo, hi = self.accuracy_table[level, i], self.accuracy_table[level, i + 1]
        return lo + t * (hi - lo)

    def monotone(self) -> SemanticTable:
        """The table with accuracy made non-decreasing in SNR (running maximum): an agent's model of its
        codec, without the measurement noise that makes a lower SNR look a little better."""
        mono = np.maximum.accumulate(self.accuracy_table, axis=1)
        return SemanticTable(self.names, self.values, self.snr_db, mono)

    @classmethod
    def from_csv(cls, path: str | Path = DEFAULT_TABLE) -> SemanticTable:
        """Read a table written by ``measure_curves`` (rows: level, values, snr_db, accuracy, ...)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no semantic table at {path} (measure it: semcom network curves)")
        with path.open() as f:
            rows = list(csv.DictReader(f))
        names = list(dict.fromkeys(r["level"] for r in rows))
        snrs = sorted({float(r["snr_db"]) for r in rows})
        acc = np.full((len(names), len(snrs)), np.nan)
        values = np.zeros(len(names))
        for r in rows:
            c, s = names.index(r["level"]), snrs.index(float(r["snr_db"]))
            acc[c, s] = float(r["accuracy"])
            values[c] = float(r["values"])
        if np.isnan(acc).any():
            raise ValueError(f"{path}: every level needs an accuracy at every SNR of the grid")
        order = np.argsort(-values, kind="stable")
        return cls(tuple(names[i] for i in order), values[order], np.asarray(snrs), acc[order])


def measure_curves(ckdir: str | Path, snrs: tuple[float, ...] = DEFAULT_SNRS, n_test: int = 2400,
                   seed: int = 1, batch_size: int = 200, progress: bool = True) -> list[dict[str, Any]]:
    """Accuracy of the shipped token pipelines (JTCC and raw) sending k = 1..K tokens over AWGN at ``snrs``.

    Every level sees the same questions and, per SNR, the same noise draws (the channel is reseeded).
    -> rows (level, link, k_tokens, values, snr_db, accuracy, n_questions)."""
    from semcom.agents.experiment import AgentsExperiment, load_models, make_data
    from semcom.agents.train import predictions
    from semcom.channels import named_channel

    models = load_models(ckdir)
    doc = json.loads((Path(ckdir) / "receiver.json").read_text())
    exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])
    data = make_data(exp, progress=progress, pretrain=False)
    test = data.test.subset(n_test) if n_test else data.test
    ch = named_channel("awgn", seed=seed)
    rows: list[dict[str, Any]] = []
    k_max = models["receiver"].cfg.k_tokens
    jobs = [(link, k) for link in LINKS for k in range(k_max, 0, -1)]
    for link, k in progress_bar(jobs, progress=progress, desc="levels"):
        pipe = models["jtcc" if link == "jtcc" else "tokens"].eval()
        for snr in snrs:
            ch.reseed(seed)

            def logits(b: dict[str, torch.Tensor], pipe: Any = pipe, k: int = k, snr: float = snr
                       ) -> torch.Tensor:
                tokens = pipe.sensor(b["image"], b["vague"])
                decoded = pipe.link(tokens, channel=lambda z: ch(z, snr_db=snr)).clone()
                decoded[:, k:] = 0.0  # tokens not sent: the receiver's "no object" token
                return pipe.receiver(decoded, None, b["question"])

            with torch.no_grad():
                correct, _ = predictions(logits, test, batch_size)
            rows.append({"level": f"{link}_k{k}", "link": link, "k_tokens": k,
                         "values": k * pipe.link.m, "snr_db": float(snr), "accuracy": float(correct.mean()),
                         "n_questions": int(correct.size)})
            log.info("%s k=%d %g dB: %.4f", link, k, snr, rows[-1]["accuracy"])
    return rows


def plot_table(path: Path, table: SemanticTable) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c, name in enumerate(table.names):
        style = "-" if name.startswith("jtcc") else "--"
        ax.plot(table.snr_db, 100 * table.accuracy_table[c], style, marker=".",
                label=f"{plot_label(name)} ({int(table.values[c])} values)")
    ax.set_xlabel("SNR (dB), AWGN")
    ax.set_ylabel("VQA accuracy (%)")
    ax.set_title("Semantic table of the network env: shipped token link, k of 5 tokens", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)


def run_curves(ckdir: str | Path, table_path: str | Path, out_dir: str | Path, n_test: int, seed: int,
               command: str, progress: bool = True) -> SemanticTable:
    """Measure, write the table CSV (``table_path``) and its PNG + JSON (``out_dir``)."""
    t0 = time.perf_counter()
    rows = measure_curves(ckdir, n_test=n_test, seed=seed, progress=progress)
    write_csv(table_path, rows)
    table = SemanticTable.from_csv(table_path)
    out = Path(out_dir)
    plot_table(out / "semantic_curves.png", table)
    summary = {"command": command, "checkpoints": str(ckdir), "table": str(table_path), "seed": seed,
               "n_questions": rows[0]["n_questions"], "levels": list(table.names),
               "values": table.values.tolist(), "seconds": time.perf_counter() - t0}
    (out / "semantic_curves.json").write_text(json.dumps(summary, indent=2) + "\n")
    return table
