"""``semcom train ...`` and ``semcom eval ...``: the small agents and DeepJSCC from the command line.

    semcom train agents                 # all four stages of the small default, then the evaluation
    semcom train receiver | tokens | jtcc | raw-vqa    # one stage (earlier stages' checkpoints needed)
    torchrun --nproc-per-node N --no-python semcom train ...   # the same, data-parallel on N processes
    semcom eval agents                  # accuracy tables + plot from existing checkpoints
    semcom train jscc / semcom eval jscc                # DeepJSCC (same options as `semcom jscc`)

Checkpoints go to ``--checkpoints`` (default ``results/agents/checkpoints``); the small default that ships
with the project lives in ``host/semcom/agents/checkpoints`` and is what ``semcom eval agents`` and
``semcom send tokens`` use unless told otherwise. A stage interrupted mid-way resumes from its last
epoch when run again (``--no-resume`` starts it over).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from semcom import distributed
from semcom.channels import NAMED_CHANNELS
from semcom.errors import UsageError, finite_float, nonnegative_int, output_dir, positive_int

from .experiment import (
    DEFAULT_CHANNELS,
    DEFAULT_SNRS,
    STAGES,
    AgentsExperiment,
    checkpoint_path,
    evaluate,
    make_data,
    train_all,
)
from .report import per_family_table, replot
from .train import LINK_TARGETS

log = logging.getLogger(__name__)
SHIPPED_CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_TRAIN_DIR = Path("results/agents/checkpoints")
STAGE_COMMANDS = {"vision": "vision", "receiver": "receiver", "text": "text", "tokens": "tokens",
                  "jtcc": "jtcc", "raw-vqa": "raw_vqa"}


def _experiment_args(p: argparse.ArgumentParser) -> None:
    base = AgentsExperiment()
    p.add_argument("--n-scenes", type=positive_int, default=base.n_scenes,
                   help="generated scenes (70/10/20 split) (default: %(default)s)")
    p.add_argument("--questions-per-scene", type=positive_int, default=base.questions_per_scene,
                   help="questions per scene (default: %(default)s)")
    p.add_argument("--pretrain-scenes", type=nonnegative_int, default=base.pretrain_scenes,
                   help="extra scenes read by the vision and receiver pre-training only, 0 for none "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=base.seed,
                   help="data seed, and the training seed unless --train-seed is given "
                   "(default: %(default)s)")
    p.add_argument("--train-seed", type=nonnegative_int, default=None,
                   help="training seed (initial weights, batches, channel noise) on the --seed data, for "
                   "repeated training runs on the same scenes (default: --seed)")
    p.add_argument("--k-tokens", type=positive_int, default=base.k_tokens,
                   help="machine-language tokens K (default: %(default)s)")
    p.add_argument("--m", type=positive_int, default=base.jtcc_m,
                   help="JTCC real channel values per token (default: %(default)s)")
    p.add_argument("--grad-mode", default=base.grad_mode, choices=["exact", "straight_through"],
                   help="gradient through the channel: exact back-propagation or the paper's approximation "
                   "(default: %(default)s)")
    for stage in STAGES:
        cfg = getattr(base, stage)
        flag = stage.replace("_", "-")
        p.add_argument(f"--epochs-{flag}", type=nonnegative_int, default=cfg.epochs,
                       help=f"epochs of stage {stage} (default: %(default)s)")
    _jtcc_recipe_args(p, base.jtcc)
    p.add_argument("--max-minutes", type=finite_float, default=None,
                   help="wall-time cap per stage (default: %(default)s, no cap)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default: %(default)s)")


# The JTCC stage's recipe knobs on the command line: flag -> (AgentTrainConfig field, type, values, choices).
JTCC_RECIPE_FLAGS: dict[str, tuple[str, Any, int, tuple[str, ...] | None]] = {
    "--jtcc-lr": ("lr", finite_float, 1, None),
    "--jtcc-link-epochs": ("link_epochs", nonnegative_int, 1, None),
    "--jtcc-link-target": ("link_target", str, 1, LINK_TARGETS),
    "--jtcc-sensor-lr-scale": ("sensor_lr_scale", finite_float, 1, None),
    "--jtcc-align-weight": ("align_weight", finite_float, 1, None),
    "--jtcc-snr-db": ("snr_db", finite_float, 2, None),
    "--jtcc-distill-weight": ("distill_weight", finite_float, 1, None),
    "--jtcc-distill-temperature": ("distill_temperature", finite_float, 1, None),
    "--jtcc-curriculum-epochs": ("curriculum_epochs", nonnegative_int, 1, None),
    "--jtcc-curriculum-snr-db": ("curriculum_snr_db", finite_float, 2, None),
}


def _jtcc_recipe_args(p: argparse.ArgumentParser, jtcc: Any) -> None:
    """The JTCC stage's training recipe (``AgentTrainConfig`` fields); left out, the shipped recipe's."""
    for flag, (name, kind, n, choices) in JTCC_RECIPE_FLAGS.items():
        default = getattr(jtcc, name)
        p.add_argument(flag, dest=f"jtcc_{name}", type=kind, nargs=None if n == 1 else n, default=None,
                       metavar="DB" if n == 2 else None, choices=choices,
                       help=f"JTCC stage: {name} (AgentTrainConfig) (default: {default})")


def _jtcc_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """The JTCC recipe fields given on the command line (the others keep their defaults)."""
    given = {name: getattr(args, f"jtcc_{name}", None) for name, *_ in JTCC_RECIPE_FLAGS.values()}
    return {name: tuple(v) if isinstance(v, list) else v for name, v in given.items() if v is not None}


def _experiment(args: argparse.Namespace) -> AgentsExperiment:
    base = AgentsExperiment()
    stages = {}
    for stage in STAGES:
        cfg = getattr(base, stage)
        max_s = None if args.max_minutes is None else 60.0 * args.max_minutes
        train_seed = args.seed if args.train_seed is None else args.train_seed
        stages[stage] = dataclasses.replace(cfg, epochs=getattr(args, f"epochs_{stage}"), seed=train_seed,
                                            max_seconds=max_s)
    stages["jtcc"] = dataclasses.replace(stages["jtcc"], **_jtcc_recipe(args))
    return dataclasses.replace(base, n_scenes=args.n_scenes, questions_per_scene=args.questions_per_scene,
                               pretrain_scenes=args.pretrain_scenes, seed=args.seed, k_tokens=args.k_tokens,
                               jtcc_m=args.m, grad_mode=args.grad_mode, **stages)


def _eval_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snrs", type=finite_float, nargs="+", default=list(DEFAULT_SNRS),
                   help="evaluation SNRs in dB (default: %(default)s)")
    p.add_argument("--channels", nargs="+", default=list(DEFAULT_CHANNELS), choices=sorted(NAMED_CHANNELS),
                   help="evaluation channels (default: %(default)s)")
    p.add_argument("--n-test", type=positive_int, default=None,
                   help="test questions, >= 1 (default: the whole split)")
    p.add_argument("--out", type=output_dir, default="results/agents",
                   help="directory for results.csv / results.png / summary.json (default: %(default)s)")


def _print_results(rows: list[dict[str, Any]], out: str) -> None:
    print(per_family_table(rows))
    print(f"wrote {Path(out) / 'results.csv'}, results.png, summary.json")


@contextlib.contextmanager
def _checkpoint_dir(ckdir: str, world: distributed.World) -> Iterator[str]:
    """Where this process writes checkpoints: ``ckdir`` on rank 0; on the other ranks of a process group
    a private directory with a copy of every file ``ckdir`` holds now (earlier stages and resume states
    are read from it; copies, not links, so a rank's writes never reach rank 0's files), removed
    afterwards. The replicas hold the same weights; only rank 0's files are kept."""
    if world.is_main:
        yield ckdir
        return
    private = Path(tempfile.mkdtemp(prefix=f"semcom_rank{world.rank}_"))
    try:
        if Path(ckdir).is_dir():
            for f in Path(ckdir).iterdir():
                if f.is_file():
                    shutil.copy2(f, private / f.name)
        yield str(private)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _train(args: argparse.Namespace, stages: tuple[str, ...], argv: list[str] | None) -> int:
    torch.set_num_threads(args.threads)
    # Joins torchrun's process group (a single process otherwise). gloo, even where CUDA is present:
    # the small agents' models, data and channels live on the CPU (there is no GPU path to them).
    world = distributed.setup("gloo")
    if not world.is_main:
        logging.getLogger().setLevel(logging.WARNING)  # rank 0 reports for all
    try:
        with _checkpoint_dir(args.checkpoints, world) as ckdir:
            return _train_stages(args, stages, argv, ckdir, world)
    finally:
        distributed.teardown()


