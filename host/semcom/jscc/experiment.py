"""DeepJSCC vs JPEG experiment: train at k/n = 1/6 on 32x32 images, PSNR vs SNR over AWGN, Rayleigh, OFAT.

Callable from the project's CLI (``train_jscc``, ``eval_jscc``) and from ``experiments/jscc/run.py``.
Outputs (``out_dir``): ``results.csv`` (one row per method, channel and SNR), ``results.png``,
``summary.json`` (configuration, wall times, acceptance checks).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from semcom.channels import NAMED_CHANNELS, make_channel
from semcom.results import plot_label, save_figure

from . import jpeg
from .checkpoint import load_checkpoint, save_checkpoint
from .model import DeepJSCC, JSCCConfig, channel_uses, filters_for_ratio
from .train import TrainConfig, evaluate_psnr, train

log = logging.getLogger(__name__)

DEFAULT_SNRS = (0.0, 5.0, 10.0, 15.0, 20.0)

# Channels DeepJSCC is evaluated over (the project's named evaluation channels).
EVAL_CHANNELS = NAMED_CHANNELS


def load_images(source: str, n: int, seed: int, split: str, size: int = 32) -> torch.Tensor:
    """(n, 3, size, size) float32 in [0, 1] from ``semcom.data.images.image_set``."""
    from semcom.data.images import image_set

    x = image_set(source, size=size, n=n, seed=seed, split=split)
    x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    if x.ndim != 4 or x.shape[1] != 3 or float(x.min()) < 0 or float(x.max()) > 1:
        raise ValueError(f"image_set returned {tuple(x.shape)} in [{float(x.min())}, {float(x.max())}], "
                         "expected (N, 3, H, W) in [0, 1]")
    return x


@dataclass
class JSCCExperiment:
    """Everything that defines a run (stored in the checkpoint's metadata and in summary.json)."""

    source: str = "photos"
    ratio: str = "1/6"
    n_train: int = 8000
    n_test: int = 500
    seed: int = 0
    train_channel: str = "awgn"   # a key of EVAL_CHANNELS
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def cfg(self) -> JSCCConfig:
        return JSCCConfig(c=filters_for_ratio(Fraction(self.ratio)))

    def to_dict(self) -> dict:
        return {"source": self.source, "ratio": self.ratio, "n_train": self.n_train, "n_test": self.n_test,
                "seed": self.seed, "train_channel": self.train_channel, "train": self.train.to_dict(),
                "model": self.cfg.to_dict()}


def train_jscc(exp: JSCCExperiment, checkpoint: str | Path, command: str = "",
               progress: bool = True) -> tuple[DeepJSCC, dict]:
    """Train DeepJSCC over ``exp.train_channel`` with random SNR and save ``checkpoint`` (.pt + .json).

    Returns the model and an info dict (history, wall time).
    """
    torch.manual_seed(exp.seed)
    images = load_images(exp.source, exp.n_train, exp.seed, "train")
    # Monitoring only (no model selection): fresh crops of the training split, the test split untouched.
    val = load_images(exp.source, min(exp.n_test, 256), exp.seed + 1, "train")
    model = DeepJSCC(exp.cfg)
    kind, kwargs = EVAL_CHANNELS[exp.train_channel]
    channel = make_channel(kind, seed=exp.seed, **kwargs)
    t0 = time.perf_counter()
    history = train(model, images, channel, exp.train, val_images=val, progress=progress)
    seconds = time.perf_counter() - t0
    info = {"history": history, "train_seconds": seconds, "experiment": exp.to_dict(), "command": command,
            "torch_threads": torch.get_num_threads()}
    save_checkpoint(checkpoint, model, meta=info)
    log.info("trained in %.1f s, checkpoint %s", seconds, checkpoint)
    return model, info


def _row(method: str, channel: str, snr: float, scores: np.ndarray, k: int, **extra) -> dict:
    """One CSV row. psnr_db: mean of per-image PSNR (as in the paper; identical images excluded);
    psnr_mean_mse_db: PSNR of the mean MSE (less dominated by easy, flat images)."""
    finite = scores[np.isfinite(scores)]
    mean_mse = float(np.mean(10.0 ** (-scores / 10.0)))
    return {"method": method, "channel": channel, "snr_db": snr, "psnr_db": float(finite.mean()),
            "psnr_std_db": float(finite.std()),
            "psnr_mean_mse_db": -10.0 * math.log10(mean_mse) if mean_mse > 0 else math.inf,
            "n_images": int(scores.size), "k_channel_uses": k,
            "capacity_bits_per_use": math.log2(1 + 10 ** (snr / 10)), **extra}


def eval_jscc(model: DeepJSCC, exp: JSCCExperiment, out_dir: str | Path,
              snrs: tuple[float, ...] = DEFAULT_SNRS, channels: tuple[str, ...] = tuple(EVAL_CHANNELS),
              train_info: dict | None = None) -> list[dict]:
    """PSNR vs SNR for DeepJSCC over ``channels`` and the JPEG baselines; writes CSV, PNG and JSON."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    test = load_images(exp.source, exp.n_test, exp.seed, "test")
    train_mean = load_images(exp.source, exp.n_train, exp.seed, "train").mean(dim=0).numpy()
    k = channel_uses(model.cfg.c, test.shape[2], test.shape[3])
    rows: list[dict] = []
    for name in channels:
        kind, kwargs = EVAL_CHANNELS[name]
        ch = make_channel(kind, seed=exp.seed + 1, **kwargs)
        for snr in snrs:
            scores = evaluate_psnr(model, test, ch, snr, seed=exp.seed + 1)
            rows.append(_row("deepjscc", name, snr, scores, k))
            log.info("deepjscc %s %g dB: %.2f dB", name, snr, rows[-1]["psnr_db"])
    mean_psnr = np.array([jpeg.psnr(im, train_mean) for im in test.numpy()])
    for mode in jpeg.SIZE_MODES:
        base = jpeg.JPEGBaseline(test.numpy(), mode=mode, mean_image=train_mean)
        for snr in snrs:
            res = base.at_snr(snr, k)
            sent = res.quality > 0
            rows.append(_row(f"jpeg_{mode}", "awgn_capacity", snr, res.psnr, k,
                             budget_bits=int(jpeg.capacity_bits(snr, k)), budget_bytes=res.budget_bytes,
                             jpeg_fallback_fraction=res.fallback_fraction,
                             jpeg_mean_quality=float(res.quality[sent].mean()) if sent.any() else 0.0))
    for snr in snrs:
        rows.append(_row("mean_image", "none", snr, mean_psnr, k))
    eval_seconds = time.perf_counter() - t0
    _write_csv(out / "results.csv", rows)
    _plot(out / "results.png", rows, exp)
    checks = acceptance(rows)
    summary = {"experiment": exp.to_dict(), "k_channel_uses": k, "snrs_db": list(snrs),
               "eval_seconds": eval_seconds, "acceptance": checks,
               "jpeg_budget": "bits = k * log2(1 + SNR), k = complex channel uses per image; largest JPEG "
                              "quality (1..95) whose size fits floor(bits/8) bytes; mean training image if "
                              "none fits. jpeg_file counts the whole JFIF file (optimize=True); "
                              "jpeg_payload only the entropy-coded scan + 1 byte (tables known)."}
    if train_info is not None:
        summary["train_seconds"] = train_info.get("train_seconds")
        summary["train_history"] = train_info.get("history")
        summary["command"] = train_info.get("command")
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return rows


def acceptance(rows: list[dict]) -> dict:
    """DeepJSCC PSNR over AWGN rises with SNR; DeepJSCC beats jpeg_file at 0 and 5 dB."""
    def curve(method: str, channel: str) -> dict[float, float]:
        return {r["snr_db"]: r["psnr_db"] for r in rows if r["method"] == method and r["channel"] == channel}

    awgn = curve("deepjscc", "awgn")
    jf = curve("jpeg_file", "awgn_capacity")
    jp = curve("jpeg_payload", "awgn_capacity")
    snrs = sorted(awgn)
    return {
        "psnr_rises_with_snr": all(awgn[a] < awgn[b] for a, b in zip(snrs, snrs[1:], strict=False)),
        "beats_jpeg_file_at_0_and_5_db": all(awgn[s] > jf[s] for s in (0.0, 5.0) if s in awgn),
        "beats_jpeg_payload_at_0_and_5_db": all(awgn[s] > jp[s] for s in (0.0, 5.0) if s in awgn),
    }


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with path.open("w", newline="") as f:
        f.write("# JPEG budget: bits = k_channel_uses * log2(1 + SNR) (AWGN capacity per complex use); "
                "largest quality fitting floor(bits/8) bytes; mean image when none fits\n")
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})


def _plot(path: Path, rows: list[dict], exp: JSCCExperiment) -> None:
    """Two panels: mean per-image PSNR (the paper's metric) and PSNR of the mean MSE."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4), sharex=True)
    series = sorted({(r["method"], r["channel"]) for r in rows})
    for ax, metric, title in zip(axes, ("psnr_db", "psnr_mean_mse_db"),
                                 ("mean of per-image PSNR", "PSNR of the mean MSE"), strict=True):
        for method, channel in series:
            pts = sorted((float(r["snr_db"]), float(r[metric])) for r in rows
                         if r["method"] == method and r["channel"] == channel)
            style = "-o" if method == "deepjscc" else ("--s" if method.startswith("jpeg") else ":")
            label = f"DeepJSCC, {plot_label(channel)}" if method == "deepjscc" else (
                f"{plot_label(method)} (AWGN capacity)" if method.startswith("jpeg") else "mean image")
            ax.plot(*zip(*pts, strict=True), style, label=label)
        ax.set_xlabel("SNR (dB)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"{title}: k/n = {exp.ratio}, 32x32 {exp.source}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=7)
    save_figure(fig, path)


def replot(out_dir: str | Path, exp: JSCCExperiment | None = None) -> Path:
    """Redraw ``results.png`` from ``results.csv`` in ``out_dir``."""
    out = Path(out_dir)
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(line for line in f if not line.startswith("#")))
    _plot(out / "results.png", rows, exp or JSCCExperiment())
    return out / "results.png"


def load_or_train(exp: JSCCExperiment, checkpoint: str | Path, retrain: bool, command: str = "",
                  progress: bool = True) -> tuple[DeepJSCC, dict | None]:
    """Load ``checkpoint`` if it exists (config must match ``exp``) unless ``retrain``; else train."""
    ck = Path(checkpoint)
    if not retrain and ck.with_suffix(".json").exists():
        model, doc = load_checkpoint(ck, expect=exp.cfg)
        return model, doc.get("meta")
    return train_jscc(exp, ck, command=command, progress=progress)
