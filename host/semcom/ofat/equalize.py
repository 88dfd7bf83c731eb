"""Reconstruction of the transmitted grid: one batched matrix operation per subcarrier.

The same functions serve the host (torch, possibly on a GPU), the differentiable training channel
(torch, autograd) and the GNU Radio `ofat_equalizer` block (numpy): ZF and MMSE are written once
against the operations numpy and torch share. Shapes, batched over any leading dims (normally K):

    H: (..., Nr, Nt) complex     Y: (..., Nr, S) complex     ->    X_hat: (..., Nt, S) complex

* ZF (Nr >= Nt): X = (H^H H)^-1 H^H Y, the least-squares "x = H^+ y" of the paper.
* MMSE: X = (H^H H + sigma^2/Es I)^-1 H^H Y with Es the energy per antenna and element (1/Nt in OFAT).
  Never worse than ZF in mean squared error, and defined for Nr < Nt as well.
* Channel-estimate error: with H = H_est + E, E i.i.d. of variance `err_var` per element (the receiver's
  LS/denoised estimate error, carried as meta["err_var"]), E x + n is noise of variance
  sigma^2 + err_var * Nt * Es per receive antenna; `mmse` / `lmmse` fold it into the regularisation.
  `mmse` returns the MSE-optimal (biased, shrunk) estimate; `lmmse` divides by the per-stream gain
  d = diag(W H_est) as Sionna's LMMSE equaliser does, returning the unbiased x_hat and the effective
  noise variance per stream no_eff = Es (1/d - 1).
* Real mode (the paper's amplitudes, x real): the widely linear detectors `zf_real` / `mmse_real` work
  on the stacked real system [Re y; Im y] = [Re H; Im H] x + [Re n; Im n] (2Nr real equations, noise
  sigma^2/2 per real dimension), so they separate up to 2*Nr real streams: Nr < Nt <= 2*Nr needs no
  sparse recovery. A complex detector followed by Re() wastes half the equations.
* Sparse (Nr < Nt, compressed sensing): batched orthogonal matching pursuit per received vector,
  stopping when the residual falls to the noise level or at `max_sparsity` atoms (torch).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from .clipping import bussgang_gain
from .frame import OfatLayout, unmap_values

Method = Literal["zf", "mmse", "lmmse", "sparse"]


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


def _normal_equations(h: Any, y: Any, real: bool = False) -> tuple[Any, Any]:
    """The least-squares system of every detector: (H^H H, H^H Y), or (A^T A, A^T b) on the stacked real
    system when `real` (`_stack_real`). (..., Nr, Nt), (..., Nr, S) -> (..., Nt, Nt), (..., Nt, S)."""
    if real:
        a, b = _stack_real(h, y)
        at = a.swapaxes(-1, -2)
        return at @ a, at @ b
    hh = _hermitian(h)
    return hh @ h, hh @ y


def _regularised(gram: Any, ratio: Any) -> Any:
    """gram + ratio I, ratio a scalar or one per matrix ((...,)), in gram's real dtype (the MMSE system)."""
    if _is_torch(gram):
        import torch

        ratio = torch.as_tensor(ratio, dtype=gram.real.dtype, device=gram.device)
    else:
        ratio = np.asarray(ratio, dtype=gram.real.dtype)
    return gram + ratio[..., None, None] * _eye_like(gram, gram.shape[-1])


def _check_zf(h: Any, real: bool = False) -> None:
    n_rx, n_tx = h.shape[-2], h.shape[-1]
    if real and 2 * n_rx < n_tx:
        raise ValueError(f"real-mode ZF needs 2*Nr >= Nt (got Nr={n_rx}, Nt={n_tx}); use 'mmse' or 'sparse'")
    if not real and n_rx < n_tx:
        raise ValueError(f"ZF needs Nr >= Nt (got Nr={n_rx}, Nt={n_tx}); use 'mmse' or 'sparse'")


def zf(h: Any, y: Any) -> Any:
    """Zero forcing (Nr >= Nt): (..., Nr, Nt), (..., Nr, S) -> (..., Nt, S)."""
    _check_zf(h)
    return _solve(*_normal_equations(h, y))


def mmse(h: Any, y: Any, noise_var: Any, signal_var: float) -> Any:
    """Linear MMSE: (..., Nr, Nt), (..., Nr, S), noise variance (scalar or (...,)) -> (..., Nt, S)."""
    gram, rhs = _normal_equations(h, y)
    return _solve(_regularised(gram, noise_var / signal_var), rhs)