def _train_stages(args: argparse.Namespace, stages: tuple[str, ...], argv: list[str] | None, ckdir: str,
                  world: distributed.World) -> int:
    exp = _experiment(args)
    command = "semcom " + shlex.join(argv if argv is not None else sys.argv[1:])
    if world.enabled:
        command = f"torchrun --nproc-per-node {world.size} --no-python {command}"
    progress = not args.no_progress and world.is_main
    t0 = time.perf_counter()
    data = make_data(exp, progress=progress)
    info = train_all(exp, ckdir, stages, retrain=args.retrain or len(stages) == 1,
                     command=command, progress=progress, data=data,
                     store_dtype=torch.float16 if args.fp16 else None)
    if not world.is_main:
        return 0
    for stage, meta in info.items():
        last = meta["history"][-1] if meta["history"] else {}
        val = last.get("val_acc", float("nan"))
        print(f"[train] {stage:9s} {meta['train_seconds']:7.1f} s  val_acc {val:.4f}  "
              f"-> {checkpoint_path(ckdir, stage)}")
    print(f"[train] total {time.perf_counter() - t0:.1f} s (data generation included)"
          + (f", {world.size} processes ({world.backend})" if world.enabled else ""))
    if getattr(args, "eval", False):
        rows = evaluate(exp, ckdir, args.out, tuple(args.snrs), tuple(args.channels), data=data,
                        n_test=args.n_test, progress=progress,
                        train_info={s: {"seconds": m["train_seconds"], "history": m["history"]}
                                    for s, m in info.items()})
        _print_results(rows, args.out)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .checkpoint import load_receiver

    if args.replot:
        print("wrote " + ", ".join(map(str, replot(args.out))))
        return 0
    torch.set_num_threads(args.threads)
    if not Path(args.checkpoints).is_dir():
        raise UsageError(f"--checkpoints {args.checkpoints}: no such directory")
    _, doc = load_receiver(checkpoint_path(args.checkpoints, "receiver"))
    exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])  # the data the checkpoints were trained on
    rows = evaluate(exp, args.checkpoints, args.out, tuple(args.snrs), tuple(args.channels),
                    n_test=args.n_test, progress=not args.no_progress)
    _print_results(rows, args.out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """``semcom train ...`` and ``semcom eval ...``."""
    from semcom.jscc import commands as jscc_commands

    train = subparsers.add_parser("train", help="train the agents (small default) or DeepJSCC")
    tsub = train.add_subparsers(dest="train_what", required=True)
    for name, help_text in (("agents", "all stages of the small default, then evaluate"),
                            *((c, f"stage {s} only (retrains it)") for c, s in STAGE_COMMANDS.items())):
        p = tsub.add_parser(name, help=help_text)
        _experiment_args(p)
        p.add_argument("--checkpoints", default=str(DEFAULT_TRAIN_DIR),
                       help="directory the checkpoints are written to (default: %(default)s)")
        p.add_argument("--retrain", action="store_true", help="train stages whose checkpoints exist")
        p.add_argument("--fp16", action="store_true", help="store the weights as float16 (shipped files)")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
        if name == "agents":
            p.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES),
                           help="stages to train (default: %(default)s)")
            p.add_argument("--no-eval", dest="eval", action="store_false", help="skip the evaluation")
            _eval_args(p)
            p.set_defaults(func=lambda a: _train(a, tuple(a.stages), None))
        else:
            stage = STAGE_COMMANDS[name]
            p.set_defaults(func=lambda a, s=stage: _train(a, (s,), None))
    j = tsub.add_parser("jscc", help="train DeepJSCC (semcom jscc --retrain, without the evaluation)")
    jscc_commands.add_arguments(j)
    j.set_defaults(func=jscc_commands.train_only)

    ev = subparsers.add_parser("eval", help="evaluate trained agents or DeepJSCC")
    esub = ev.add_subparsers(dest="eval_what", required=True)
    p = esub.add_parser("agents", help="accuracy of every method vs SNR (CSV + PNG + summary.json)")
    p.add_argument("--checkpoints", default=str(SHIPPED_CHECKPOINTS),
                   help="directory of the trained checkpoints (default: the shipped small default)")
    p.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--replot", action="store_true",
                   help="evaluate nothing: redraw the PNGs from --out's results.csv and summary.json")
    _eval_args(p)
    p.set_defaults(func=_eval)
    j = esub.add_parser("jscc", help="evaluate a DeepJSCC checkpoint against JPEG (no training)")
    jscc_commands.add_arguments(j)
    j.set_defaults(func=jscc_commands.eval_only)


def main(argv: list[str] | None = None) -> int:
    from semcom.cli import build_parser

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)
