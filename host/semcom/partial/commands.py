"""`semcom partial`: perception-aware partial sampling with receiver feedback (Fig. 6 of the second paper).

    semcom partial                      # the full run: 3 seeds, 4x4 and 8x8, 28..112 px, R = 4, AWGN 10 dB,
                                        # plus 4x4 over the OFAT loopback flowgraph (feedback over ZeroMQ)
    semcom partial --quick --out DIR    # a small smoke run (tests)

Checkpoints go to ``<out>/checkpoints`` and are reused when their training settings match (``--retrain``
trains anyway); results to ``<out>`` (CSV + PNG + JSON, see ``semcom.partial.experiment``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from semcom.errors import (
    UsageError,
    finite_float,
    fraction,
    nonnegative_float,
    nonnegative_int,
    output_dir,
    positive_float,
    positive_int,
)

DEFAULT_OUT = "experiments/partial_sampling/output"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=output_dir, default=DEFAULT_OUT,
                   help="output folder (CSV, PNG, JSON, checkpoints/; default %(default)s)")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", default=[0, 1, 2],
                   help="seeds (default 0 1 2)")
    p.add_argument("--patches", type=positive_int, nargs="+", default=[4, 8],
                   help="sampling sizes (multiples of 4; default 4 8)")
    p.add_argument("--sizes", type=positive_int, nargs="+", default=[28, 56, 84, 112],
                   help="source sizes (px; default 28 56 84 112)")
    p.add_argument("--rounds", type=positive_int, default=4,
                   help="feedback rounds R (accuracy after 1..R; default %(default)s)")
    p.add_argument("--agents", type=positive_int, default=4,
                   help="edge agents, one patch each per round (default %(default)s)")
    p.add_argument("--snr", type=finite_float, default=10.0, help="evaluation SNR (dB; default %(default)s)")
    p.add_argument("--n-test", type=positive_int, default=500,
                   help="test scenes per source size and seed (default %(default)s)")
    p.add_argument("--n-ofat", type=positive_int, default=100,
                   help="test scenes per source size over OFAT (default %(default)s)")
    p.add_argument("--no-ofat", action="store_true", help="skip the OFAT torch channel + flowgraph part")
    p.add_argument("--no-jscc", action="store_true", help="skip the whole-image JSCC baseline")
    p.add_argument("--epochs", type=positive_int, default=8, help="training epochs (default %(default)s)")
    p.add_argument("--steps-per-epoch", type=positive_int, default=100,
                   help="optimiser steps per epoch of the sampler and receiver (default %(default)s)")
    p.add_argument("--jscc-steps-per-epoch", type=positive_int, default=100,
                   help="optimiser steps per epoch of the whole-image JSCC baseline (default %(default)s)")
    p.add_argument("--random-share", type=fraction, default=0.3,
                   help="share of training batches with random places (the same receiver serves both; "
                        "default %(default)s)")
    p.add_argument("--batch-size", type=positive_int, default=48,
                   help="scenes per batch (default %(default)s)")
    p.add_argument("--clutter", type=nonnegative_float, default=1.0,
                   help="clutter fragments per 28x28 of free area (default %(default)s)")
    p.add_argument("--max-minutes", type=positive_float, default=None,
                   help="wall-time cap per training run (default: none)")
    p.add_argument("--retrain", action="store_true", help="train even if matching checkpoints exist")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 1 seed, 28 and 56 px, 2 rounds, few steps and scenes (seconds)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--replot", action="store_true",
                   help="run nothing: redraw the PNGs in --out from its summary.csv and summary.json")


def experiment_from_args(args: argparse.Namespace):
    from .experiment import PartialExperiment
    from .train import TrainConfig

    if args.quick:
        args.seeds, args.sizes, args.rounds, args.agents = args.seeds[:1], [28, 56], 2, 2
        args.n_test, args.n_ofat, args.epochs, args.steps_per_epoch = 40, 6, 1, 4
        args.jscc_steps_per_epoch, args.batch_size = 4, 16
    train = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, steps_per_epoch=args.steps_per_epoch,
                        clutter=args.clutter, random_share=args.random_share,
                        max_seconds=None if args.max_minutes is None else 60.0 * args.max_minutes)
    return PartialExperiment(patches=tuple(args.patches), sizes=tuple(args.sizes), rounds=args.rounds,
                             agents=args.agents, seeds=tuple(args.seeds), snr_db=args.snr, n_test=args.n_test,
                             n_ofat=args.n_ofat, ofat=not args.no_ofat, jscc=not args.no_jscc, train=train,
                             ofat_patch=min(args.patches), jscc_steps_per_epoch=args.jscc_steps_per_epoch)


def run(args: argparse.Namespace) -> int:
    from .experiment import replot, run_experiment

    if args.replot:
        replot(Path(args.out))
        print(f"redrew the PNGs in {args.out}")
        return 0
    torch.set_num_threads(args.threads)
    try:
        exp = experiment_from_args(args)
        exp.validate()
    except ValueError as e:
        raise UsageError(str(e)) from None  # semcom.cli.main: one "semcom:" line, exit 2
    summary = run_experiment(exp, args.out, retrain=args.retrain, progress=not args.no_progress,
                             command="semcom " + shlex.join(sys.argv[1:]))
    print(json.dumps(summary["checks"], indent=1))
    print(f"wall time {summary['wall_seconds']:.0f} s; outputs in {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("partial", help="partial sampling with receiver feedback: accuracy vs source "
                              "size, sampling size and rounds (Fig. 6; CSV + PNG + JSON)")
    add_arguments(p)
    p.set_defaults(func=run)
