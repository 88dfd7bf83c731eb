"""A conditional-GAN channel learned from captures: a channel with a gradient for one that has none.

After Ye, Li and Juang ("Deep learning-based end-to-end wireless communication systems with conditional
GANs as unknown channels", IEEE TWC 2020): the generator G(x, condition, noise) -> y_hat stands in for the
channel, the discriminator D(x, y, condition) tells real received values from generated ones, and the
condition is side information the receiver has. Here the unit is one OFAT resource element (RE): the
``2 Nt`` reals that share a subcarrier and an OFDM symbol (``semcom.ofat.frame.map_values`` puts values
``[2 Nt r, 2 Nt (r + 1))`` of a frame on RE ``r``: subcarrier ``r mod K``, symbol ``r // K``).

Condition of an RE, from the frame's side information (the receiver's channel estimate ``H_est`` on that
subcarrier, its noise-variance estimate ``sigma^2`` and the header scale ``s``), i.e. what the
equaliser leaves if ``H_est`` were exact:

* ``A = W H_est`` (Nt x Nt complex; MMSE shrinkage and cross-talk, identity for ZF), with
  ``W = (H^H H + sigma^2 Nt I)^-1 H^H`` (MMSE, signal energy 1/Nt per antenna) or ``(H^H H)^-1 H^H`` (ZF),
* ``C = sigma^2 W W^H / s^2``: the noise covariance of the equalised values (ZF noise enhancement on
  weak subcarriers), as log variances and the correlation of the antenna streams,
* ``log sigma^2`` and the RE's position (subcarrier, symbol) in the frame.

Generator: ``y_hat = A x + sqrt(diag C / 2) * exp(S(condition)) * (eps_0 + MLP(x, condition, eps))``
with ``eps`` standard normal noise; the last layers of S and the MLP start at zero, so before training G
is the receiver's own Gaussian model of its error. ``fit`` first sets the error scale S by Gaussian
maximum likelihood (``mle_epochs``), then the adversarial epochs learn what remains (estimation error,
residual CFO, non-Gaussian tails, the dependence on x).

``CGANChannel`` is a channel of the ``semcom.channels`` kind: forward(z (B, *dims) real, snr_db=None |
float | (B,) tensor) -> (B, *dims) real, a seeded ``torch.Generator`` (``reseed``), exact gradient w.r.t.
z through G. Each sample draws the side information of one captured frame (a "bank" kept per SNR
setting; the setting nearest to the sample's SNR is used) from its generator, as a new frame on the real
link would bring a new channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from semcom.adapt.captures import CaptureError, Captures, header_scale
from semcom.ofat.frame import OfatLayout
from semcom.training import fit

Tensor = torch.Tensor


def subcarrier_stats(h: Tensor, noise_var: Tensor, equalizer: str) -> tuple[Tensor, Tensor]:
    """Per-subcarrier equaliser response and grid-domain noise covariance.

    h: (F, K, Nr, Nt) complex channel estimates, noise_var: (F,) real.
    Returns A (F, K, Nt, Nt) complex (``W H``) and Cg (F, K, Nt, Nt) complex (``sigma^2 W W^H``).
    """
    n_tx = h.shape[-1]
    hh = h.conj().transpose(-1, -2)
    gram = hh @ h
    nv = noise_var.to(h.real.dtype).reshape(-1, 1, 1, 1)
    eye = torch.eye(n_tx, dtype=h.dtype, device=h.device)
    if equalizer == "mmse":
        gram = gram + nv * n_tx * eye  # signal energy 1/Nt per antenna, as reconstruct_payload uses
    elif equalizer != "zf":
        raise ValueError(f"equalizer must be 'zf' or 'mmse', got {equalizer!r}")
    w = torch.linalg.solve(gram, hh)  # (F, K, Nt, Nr)
    return w @ h, nv * (w @ w.conj().transpose(-1, -2))


def n_features(n_tx: int) -> int:
    """Length of an RE's condition: A (2 Nt^2), log var (Nt), stream correlations, log sigma^2, 2 pos."""
    return 2 * n_tx * n_tx + n_tx + n_tx * (n_tx - 1) + 3