def _stack_real(h: Any, y: Any) -> tuple[Any, Any]:
    """(..., Nr, Nt), (..., Nr, S) complex -> A (..., 2Nr, Nt), b (..., 2Nr, S) real: [Re; Im]."""
    if _is_torch(h):
        import torch

        return (torch.cat([h.real, h.imag], dim=-2), torch.cat([y.real, y.imag], dim=-2))
    return (np.concatenate([h.real, h.imag], axis=-2), np.concatenate([y.real, y.imag], axis=-2))


def _as_complex(x: Any) -> Any:
    """Real estimates back to the complex grid type (imaginary part 0) that `unmap_values` reads."""
    if _is_torch(x):
        import torch

        return torch.complex(x, torch.zeros_like(x))
    return x.astype(np.complex64 if x.dtype == np.float32 else np.complex128)


def zf_real(h: Any, y: Any) -> Any:
    """Widely linear ZF for real x (2Nr >= Nt): x = (A^T A)^-1 A^T b on the stacked real system.

    (..., Nr, Nt), (..., Nr, S) complex -> (..., Nt, S) complex with zero imaginary part.
    """
    _check_zf(h, real=True)
    return _as_complex(_solve(*_normal_equations(h, y, real=True)))


def mmse_real(h: Any, y: Any, noise_var: Any, signal_var: float) -> Any:
    """Widely linear MMSE for real x: (A^T A + (sigma^2/2)/Es I)^-1 A^T b, sigma^2/2 per real dimension.

    Es is the energy of one real stream (1/Nt in real-mode OFAT). Shapes as `zf_real`.
    """
    gram, rhs = _normal_equations(h, y, real=True)
    return _as_complex(_solve(_regularised(gram, noise_var / (2.0 * signal_var)), rhs))


def effective_noise_var(noise_var: Any, err_var: Any, n_tx: int, signal_var: float) -> Any:
    """Noise per receive antenna with the channel-estimate error as noise: sigma^2 + err_var Nt Es."""
    return noise_var + err_var * n_tx * signal_var


def lmmse(h: Any, y: Any, noise_var: Any, signal_var: float, err_var: Any = 0.0,
          real: bool = False) -> tuple[Any, Any]:
    """Unbiased LMMSE with the channel-estimate error folded into the noise (Sionna `lmmse_equalizer`).

    (..., Nr, Nt), (..., Nr, S) -> x_hat (..., Nt, S) complex, no_eff (..., Nt) real: x_hat = x + e with
    E[e] = 0 given x and Var(e) = no_eff per stream. real=True: the stacked real system (`mmse_real`).
    """
    n_tx = h.shape[-1]
    nv = effective_noise_var(noise_var, err_var, n_tx, signal_var)
    if _is_torch(h):
        import torch

        nv = torch.as_tensor(nv, dtype=h.real.dtype, device=h.device)
    else:
        nv = np.asarray(nv, dtype=h.real.dtype)
    gram, rhs = _normal_equations(h, y, real)
    m = _regularised(gram, nv / (2.0 * signal_var) if real else nv / signal_var)
    x_biased = _solve(m, rhs)
    gain = _solve(m, gram).diagonal(dim1=-2, dim2=-1) if _is_torch(h) else \
        np.diagonal(_solve(m, gram), axis1=-2, axis2=-1)
    gain = gain.real
    x_hat = x_biased / gain[..., :, None]
    no_eff = signal_var * (1.0 / gain - 1.0)
    return (_as_complex(x_hat) if real else x_hat), no_eff


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
                signal_var: float = 1.0, max_sparsity: int | None = None, real: bool = False,
                err_var: float | Any = 0.0) -> Any:
    """Dispatch by method name; see the module docstring for shapes.

    real=True: x is known to be real (real-mode OFAT), ZF/MMSE use the widely linear detectors on the
    stacked real system (`zf_real`, `mmse_real`); sparse recovery stays complex. err_var (the channel
    estimate's error variance per element, 0 = perfect CSI, today's behaviour) is folded into the
    noise of `mmse` and `lmmse`.
    """
    if method == "zf":
        return zf_real(h, y) if real else zf(h, y)
    if method == "mmse":
        nv = effective_noise_var(noise_var, err_var, h.shape[-1], signal_var)
        return mmse_real(h, y, nv, signal_var) if real else mmse(h, y, nv, signal_var)
    if method == "lmmse":
        return lmmse(h, y, noise_var, signal_var, err_var, real)[0]
    if method == "sparse":
        return sparse_omp(h, y, float(np.mean(np.asarray(noise_var))), max_sparsity)
    raise ValueError(f"unknown reconstruction method {method!r}; choose zf, mmse, lmmse or sparse")


