"""PAPR of OFAT frames: CCDF against the Gaussian theory, envelope clipping, back-off (numpy only).

OFAT data symbols carry analog values, so each antenna's data symbol is a sum of N independent
(Gaussian-like) subcarriers and its time samples are close to complex Gaussian. Definitions used here:

* **PAPR of an OFDM symbol** (the CCDF convention): ``max_n |x[n]|^2 / P`` over one symbol *body*
  (the cyclic prefix is a copy of body samples), one value per antenna and symbol. ``P`` is the mean
  power per sample and antenna. By default it is the layout's nominal power
  ``occupied_fraction / n_tx`` (every used resource element carries energy 1/Nt per antenna, unitary
  FFT; see frame.py), which the receiver and the clipper both know; the empirical per-symbol mean is
  available with ``mean_power="measured"``.
* **Native rate vs oversampled**: the native samples are the fft_len-point IFFT that ``modulate_frame``
  sends to the DAC; peaks between them are missed. ``oversampling=L`` re-interpolates each body by
  zero-padding its spectrum to L*fft_len points (band-limited interpolation, what an ideal DAC
  reconstruction filter outputs); the analog peak is within ~0.1 dB of L = 4.
* **Gaussian theory** (van Nee & de Wild, VTC 1998; van Nee & Prasad, *OFDM for Wireless Multimedia
  Communications*, Artech House 2000, ch. 6): with N subcarriers the samples are complex Gaussian, so
  ``P(|x|^2/P > z) = exp(-z)`` per sample, and with alpha*N independent samples per symbol

      P(PAPR > z) = 1 - (1 - exp(-z))^(alpha N)

  alpha = 1 for Nyquist-rate samples (N samples), alpha ~ 2.8 for the oversampled / analog signal
  (the empirical fit of van Nee & de Wild). N is the number of *used* subcarriers (data + pilots).
* **Clipping** and its **Bussgang** theory live in `clipping.py` (the transmitter's stage, which
  `frame.py` imports); they are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .clipping import (  # noqa: F401  (re-exported: papr's public API before clipping.py existed)
    ClippingTheory,
    bussgang_gain,
    clip,
    clip_frame,
    clip_level,
    clipping_noise_theory,
    layout_power,
    layout_rms,
    predicted_clipping_nmse,
)
from .frame import OfatLayout, ofdm_modulate

ALPHA_NYQUIST = 1.0
"""alpha of the Gaussian CCDF for Nyquist-rate (native fft_len-point) samples."""
ALPHA_OVERSAMPLED = 2.8
"""alpha for the oversampled (analog) signal: van Nee & de Wild's empirical fit, for oversampling >= 4."""

Per = Literal["symbol", "frame"]
SymbolSel = Literal["all", "data", "sync"] | slice | np.ndarray


# --------------------------------------------------------------------- measurement
def _check_oversampling(oversampling: int) -> int:
    if isinstance(oversampling, bool) or not isinstance(oversampling, (int, np.integer)) or oversampling < 1:
        raise ValueError(f"oversampling must be an integer >= 1, got {oversampling!r}")
    return int(oversampling)


def _native_bodies(samples: np.ndarray, layout: OfatLayout) -> np.ndarray:
    """(..., n_symbols * symbol_len) -> (..., n_symbols, fft_len): reshape and drop the CPs."""
    lay = layout
    x = np.asarray(samples)
    if x.ndim < 1 or x.shape[-1] == 0 or x.shape[-1] % lay.symbol_len:
        raise ValueError(f"expected (..., n_symbols * {lay.symbol_len}) samples starting at a symbol "
                         f"boundary, got shape {x.shape}")
    if not (np.iscomplexobj(x) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"samples must be complex or float, got {x.dtype}")
    n_sym = x.shape[-1] // lay.symbol_len
    return x.reshape(*x.shape[:-1], n_sym, lay.symbol_len)[..., lay.cp_len:]


