"""`semcom lightweight`: prune, quantize and distill the shipped DeepJSCC encoder; score every variant; run
the headline compressed encoders over the torch OFAT channel and the GNU Radio loopback flowgraph.

    semcom lightweight                       # full run (CPU-sized, 3 seeds), experiments/lightweight/output
    semcom lightweight --quick --out DIR     # seconds, for the tests (no flowgraph unless --loopback N)
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from semcom.errors import UsageError, nonnegative_int, output_dir, positive_int
from semcom.results import read_csv, write_csv

from .experiment import TEACHER, LightweightExperiment, plot, run_experiment

DEFAULT_OUT = "experiments/lightweight/output"
LOOPBACK_TOLERANCE_DB = 0.3
PARTS = ("jscc", "tokens", "loopback")
# the compressed encoders run over the flowgraph: int8 alone, channel-pruned + int8, distilled + int8
LOOPBACK_CHECKPOINTS = ("int8_ptq", "structured50_int8", "student_int8")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", default=str(TEACHER),
                   help="the trained DeepJSCC checkpoint to compress (default: the shipped one)")
    p.add_argument("--quick", action="store_true", help="tiny run (seconds) for smoke tests")
    p.add_argument("--seeds", type=nonnegative_int, nargs="+",
                   help=f"training seeds (default {' '.join(map(str, LightweightExperiment.seeds))}; "
                        "quick: 0)")
    p.add_argument("--n-test", type=positive_int,
                   help=f"test images (default {LightweightExperiment.n_test}; quick: 24)")
    p.add_argument("--loopback", type=nonnegative_int, default=None, metavar="N",
                   help="test images per SNR through the loopback flowgraph for the headline checkpoints "
                        "(default 100; quick: 0 = skip)")
    p.add_argument("--tokens", type=nonnegative_int, default=None, metavar="N",
                   help="test questions for the JTCC token-link sweep (default 1000; quick: 0 = skip)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="jscc: the DeepJSCC sweep (checkpoints, CSV, PNG); tokens: the JTCC sweep; loopback: "
                        "the saved checkpoints over the flowgraph (without jscc: added to an earlier run); "
                        "default: all three")
    p.add_argument("--out", type=output_dir, default=DEFAULT_OUT,
                   help=f"results.csv/.png, summary.csv/.json, checkpoints/ (default {DEFAULT_OUT})")
    p.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--replot", action="store_true",
                   help="run nothing: redraw results.png (and tokens.png) in --out from its CSVs and "
                        "summary.json")


def replot(out: Path) -> list[Path]:
    """results.png from summary.csv and the channels / SNRs in summary.json; tokens.png from tokens.csv."""
    missing = [n for n in ("summary.csv", "summary.json") if not (out / n).is_file()]
    if missing:
        raise UsageError(f"--replot: no {' or '.join(missing)} in {out}")
    doc = json.loads((out / "summary.json").read_text())["experiment"]
    exp = LightweightExperiment(channels=tuple(doc["channels"]), snrs=tuple(doc["snrs"]))
    plot(out / "results.png", read_csv(out / "summary.csv"), exp)
    drawn = [out / "results.png"]
    if (out / "tokens.csv").is_file():
        from .tokens import plot_tokens

        plot_tokens(out / "tokens.png", read_csv(out / "tokens.csv"))
        drawn.append(out / "tokens.png")
    return drawn


def loopback_check(checkpoints: dict[str, str], exp: LightweightExperiment, n: int, out: Path,
                   progress: bool) -> dict:
    """Each saved checkpoint, unchanged, over the torch OFAT channel and the loopback flowgraph (ZF) at each
    SNR on ``n`` test images -> loopback.csv and the acceptance entry (|difference| <= 0.3 dB, every frame
    delivered or counted lost)."""
    from semcom.jscc.experiment import load_images
    from semcom.jscc.train import evaluate_psnr
    from semcom.send import compare_channels

    from .checkpoint import load_codec

    images = load_images(exp.source, n, 0, "test")
    rows, checks = [], {}
    for name, path in checkpoints.items():
        codec, _ = load_codec(path)
        for snr in exp.snrs:
            pair = compare_channels(lambda ch, snr=snr, codec=codec: float(np.mean(evaluate_psnr(
                codec, images, ch, snr, batch_size=25))), "psnr_db", snr, seed=0, progress=progress)
            diff = pair[1]["psnr_db"] - pair[0]["psnr_db"]
            for r in pair:
                rows.append({"checkpoint": name, **r, "difference_db": round(diff, 4)})
            checks[f"{name} {snr:g} dB"] = {
                "torch_psnr_db": round(pair[0]["psnr_db"], 3),
                "flowgraph_psnr_db": round(pair[1]["psnr_db"], 3),
                "difference_db": round(diff, 3), "frames": pair[1]["frames"], "lost": pair[1]["lost"],
                "ok": bool(abs(diff) <= LOOPBACK_TOLERANCE_DB and pair[1]["frames"] == n)}
            print(f"[loopback] {name:18s} {snr:4g} dB: torch {pair[0]['psnr_db']:.2f} dB, flowgraph "
                  f"{pair[1]['psnr_db']:.2f} dB ({diff:+.2f}), frames {pair[1]['frames']} "
                  f"lost {pair[1]['lost']}")
    write_csv(out / "loopback.csv", rows)
    return {"rule": f"|flowgraph - torch OFAT PSNR| <= {LOOPBACK_TOLERANCE_DB} dB on {n} test images, "
                    "every frame sent counted delivered or lost", "checks": checks}


def run(args: argparse.Namespace) -> int:
    if args.replot:
        print("wrote " + ", ".join(map(str, replot(Path(args.out)))))
        return 0
    torch.set_num_threads(args.threads)
    exp = (LightweightExperiment.quick(args.teacher) if args.quick
           else LightweightExperiment(teacher=args.teacher))
    if args.seeds:
        exp.seeds = tuple(args.seeds)
    if args.n_test:
        exp.n_test = args.n_test
    n_loop = args.loopback if args.loopback is not None else (0 if args.quick else 100)
    out = Path(args.out)
    command = "semcom " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["lightweight"] else ""
    t0 = time.perf_counter()
    parts = set(args.parts)
    if "jscc" in parts:
        # a CheckpointError (e.g. a wrong --teacher) is semcom.cli.main's one 'semcom:' line, exit 2
        summary = run_experiment(exp, out, progress=not args.no_progress, command=command)
    elif (out / "summary.json").is_file():   # add the other parts to an earlier run's outputs
        summary = json.loads((out / "summary.json").read_text())
    else:
        raise UsageError(f"{out / 'summary.json'} not found: run with --parts jscc first")
    n_tokens = args.tokens if args.tokens is not None else (0 if args.quick else 1000)
    if "tokens" in parts and n_tokens > 0:
        from .tokens import jtcc_sweep, plot_tokens

        rows = jtcc_sweep(n_tokens, exp.snrs, exp.channels, out_dir=out, progress=not args.no_progress)
        write_csv(out / "tokens.csv", rows)
        plot_tokens(out / "tokens.png", rows)
        summary["tokens"] = {"command": command, "rows": rows}
    if "loopback" in parts and n_loop > 0:
        ships = {k: v for k, v in summary["checkpoints"].items() if k in LOOPBACK_CHECKPOINTS}
        summary["loopback"] = loopback_check(ships, exp, n_loop, out, not args.no_progress)
    summary[f"wall_seconds_{'_'.join(sorted(parts))}"] = round(time.perf_counter() - t0, 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    _print(summary, out)
    return 0


def _print(summary: dict, out: Path) -> None:
    rows = list(_read(out / "summary.csv"))
    channel = summary["experiment"]["channels"][-1]
    print(f"\nPSNR over {channel} (mean ± std over seeds), encoder size and MACs")
    print(f"{'method':10s} {'amount':>6s} {'bits':4s} {'how':15s} {'SNR':>4s} {'PSNR':>14s} {'loss':>6s} "
          f"{'bytes':>8s} {'nz params':>9s} {'nz MACs':>9s}")
    for r in rows:
        if r["channel"] == channel:
            print(f"{r['method']:10s} {float(r['amount']):6.2f} {r['bits']:4s} {r['how']:15s} "
                  f"{float(r['snr_db']):4g} {float(r['psnr_mean_db']):7.2f} ± {float(r['psnr_std_db']):4.2f} "
                  f"{float(r['psnr_loss_db']):6.2f} {r['encoder_bytes']:>8s} {r['nonzero_params']:>9s} "
                  f"{r['nonzero_macs']:>9s}")
    met = [k for k, v in summary["acceptance"]["candidates"].items() if v["meets_size_and_psnr"]]
    print(f"\n>= 3x smaller and <= 0.5 dB: {met or 'none'}")
    print(f"outputs in {out}")


def _read(path: Path):
    import csv

    with path.open() as f:
        yield from csv.DictReader(f)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lightweight", help="pruned / int8 / distilled DeepJSCC encoders for edge "
                                                  "agents: size, MACs, PSNR (CSV+PNG+JSON), flowgraph check")
    add_arguments(p)
    p.set_defaults(func=run)
