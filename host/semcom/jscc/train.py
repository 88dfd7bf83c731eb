"""Training and PSNR evaluation of the DeepJSCC codec over the torch channels."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from semcom.training import cosine_lr, fit

from .model import DeepJSCC

__all__ = ["TrainConfig", "cosine_lr", "evaluate_psnr", "psnr_per_image", "train", "train_step"]

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
    ``val_images``), seconds (cumulative wall time), lr.
    """
    torch.manual_seed(cfg.seed)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    lo, hi = cfg.snr_db

    def step(idx: Tensor, gen: torch.Generator) -> float:
        x = images[idx]
        if cfg.hflip:
            flip = torch.rand(x.shape[0], generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        snr = lo + (hi - lo) * torch.rand(x.shape[0], generator=gen)
        return train_step(model, opt, x, channel, snr)

    def evaluate() -> dict[str, float]:
        psnr = evaluate_psnr(model, val_images, channel, val_snr_db, seed=cfg.seed)
        return {"val_psnr": float(psnr.mean())}

    history = fit(opt, images.shape[0], cfg, step, evaluate=evaluate if val_images is not None else None,
                  progress=progress)
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