def _oversample(bodies: np.ndarray, oversampling: int) -> np.ndarray:
    """Band-limited interpolation of symbol bodies (..., n) -> (..., oversampling * n)."""
    if oversampling == 1:
        return bodies
    n = bodies.shape[-1]
    half = n // 2
    spec = np.fft.fft(bodies, axis=-1)
    padded = np.zeros((*spec.shape[:-1], oversampling * n), np.complex128)
    padded[..., :half] = spec[..., :half]
    padded[..., -half + 1:] = spec[..., half + 1:]
    padded[..., half] = padded[..., -half] = spec[..., half] / 2
    # ifft divides by L*n; times L restores the native amplitude scale (x_os[L m] = x[m]).
    return np.fft.ifft(padded, axis=-1) * oversampling


def symbol_bodies(samples: np.ndarray, layout: OfatLayout, oversampling: int = 1) -> np.ndarray:
    """Frame samples -> the OFDM symbol bodies, optionally re-interpolated.

    samples: (..., n_symbols * symbol_len) complex, starting at the first symbol's CP (a whole frame as
        `modulate_frame` returns it, (Nt, frame_len), or a stack of frames (F, Nt, frame_len)).
    Returns (..., n_symbols, oversampling * fft_len) complex with the CP dropped. For oversampling L > 1
    every L-th sample equals the native one: the body's spectrum is zero-padded in the middle (the
    Nyquist bin, empty in OFAT but not after clipping, is split between both ends).
    """
    return _oversample(_native_bodies(samples, layout), _check_oversampling(oversampling))


def _symbol_selection(layout: OfatLayout, n_sym: int, symbols: SymbolSel) -> slice | np.ndarray:
    if isinstance(symbols, str):
        d0 = layout.n_sync_symbols
        if symbols == "all":
            return slice(None)
        if symbols == "data":
            if n_sym <= d0:
                raise ValueError(f"frame has {n_sym} symbols, no data symbol after the {d0} sync symbols")
            return slice(d0, None)
        if symbols == "sync":
            return slice(0, min(d0, n_sym))
        raise ValueError(f"symbols must be 'all', 'data', 'sync', a slice or indices, got {symbols!r}")
    if isinstance(symbols, slice):
        return symbols
    return np.asarray(symbols, int)


