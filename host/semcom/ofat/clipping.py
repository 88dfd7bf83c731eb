"""Clipping, the transmitter's optional PAPR stage (numpy only): a soft envelope limiter at a level
set from the layout's known power, and its Bussgang theory.

It needs nothing from the layout but its attributes, so `frame.py` (the modulation) imports it
directly; `papr.py` (PAPR measurement, CCDF theory, back-off) builds on both. Definitions:

* **Clipping** (soft envelope limiter): ``y = x`` where ``|x| <= A``, else ``A x / |x|``, with
  ``A = gamma * rms`` and the clipping ratio ``gamma = 10^(ratio_db / 20)``.
* **Bussgang** (J. J. Bussgang, MIT RLE Tech. Rep. 216, 1952; closed forms for the envelope limiter in
  H. Ochiai and H. Imai, "Performance analysis of deliberately clipped OFDM signals", IEEE Trans.
  Commun. 50(1), 2002, eqs. (13)-(16)): for a complex Gaussian input of power P, ``y = alpha x + d``
  with d uncorrelated with x,

      alpha = 1 - exp(-gamma^2) + (sqrt(pi)/2) gamma erfc(gamma)
      E|y|^2 = P (1 - exp(-gamma^2))
      E|d|^2 = P (1 - exp(-gamma^2) - alpha^2)

  (derivation: the envelope r is Rayleigh with E r^2 = P; alpha = E[r min(r, A)] / P and
  E|y|^2 = E[min(r, A)^2]; both integrals are elementary except the erfc term).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # a type only: frame.py imports this module
    from .frame import OfatLayout


# --------------------------------------------------------------------- power of an OFAT frame
def layout_power(layout: OfatLayout) -> float:
    """Nominal mean power per time sample and antenna of `modulate_frame` output: Nu / (fft_len * Nt)."""
    return layout.occupied_fraction / layout.n_tx


def layout_rms(layout: OfatLayout) -> float:
    """sqrt(layout_power): the RMS amplitude per antenna that `clip` is told (the receiver knows it)."""
    return math.sqrt(layout_power(layout))


# --------------------------------------------------------------------- clipping
def clip_level(ratio_db: float, rms: float | np.ndarray) -> float | np.ndarray:
    """Clip amplitude A = rms * 10^(ratio_db / 20) (inf for ratio_db = inf)."""
    ratio_db = float(ratio_db)
    if math.isnan(ratio_db) or ratio_db == -math.inf:
        raise ValueError(f"ratio_db must be a real number or +inf (no clipping), got {ratio_db}")
    r = np.asarray(rms, float)
    if r.size == 0 or not np.all(np.isfinite(r) & (r > 0)):
        raise ValueError(f"rms must be positive and finite, got {rms!r}")
    level = r * 10.0 ** (ratio_db / 20.0)
    return float(level) if level.ndim == 0 else level


def clip(samples: np.ndarray, ratio_db: float, rms: float) -> np.ndarray:
    """Soft envelope clipping at `ratio_db` above `rms`.

    samples: (n_tx, n) complex (any shape works; float input is limited in magnitude the same way).
    ratio_db: clipping ratio 20 log10(A / rms); +inf = no clipping.
    rms: the RMS amplitude the level refers to, a float (or an array broadcastable to samples, e.g.
        (n_tx, 1) per antenna). For OFAT pass `layout_rms(layout)` (times any digital scale applied
        before clipping): the frame's known power, not a per-frame measurement, so the receiver knows
        the level.
    Returns a new array, same shape and dtype: samples with |x| <= A unchanged (bit for bit), the others
    scaled to magnitude A with their phase kept (|y| <= A up to the dtype's rounding).
    """
    x = np.asarray(samples)
    if not (np.iscomplexobj(x) or np.issubdtype(x.dtype, np.floating)):
        raise TypeError(f"samples must be complex or float, got {x.dtype}")
    level = clip_level(ratio_db, rms)
    out = x.copy()
    if np.isscalar(level) and level == math.inf:
        return out
    mag = np.abs(x)
    level_b = np.broadcast_to(level, x.shape)
    over = mag > level_b
    out[over] = x[over] * (level_b[over] / mag[over]).astype(mag.dtype)
    return out


def clip_frame(frame: np.ndarray, layout: OfatLayout, ratio_db: float, scale: float = 1.0,
               symbols: Literal["all", "data"] = "all") -> np.ndarray:
    """Clip whole OFAT frames at `ratio_db` above their known RMS, scale * layout_rms(layout).

    frame: (..., Nt, frame_len) complex, `modulate_frame` output times `scale`, starting at the frame.
    symbols: "all" clips every symbol: the training is clipped too, so the channel estimate absorbs
        most of the Bussgang gain, but the clipped training is a fixed waveform whose distortion becomes
        a fixed per-subcarrier error of the estimate. "data" leaves preamble, training and header as
        they are (their peaks are fixed, `sync_papr_db`): the estimate stays clean, and the receiver
        divides the reconstruction by `bussgang_gain(ratio_db)` (experiments/papr compares both).
    """
    if symbols not in ("all", "data"):
        raise ValueError(f"symbols must be 'all' or 'data', got {symbols!r}")
    x = np.asarray(frame)
    if x.shape[-1] % layout.symbol_len:
        raise ValueError(f"frame length {x.shape[-1]} is not a whole number of {layout.symbol_len}-sample "
                         "symbols")
    rms = scale * layout_rms(layout)
    if symbols == "all":
        return clip(x, ratio_db, rms)
    d0 = layout.n_sync_symbols * layout.symbol_len
    out = x.copy()
    out[..., d0:] = clip(x[..., d0:], ratio_db, rms)
    return out


@dataclass(frozen=True)
class ClippingTheory:
    """Bussgang decomposition of a clipped complex Gaussian (arrays broadcast like ratio_db).

    Powers are relative to the input power P: output_power = E|y|^2 / P, distortion_power = E|d|^2 / P.
    """

    ratio_db: np.ndarray
    gamma: np.ndarray  # clipping ratio A / rms (amplitude)
    alpha: np.ndarray  # Bussgang gain
    output_power: np.ndarray  # 1 - exp(-gamma^2)
    distortion_power: np.ndarray  # 1 - exp(-gamma^2) - alpha^2
    clip_probability: np.ndarray  # P(|x| > A) = exp(-gamma^2)

    @property
    def sdr_db(self) -> np.ndarray:
        """Signal-to-distortion ratio alpha^2 / distortion_power (dB)."""
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(self.alpha**2 / self.distortion_power)


# math.erfc element-wise, not scipy.special.erfc: scipy is no pip dependency of the blocks (only Debian's
# python3-scipy, which setup.sh installs), the transmitter imports this module when it clips, and this
# runs on a handful of clipping ratios, never in a work() loop.
_erfc = np.vectorize(math.erfc, otypes=[float])


def clipping_noise_theory(ratio_db: float | np.ndarray) -> ClippingTheory:
    """Bussgang gain and clipping-distortion power for a complex Gaussian input (see module docstring)."""
    r = np.asarray(ratio_db, float)
    if np.isnan(r).any() or (r == -np.inf).any():
        raise ValueError(f"ratio_db must be real numbers or +inf, got {ratio_db!r}")
    gamma = 10.0 ** (r / 20.0)
    finite = np.isfinite(gamma)
    g = np.where(finite, gamma, 0.0)  # inf handled below (inf * erfc(inf) would be nan)
    e = np.exp(-g**2)
    alpha = np.where(finite, 1.0 - e + 0.5 * math.sqrt(math.pi) * g * _erfc(g), 1.0)
    out_p = np.where(finite, 1.0 - e, 1.0)
    # Clamp the cancellation error near gamma -> inf (it is >= 0 exactly).
    dist = np.maximum(out_p - alpha**2, 0.0)
    return ClippingTheory(ratio_db=r, gamma=gamma, alpha=alpha, output_power=out_p, distortion_power=dist,
                          clip_probability=np.where(finite, e, 0.0))


def bussgang_gain(ratio_db: float | np.ndarray) -> float | np.ndarray:
    """alpha = 1 - exp(-gamma^2) + (sqrt(pi)/2) gamma erfc(gamma), gamma = 10^(ratio_db/20)."""
    a = clipping_noise_theory(ratio_db).alpha
    return float(a) if a.ndim == 0 else a


def predicted_clipping_nmse(ratio_db: float | np.ndarray, layout: OfatLayout) -> float | np.ndarray:
    """Payload NMSE that clipping alone adds after reconstruction (Bussgang, alpha compensated).

    Clipping at the native rate spreads the distortion evenly over all fft_len bins, so a data
    subcarrier of energy 1/Nt per antenna sees the fraction occupied_fraction of the per-sample
    distortion power; ZF/MMSE invert the channel for d as for x, and with alpha compensated (absorbed
    by a clipped training, or divided out by the receiver) the value is x + d/alpha:
    NMSE = distortion_power * occupied_fraction / alpha^2. Within 0.35 dB of OFAT frames for ratios
    <= 8 dB (experiments/papr); above ~10 dB the Gaussian tail overstates the rare peaks.
    """
    th = clipping_noise_theory(ratio_db)
    v = th.distortion_power * layout.occupied_fraction / th.alpha**2
    return float(v) if v.ndim == 0 else v