def re_condition(a: Tensor, cg: Tensor, noise_var: Tensor, scale: Tensor, n_re: int
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Per-RE equaliser response, noise std and condition vector for frames of ``n_re`` REs.

    a, cg: (F, K, Nt, Nt) complex (``subcarrier_stats``), noise_var (F,), scale (F,) (may carry a
    gradient). Returns A (F, R, Nt, Nt) complex, std (F, R, 2 Nt) real (per real component, value
    domain) and cond (F, R, n_features) real, R = n_re.
    """
    f, k, n_tx, _ = a.shape
    idx = torch.arange(n_re, device=a.device)
    sub, sym = idx % k, idx // k
    a_re, c_re = a[:, sub], cg[:, sub]  # (F, R, Nt, Nt)
    var = torch.diagonal(c_re, dim1=-2, dim2=-1).real.clamp_min(1e-12)  # (F, R, Nt) grid domain
    var_v = var / scale.reshape(f, 1, 1) ** 2
    std = torch.sqrt(var_v / 2).repeat_interleave(2, dim=-1)  # re/im of each antenna
    iu = torch.triu_indices(n_tx, n_tx, 1, device=a.device)
    corr = c_re[..., iu[0], iu[1]] / torch.sqrt(var[..., iu[0]] * var[..., iu[1]])
    n_sym = max(1, math.ceil(n_re / k))
    pos = torch.stack([sub / max(1, k - 1), sym / max(1, n_sym - 1)], -1).to(var.dtype).expand(f, n_re, 2)
    cond = torch.cat([torch.view_as_real(a_re).reshape(f, n_re, -1), torch.log(var_v),
                      torch.view_as_real(corr).reshape(f, n_re, -1),
                      torch.log(noise_var.to(var.dtype)).reshape(f, 1, 1).expand(f, n_re, 1), pos], -1)
    return a_re, std, cond


def apply_response(a: Tensor, x: Tensor) -> Tensor:
    """``A x`` per RE: a (..., Nt, Nt) complex, x (..., 2 Nt) real (re/im pairs) -> (..., 2 Nt) real."""
    xc = torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2).contiguous())
    return torch.view_as_real((a.to(xc.dtype) @ xc.unsqueeze(-1)).squeeze(-1)).reshape(x.shape)


def _mlp(n_in: int, hidden: int, n_out: int, layers: int) -> nn.Sequential:
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(n_in if i == 0 else hidden, hidden), nn.LeakyReLU(0.2)]
    mods.append(nn.Linear(hidden, n_out))
    return nn.Sequential(*mods)


class Generator(nn.Module):
    """G(x, cond, eps): x (..., 2Nt), a (..., Nt, Nt) complex, std (..., 2Nt), cond (..., F),
    eps (..., noise_dim) -> y_hat (..., 2Nt) (the equalised values of an RE)."""

    def __init__(self, n_tx: int, noise_dim: int = 8, hidden: int = 96, layers: int = 2) -> None:
        super().__init__()
        if noise_dim < 2 * n_tx:
            raise ValueError(f"noise_dim must be >= 2 Nt = {2 * n_tx}")
        self.noise_dim = noise_dim
        self.net = _mlp(2 * n_tx + n_features(n_tx) + noise_dim, hidden, 2 * n_tx, layers)
        # Log-scale of the error per real component given the condition (fitted by maximum likelihood
        # before the adversarial epochs, see CGANChannel.fit).
        self.log_scale = _mlp(n_features(n_tx), 32, 2 * n_tx, 1)
        for head in (self.net[-1], self.log_scale[-1]):  # start as the receiver's Gaussian error model
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def forward(self, x: Tensor, a: Tensor, std: Tensor, cond: Tensor, eps: Tensor) -> Tensor:
        u = eps[..., : x.shape[-1]] + self.net(torch.cat([x, cond, eps], -1))
        return apply_response(a, x) + std * torch.exp(self.log_scale(cond)) * u


class Discriminator(nn.Module):
    """D(x, y, cond): x, y (..., 2Nt), a, std, cond as for G -> (...,) logit (real vs generated)."""

    def __init__(self, n_tx: int, hidden: int = 96, layers: int = 2) -> None:
        super().__init__()
        self.net = _mlp(4 * n_tx + n_features(n_tx), hidden, 1, layers)

    def forward(self, x: Tensor, y: Tensor, a: Tensor, std: Tensor, cond: Tensor) -> Tensor:
        r = (y - apply_response(a, x)) / std.clamp_min(1e-6)  # the error in units of the expected std
        return self.net(torch.cat([x, r, cond], -1)).squeeze(-1)


@dataclass
class GanConfig:
    """Adversarial training of the cGAN on RE samples (the ``semcom.training.fit`` schedule)."""

    epochs: int = 4
    mle_epochs: int = 0               # maximum-likelihood epochs of G's error scale before the GAN
    batch_size: int = 512
    lr: float = 1e-3
    lr_min: float = 1e-4
    seed: int = 0
    max_seconds: float | None = None


class CGANChannel(nn.Module):
    """The learned channel: forward(z (B, *dims) real, snr_db=None|float|(B,)) -> (B, *dims) real."""

    def __init__(self, layout: OfatLayout, equalizer: str = "mmse", snr_db: float = 20.0,
                 noise_dim: int = 8, hidden: int = 96, seed: int | None = 0) -> None:
        super().__init__()
        if layout.mode != "complex":
            raise ValueError("CGANChannel models complex-mode OFAT layouts")
        if equalizer not in ("zf", "mmse"):
            raise ValueError(f"equalizer must be 'zf' or 'mmse', got {equalizer!r}")
        self.layout = layout
        self.equalizer = equalizer
        self.snr_db = float(snr_db)
        self.generator_net = Generator(layout.n_tx, noise_dim, hidden)
        self.discriminator = Discriminator(layout.n_tx, hidden)
        self.generator = torch.Generator()
        self.reseed(seed)
        # Side-information bank: per captured frame its setting, sigma^2 and per-subcarrier A, Cg.
        self.bank_snr = torch.zeros(0, dtype=torch.float64)
        self.bank_nv = torch.zeros(0, dtype=torch.float64)
        self.bank_a = torch.zeros(0, layout.n_data_carriers, layout.n_tx, layout.n_tx, dtype=torch.complex64)
        self.bank_cg = torch.zeros_like(self.bank_a)
        self.snr_tolerance_db = 1.0
        self.requires_grad_(False)  # a codec trained through it moves only its own weights; fit() trains

    def reseed(self, seed: int | None) -> None:
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))

    def extra_repr(self) -> str:
        return f"snr_db={self.snr_db}, equalizer={self.equalizer!r}, bank={self.bank_snr.numel()} frames"

    @property
    def re_width(self) -> int:
        return 2 * self.layout.n_tx

    def _check(self, cap: Captures) -> Captures:
        if cap.meta["layout"] != self.layout.to_dict() or cap.meta["equalizer"] != self.equalizer:
            raise CaptureError("captures were made with another layout or equaliser than this channel's")
        cap = cap.only_delivered()
        if cap.n_frames == 0:
            raise CaptureError("no delivered frames in the captures")
        return cap

    def set_bank(self, cap: Captures, replace: bool = False) -> None:
        """Keep the side information of ``cap``'s delivered frames (added to the bank or replacing it)."""
        cap = self._check(cap)
        a, cg = subcarrier_stats(torch.as_tensor(cap.h_est), torch.as_tensor(cap.noise_var), self.equalizer)
        parts = [(torch.as_tensor(cap.snr_setting_db), torch.as_tensor(cap.noise_var), a, cg)]
        if not replace:
            parts.insert(0, (self.bank_snr, self.bank_nv, self.bank_a, self.bank_cg))
        cat = [torch.cat(p) for p in zip(*parts, strict=True)]
        self.bank_snr, self.bank_nv, self.bank_a, self.bank_cg = cat

    def _pick(self, snr: Tensor) -> Tensor:
        """Bank index per sample (B,): a random frame of the setting nearest to each sample's SNR."""
        if self.bank_snr.numel() == 0:
            raise RuntimeError("CGANChannel has no side information yet: call set_bank / fit first")
        settings = torch.unique(self.bank_snr)
        dist = (snr.double()[:, None] - settings[None, :]).abs()
        near = dist.argmin(1)
        if bool((dist.min(1).values > self.snr_tolerance_db).any()):
            raise ValueError(f"no captured side information within {self.snr_tolerance_db} dB of SNR "
                             f"{snr.tolist()} (captured settings: {settings.tolist()})")
        out = torch.empty(snr.shape[0], dtype=torch.long)
        for j, s in enumerate(settings):
            rows = torch.nonzero(self.bank_snr == s).squeeze(1)
            mine = torch.nonzero(near == j).squeeze(1)
            out[mine] = rows[torch.randint(0, rows.numel(), (mine.numel(),), generator=self.generator)]
        return out

    def forward(self, z: Tensor, snr_db: float | Tensor | None = None) -> Tensor:
        if z.is_complex() or z.dim() < 2:
            raise ValueError(f"expected a real (B, ...) tensor, got {tuple(z.shape)} {z.dtype}")
        b = z.shape[0]
        flat = z.reshape(b, -1)
        n = flat.shape[1]
        if n % 2 or n > self.layout.capacity:
            raise ValueError(f"{n} values per sample: must be even and <= {self.layout.capacity}")
        s = torch.as_tensor(self.snr_db if snr_db is None else snr_db, dtype=torch.float64)
        s = s.expand(b) if s.dim() == 0 else s
        if s.shape != (b,):
            raise ValueError(f"snr_db must be a scalar or shape ({b},), got {tuple(s.shape)}")
        idx = self._pick(s.detach().cpu())
        w = self.re_width
        n_re = -(-n // w)
        x = torch.cat([flat, flat.new_zeros(b, n_re * w - n)], 1).reshape(b, n_re, w)
        # The header scale (values -> unit-power grid) with the gradient of the exact normalisation.
        energy = flat.pow(2).sum(1)
        s_q = torch.as_tensor(np.array([header_scale(self.layout, v) for v in flat.detach().cpu().numpy()]),
                              dtype=flat.dtype, device=flat.device)
        scale = s_q * torch.sqrt(energy.detach() / energy.clamp_min(1e-30))
        a, std, cond = re_condition(self.bank_a[idx].to(flat.device), self.bank_cg[idx].to(flat.device),
                                    self.bank_nv[idx].to(flat.device), scale, n_re)
        eps = torch.randn((b, n_re, self.generator_net.noise_dim), generator=self.generator).to(flat)
        y = self.generator_net(x, a, std.to(flat.dtype), cond.to(flat.dtype), eps)
        return y.reshape(b, -1)[:, :n].reshape(z.shape)

    # ---------------------------------------------------------------- training
    def re_samples(self, cap: Captures) -> dict[str, Tensor]:
        """The full REs of ``cap``'s delivered frames as training rows: x, y (M, 2Nt), a, std, cond."""
        cap = self._check(cap)
        w = self.re_width
        n_re = cap.n_values // w  # a partly filled last RE is left out of training
        nv = torch.as_tensor(cap.noise_var)
        a, cg = subcarrier_stats(torch.as_tensor(cap.h_est), nv, self.equalizer)
        a_re, std, cond = re_condition(a, cg, nv, torch.as_tensor(cap.scale), n_re)
        f = cap.n_frames

        def rows(v: np.ndarray) -> Tensor:
            return torch.as_tensor(v[:, : n_re * w]).reshape(f * n_re, w)

        return {"x": rows(cap.x), "y": rows(cap.y),
                "a": a_re.reshape(f * n_re, *a_re.shape[2:]).to(torch.complex64),
                "std": std.reshape(f * n_re, w).float(), "cond": cond.reshape(f * n_re, -1).float()}

    def fit(self, cap: Captures, cfg: GanConfig | None = None, progress: bool = False,
            replace_bank: bool = True) -> list[dict]:
        """Adversarial training on ``cap`` (warm start from the current weights); the bank becomes (or gets)
        ``cap``'s side information. Returns the per-epoch records of ``semcom.training.fit``."""
        cfg = cfg or GanConfig()
        data = self.re_samples(cap)
        self.set_bank(cap, replace=replace_bank)
        g, d = self.generator_net, self.discriminator
        hist: list[dict] = []
        if cfg.mle_epochs:
            hist += self._fit_scale(data, replace(cfg, epochs=cfg.mle_epochs), progress)
        if not cfg.epochs:
            return hist
        # One optimiser, two parameter groups: a parameter without a gradient is skipped by Adam, so
        # the D step and the G step each move only their own network.
        opt = torch.optim.Adam([{"params": g.parameters()}, {"params": d.parameters()}], lr=cfg.lr,
                               betas=(0.5, 0.9))
        bce = nn.functional.binary_cross_entropy_with_logits

        def step(ix: Tensor, gen: torch.Generator) -> float:
            x, y, a, std, cond = (data[k][ix] for k in ("x", "y", "a", "std", "cond"))
            eps = torch.randn(x.shape[0], g.noise_dim, generator=gen)
            opt.zero_grad(set_to_none=True)
            fake = g(x, a, std, cond, eps).detach()
            dr, df = d(x, y, a, std, cond), d(x, fake, a, std, cond)
            loss_d = bce(dr, torch.ones_like(dr)) + bce(df, torch.zeros_like(df))
            loss_d.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            eps = torch.randn(x.shape[0], g.noise_dim, generator=gen)
            df = d(x, g(x, a, std, cond, eps), a, std, cond)
            loss_g = bce(df, torch.ones_like(df))
            loss_g.backward()
            for p in d.parameters():
                p.grad = None
            opt.step()
            return float(loss_d.detach())

        self.requires_grad_(True)
        self.train()
        try:
            hist += fit(opt, data["x"].shape[0], cfg, step, progress=progress, desc="cgan")
        finally:
            self.requires_grad_(False)
            self.eval()
        return hist

    def _fit_scale(self, data: dict[str, Tensor], cfg: GanConfig, progress: bool) -> list[dict]:
        """Gaussian maximum likelihood of G's error scale ``std * exp(log_scale(cond))`` on the real
        errors ``y - A x``: calibrates the level per condition (a GAN's discriminator is a weak judge of
        a few tenths of a dB of variance), leaving the adversarial epochs the shape of the distribution."""
        head = self.generator_net.log_scale
        opt = torch.optim.Adam(head.parameters(), lr=cfg.lr)
        r = (data["y"] - apply_response(data["a"], data["x"])) / data["std"]

        def step(ix: Tensor, gen: torch.Generator) -> float:
            opt.zero_grad(set_to_none=True)
            h = head(data["cond"][ix])
            loss = (h + 0.5 * r[ix] ** 2 * torch.exp(-2 * h)).mean()
            loss.backward()
            opt.step()
            return float(loss.detach())

        head.requires_grad_(True)
        try:
            return fit(opt, r.shape[0], cfg, step, progress=progress, desc="cgan-scale")
        finally:
            self.requires_grad_(False)
