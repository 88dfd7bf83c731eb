"""Reconstruction of the transmitted grid: one batched matrix operation per subcarrier.

The same functions serve the host (torch, possibly on a GPU), the differentiable training channel
(torch, autograd) and the GNU Radio `ofat_equalizer` block (numpy): ZF and MMSE are written once
against the operations numpy and torch share. Shapes, batched over any leading dims (normally K):

    H: (..., Nr, Nt) complex     Y: (..., Nr, S) complex     ->    X_hat: (..., Nt, S) complex

* ZF (Nr >= Nt): X = (H^H H)^-1 H^H Y, the least-squares "x = H^+ y" of the paper.
* MMSE: X = (H^H H + sigma^2/Es I)^-1 H^H Y with Es the energy per antenna and element (1/Nt in OFAT).
  Never worse than ZF in mean squared error, and defined for Nr < Nt as well.
* Sparse (Nr < Nt, compressed sensing): batched orthogonal matching pursuit per received vector,
  stopping when the residual falls to the noise level or at `max_sparsity` atoms (torch).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from .frame import OfatLayout, unmap_values

Method = Literal["zf", "mmse", "sparse"]


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def _hermitian(a: Any) -> Any:
    return a.conj().swapaxes(-1, -2)


def _solve(a: Any, b: Any) -> Any:
    if _is_torch(a):
        import torch

        return torch.linalg.solve(a, b)
    return np.linalg.solve(a, b)


def _eye_like(a: Any, n: int) -> Any:
    if _is_torch(a):
        import torch

        return torch.eye(n, dtype=a.dtype, device=a.device)
    return np.eye(n, dtype=a.dtype)


def zf(h: Any, y: Any) -> Any:
    """Zero forcing (Nr >= Nt): (..., Nr, Nt), (..., Nr, S) -> (..., Nt, S)."""
    n_rx, n_tx = h.shape[-2], h.shape[-1]
    if n_rx < n_tx:
        raise ValueError(f"ZF needs Nr >= Nt (got Nr={n_rx}, Nt={n_tx}); use 'mmse' or 'sparse'")
    hh = _hermitian(h)
    return _solve(hh @ h, hh @ y)


def mmse(h: Any, y: Any, noise_var: Any, signal_var: float) -> Any:
    """Linear MMSE: (..., Nr, Nt), (..., Nr, S), noise variance (scalar or (...,)) -> (..., Nt, S)."""
    n_tx = h.shape[-1]
    hh = _hermitian(h)
    ratio = noise_var / signal_var
    if _is_torch(h):
        import torch

        ratio = torch.as_tensor(ratio, dtype=h.real.dtype, device=h.device)
    else:
        ratio = np.asarray(ratio, dtype=h.real.dtype)
    reg = ratio[..., None, None] * _eye_like(h, n_tx)
    return _solve(hh @ h + reg, hh @ y)


def sparse_omp(h: Any, y: Any, noise_var: float, max_sparsity: int | None = None) -> Any:
    """Orthogonal matching pursuit for each received vector, batched (torch; numpy in -> numpy out).

    Each column y[..., :, s] is explained by at most `max_sparsity` (default Nr - 1) columns of H;
    atoms are added while the residual energy exceeds Nr * noise_var (what noise alone leaves).
    """
    import torch

    numpy_in = not _is_torch(h)
    ht = torch.as_tensor(h) if numpy_in else h
    yt = torch.as_tensor(y) if numpy_in else y
    batch = ht.shape[:-2]
    n_rx, n_tx = ht.shape[-2], ht.shape[-1]
    n_sym = yt.shape[-1]
    k = max(1, min(max_sparsity or n_rx - 1, n_rx, n_tx))
    # One problem per (batch, symbol): H (B, Nr, Nt), y (B, Nr).
    hb = ht.reshape(-1, n_rx, n_tx).repeat_interleave(n_sym, dim=0)
    yb = yt.reshape(-1, n_rx, n_sym).permute(0, 2, 1).reshape(-1, n_rx)
    col_norm = torch.linalg.vector_norm(hb, dim=1).clamp_min(1e-12)  # (B, Nt)
    chosen = torch.zeros(hb.shape[0], n_tx, dtype=torch.bool, device=hb.device)
    x = torch.zeros(hb.shape[0], n_tx, dtype=hb.dtype, device=hb.device)
    residual = yb
    active = torch.ones(hb.shape[0], dtype=torch.bool, device=hb.device)
    threshold = n_rx * float(noise_var)
    for _ in range(k):
        active = active & (residual.abs().pow(2).sum(dim=1) > threshold)
        if not bool(active.any()):
            break
        corr = (hb.conj() * residual[:, :, None]).sum(dim=1).abs() / col_norm
        corr = corr.masked_fill(chosen, -1.0)
        pick = corr.argmax(dim=1)
        chosen = chosen | (active[:, None] & torch.nn.functional.one_hot(pick, n_tx).bool())
        # Least squares on the support: zero the unchosen columns, regularise them to 0.
        mask = chosen.to(hb.real.dtype)
        hs = hb * mask[:, None, :]
        gram = hs.conj().transpose(1, 2) @ hs + torch.diag_embed((1.0 - mask).to(hb.dtype))
        x_new = torch.linalg.solve(gram, (hs.conj().transpose(1, 2) @ yb[:, :, None]))[..., 0]
        x = torch.where(active[:, None], x_new, x)
        residual = yb - (hb @ x[:, :, None])[..., 0]
    out = x.reshape(*batch, n_sym, n_tx).swapaxes(-1, -2)
    return out.numpy() if numpy_in else out


def reconstruct(h: Any, y: Any, method: Method = "zf", noise_var: float | Any = 0.0,
                signal_var: float = 1.0, max_sparsity: int | None = None) -> Any:
    """Dispatch by method name; see the module docstring for shapes."""
    if method == "zf":
        return zf(h, y)
    if method == "mmse":
        return mmse(h, y, noise_var, signal_var)
    if method == "sparse":
        return sparse_omp(h, y, float(np.mean(np.asarray(noise_var))), max_sparsity)
    raise ValueError(f"unknown reconstruction method {method!r}; choose zf, mmse or sparse")


def zf_nmse_bound(snr_db: float, n_tx: int, n_rx: int) -> float:
    """Genie-CSI ZF NMSE under i.i.d. Rayleigh fading: Nt / (SNR (Nr - Nt)) (complex payload).

    SNR = total transmit power over noise power per receive antenna. Infinite for Nr <= Nt, where the
    mean does not exist (report the median or use MMSE). Real mode halves it (the imaginary part of the
    noise is discarded).
    """
    if n_rx <= n_tx:
        return float("inf")
    return n_tx / (10 ** (snr_db / 10) * (n_rx - n_tx))


def reconstruct_payload(layout: OfatLayout, h: Any, y: Any, *, shape: tuple[int, ...] | list[int],
                        scale: float, noise_var: float, method: Method = "zf",
                        max_sparsity: int | None = None) -> Any:
    """A received frame -> the payload tensor (numpy or torch, as h and y are).

    h (K, Nr, Nt), y (K, Nr, S) as `ofat_rx` emits them; shape and scale from the frame header.
    The one path from a received grid to values, shared by the host and the `ofat_equalizer` block.
    """
    x_hat = reconstruct(h, y, method, noise_var, signal_var=1.0 / layout.n_tx, max_sparsity=max_sparsity)
    if layout.clip_ratio_db:
        from semcom.ofat.papr import bussgang_gain  # clipped data arrive scaled by the Bussgang gain

        scale = scale * bussgang_gain(layout.clip_ratio_db)
    shape = tuple(int(d) for d in shape)
    return unmap_values(layout, x_hat, math.prod(shape), scale).reshape(shape)
