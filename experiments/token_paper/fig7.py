"""Fig. 7 of the machine-language-token paper: VQA accuracy vs the number of tokens K, with JTCC over
AWGN at 0 and 15 dB, beside the frozen receiver's ceiling (its accuracy given the first k ground-truth
object tokens of each scene).

For every K a transmitter (raw tokens, stage ``tokens``) and its JTCC link (stage ``jtcc``, m = 16 real
values per token) are trained against the shipped frozen receiver, on the shipped pre-trained vision
backbone, at a **reduced budget that is the same for every K** (``--align-epochs`` / ``--token-epochs``
/ ``--link-epochs`` / ``--jtcc-epochs``, default 1 / 1 / 1 / 1, each epoch over the first
``--train-questions`` = 12 600 of the 25 200 training questions; the shipped K = 5 run used 8 / 8 / 5 / 5
epochs over all of them). The shipped K = 5 checkpoints (full budget) are evaluated beside them, so the
cost of the reduced budget is measured at one K. Accuracy is also split by the number of objects in
the scene (3-6), which is where the threshold comes from: a scene holds at most 6 objects, and one
token carries one object.

    python experiments/token_paper/fig7.py                       # K = 5 1 8 3 2 6 4, resumable
    python experiments/token_paper/fig7.py --k 3 6 2 --out /tmp/b  # a second process: its own Ks
                                                                 # (each K's evaluation is cached)
    python experiments/token_paper/fig7.py --k 1 2 3 5 8         # a subset
    python experiments/token_paper/fig7.py --eval-only           # evaluate what is trained
    python experiments/token_paper/fig7.py --quick --out /tmp/f7 # smoke: tiny data, 1 epoch, K = 1, 2
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.agents.checkpoint import load_pipeline, load_receiver
from semcom.agents.experiment import (
    AgentsExperiment,
    ExperimentData,
    checkpoint_path,
    first_objects_logits,
    make_data,
    train_all,
    uniform_rows,
)
from semcom.agents.train import VQATensors, pipeline_correct, predictions
from semcom.channels import named_channel
from semcom.checkpoint import checkpoint_paths
from semcom.errors import finite_float, nonnegative_int, positive_int
from semcom.results import save_figure, write_csv

ROOT = Path(__file__).resolve().parents[2]
AGENTS = ROOT / "host" / "semcom" / "agents" / "checkpoints"
DEFAULT_K = (5, 1, 8, 3, 2, 6, 4)  # the order they are trained in: the shape first, then the gaps
SHARED_STAGES = ("vision", "receiver")  # the pre-trained backbone and the frozen receiver, shared by all K


def budget_experiment(args: argparse.Namespace, k: int) -> AgentsExperiment:
    """The small default with K tokens and the reduced (same for every K) training budget."""
    exp = AgentsExperiment()
    if args.quick:
        exp = dataclasses.replace(exp, n_scenes=60, seed=4242, pretrain_scenes=0)
    seed = exp.seed if args.train_seed is None else args.train_seed
    tokens = dataclasses.replace(exp.tokens, align_epochs=args.align_epochs, epochs=args.token_epochs,
                                 seed=seed)
    jtcc = dataclasses.replace(exp.jtcc, link_epochs=args.link_epochs, epochs=args.jtcc_epochs, seed=seed)
    return dataclasses.replace(exp, k_tokens=k, tokens=tokens, jtcc=jtcc)


def share_pretrained(src: Path, dst: Path) -> None:
    """Copy the shared stages' checkpoints (weights + JSON) into a K's checkpoint directory: the token
    stages read them from there, and the pipeline refers to its receiver by path and checksum."""
    dst.mkdir(parents=True, exist_ok=True)
    for stage in SHARED_STAGES:
        for f in checkpoint_paths(checkpoint_path(src, stage)):
            if not (dst / f.name).is_file():
                shutil.copy2(f, dst / f.name)


def objects_per_question(receiver: Any, test: VQATensors) -> np.ndarray:
    """How many objects each question's scene holds (the receiver's own object tokenisation)."""
    out = []
    for start in range(0, len(test), 500):
        b = test.batch(torch.arange(start, min(start + 500, len(test))))
        out.append(receiver.embed_scene(b["scene"])[1].sum(dim=1).numpy())
    return np.concatenate(out)


def _at_snr(row: dict[str, Any], snr: float | None) -> bool:
    """Is ``row`` at ``snr`` (None: a row without an SNR)?"""
    if snr is None:
        return row["snr_db"] == ""
    return row["snr_db"] != "" and float(row["snr_db"]) == snr


def _row(method: str, k: int, channel: str, snr: float | str, correct: np.ndarray, n_obj: np.ndarray,
         **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"method": method, "k_tokens": k, "channel": channel, "snr_db": snr,
                           "accuracy": float(correct.mean()), "n_questions": int(correct.size)}
    row.update(extra)
    for n in np.unique(n_obj):
        row[f"acc_{int(n)}_objects"] = float(correct[n_obj == n].mean())
    return row


def ceiling_rows(receiver: Any, test: VQATensors, n_obj: np.ndarray, ks: range) -> list[dict[str, Any]]:
    """The frozen receiver given the first k ground-truth object tokens (zero "no object" tokens never
    added: a scene with fewer than k objects gives all of them)."""
    rows = []
    for k in ks:
        correct, _ = predictions(lambda b, k=k: first_objects_logits(receiver, b, k), test)
        rows.append(_row("receiver_first_k_objects", k, "none", "", correct, n_obj, budget="none"))
    return rows


def pipeline_rows(ckdir: Path, test: VQATensors, n_obj: np.ndarray, snrs: list[float], budget: str,
                  seed: int) -> list[dict[str, Any]]:
    """JTCC at every SNR (AWGN), the raw tokens at the highest SNR, from ``ckdir``."""
    rows = []
    for stage, method, stage_snrs in (("jtcc", "tokens_jtcc", snrs), ("tokens", "tokens_raw", snrs[-1:])):
        path = checkpoint_path(ckdir, stage)
        if not checkpoint_paths(path)[0].is_file():
            continue
        pipe, doc = load_pipeline(path)
        k = pipe.sensor.cfg.k_tokens
        meta = doc.get("meta", {})
        phases = [h.get("phase", "task") for h in meta.get("history", [])]
        info = {"budget": budget, "channel_values": k * pipe.link.m,
                "train_seconds": meta.get("train_seconds", ""),
                "epochs": json.dumps({p: phases.count(p) for p in ("align", "link", "task")})}
        ch = named_channel("awgn", seed=seed)
        for snr in stage_snrs:
            correct, _ = pipeline_correct(pipe, test, ch, snr, seed=seed)
            rows.append(_row(method, k, "awgn", snr, correct, n_obj, **info))
            print(f"K={k} {method} {budget} awgn {snr:g} dB: {100 * correct.mean():.2f} %", flush=True)
    return rows


def cached_pipeline_rows(ckdir: Path, cache_dir: Path, test: VQATensors, n_obj: np.ndarray,
                         snrs: list[float], budget: str, seed: int) -> list[dict[str, Any]]:
    """``pipeline_rows``, kept in ``cache_dir`` (a JSON per test size and SNRs) while it is newer than
    the checkpoints: processes that train different Ks evaluate their own, and one ``--eval-only`` run
    assembles the figure without evaluating them again."""
    cache = cache_dir / f"fig7_eval_{len(test)}q_{'_'.join(f'{s:g}' for s in snrs)}dB_seed{seed}.json"
    weights = [checkpoint_paths(checkpoint_path(ckdir, st))[0] for st in ("tokens", "jtcc")]
    newest = max((w.stat().st_mtime for w in weights if w.is_file()), default=None)
    if newest is not None and cache.is_file() and cache.stat().st_mtime > newest:
        return [r | {"budget": budget} for r in json.loads(cache.read_text())]
    rows = pipeline_rows(ckdir, test, n_obj, snrs, budget, seed)
    if rows:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(rows, default=float) + "\n")
    return rows


def train_k(args: argparse.Namespace, k: int, data: ExperimentData) -> Path:
    ckdir = Path(args.checkpoints) / f"k{k}"
    share_pretrained(Path(args.shared), ckdir)
    t0 = time.perf_counter()
    train_all(budget_experiment(args, k), ckdir, stages=("tokens", "jtcc"), data=data, progress=False,
              command="python experiments/token_paper/fig7.py " + shlex.join(args.argv))
    print(f"K={k}: trained in {time.perf_counter() - t0:.0f} s ({ckdir})", flush=True)
    return ckdir


def plot(path: Path, rows: list[dict[str, Any]], snrs: list[float], budget: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def curve(method: str, channel: str, snr: float | str, which: str) -> list[tuple[int, float]]:
        return sorted((int(r["k_tokens"]), 100 * float(r["accuracy"])) for r in rows
                      if r["method"] == method and r["channel"] == channel and r["budget"] == which
                      and _at_snr(r, None if snr == "" else float(snr)))

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    ax = axes[0]
    ceil = curve("receiver_first_k_objects", "none", "", "none")
    if ceil:
        ax.plot(*zip(*ceil, strict=True), "k--o", label="receiver ceiling: first k ground-truth objects")
    for i, snr in enumerate(snrs):
        pts = curve("tokens_jtcc", "awgn", snr, budget)
        if pts:
            ax.plot(*zip(*pts, strict=True), "-s", color=f"C{i}", label=f"JTCC, AWGN {snr:g} dB ({budget})")
        full = curve("tokens_jtcc", "awgn", snr, "full")
        if full:
            ax.plot(*zip(*full, strict=True), "*", ms=12, color=f"C{i}",
                    label=f"JTCC, AWGN {snr:g} dB, shipped K = 5 (full budget)")
    raw = curve("tokens_raw", "awgn", snrs[-1], budget)
    if raw:
        ax.plot(*zip(*raw, strict=True), ":^", color="C3", label=f"tokens without JTCC, {snrs[-1]:g} dB")
    ax.axvline(6, color="grey", lw=0.8, alpha=0.5)
    ax.set_xlabel("tokens K")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("accuracy vs K (scenes hold 3-6 objects; grey line: 6)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax = axes[1]
    top = [r for r in rows if r["method"] == "tokens_jtcc" and r["budget"] == budget
           and r["snr_db"] != "" and float(r["snr_db"]) == snrs[-1]]
    for n in (3, 4, 5, 6):
        pts = sorted((int(r["k_tokens"]), 100 * float(r[f"acc_{n}_objects"])) for r in top
                     if r.get(f"acc_{n}_objects", "") != "")
        if pts:
            ax.plot(*zip(*pts, strict=True), "-o", label=f"{n}-object scenes")
    ax.set_xlabel("tokens K")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"JTCC at {snrs[-1]:g} dB by objects in the scene", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    d = " (default: %(default)s)"
    p = argparse.ArgumentParser(description="Fig. 7: accuracy vs number of tokens K")
    p.add_argument("--k", type=positive_int, nargs="+", default=list(DEFAULT_K), help="token counts" + d)
    p.add_argument("--snrs", type=finite_float, nargs="+", default=[0.0, 15.0], help="AWGN SNRs (dB)" + d)
    p.add_argument("--align-epochs", type=nonnegative_int, default=1,
                   help="alignment-only epochs of each fresh transmitter (shipped: 8)" + d)
    p.add_argument("--token-epochs", type=positive_int, default=1,
                   help="task epochs of the raw-token stage (shipped: 8)" + d)
    p.add_argument("--link-epochs", type=nonnegative_int, default=1,
                   help="JTCC link-only epochs (shipped: 5)" + d)
    p.add_argument("--jtcc-epochs", type=positive_int, default=1, help="JTCC joint epochs (shipped: 5)" + d)
    p.add_argument("--train-questions", type=positive_int, default=12600,
                   help="training questions each epoch reads (the first of the 25 200: half the training "
                   "scenes; part of the reduced budget)" + d)
    p.add_argument("--train-seed", type=nonnegative_int, default=None, help="training seed (default: 0)")
    p.add_argument("--shared", default=str(AGENTS),
                   help="checkpoints of the shared vision backbone and frozen receiver (and the full-budget "
                   "K = 5 run)" + d)
    p.add_argument("--checkpoints", default=str(ROOT / "results" / "token_paper" / "fig7"),
                   help="where each K's checkpoints go (k<K>/; not committed)" + d)
    p.add_argument("--n-test", type=positive_int, default=None, help="test questions (default: all 7 200)")
    p.add_argument("--eval-only", action="store_true", help="evaluate the Ks already trained, train nothing")
    p.add_argument("--train-only", action="store_true",
                   help="train the Ks, evaluate nothing (e.g. other training seeds for seeds.py)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch threads (1: on an oversubscribed CPU two were 10x slower per step)" + d)
    p.add_argument("--out", default=str(ROOT / "experiments" / "token_paper" / "output"),
                   help="output dir" + d)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 60 fresh scenes, K = 1 2, one epoch per phase, checkpoints under --out")
    args = p.parse_args(argv)
    args.argv = argv
    if args.quick:
        args.k = [1, 2]
        args.align_epochs = args.token_epochs = args.link_epochs = args.jtcc_epochs = 1
        args.checkpoints = str(Path(args.out) / "checkpoints")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    budget = (f"reduced: {args.align_epochs} align + {args.token_epochs} task epochs (tokens), "
              f"{args.link_epochs} link + {args.jtcc_epochs} joint epochs (JTCC), each epoch over the "
              f"first {args.train_questions} training questions")
    data = make_data(budget_experiment(args, args.k[0]), progress=False, pretrain=False)
    data = dataclasses.replace(data, train=data.train.subset(args.train_questions))
    if args.train_only:
        for k in args.k:
            train_k(args, k, data)
        return 0
    test = data.test.subset(args.n_test) if args.n_test else data.test
    receiver, _ = load_receiver(checkpoint_path(args.shared, "receiver"))
    n_obj = objects_per_question(receiver, test)
    rows = ceiling_rows(receiver, test, n_obj, range(1, max(max(args.k), 6) + 1))
    eval_seed = 1  # the channel seed of every evaluation (as semcom eval agents: data seed + 1)
    if not args.quick:
        rows += cached_pipeline_rows(Path(args.shared), Path(args.checkpoints) / "shipped", test, n_obj,
                                     args.snrs, "full", eval_seed)
    out = Path(args.out)
    for k in args.k:
        ckdir = Path(args.checkpoints) / f"k{k}"
        if not args.eval_only:
            train_k(args, k, data)
        rows += cached_pipeline_rows(ckdir, ckdir, test, n_obj, args.snrs, "reduced", eval_seed)
        write_csv(out / "fig7.csv", uniform_rows(rows))  # after every K: a partial run still leaves a table
    plot(out / "fig7.png", rows, args.snrs, "reduced")
    summary = {"command": "python experiments/token_paper/fig7.py " + shlex.join(argv),
               "budget": budget, "k": args.k, "snrs_db": args.snrs, "n_test_questions": len(test),
               "objects_per_scene": {str(int(n)): int((n_obj == n).sum()) for n in np.unique(n_obj)},
               "seconds": time.perf_counter() - t0, "checks": checks(rows, args.snrs)}
    (out / "fig7.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    print(json.dumps(summary["checks"], indent=1, default=float))
    print(f"wrote {out}/fig7.csv, fig7.png, fig7.json in {summary['seconds']:.0f} s")
    return 0


def checks(rows: list[dict[str, Any]], snrs: list[float]) -> dict[str, Any]:
    """Accuracy vs K at the highest SNR: where it stops rising (the first K after which no later K
    gains more than a point) and the ceiling's own threshold."""
    def by_k(method: str, snr: float | None, budget: str) -> dict[int, float]:
        return {int(r["k_tokens"]): float(r["accuracy"]) for r in rows if r["method"] == method
                and r["budget"] == budget and (snr is None or _at_snr(r, snr))}

    def plateau(curve: dict[int, float]) -> int | None:
        ks = sorted(curve)
        for k in ks:
            if all(curve[j] <= curve[k] + 0.01 for j in ks if j > k):
                return k
        return None

    out: dict[str, Any] = {}
    ceiling = by_k("receiver_first_k_objects", None, "none")
    out["ceiling_by_k"] = ceiling
    out["ceiling_flat_from_k"] = plateau(ceiling)
    for snr in snrs:
        curve = by_k("tokens_jtcc", snr, "reduced")
        out[f"jtcc_{snr:g}db_by_k"] = curve
        out[f"jtcc_{snr:g}db_flat_from_k"] = plateau(curve) if curve else None
        full = by_k("tokens_jtcc", snr, "full")
        if full and 5 in curve:
            out[f"jtcc_{snr:g}db_k5_full_minus_reduced"] = full[5] - curve[5]
    return out


if __name__ == "__main__":
    raise SystemExit(main())