def zf_nmse_bound(snr_db: float, n_tx: int, n_rx: int, real: bool = False) -> float:
    """Genie-CSI ZF NMSE under i.i.d. Rayleigh fading, SNR = total TX power / noise power per RX antenna.

    Complex payload: H^H H is complex Wishart(Nr, I), E[(H^H H)^-1] = I / (Nr - Nt), each stream has
    energy Es = 1/Nt and error sigma^2 / (Nr - Nt): NMSE = Nt / (SNR (Nr - Nt)), infinite for Nr <= Nt.

    real=True (real-mode OFAT with `zf_real`): A = [Re H; Im H] is 2Nr x Nt with N(0, 1/2) entries, so
    A^T A is real Wishart(2Nr, I/2) and E[(A^T A)^-1] = 2 I / (2Nr - Nt - 1); the noise is sigma^2/2
    per real dimension and Es = 1/Nt, so NMSE = Nt / (SNR (2Nr - Nt - 1)), infinite for 2Nr <= Nt + 1.
    (The old complex ZF followed by Re() gives Nt / (2 SNR (Nr - Nt)): 0.97 dB worse at 2x4, and no
    finite mean at all for Nr <= Nt.)
    """
    dof = 2 * n_rx - n_tx - 1 if real else n_rx - n_tx
    if dof <= 0:
        return float("inf")
    return n_tx / (10 ** (snr_db / 10) * dof)


def mmse_nmse_bound(snr_db: float, n_tx: int, n_rx: int, real: bool = False, n_draws: int = 20000,
                    seed: int = 0) -> float:
    """Genie-CSI linear MMSE NMSE under i.i.d. Rayleigh fading (Monte Carlo over H, exact in x and n).

    Per channel draw the MMSE error covariance is s2 (G + s2/Es I)^-1 with G = H^H H, s2 = sigma^2
    (complex), or G = A^T A with A = [Re H; Im H] and s2 = sigma^2/2 (real=True, `mmse_real`); NMSE =
    E[tr(.)] / (Nt Es), Es = 1/Nt. Finite for every Nr, Nt (the bound for 2x2 real, 4x2 real and Nr < Nt).
    """
    rng = np.random.default_rng(seed)
    sigma2 = 10 ** (-snr_db / 10)
    es = 1.0 / n_tx
    dims = (n_draws, n_rx, n_tx)
    h = (rng.standard_normal(dims) + 1j * rng.standard_normal(dims)) / np.sqrt(2)
    if real:
        a = np.concatenate([h.real, h.imag], axis=1)
        gram, s2 = a.swapaxes(1, 2) @ a, sigma2 / 2
    else:
        gram, s2 = _hermitian(h) @ h, sigma2
    err = s2 * np.linalg.inv(gram + s2 / es * np.eye(n_tx))
    return float(np.mean(np.trace(err, axis1=1, axis2=2).real) / (n_tx * es))


def reconstruct_payload(layout: OfatLayout, h: Any, y: Any, *, shape: tuple[int, ...] | list[int],
                        scale: float | Any, noise_var: float | Any, method: Method = "zf",
                        max_sparsity: int | None = None, err_var: float | Any = 0.0) -> Any:
    """Received frames -> their payload tensors (numpy or torch, as h and y are).

    One frame: h (K, Nr, Nt), y (K, Nr, S) as `ofat_rx` emits them -> the payload (*shape); shape and
    scale from the frame header, noise_var and err_var (0 = the estimate treated as exact) from its meta.
    F frames decoded together: h (F, K, Nr, Nt), y (F, K, Nr, S), one payload shape for all, and scale,
    noise_var, err_var each a scalar or (F,) (every frame its own) -> (F, *shape): one batched solve per
    call instead of F ("sparse" is solved frame by frame: its OMP stops at one noise level per call).
    The one path from a received grid to values, shared by the host and the `ofat_equalizer` block.
    """
    return reconstruct_payloads(layout, h, y, shape=shape, scale=scale, noise_var=noise_var,
                                methods=(method,), max_sparsity=max_sparsity, err_var=err_var)[0]


