"""Training and PSNR evaluation of the DeepJSCC codec over the torch channels."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .model import DeepJSCC

Tensor = torch.Tensor


@dataclass
class TrainConfig:
    """Optimisation settings. The SNR of every training sample is drawn uniformly (dB) from ``snr_db``,
    so one model serves the whole evaluated SNR range (the paper trains one model per SNR)."""

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    lr_min: float = 1e-5               # cosine decay lr -> lr_min over the run (epochs or max_seconds)
    snr_db: tuple[float, float] = (0.0, 20.0)
    seed: int = 0
    max_seconds: float | None = None   # stop after this wall time (checked between batches)
    hflip: bool = True                 # random horizontal flips (cheap augmentation for small sets)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["snr_db"] = list(self.snr_db)
        return d


def psnr_per_image(x: Tensor, x_hat: Tensor) -> Tensor:
    """(B, C, H, W), (B, C, H, W) in [0, 1] -> (B,) PSNR in dB (peak 1)."""
    mse = ((x - x_hat) ** 2).reshape(x.shape[0], -1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse.clamp_min(1e-12))


def cosine_lr(cfg: TrainConfig, done: float) -> float:
    """Learning rate at fraction ``done`` (0..1) of the run: cosine from ``cfg.lr`` to ``cfg.lr_min``."""
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1.0 + math.cos(math.pi * min(max(done, 0.0), 1.0)))


def train_step(model: DeepJSCC, opt: torch.optim.Optimizer, x: Tensor, channel: nn.Module,
               snr_db: Tensor) -> float:
    """One Adam step on MSE. x (B, 3, H, W), snr_db (B,). Returns the loss before the step."""
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = nn.functional.mse_loss(model(x, channel, snr_db=snr_db), x)
    loss.backward()
    opt.step()
    return float(loss.detach())


def train(model: DeepJSCC, images: Tensor, channel: nn.Module, cfg: TrainConfig,
          val_images: Tensor | None = None, val_snr_db: float = 10.0, progress: bool = True) -> list[dict]:
    """Train ``model`` in place on ``images`` (N, 3, H, W) in [0, 1] through ``channel``.

    Returns one dict per epoch: epoch, loss (mean training MSE), val_psnr (dB at ``val_snr_db``, if
    ``val_images``), seconds (cumulative wall time).
    """
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lo, hi = cfg.snr_db
    history: list[dict] = []
    t0 = time.perf_counter()
    n = images.shape[0]
    steps = math.ceil(n / cfg.batch_size)
    stop = False
    for epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=gen)
        losses = []
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not progress, leave=False)
        for i in bar:
            x = images[perm[i * cfg.batch_size:(i + 1) * cfg.batch_size]]
            if cfg.hflip:
                flip = torch.rand(x.shape[0], generator=gen) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            # Progress through the run: by steps, or by wall time when that is the binding limit.
            done = (epoch * steps + i) / (cfg.epochs * steps)
            if cfg.max_seconds is not None:
                done = max(done, (time.perf_counter() - t0) / cfg.max_seconds)
            for group in opt.param_groups:
                group["lr"] = cosine_lr(cfg, done)
            snr = lo + (hi - lo) * torch.rand(x.shape[0], generator=gen)
            losses.append(train_step(model, opt, x, channel, snr))
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
            if cfg.max_seconds is not None and time.perf_counter() - t0 > cfg.max_seconds:
                stop = True
                break
        rec = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": time.perf_counter() - t0}
        if val_images is not None:
            val = evaluate_psnr(model, val_images, channel, val_snr_db, seed=cfg.seed)
            rec["val_psnr"] = float(val.mean())
        history.append(rec)
        if progress:
            tqdm.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in rec.items()))
        if stop:
            break
    model.eval()
    return history


@torch.no_grad()
def evaluate_psnr(model: DeepJSCC, images: Tensor, channel: nn.Module | None, snr_db: float,
                  batch_size: int = 256, seed: int | None = 0) -> np.ndarray:
    """Per-image PSNR (N,) in dB of ``images`` (N, 3, H, W) sent through ``channel`` at ``snr_db``.

    The channel's generator is reseeded with ``seed`` first (``None``: left as is), so evaluations are
    reproducible and every model sees the same noise and fading draws.
    """
    was_training = model.training
    model.eval()
    if channel is not None and seed is not None:
        channel.reseed(seed)
    out = []
    for i in range(0, images.shape[0], batch_size):
        x = images[i:i + batch_size]
        out.append(psnr_per_image(x, model(x, channel, snr_db=None if channel is None else float(snr_db))))
    model.train(was_training)
    return torch.cat(out).cpu().numpy()
