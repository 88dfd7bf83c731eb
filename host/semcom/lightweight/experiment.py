"""The lightweight-codec experiment: the shipped DeepJSCC encoder pruned, quantized and distilled.

For every variant (teacher fp32 / fp16 / int8 PTQ / int8 QAT; magnitude pruning 0-90 % with and without
fine-tuning; channel pruning with fine-tuning, in fp32 / fp16 / int8; a distilled student) it reports the
encoder's parameters (all and non-zero), its size on disk, its multiply-accumulates (dense and over
non-zero weights) and the PSNR at each SNR over each channel, through the base station's unchanged
decoder. Trained variants (fine-tuning, QAT, distillation) are run for every seed; the summary gives
mean and standard deviation over seeds. Latency is measured by ``benchmarks/lightweight.py`` (timing is
not part of an experiment's CSV).

Outputs (``out_dir``): ``results.csv`` (one row per variant, seed, channel, SNR), ``summary.csv`` (mean ±
std over seeds), ``results.png``, ``summary.json`` (configuration, acceptance checks, wall times) and the
headline compressed checkpoints under ``checkpoints/``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semcom.channels import named_channel
from semcom.jscc.checkpoint import load_checkpoint
from semcom.jscc.experiment import load_images
from semcom.jscc.model import DeepJSCC, JSCCConfig, JSCCEncoder
from semcom.jscc.train import evaluate_psnr
from semcom.progress import progress_bar
from semcom.results import plot_label, save_figure, write_csv

from . import compress as C
from .checkpoint import encoder_file_bytes, save_compressed

log = logging.getLogger(__name__)

TEACHER = Path(__file__).resolve().parents[1] / "jscc" / "checkpoints" / "deepjscc_kn1-6_32px"
TRAIN_CHANNEL = "awgn"   # the teacher was trained over AWGN; so are its compressed encoders


@dataclass
class LightweightExperiment:
    """Everything that defines a run (stored in summary.json and in the saved checkpoints' metadata)."""

    teacher: str = str(TEACHER)
    source: str = "photos"
    n_train: int = 6000          # fine-tuning / QAT / distillation images (training split)
    n_test: int = 500
    n_calibration: int = 256     # PTQ calibration images (training split, drawn per seed)
    seeds: tuple[int, ...] = (0, 1, 2)
    snrs: tuple[float, ...] = (10.0, 20.0)
    channels: tuple[str, ...] = ("awgn", "ofat_2x4_zf_ls")
    magnitude: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    magnitude_finetune: tuple[float, ...] = (0.5, 0.7, 0.9)
    structured: tuple[float, ...] = (0.25, 0.5, 0.75)   # fraction of each hidden layer's filters removed
    # magnitude pruning keeps the architecture: a gentle lr (1e-3 pulls even the unpruned encoder away
    # from the frozen decoder it was trained with); channel pruning has more to recover: more and faster
    finetune: C.FineTuneConfig = field(default_factory=lambda: C.FineTuneConfig(epochs=2, lr=3e-4,
                                                                                 max_seconds=150.0))
    finetune_structured: C.FineTuneConfig = field(default_factory=lambda: C.FineTuneConfig(
        epochs=3, lr=1e-3, max_seconds=150.0))
    qat: C.FineTuneConfig = field(default_factory=lambda: C.FineTuneConfig(epochs=1, lr=1e-4,
                                                                            max_seconds=120.0))
    student_hidden: tuple[int, int] = (8, 16)
    distill: C.FineTuneConfig = field(default_factory=lambda: C.FineTuneConfig(epochs=16, lr=2e-3,
                                                                                max_seconds=240.0))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("finetune", "finetune_structured", "qat", "distill"):
            d[k] = getattr(self, k).to_dict()
        for k in ("seeds", "snrs", "channels", "magnitude", "magnitude_finetune", "structured",
                  "student_hidden"):
            d[k] = list(d[k])
        return d

    @classmethod
    def quick(cls, teacher: str = str(TEACHER)) -> LightweightExperiment:
        """Seconds-sized run for the tests: few images, one seed, one fine-tuning epoch."""
        small = C.FineTuneConfig(epochs=1, batch_size=16, lr=1e-3)
        return cls(teacher=teacher, n_train=48, n_test=24, n_calibration=16, seeds=(0,), channels=("awgn",),
                   magnitude=(0.0, 0.5), magnitude_finetune=(0.5,), structured=(0.5,), finetune=small,
                   finetune_structured=small, qat=small, distill=small)


@dataclass
class Variant:
    """One compressed encoder to score: its codec (the teacher's decoder) and how it was made."""

    method: str          # teacher / magnitude / structured / student
    amount: float        # pruned fraction (magnitude: of conv weights; structured: of hidden filters)
    bits: str            # fp32 / fp16 / int8
    how: str             # none / fine-tuned / ptq / qat / distilled
    seed: int
    codec: DeepJSCC


def _stats(v: Variant, probe: torch.Tensor, tmp: Path) -> dict[str, Any]:
    """Parameter, size and MAC counts of ``v``'s encoder (independent of the channel and SNR)."""
    enc = v.codec.encoder
    total, nonzero = C.count_params(enc)
    dense, nz_macs = C.count_macs(enc, probe)
    value_bytes = {"fp32": 4, "fp16": 2, "int8": 1}[v.bits]
    return {"params": total, "nonzero_params": nonzero, "weight_sparsity": round(1 - nonzero / total, 4),
            "encoder_bytes": encoder_file_bytes(enc, v.bits, tmp),
            "bitmask_sparse_bytes": C.bitmask_sparse_bytes(enc, value_bytes),
            "macs": dense, "nonzero_macs": nz_macs}


def run_experiment(exp: LightweightExperiment, out_dir: str | Path, progress: bool = True,
                   command: str = "") -> dict[str, Any]:
    """Build, fine-tune and score every variant; write the outputs; return the summary dict."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    teacher, teacher_doc = load_checkpoint(exp.teacher)
    teacher_ref = {"path": str(exp.teacher), "sha256": teacher_doc.get("sha256")}
    train_x = load_images(exp.source, exp.n_train, 0, "train")
    test_x = load_images(exp.source, exp.n_test, 0, "test")
    train_channel = named_channel(TRAIN_CHANNEL, seed=0)
    train_secs: dict[str, list[float]] = {}

    def tuned(encoder: nn.Module, cfg: C.FineTuneConfig, seed: int, what: str,
              teacher_encoder: nn.Module | None = None) -> nn.Module:
        cfg = dataclasses.replace(cfg, seed=seed)
        train_channel.reseed(seed)
        t = time.perf_counter()
        C.fine_tune(teacher, encoder, train_x, train_channel, cfg, teacher=teacher_encoder,
                    progress=progress, desc=f"{what} seed {seed}")
        train_secs.setdefault(what, []).append(time.perf_counter() - t)
        return encoder

    def calibration(seed: int) -> torch.Tensor:
        return load_images(exp.source, exp.n_calibration, 1000 + seed, "train")

    def ptq(encoder: nn.Module, seed: int) -> nn.Module:
        return C.quantize_ptq(encoder, calibration(seed))

    def variants() -> list[tuple[str, float, str, str, int, Callable[[], nn.Module]]]:
        """(method, amount, bits, how, seed, build) — built lazily so fine-tuning shows in the bar."""
        base = teacher.encoder
        v: list = [("teacher", 0.0, "fp32", "none", 0, lambda: base),
                   ("teacher", 0.0, "fp16", "none", 0, lambda: C.fp16_round_trip(base))]
        for s in exp.seeds:
            v.append(("teacher", 0.0, "int8", "ptq", s, lambda s=s: ptq(base, s)))
            v.append(("teacher", 0.0, "int8", "qat", s,
                      lambda s=s: C.convert_qat(tuned(C.prepare_qat(base), exp.qat, s, "qat"))))
        for a in exp.magnitude:
            if a > 0:
                v.append(("magnitude", a, "fp32", "none", 0,
                          lambda a=a: C.magnitude_prune(copy.deepcopy(base), a)))
        for s in exp.seeds:
            # the 0 % row: the same fine-tuning without pruning, so gains from extra training show
            v.append(("magnitude", 0.0, "fp32", "fine-tuned", s,
                      lambda s=s: tuned(copy.deepcopy(base), exp.finetune, s, "fine-tune")))
            for a in exp.magnitude_finetune:
                v.append(("magnitude", a, "fp32", "fine-tuned", s, lambda a=a, s=s: tuned(
                    C.magnitude_prune(copy.deepcopy(base), a), exp.finetune, s, "fine-tune")))
        for a in exp.structured:
            v.append(("structured", a, "fp32", "none", 0,
                      lambda a=a: C.compact(C.channel_prune(copy.deepcopy(base), a))))
            for s in exp.seeds:
                v.append(("structured", a, "fp32", "fine-tuned", s, lambda a=a, s=s: C.compact(tuned(
                    C.channel_prune(copy.deepcopy(base), a), exp.finetune_structured, s, "fine-tune"))))
                # the pruned teacher as the student's starting point: fine-tuned with the distillation loss
                v.append(("structured", a, "fp32", "distilled", s, lambda a=a, s=s: tuned(
                    C.compact(C.channel_prune(copy.deepcopy(base), a)), exp.distill, s, "distill",
                    teacher_encoder=base)))
        for s in exp.seeds:
            student = JSCCConfig(c=teacher.cfg.c, hidden=exp.student_hidden, kernel=teacher.cfg.kernel)
            v.append(("student", 0.0, "fp32", "distilled", s, lambda s=s, cfg=student: tuned(
                _seeded_encoder(cfg, s), exp.distill, s, "distill", teacher_encoder=base)))
        return v

    rows: list[dict[str, Any]] = []
    saved: dict[str, str] = {}
    probe = test_x[:1]
    channels = {name: named_channel(name, seed=1) for name in exp.channels}
    todo = variants()
    for method, amount, bits, how, seed, build in progress_bar(todo, desc="variants", progress=progress):
        encoder = build()
        found = [Variant(method, amount, bits, how, seed, C.with_encoder(teacher, encoder))]
        if how in ("fine-tuned", "distilled") and (method != "magnitude" or amount in exp.magnitude_finetune):
            # the same trained encoder stored as fp16 and converted to int8 (PTQ on its own weights)
            found.append(Variant(method, amount, "fp16", how, seed, C.with_encoder(teacher, C.fp16_round_trip(
                encoder))))
            found.append(Variant(method, amount, "int8", how + "+ptq", seed,
                                 C.with_encoder(teacher, ptq(encoder, seed))))
        for v in found:
            stats = _stats(v, probe, out)
            for name, ch in channels.items():
                for snr in exp.snrs:
                    psnr = evaluate_psnr(v.codec, test_x, ch, snr, seed=1)
                    rows.append({"method": v.method, "amount": v.amount, "bits": v.bits, "how": v.how,
                                 "seed": v.seed, "channel": name, "snr_db": snr,
                                 "psnr_db": round(float(np.mean(psnr)), 4), **stats})
            key = _headline(v)
            if key is not None and v.seed == exp.seeds[0]:
                meta = {"experiment": exp.to_dict(), "teacher": teacher_ref, "command": command,
                        "variant": {"method": v.method, "amount": v.amount, "bits": v.bits, "how": v.how,
                                    "seed": v.seed}, "stats": stats}
                save_compressed(out / "checkpoints" / key, v.codec, v.bits, meta)
                saved[key] = str(out / "checkpoints" / key)
    summary_rows = summarize(rows)
    write_csv(out / "results.csv", rows)
    write_csv(out / "summary.csv", summary_rows)
    write_table(out / "table.md", summary_rows)
    plot(out / "results.png", summary_rows, exp)
    summary = {"experiment": exp.to_dict(), "teacher": teacher_ref, "command": command,
               "train_seconds": {k: round(sum(v), 1) for k, v in train_secs.items()},
               "wall_seconds": round(time.perf_counter() - t0, 1), "checkpoints": saved,
               "float_operators": FLOAT_OPERATORS, "acceptance": acceptance(summary_rows, exp),
               "torch_threads": torch.get_num_threads()}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def write_table(path: Path, summary_rows: list[dict[str, Any]]) -> Path:
    """The markdown table of the README: one row per variant (of the magnitude levels without fine-tuning
    only 20 / 50 / 70 / 90 %), PSNR per channel and SNR, mean ± std over seeds (difference to the teacher)."""
    keys = list(dict.fromkeys((r["method"], float(r["amount"]), r["bits"], r["how"]) for r in summary_rows))
    idx = {(r["method"], float(r["amount"]), r["bits"], r["how"], r["channel"], float(r["snr_db"])): r
           for r in summary_rows}
    cols = list(dict.fromkeys((r["channel"], float(r["snr_db"])) for r in summary_rows))
    lines = ["| encoder | bits | params (non-zero) | file (kB) | non-zero MACs | "
             + " | ".join(f"{c} {s:g} dB" for c, s in cols) + " |",
             "| --- | --- | --- | --- | --- | " + " | ".join("---" for _ in cols) + " |"]
    for k in keys:
        method, amount, bits, how = k
        if method == "magnitude" and how == "none" and amount not in (0.2, 0.5, 0.7, 0.9):
            continue
        r0 = idx[(*k, *cols[0])]
        cells = []
        for c in cols:
            r = idx[(*k, *c)]
            cells.append(f"{float(r['psnr_mean_db']):.2f} ± {float(r['psnr_std_db']):.2f} "
                         f"({-float(r['psnr_loss_db']):+.2f})")
        pruned = method in ("magnitude", "structured")
        name = f"{method} {amount * 100:g} %, {how}" if pruned else f"{method}, {how}"
        lines.append(f"| {name} | {bits} | {int(r0['params']):,} ({int(r0['nonzero_params']):,}) | "
                     f"{int(r0['encoder_bytes']) / 1000:.1f} | {int(r0['nonzero_macs']) / 1e6:.2f} M | "
                     + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")
    return path


FLOAT_OPERATORS = {
    "PReLU": "torch 2.13's quantized PReLU kernel scales the positive side wrongly (every engine): int8 "
             "PReLU cost 6 dB; each conv output is dequantized, PReLU runs in fp32, the next input "
             "is re-quantized",
    "PowerNormalize": "per-sample norm and division that sets the transmit power the SNR is defined against",
    "channel": "OFAT frame mapping, MIMO channel, ZF equalisation: real-valued symbols (torch or flowgraph)",
    "decoder": "runs at the base station, not the edge: kept fp32 and shared by every compressed encoder",
}


def _seeded_encoder(cfg: JSCCConfig, seed: int) -> JSCCEncoder:
    torch.manual_seed(seed)
    return JSCCEncoder(cfg)


def _headline(v: Variant) -> str | None:
    """Checkpoint name for the variants worth shipping (first seed only), else None."""
    names = {("teacher", 0.0, "int8", "ptq"): "int8_ptq",
             ("teacher", 0.0, "int8", "qat"): "int8_qat",
             ("structured", 0.5, "fp32", "distilled"): "structured50_fp32",
             ("structured", 0.5, "int8", "distilled+ptq"): "structured50_int8",
             ("student", 0.0, "int8", "distilled+ptq"): "student_int8"}
    return names.get((v.method, v.amount, v.bits, v.how))


GROUP = ("method", "amount", "bits", "how", "channel", "snr_db")


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean ± std over seeds per (method, amount, bits, how, channel, SNR), with the loss vs the teacher."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in GROUP), []).append(r)
    ref = {(k[4], k[5]): float(np.mean([r["psnr_db"] for r in g])) for k, g in groups.items()
           if k[:4] == ("teacher", 0.0, "fp32", "none")}
    out = []
    for key, g in groups.items():
        p = np.array([r["psnr_db"] for r in g])
        first = g[0]
        out.append({**dict(zip(GROUP, key, strict=True)), "psnr_mean_db": round(float(p.mean()), 4),
                    "psnr_std_db": round(float(p.std()), 4), "n_seeds": len(g),
                    "psnr_loss_db": round(ref[(key[4], key[5])] - float(p.mean()), 4),
                    **{k: first[k] for k in ("params", "nonzero_params", "weight_sparsity", "encoder_bytes",
                                             "bitmask_sparse_bytes", "macs", "nonzero_macs")}})
    return out


def acceptance(summary_rows: list[dict[str, Any]], exp: LightweightExperiment) -> dict[str, Any]:
    """Per compressed candidate: >= 3x smaller encoder file than the fp32 teacher's and <= 0.5 dB loss at
    every evaluated SNR on every channel (worst case over them). Latency and the flowgraph are
    checked by the benchmark and by ``semcom lightweight loopback``."""
    teacher = next(r for r in summary_rows
                   if (r["method"], r["bits"], r["how"]) == ("teacher", "fp32", "none"))
    candidates = {}
    for r in summary_rows:
        small = teacher["encoder_bytes"] / r["encoder_bytes"]
        if r["method"] == "teacher" and r["bits"] == "fp32":
            continue
        name = f"{r['method']} {r['amount']:g} {r['bits']} {r['how']}"
        c = candidates.setdefault(name, {"size_ratio": round(small, 2), "worst_loss_db": -np.inf,
                                         "nonzero_param_ratio": round(teacher["nonzero_params"]
                                                                      / max(r["nonzero_params"], 1), 2)})
        c["worst_loss_db"] = round(max(c["worst_loss_db"], r["psnr_loss_db"] + r["psnr_std_db"]), 3)
    for c in candidates.values():
        c["meets_size_and_psnr"] = bool(c["size_ratio"] >= 3.0 and c["worst_loss_db"] <= 0.5)
    return {"rule": ">= 3x smaller encoder file than fp32 and PSNR loss (mean + 1 std over seeds) <= 0.5 dB "
                    f"at {list(exp.snrs)} dB over {list(exp.channels)}",
            "candidates": candidates}


def plot(path: Path, summary_rows: list[dict[str, Any]], exp: LightweightExperiment) -> None:
    """Three panels: PSNR vs pruned fraction, PSNR vs bit width, encoder size and MACs per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    channel = exp.channels[-1]
    rows = [r for r in summary_rows if r["channel"] == channel]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    ax = axes[0]
    for (method, bits, how), style in ((("magnitude", "fp32", "none"), ":o"),
                                       (("magnitude", "fp32", "fine-tuned"), "-o"),
                                       (("structured", "fp32", "none"), ":s"),
                                       (("structured", "fp32", "fine-tuned"), "-s"),
                                       (("structured", "fp32", "distilled"), "-D"),
                                       (("structured", "int8", "distilled+ptq"), "--^")):
        for snr in exp.snrs:
            pts = sorted((r["amount"], r["psnr_mean_db"], r["psnr_std_db"]) for r in rows
                         if (r["method"], r["bits"], r["how"], r["snr_db"]) == (method, bits, how, snr))
            if how == "none":   # 0 % = the teacher itself
                pts = [(0.0, *_point(rows, ("teacher", 0.0, "fp32", "none"), snr))] + pts
            elif method == "structured" and how == "fine-tuned":   # 0 % = the fine-tuned unpruned control
                pts = [(0.0, *_point(rows, ("magnitude", 0.0, "fp32", "fine-tuned"), snr))] + pts
            if pts:
                a, m, s = zip(*pts, strict=True)
                ax.errorbar(np.array(a) * 100, m, yerr=s, fmt=style, ms=4, capsize=2,
                            label=f"{method} {bits} {how}, {snr:g} dB")
    ax.set_xlabel("pruned (%): magnitude = of conv weights, structured = of hidden filters", fontsize=8)
    ax.set_ylabel("PSNR (dB)")
    ax.set_ylim(bottom=max(10.0, ax.get_ylim()[0]))
    ax.legend(fontsize=6)
    ax.set_title(f"PSNR vs sparsity ({plot_label(channel)}), mean ± std over seeds", fontsize=9)
    ax = axes[1]
    bit_order = ["fp32", "fp16", "int8"]
    for (method, amount, hows), marker in ((("teacher", 0.0, ("none", "ptq")), "o"),
                                           (("teacher", 0.0, ("none", "qat")), "x"),
                                           (("structured", 0.5, ("distilled", "distilled+ptq")), "s"),
                                           (("student", 0.0, ("distilled", "distilled+ptq")), "^")):
        for snr in exp.snrs:
            pts = []
            for b in bit_order:
                hit = [r for r in rows if r["how"] in hows
                       and (r["method"], r["amount"], r["bits"], r["snr_db"]) == (method, amount, b, snr)]
                if hit:
                    pts.append((bit_order.index(b), hit[0]["psnr_mean_db"], hit[0]["psnr_std_db"]))
            if len(pts) > 1:
                x, m, s = zip(*pts, strict=True)
                ax.errorbar(x, m, yerr=s, fmt="-" + marker, ms=5, capsize=2,
                            label=f"{method} {amount:g} ({hows[-1]}), {snr:g} dB")
    ax.set_xticks(range(3), bit_order)
    ax.set_ylabel("PSNR (dB)")
    ax.legend(fontsize=6)
    ax.set_title("PSNR vs bit width", fontsize=9)
    ax = axes[2]
    snr0 = exp.snrs[0]
    named = [r for r in rows if r["snr_db"] == snr0 and r["bits"] in ("fp32", "int8")
             and (r["method"] == "teacher" or r["how"] != "none")]
    named.sort(key=lambda r: -r["encoder_bytes"])
    labels = [f"{r['method']} {r['amount']:g} {r['bits']} {r['how'].replace('fine-tuned', 'ft')}"
              for r in named]
    y = np.arange(len(named))
    ax.barh(y - 0.2, [r["encoder_bytes"] / 1024 for r in named], 0.4, label="encoder file (KiB)")
    ax.barh(y + 0.2, [r["nonzero_macs"] / 1e5 for r in named], 0.4, label="non-zero MACs (x 1e5)")
    ax.set_yticks(y, labels, fontsize=5)
    ax.legend(fontsize=7)
    ax.set_title("encoder size on disk and MACs per image", fontsize=9)
    save_figure(fig, path)


def _point(rows: list[dict[str, Any]], key: tuple, snr: float) -> tuple[float, float]:
    r = next(r for r in rows if (r["method"], r["amount"], r["bits"], r["how"], r["snr_db"]) == (*key, snr))
    return r["psnr_mean_db"], r["psnr_std_db"]