# The detectors that solve one regularised normal-equation system: several of them share its Gram
# matrix and right-hand side and go through one solve (their systems stacked on a method axis).
_NORMAL_EQUATION_METHODS = ("zf", "mmse")


def reconstruct_payloads(layout: OfatLayout, h: Any, y: Any, *, shape: tuple[int, ...] | list[int],
                         scale: float | Any, noise_var: float | Any, methods: tuple[str, ...] | list[str],
                         max_sparsity: int | None = None, err_var: float | Any = 0.0) -> Any:
    """`reconstruct_payload` for several methods at once -> (M, *frames, *shape), method m's payloads at
    [m], equal to `reconstruct_payload(method=methods[m])` bit for bit (the same operations per element).

    Why: ZF and MMSE share H^H H and H^H Y (computed once) and go through one `solve` of their stacked
    systems; one `unmap_values` serves every method. A 3-frame 2x4 group, ZF and MMSE: 252 us against
    385 for two `reconstruct_payload` calls (one run here). Other methods (lmmse, sparse) are solved as
    there."""
    shape = tuple(int(d) for d in shape)
    real = layout.mode == "real"
    frames = h.shape[:-3]
    signal_var = 1.0 / layout.n_tx
    grids: dict[str, Any] = {}
    shared = [m for m in methods if m in _NORMAL_EQUATION_METHODS]
    if shared:
        nv = _frame_axis(noise_var, h)
        gram, rhs = _normal_equations(h, y, real)
        systems = []
        for method in shared:
            if method == "zf":
                _check_zf(h, real)
                systems.append(gram)
            else:  # mmse, as `reconstruct` computes its noise and `mmse` / `mmse_real` its system
                noise = effective_noise_var(nv, _frame_axis(err_var, h), h.shape[-1], signal_var)
                systems.append(_regularised(gram, noise / (2.0 * signal_var) if real else noise / signal_var))
        # One solve, the systems on a leading method axis; the right-hand side broadcasts over it (given
        # the axis: numpy's solve takes a b of one dimension less than a as vectors).
        stacked_systems = systems[0][None] if len(systems) == 1 else _stack_like(h, systems)
        solved = _solve(stacked_systems, rhs[None])
        if real:
            solved = _as_complex(solved)
        for i, method in enumerate(shared):
            grids[method] = solved[i]
    for method in methods:
        if method in grids:
            continue
        if frames and method == "sparse":
            grids[method] = _stack_like(h, [
                reconstruct(h[f], y[f], method, _per_frame(noise_var, f), signal_var=signal_var,
                            max_sparsity=max_sparsity, real=real) for f in range(frames[0])])
        else:
            grids[method] = reconstruct(h, y, method, _frame_axis(noise_var, h), signal_var=signal_var,
                                        max_sparsity=max_sparsity, real=real, err_var=_frame_axis(err_var, h))
    if layout.clip_ratio_db:  # clipped data arrive scaled by the Bussgang gain
        scale = _frame_axis(scale, h, subcarriers=False) * bussgang_gain(layout.clip_ratio_db)
    stacked = solved if list(methods) == shared else _stack_like(h, [grids[m] for m in methods])
    return unmap_values(layout, stacked, math.prod(shape), scale).reshape(len(methods), *frames, *shape)


def _per_frame(value: Any, f: int) -> Any:
    """Frame f's entry of a per-frame parameter (a scalar is every frame's)."""
    return value[f] if np.ndim(value) else value


def _frame_axis(value: Any, h: Any, subcarriers: bool = True) -> Any:
    """A per-frame parameter (scalar or (F,)) as h's real dtype, with a trailing axis broadcasting over
    the K subcarriers when `subcarriers` (the detectors batch over (F, K)); a scalar passes as it is."""
    if not np.ndim(value):
        return value
    if _is_torch(h):
        import torch

        out = torch.as_tensor(value, dtype=h.real.dtype, device=h.device)
    else:
        out = np.asarray(value, dtype=h.real.dtype)
    return out[:, None] if subcarriers else out


def _stack_like(h: Any, grids: list[Any]) -> Any:
    if _is_torch(h):
        import torch

        return torch.stack(grids)
    return np.stack(grids)
