"""Training of the partial-sampling pair and of the whole-image baseline, on ``semcom.training.fit``.

Scenes are generated on the fly from the train split's digits (a fresh canvas, place and clutter for
every item, drawn from ``fit``'s seeded generator), one source size per batch, cycling through all
sizes, so one model serves every source size. The patch pair trains end to end through the channel:
the classification loss after every round plus the relevance loss of the sampling scores; a share
``random_share`` of the batches samples random places (so the same receiver also serves the
random-places baseline, and the scores see states they would not reach themselves).

Checkpoints are ``semcom.checkpoint`` files of kinds ``semcom.partial`` and ``semcom.partial.jscc``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semcom import checkpoint as ckpt
from semcom.data.mnist import mnist_digits
from semcom.training import fit

from .episode import run_episode
from .model import PartialConfig, PartialSampler, WholeImageJSCC
from .scenes import make_scenes

KIND = "semcom.partial"
JSCC_KIND = "semcom.partial.jscc"
Tensor = torch.Tensor


@dataclass
class TrainConfig:
    """What ``fit`` reads, plus the episode settings (stored in the checkpoint's metadata)."""

    epochs: int = 8
    batch_size: int = 48
    steps_per_epoch: int = 100
    lr: float = 2e-3
    lr_min: float = 5e-5
    seed: int = 0
    max_seconds: float | None = None
    sizes: tuple[int, ...] = (28, 56, 84, 112)
    rounds: int = 4
    agents: int = 2
    snr_db: tuple[float, float] = (5.0, 15.0)    # training SNR, uniform per scene (dB)
    random_share: float = 0.3
    relevance_weight: float = 1.0
    clutter: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _snr(n: int, cfg: TrainConfig, gen: torch.Generator) -> Tensor:
    lo, hi = cfg.snr_db
    return lo + (hi - lo) * torch.rand(n, generator=gen)


def _fit_on_scenes(model: nn.Module, cfg: TrainConfig, channel: nn.Module,
                   loss_of: Callable[[Any, torch.Generator, Callable[[], Tensor]], Tensor], *, desc: str,
                   progress: bool) -> list[dict]:
    """The shared loop of both models: each step draws a batch of scenes at the next canvas size (sizes
    in turn), ``loss_of(scenes, generator, draw_snr)`` gives the loss (``draw_snr()`` draws the batch's
    SNRs when the loss needs them, so each model keeps its own order of random draws), one Adam step
    through ``fit``."""
    digits, labels = mnist_digits("train")
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    channel.reseed(cfg.seed)
    counter = {"step": 0}

    def step(idx: Tensor, gen: torch.Generator) -> float:
        size = cfg.sizes[counter["step"] % len(cfg.sizes)]
        counter["step"] += 1
        scenes = make_scenes(digits, labels, size, idx.numel(), gen, clutter=cfg.clutter)
        model.train()
        loss = loss_of(scenes, gen, lambda: _snr(idx.numel(), cfg, gen))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    history = fit(opt, cfg.steps_per_epoch * cfg.batch_size, cfg, step, progress=progress, desc=desc)
    model.eval()
    return history


def train_partial(pcfg: PartialConfig, cfg: TrainConfig, channel: nn.Module, *, progress: bool = True
                  ) -> tuple[PartialSampler, list[dict]]:
    """Train edge encoder + receiver through ``channel`` (differentiable); returns the model and history."""
    torch.manual_seed(cfg.seed)
    model = PartialSampler(pcfg)

    def loss_of(scenes: Any, gen: torch.Generator, draw_snr: Callable[[], Tensor]) -> Tensor:
        mode = "random" if float(torch.rand((), generator=gen)) < cfg.random_share else "guided"
        ep = run_episode(model.edge, model.receiver, scenes, rounds=cfg.rounds, agents=cfg.agents, mode=mode,
                         channel=channel, generator=gen, snr_db=draw_snr(), train=True)
        cls = torch.stack([F.cross_entropy(lg, scenes.label) for lg in ep.logits]).mean()
        aux = torch.stack(ep.relevance_loss).mean() + torch.stack(ep.location_loss).mean()
        return cls + cfg.relevance_weight * aux + 10.0 * torch.stack(ep.decode_loss).mean()

    history = _fit_on_scenes(model, cfg, channel, loss_of, progress=progress,
                             desc=f"partial {pcfg.patch}x{pcfg.patch} seed {cfg.seed}")
    return model, history


def train_jscc(k_max: int, cfg: TrainConfig, channel: nn.Module, budgets: tuple[int, ...], *,
               progress: bool = True) -> tuple[WholeImageJSCC, list[dict]]:
    """Train the whole-image baseline at every budget in ``budgets`` (one drawn per batch)."""
    torch.manual_seed(cfg.seed)
    model = WholeImageJSCC(k_max)

    def loss_of(scenes: Any, gen: torch.Generator, draw_snr: Callable[[], Tensor]) -> Tensor:
        k = budgets[int(torch.randint(0, len(budgets), (1,), generator=gen))]
        return F.cross_entropy(model(scenes.image, k, channel, snr_db=draw_snr()), scenes.label)

    history = _fit_on_scenes(model, cfg, channel, loss_of, progress=progress,
                             desc=f"whole-image JSCC seed {cfg.seed}")
    return model, history


def save_partial(path: str | Path, model: PartialSampler, meta: dict[str, Any]) -> tuple[Path, Path]:
    return ckpt.save(path, KIND, model, model.cfg.to_dict(), meta)


def load_partial(path: str | Path, expect: PartialConfig | None = None) -> tuple[PartialSampler, dict]:
    """Rebuild and load a ``semcom.partial`` checkpoint (``CheckpointError`` on any fault or mismatch)."""
    doc = ckpt.read_doc(path, KIND, "a partial-sampling checkpoint", PartialConfig.from_dict)
    cfg = PartialConfig.from_dict(doc["config"])
    if expect is not None and cfg != expect:
        raise ckpt.CheckpointError(f"{path}: config {cfg} does not match the expected {expect}")
    return ckpt.load_weights(path, doc, PartialSampler(cfg)), doc


def save_jscc(path: str | Path, model: WholeImageJSCC, meta: dict[str, Any]) -> tuple[Path, Path]:
    return ckpt.save(path, JSCC_KIND, model, {"k_max": model.k_max}, meta)


def load_jscc(path: str | Path) -> tuple[WholeImageJSCC, dict]:
    def check(c: dict) -> None:
        if set(c) != {"k_max"} or int(c["k_max"]) < 1:
            raise ValueError(f"expected {{'k_max': int >= 1}}, got {c}")

    doc = ckpt.read_doc(path, JSCC_KIND, "a whole-image JSCC baseline checkpoint", check)
    return ckpt.load_weights(path, doc, WholeImageJSCC(int(doc["config"]["k_max"]))), doc
