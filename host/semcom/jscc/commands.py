"""Command line for the DeepJSCC experiment, shared by ``experiments/jscc/run.py`` and the ``semcom`` CLI.

``register(subparsers)`` adds ``semcom jscc ...`` (for ``semcom.cli.COMMAND_MODULES``); ``main(argv)``
runs it stand-alone.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from pathlib import Path

import torch

from semcom.errors import finite_float, nonnegative_int, output_dir, positive_int

from .experiment import DEFAULT_SNRS, EVAL_CHANNELS, JSCCExperiment, eval_jscc, load_or_train
from .train import TrainConfig

D = " (default: %(default)s)"

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_CHECKPOINT = PACKAGE_DIR / "checkpoints" / "deepjscc_kn1-6_32px.pt"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="photos", help="semcom.data.images.image_set source "
                   "(photos, digits, scenes)" + D)
    p.add_argument("--ratio", default="1/6", help="bandwidth ratio k/n (= c/96)" + D)
    p.add_argument("--n-train", type=positive_int, default=8000, help="training images" + D)
    p.add_argument("--n-test", type=positive_int, default=500, help="test images" + D)
    p.add_argument("--epochs", type=positive_int, default=40, help="training epochs" + D)
    p.add_argument("--batch-size", type=positive_int, default=32, help="training batch size" + D)
    p.add_argument("--lr", type=finite_float, default=1e-3, help="Adam learning rate" + D)
    p.add_argument("--train-snr", type=finite_float, nargs=2, default=(0.0, 20.0), metavar=("LO", "HI"),
                   help="training SNR range in dB (uniform per image)" + D)
    p.add_argument("--train-channel", default="awgn", choices=list(EVAL_CHANNELS),
                   help="training channel" + D)
    p.add_argument("--max-minutes", type=finite_float, default=4.0, help="training wall-time cap" + D)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="data and training seed" + D)
    p.add_argument("--threads", type=positive_int, default=1,
                   help="torch CPU threads (1: far faster than 2 when other jobs share the 2 cores)" + D)
    p.add_argument("--snrs", type=finite_float, nargs="+", default=list(DEFAULT_SNRS),
                   help="evaluation SNRs in dB" + D)
    p.add_argument("--channels", nargs="+", default=list(EVAL_CHANNELS), choices=list(EVAL_CHANNELS),
                   help="evaluation channels" + D)
    p.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT),
                   help="<name>.pt (+ <name>.json); loaded if present unless --retrain "
                   "(default: the shipped one)")
    p.add_argument("--out", type=output_dir, default="experiments/jscc/output",
                   help="directory for results.csv/.png, summary.json" + D)
    p.add_argument("--retrain", action="store_true", help="train even if the checkpoint exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _experiment(args: argparse.Namespace) -> JSCCExperiment:
    return JSCCExperiment(source=args.source, ratio=args.ratio, n_train=args.n_train, n_test=args.n_test,
                          seed=args.seed, train_channel=args.train_channel,
                          train=TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                                            snr_db=tuple(args.train_snr), seed=args.seed,
                                            max_seconds=60.0 * args.max_minutes))


def _print_table(rows: list[dict], snrs: list[float]) -> None:
    for metric in ("psnr_db", "psnr_mean_mse_db"):
        print(f"\n{metric}\n{'method':14s} {'channel':18s} " + " ".join(f"{s:>6g}dB" for s in snrs))
        for key in dict.fromkeys((r["method"], r["channel"]) for r in rows):
            vals = {r["snr_db"]: r[metric] for r in rows if (r["method"], r["channel"]) == key}
            print(f"{key[0]:14s} {key[1]:18s} " + " ".join(f"{vals[s]:8.2f}" for s in snrs))


def run(args: argparse.Namespace, argv: list[str] | None = None) -> int:
    torch.set_num_threads(args.threads)
    exp = _experiment(args)
    command = "python experiments/jscc/run.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    t0 = time.perf_counter()
    model, info = load_or_train(exp, args.checkpoint, args.retrain, command=command,
                                progress=not args.no_progress)
    rows = eval_jscc(model, exp, args.out, snrs=tuple(args.snrs), channels=tuple(args.channels),
                     train_info=info)
    _print_table(rows, args.snrs)
    print(f"total wall time {time.perf_counter() - t0:.1f} s; outputs in {args.out}")
    return 0


def train_only(args: argparse.Namespace) -> int:
    """``semcom train jscc``: train (always) and save the checkpoint; no evaluation."""
    torch.set_num_threads(args.threads)
    command = "semcom " + shlex.join(sys.argv[1:])
    _, info = load_or_train(_experiment(args), args.checkpoint, True, command=command,
                            progress=not args.no_progress)
    print(f"trained in {info['train_seconds']:.1f} s -> {args.checkpoint}")
    return 0


def eval_only(args: argparse.Namespace) -> int:
    """``semcom eval jscc``: evaluate an existing checkpoint (never trains)."""
    from .checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    exp = _experiment(args)
    # a missing / corrupt checkpoint raises CheckpointError: semcom.cli.main reports it (stderr, exit 2)
    model, doc = load_checkpoint(args.checkpoint, expect=exp.cfg)
    rows = eval_jscc(model, exp, args.out, snrs=tuple(args.snrs), channels=tuple(args.channels),
                     train_info=doc.get("meta"))
    _print_table(rows, args.snrs)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """``semcom jscc``: train (or load) DeepJSCC and evaluate it against JPEG."""
    p = subparsers.add_parser("jscc", help="DeepJSCC vs JPEG: train/load, PSNR vs SNR (CSV + PNG)")
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="DeepJSCC (k/n = 1/6, 32x32) vs JPEG: PSNR vs SNR")
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args, argv)
