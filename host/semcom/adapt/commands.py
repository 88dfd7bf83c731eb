"""`semcom adapt`: online fine-tuning of DeepJSCC while the SNR drops 21 -> 9 dB, through a conditional-GAN
channel learned from the loopback flowgraph's captures (seed 000, section III-A / case study IV-A)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time

import torch

from semcom.errors import UsageError, finite_float, nonnegative_int, output_dir, positive_int


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smoke run: one seed, 3 SNR steps, tiny sizes")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+", help="seeds (default 0 1 2; --quick: 0)")
    p.add_argument("--snrs", type=finite_float, nargs="+", help="SNR schedule in dB (default 21 18 15 12 9)")
    p.add_argument("--real", choices=["flowgraph", "torch"], default="flowgraph",
                   help="the real channel: the GNU Radio loopback flowgraph, or the torch OFAT model (fast) "
                        "(default flowgraph)")
    p.add_argument("--initial-epochs", type=positive_int,
                   help="epochs of initial training at the first SNR (default 30; --quick: 2)")
    p.add_argument("--step-epochs", type=positive_int, help="epochs per SNR step (default 5; --quick: 1)")
    p.add_argument("--real-samples", type=positive_int,
                   help="real frames per SNR step (arms real and cgan; default 256; --quick: 16)")
    p.add_argument("--n-train", type=positive_int,
                   help="training images (UCI digits, up to 1437; default 1400; --quick: 96)")
    p.add_argument("--out", type=output_dir, default="experiments/adaptation/output",
                   help="output directory (default experiments/adaptation/output)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--replot", action="store_true", help="only redraw fig5.png from --out's epochs.csv")


def run(args: argparse.Namespace) -> int:
    from semcom.adapt.experiment import AdaptConfig, quick_config, replot
    from semcom.adapt.experiment import run as run_experiment

    torch.set_num_threads(args.threads)
    if args.replot:
        print(f"wrote {replot(args.out)}")
        return 0
    cfg = quick_config() if args.quick else AdaptConfig()
    overrides = {"seeds": tuple(args.seeds) if args.seeds else None,
                 "snrs": tuple(args.snrs) if args.snrs else None, "real": args.real,
                 "initial_epochs": args.initial_epochs, "step_epochs": args.step_epochs,
                 "real_samples": args.real_samples, "n_train": args.n_train}
    for key, value in overrides.items():
        if value is not None:
            setattr(cfg, key, value)
    if len(cfg.snrs) < 2 or cfg.step_epochs < 1 or cfg.initial_epochs < 1:
        raise UsageError("need at least two SNRs and >= 1 epoch per phase")  # one "semcom:" line, exit 2
    t0 = time.perf_counter()
    summary = run_experiment(cfg, args.out, progress=not args.no_progress,
                             command="semcom " + shlex.join(sys.argv[1:]))
    print(json.dumps(summary["acceptance"], indent=2))
    print(f"wall time {time.perf_counter() - t0:.0f} s; outputs in {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("adapt", help="cGAN channel + online DeepJSCC fine-tuning as the SNR drops",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    import logging

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(args)