def papr_db(samples: np.ndarray, layout: OfatLayout, per: Per = "symbol", *, oversampling: int = 1,
            symbols: SymbolSel = "all", mean_power: float | str = "layout") -> np.ndarray:
    """PAPR in dB of OFAT frames.

    samples: (..., frame_len) complex time samples of whole frames, (Nt, frame_len) for one frame
        (`modulate_frame` output, possibly clipped) or (F, Nt, frame_len) for several.
    per: "symbol" -> (..., n_selected_symbols), one value per antenna and symbol body (the CCDF
        convention); "frame" -> (...,), the peak over the selected symbols of each antenna's frame.
    oversampling: 1 = native samples; L > 1 = band-limited interpolation (see `symbol_bodies`).
    symbols: "all", "data" (after preamble, training and header), "sync" (those before), a slice or
        symbol indices.
    mean_power: "layout" (default, the nominal `layout_power`), "measured" (mean over each symbol body
        for per="symbol", over the selected bodies of each antenna's frame for per="frame"), or a
        positive number.
    """
    if per not in ("symbol", "frame"):
        raise ValueError(f"per must be 'symbol' or 'frame', got {per!r}")
    oversampling = _check_oversampling(oversampling)
    bodies = _native_bodies(samples, layout)
    bodies = bodies[..., _symbol_selection(layout, bodies.shape[-2], symbols), :]
    if bodies.shape[-2] == 0:
        raise ValueError("no symbol selected")
    bodies = _oversample(bodies, oversampling)  # after the selection: only the FFTs needed
    power = np.abs(bodies) ** 2  # (..., S, L*fft_len)
    peak = power.max(axis=-1)  # (..., S)
    if isinstance(mean_power, str):
        if mean_power == "layout":
            ref: float | np.ndarray = layout_power(layout)
        elif mean_power == "measured":
            ref = power.mean(axis=-1) if per == "symbol" else power.mean(axis=(-2, -1))
        else:
            raise ValueError("mean_power must be 'layout', 'measured' or a positive number, "
                             f"got {mean_power!r}")
    else:
        ref = float(mean_power)
        if not (math.isfinite(ref) and ref > 0):
            raise ValueError(f"mean_power must be positive and finite, got {mean_power!r}")
    if per == "frame":
        peak = peak.max(axis=-1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(peak / ref)


def ccdf(papr_db_values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Empirical P(PAPR > threshold): values (any shape, flattened), thresholds (T,) dB -> (T,)."""
    v = np.sort(np.asarray(papr_db_values, float).ravel())
    if v.size == 0:
        raise ValueError("no PAPR values")
    if np.isnan(v).any():
        raise ValueError("PAPR values contain NaN")
    t = np.asarray(thresholds, float)
    return (v.size - np.searchsorted(v, t, side="right")) / v.size


def papr_quantile_db(papr_db_values: np.ndarray, prob: float) -> float:
    """The PAPR exceeded with probability `prob` (the empirical CCDF read at `prob`)."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    v = np.asarray(papr_db_values, float).ravel()
    if v.size * prob < 1:
        raise ValueError(f"{v.size} values cannot resolve a probability of {prob:g}")
    return float(np.quantile(v, 1.0 - prob))


def _alpha(oversampling: int, alpha: float | None) -> float:
    oversampling = _check_oversampling(oversampling)
    if alpha is None:
        return ALPHA_NYQUIST if oversampling == 1 else ALPHA_OVERSAMPLED
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha must be positive, got {alpha}")
    return float(alpha)


def _check_n(n_subcarriers: int) -> int:
    if isinstance(n_subcarriers, bool) or int(n_subcarriers) != n_subcarriers or n_subcarriers < 1:
        raise ValueError(f"n_subcarriers must be a positive integer, got {n_subcarriers!r}")
    return int(n_subcarriers)


def gaussian_ccdf(thresholds_db: np.ndarray, n_subcarriers: int, oversampling: int = 1,
                  alpha: float | None = None) -> np.ndarray:
    """Theory P(PAPR > z) = 1 - (1 - exp(-z))^(alpha N), z = 10^(thresholds_db / 10) (any shape).

    alpha defaults to 1 (oversampling 1, Nyquist samples) or 2.8 (oversampling > 1, analog signal).
    """
    n = _check_n(n_subcarriers)
    a = _alpha(oversampling, alpha)
    z = 10.0 ** (np.asarray(thresholds_db, float) / 10.0)
    # -expm1(m log1p(-e^-z)) keeps precision far into the tail, where 1 - (...) would round to 0.
    return -np.expm1(a * n * np.log1p(-np.exp(-z)))


def gaussian_papr_db(prob: float, n_subcarriers: int, oversampling: int = 1,
                     alpha: float | None = None) -> float:
    """Inverse of `gaussian_ccdf`: the PAPR (dB) exceeded with probability `prob`."""
    if not 0.0 < prob < 1.0:
        raise ValueError(f"prob must be in (0, 1), got {prob}")
    n = _check_n(n_subcarriers)
    a = _alpha(oversampling, alpha)
    # (1 - e^-z)^(aN) = 1 - p  ->  z = -log(1 - (1 - p)^(1/(aN)))
    z = -math.log(-math.expm1(math.log1p(-prob) / (a * n)))
    return 10.0 * math.log10(z)


# --------------------------------------------------------------------- back-off
@dataclass(frozen=True)
class BackoffRecommendation:
    """What to set so that peaks exceeded with probability `target_ccdf` stay below the limit.

    scale: amplitude multiplier for the `modulate_frame` output (the flowgraphs' `tx_scale`).
    """

    scale: float
    target_ccdf: float
    papr_db: float  # Gaussian PAPR of the data symbols at target_ccdf
    sync_papr_db: float  # largest PAPR of the (deterministic) preamble and training symbols
    design_papr_db: float  # the one the scale is set for
    limit: float  # amplitude limit in DAC units
    rms_dbfs: float  # per-antenna RMS after scaling, dB relative to DAC full scale
    explanation: str

    @property
    def scale_db(self) -> float:
        return 20.0 * math.log10(self.scale)


def sync_papr_db(layout: OfatLayout, oversampling: int = 4) -> float:
    """Peak PAPR (vs `layout_power`) over the preamble and training symbols of every antenna.

    These symbols are fixed (layout constants); the header depends on its content and is not included.
    """
    grid = np.concatenate([layout.preamble_freq[:, None], layout.training_freq], axis=1)
    frame = ofdm_modulate(layout, grid)  # (Nt, (1 + n_train) * symbol_len)
    return float(papr_db(frame, layout, "frame", oversampling=oversampling).max())


def backoff_recommendation(layout: OfatLayout, target_ccdf: float = 1e-3, *, dac_full_scale: float = 1.0,
                           amplifier_p1db_dbfs: float | None = None, oversampling: int = 4,
                           include_sync: bool = True) -> BackoffRecommendation:
    """Digital scale so that the PAPR exceeded with probability `target_ccdf` stays below the limit.

    layout: the OFAT layout (Nu used subcarriers, Nt antennas: the unscaled per-antenna RMS is
        `layout_rms`).
    target_ccdf: per-symbol probability of a peak above the limit (Gaussian theory, `gaussian_papr_db`).
    dac_full_scale: the DAC's full-scale amplitude in sample units (1.0 for UHD's fc32 streams).
    amplifier_p1db_dbfs: the amplifier's 1 dB compression point referred to the digital input, in dB
        relative to full scale at the gain in use (e.g. -6 when the PA compresses at half of full scale);
        None = the DAC is the only limit.
    oversampling: 4 (default) sizes for the analog/interpolated peak (alpha = 2.8), which is what the
        FPGA's interpolating DUC, the DAC and the amplifier see; 1 for the native samples only.
    include_sync: also keep the fixed preamble/training peaks below the limit.
    """
    if not 0.0 < target_ccdf < 1.0:
        raise ValueError(f"target_ccdf must be in (0, 1), got {target_ccdf}")
    if not (math.isfinite(dac_full_scale) and dac_full_scale > 0):
        raise ValueError(f"dac_full_scale must be positive and finite, got {dac_full_scale}")
    limit = float(dac_full_scale)
    what = "DAC full scale"
    if amplifier_p1db_dbfs is not None:
        if not math.isfinite(amplifier_p1db_dbfs):
            raise ValueError(f"amplifier_p1db_dbfs must be finite, got {amplifier_p1db_dbfs}")
        amp = dac_full_scale * 10.0 ** (amplifier_p1db_dbfs / 20.0)
        if amp < limit:
            limit, what = amp, f"amplifier P1dB at {amplifier_p1db_dbfs:+.1f} dBFS"
    data_papr = gaussian_papr_db(target_ccdf, layout.n_used, oversampling)
    sync = sync_papr_db(layout, oversampling)
    design = max(data_papr, sync) if include_sync else data_papr
    rms = layout_rms(layout)
    scale = limit / (rms * 10.0 ** (design / 20.0))
    rms_dbfs = 20.0 * math.log10(scale * rms / dac_full_scale)
    rate = "native-rate samples (alpha = 1)" if oversampling == 1 else \
        f"the {oversampling}x-interpolated (analog) signal (alpha = {ALPHA_OVERSAMPLED})"
    reason = (f"data symbols exceed {data_papr:.2f} dB PAPR with probability {target_ccdf:g} "
              f"(Gaussian theory, {layout.n_used} used subcarriers, {rate})")
    if include_sync:
        reason += (f"; the fixed preamble/training peak is {sync:.2f} dB"
                   + (" and sets the scale" if sync > data_papr else ""))
    explanation = (f"{reason}. Per-antenna RMS at scale 1 is {rms:.4f} "
                   f"(occupied fraction {layout.occupied_fraction:.3f} / Nt {layout.n_tx}); "
                   f"scale {scale:.4f} ({20 * math.log10(scale):+.2f} dB) puts that peak at the {what} "
                   f"({limit:.4f}), the RMS at {rms_dbfs:.2f} dBFS. Peaks above it (that probability per "
                   f"symbol and antenna) reach the hardware's nonlinearity; clip(x, {design:.1f}, "
                   f"scale * layout_rms) would limit them digitally at a level the receiver knows.")
    return BackoffRecommendation(scale=scale, target_ccdf=target_ccdf, papr_db=data_papr, sync_papr_db=sync,
                                 design_papr_db=design, limit=limit, rms_dbfs=rms_dbfs,
                                 explanation=explanation)
