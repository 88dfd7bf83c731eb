"""The one training loop of the project: shuffled mini-batches, cosine learning rate, a wall-time cap,
a progress bar, per-epoch records, and resume from a saved training state.

Each model family supplies only its ``step(indices, generator) -> loss`` (one optimiser step on the items
``indices``) and, optionally, ``evaluate() -> dict`` run after every epoch. Used by DeepJSCC
(``semcom.jscc.train``) and the agents (``semcom.agents.train``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from semcom import distributed
from semcom.progress import progress_bar

log = logging.getLogger(__name__)
Tensor = torch.Tensor
StepFn = Callable[[Tensor, torch.Generator], float]


class Schedule(Protocol):
    """What the loop reads from a training config (both ``jscc.train.TrainConfig`` and the agents')."""

    epochs: int
    batch_size: int
    lr: float
    lr_min: float
    seed: int
    max_seconds: float | None


def cosine_lr(cfg: Schedule, done: float) -> float:
    """Learning rate at fraction ``done`` (0..1) of the run: cosine from ``cfg.lr`` to ``cfg.lr_min``.

    Why not ``torch.optim.lr_scheduler.CosineAnnealingLR``: it counts steps, while ``done`` here is the
    larger of the steps' and the wall time's share of the run (``cfg.max_seconds``), on rank 0's clock
    under a process group and resumed from the saved elapsed time; one formula of ``done`` serves all
    three (the review's 'hand-computed cosine schedule')."""
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


def _fmt(rec: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items())


def fit(opt: torch.optim.Optimizer, n_items: int, cfg: Schedule, step: StepFn, *,
        evaluate: Callable[[], dict[str, float]] | None = None, progress: bool = True, desc: str = "epoch",
        resume: dict[str, Any] | None = None,
        on_epoch_end: Callable[[list[dict], dict[str, Any]], None] | None = None) -> list[dict]:
    """Run ``cfg.epochs`` epochs of ``step`` over ``n_items`` items; returns one record per epoch.

    Records: ``epoch``, ``loss`` (mean of the step losses), ``seconds`` (cumulative training wall time),
    ``lr`` (at the epoch's end) and whatever ``evaluate()`` returns. The run stops early once
    ``cfg.max_seconds`` of training time are spent (the cosine schedule then follows the wall time, so
    it still ends at ``lr_min``).

    ``on_epoch_end(history, train_state)`` is called after every epoch with a state of tensors and plain
    containers (optimizer state, generator state, history, elapsed time) that ``resume=`` accepts to
    continue the same run: the batches, learning rates and results are those of an uninterrupted run.

    Under a process group (``torchrun``, ``semcom.distributed``) ``step`` must come from
    ``distributed.data_parallel_step``: every process draws the same global batch of ``cfg.batch_size``
    items and the step trains on its rank's share of it; the step's own random draws come from a
    generator of its rank (``distributed.rank_seed``), the permutation generator stays shared;
    the wall time that drives the schedule and the stop is rank 0's; progress, ``evaluate`` and
    ``on_epoch_end`` run on rank 0 only (the record is broadcast). The first epoch's batches are those
    of one process; from the second on the permutations differ when the step draws random numbers (in
    one process its draws advance the permutation generator), so the runs agree in distribution then.
    """
    if n_items <= 0:
        raise ValueError("nothing to train on (0 items)")
    world = distributed.world()
    if world.enabled and not distributed.is_data_parallel(step):
        raise ValueError(f"{desc}: this training step does not average its gradients over the "
                         f"{world.size} processes (build it with semcom.distributed.data_parallel_step) "
                         "or run it in one process")
    gen = torch.Generator().manual_seed(cfg.seed)
    # In one process the step draws from the permutation generator (as it always has); with several,
    # each rank draws its own items' randomness and the shared permutation stays in step.
    step_gen = torch.Generator().manual_seed(distributed.rank_seed(cfg.seed, world)) if world.enabled else gen
    progress = progress and world.is_main
    history: list[dict] = []
    start_epoch, spent = 0, 0.0
    if resume is not None:
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        history = [dict(h) for h in resume["history"]]
        start_epoch, spent = int(resume["epoch"]), float(resume["seconds"])
    steps = math.ceil(n_items / cfg.batch_size)
    t0 = time.perf_counter() - spent
    stopped = resume is not None and bool(resume.get("stopped", False))
    for epoch in range(start_epoch, cfg.epochs):
        if stopped:
            break
        perm = torch.randperm(n_items, generator=gen)
        losses: list[float] = []
        lr = cfg.lr
        bar = progress_bar(range(steps), desc=f"{desc} {epoch + 1}/{cfg.epochs}", progress=progress,
                           leave=False)
        for i in bar:
            # Progress through the run: by steps, or by wall time when that is the binding limit.
            done = (epoch * steps + i) / (cfg.epochs * steps)
            if cfg.max_seconds is not None:
                # Every process follows rank 0's clock: the same learning rate, the same last step.
                elapsed = distributed.broadcast(time.perf_counter() - t0, world)
                done = max(done, elapsed / cfg.max_seconds if cfg.max_seconds > 0 else 1.0)
            lr = cosine_lr(cfg, done)
            for group in opt.param_groups:
                group["lr"] = lr * group.get("lr_scale", 1.0)
            losses.append(step(perm[i * cfg.batch_size:(i + 1) * cfg.batch_size], step_gen))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if cfg.max_seconds is not None and distributed.broadcast(
                    time.perf_counter() - t0 > cfg.max_seconds, world):
                stopped = True
                break
        rec: dict[str, Any] = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
                               "seconds": time.perf_counter() - t0, "lr": lr}
        if evaluate is not None:
            rec.update(distributed.broadcast(evaluate() if world.is_main else None, world))
        history.append(rec)
        if progress:
            tqdm.write(f"{desc}: {_fmt(rec)}")
        elif world.is_main:
            log.info("%s: %s", desc, _fmt(rec))
        if on_epoch_end is not None and world.is_main:
            on_epoch_end(history, {"optimizer": opt.state_dict(), "generator": gen.get_state(),
                                   "history": [dict(h) for h in history], "epoch": epoch + 1,
                                   "seconds": rec["seconds"], "stopped": stopped})
    return history
