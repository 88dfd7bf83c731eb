"""OFAT receiver DSP (numpy only): Nr sample streams in, decoded frames out.

`FrameReceiver.process()` takes any chunk of samples and returns the frames completed by it, keeping
what it needs across calls (a Schmidl & Cox plateau or a frame split between chunks is not lost).
The GNU Radio block `ofat_rx` is a thin wrapper; offline replay of recordings uses this class directly.

Before anything (step 0, per antenna, one-pole running averages over FRONT_END_SPAN samples):
* dc_removal=True subtracts the running mean. A DC spur costs the frame nothing (the DC subcarrier is
  null), but it would keep the Schmidl & Cox metric of idle samples near (DC power / (DC power +
  noise))^2, above the threshold (0.25 at -20 dBc and 20 dB SNR): detections everywhere. UHD removes
  DC on B2xx/X3xx by default.
* iq_correction=True undoes a receive IQ imbalance y = k1 x + k2 conj(x) blindly: signal and noise
  are circular (E[x^2] = 0), so y - beta conj(y) with beta = E[y^2] / (2 E|y|^2) ~ k2 / conj(k1)
  leaves no image (to first order). A transmit imbalance mixed by the channel is not undone. The
  frame's own preamble and training symbols are not circular and bias beta; the bias averages out
  over FRONT_END_SPAN only when the channel changes from frame to frame (on a static channel the
  correction gains little: calibrate the radio instead). Without any carrier offset (TX and RX on one
  reference and frequency) that part does not rotate away: the bias costs 0.12 dB at 20 dB and floors
  the NMSE near -33 dB at 40 dB (2x4); with a CFO of 0.3 subcarrier 0.00 and 0.4 dB. A transmit
  imbalance's image is left whole (it reaches subcarrier k through the channel from -k of each
  transmit antenna: tests/test_impairments.py).

Per frame:
1. Detection and timing: Schmidl & Cox metric M(d) = |P(d)|^2 / R(d)^2 summed over the Nr antennas
   (receive diversity), threshold crossing, then the middle of the 90 % plateau, which puts the FFT
   window inside the cyclic prefix (the residual offset becomes a linear phase the channel estimate
   absorbs).
2. CFO: angle of P on the plateau (the fractional part, modulo 2 subcarriers: S&C's half-symbol
   period), then an integer search on the training symbols (as gr-digital's `ofdm_chanest_vcvc`
   with `max_carr_offset`): the even bin shift 2m, |2m| <= max_int_cfo, whose differential correlation
   with the known training sequence is largest; then refined with the repeated training symbols.
   Supported CFO: |CFO| < max_int_cfo + 1 subcarriers (+-5 with the default 4, both presets; the
   shifted band stays inside the FFT for wifi64's 6 and ofat128's 10 guard bins). The refinement alone
   is ambiguous beyond +-fft/(2 Nt symbol_len) subcarriers (0.2 for 2x wifi64), which only the coarse
   residual (< 0.05 subcarrier at 5 dB) has to meet.
3. Channel estimation: LS from the orthogonal training, averaged over repetitions, then denoised by
   projecting onto the few delay taps that carry energy (selected against the noise floor, at most
   the cyclic prefix plus margins): the estimate's noise drops by about (taps kept)/(used subcarriers).
   The taps sit on a grid shifted by a common fractional delay f (align_fraction, on by default): a
   channel whose delays are all off the sample grid by f (a fractional timing: every frame of a
   sampling-clock offset, every real channel) spreads over many integer taps (9-12 for three paths at
   half a sample, 30 dB: estimate -37 dB) and the selection keeps either too few (model error) or
   many (noise); on the shifted grid it keeps three again (-45 dB, as on the grid). f: of 16 shifts
   over a sample (0 included), the one whose fit on its strongest taps has the lowest Mallows' Cp
   (residual + 2 x the noise of each tap), refined by Newton steps on the energy the taps capture.
   A response that is no delay-shifted set of taps (GNU Radio's MMSE interpolator, mimo_channel's
   8-tap fractional-delay filter) gains little (experiments/phy/README.md).
4. Noise variance: from the difference of repeated training symbols (independent of any channel
   model); from the projection residual when there is one repetition. With
   noise_estimate="fit_residual": noise plus interference, from what each training repetition leaves
   outside the channel fit (another link's training, of another sequence_id, despreads to energy over
   all delays whatever its CFO, while the difference of repetitions sees it only as far as its CFO
   rotates it between them). When that residual exceeds INTERFERENCE_RATIO times the repetitions'
   estimate, the delay taps of step 3 are chosen again against the floor of the averaged estimate at
   delays no channel reaches: the taps chosen against the repetitions' floor chase the interference
   (15-19 taps for a one-tap channel at 10-20 dB SIR, the estimate 1.6-15 dB worse).
   Training check: the despread training's strongest candidate delay tap against the mean at delays
   no channel reaches (OWN_TRAINING_RATIO); a frame whose header fails its CRC without the own training
   sequence in it is counted `sequence_mismatch` as well (another link's frame, or noise).
5. Header: BPSK with cyclic delay diversity, maximum-ratio combined over antennas and repetitions,
   CRC-16 checked. A failed CRC is counted, never delivered.
6. Residual phase: common phase per symbol from the pilots, fitted as phase0 + slope * symbol over
   the header and data symbols ("linear", residual CFO) or taken per symbol ("per_symbol").
7. Sampling-clock offset (sfo_tracking=True, before step 6): a receive clock (1 + e) times the
   transmitter's delays symbol m by e * m * symbol_len samples more than the training symbols the
   channel was estimated on, a phase -2 pi k e (m - m_train) symbol_len / fft_len on subcarrier k.
   The pilots' phases relative to each symbol's common phase are regressed on k (m - m_train) over
   every header and data symbol (weighted by pilot power, k centred per symbol) and the ramp is
   removed from every subcarrier of every symbol. Within a frame the drift is a fraction of a sample
   (0.03 at 20 ppm and 1 600 samples), so the timing itself stays put; S&C re-times each frame.
   Against the same frames at 0 ppm it leaves 0.01-0.23 dB at 4-20 ppm (experiments/phy/README.md);
   that an offset moves every frame to another fractional timing is step 3's shifted delay grid's
   job (the integer grid alone lost 0.2-0.8 dB there).
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar

import numpy as np

from .frame import FrameHeader, OfatLayout, combine_header_llrs, decode_header

log = logging.getLogger(__name__)

FRONT_END_SPAN = 32768
"""Samples over which dc_removal and iq_correction average (a frame has zero mean: its DC subcarrier
is null; its preamble and training symbols are not circular, |E[x^2]| / E|x|^2 ~ 0.47, so the IQ
estimate needs many frames: at 4 096 samples it cost 0.5 dB at 20 dB, at 32 768 0.3 dB)."""

OWN_TRAINING_RATIO = 10.0
"""The own training sequence is found when the despread training's strongest candidate delay tap has
this many times the mean power at delays no channel reaches. Noise, or another sequence's training,
spreads evenly over the delays: the largest of the 24 (wifi64) candidate taps exceeds 10 times the mean
with probability about 24 e^-10 = 1e-3 (one receive pair); the own training at a per-element SNR s
puts about Nu T s / Nt there (the matched filter's gain), found down to s ~ -10 dB for wifi64, T = 2."""


FRACTION_GRID = 16
"""Candidate fractional delays over one sample for the coarse search of step 3 (then refined)."""
COARSE_TAPS = 8
"""Most taps the coarse search of step 3 scores per shift (strongest first)."""
NEWTON_STEPS = 2
"""Newton steps refining step 3's fractional delay on one set of taps."""

INTERFERENCE_RATIO = 2.0
"""noise_estimate="fit_residual": when the fit's residual holds this many times the repetitions' noise
estimate, interference is present that the repetitions missed, and the delay taps are chosen again
against the residual's floor. Without interference the two agree within ~10 % (tested), so the taps
and the estimate stay those of the default receiver."""


def _eliminate(gram: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward Gaussian elimination (no pivoting) of a batch of small Hermitian positive definite systems
    gram (B, K, K) x = rhs (B, K, P): the upper-triangular system (B, K, K) and its right-hand side,
    vectorised over the batch (a few numpy calls per unknown instead of a LAPACK call, whose threads
    cost more than these tiny solves)."""
    a = np.array(gram, complex)
    x = np.array(rhs, complex)
    for j in range(a.shape[1]):
        factor = a[:, j + 1:, j] / a[:, j, None, j]
        a[:, j + 1:, j:] -= factor[:, :, None] * a[:, j, None, j:]
        x[:, j + 1:] -= factor[:, :, None] * x[:, j, None, :]
    return a, x


def _hpd_solve(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """gram^-1 rhs for a batch (see `_eliminate`): (B, K, P)."""
    a, x = _eliminate(gram, rhs)
    for j in range(a.shape[1] - 1, -1, -1):
        x[:, j] = (x[:, j] - np.einsum("bk,bkp->bp", a[:, j, j + 1:], x[:, j + 1:])) / a[:, j, j, None]
    return x


def _parabola_peak(x: np.ndarray, y: np.ndarray, cyclic: bool = False) -> float:
    """Abscissa of the vertex of the parabola through the largest of y (at evenly spaced x) and its two
    neighbours (cyclic: x spans one period, so the ends are neighbours); the grid point itself when
    the three are not concave or the largest is at an end."""
    k = int(np.argmax(y))
    n = len(y)
    if not cyclic and not 0 < k < n - 1:
        return float(x[k])
    a, b, c = y[(k - 1) % n], y[k], y[(k + 1) % n]
    curvature = a - 2 * b + c
    offset = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
    return float(x[k] + offset * (x[1] - x[0]))

@dataclass
class ReceivedFrame:
    """One decoded frame. Shapes: y (K, Nr, S), h (K, Nr, Nt), K data subcarriers, S data symbols."""

    header: FrameHeader
    y: np.ndarray
    h: np.ndarray
    noise_var: float
    snr_db: float
    cfo: float  # cycles per sample
    start: int  # absolute sample index of the frame's first sample (preamble CP)
    metric: float  # Schmidl & Cox metric at the chosen timing
    err_var: float = 0.0  # error variance per element of the channel estimate h (see _estimate_channel)
    sfo_ppm: float | None = None  # sampling-clock offset estimated from the pilots (sfo_tracking only)

    def meta(self) -> dict:
        """The FRAME message metadata (see docs/wire-protocol.md)."""
        return {
            "seq": self.header.seq,
            "shape": list(self.header.shape),
            "n_values": self.header.n_values,
            "scale": self.header.scale,
            "flags": self.header.flags,
            "noise_var": self.noise_var,
            "err_var": self.err_var,
            "snr_db": self.snr_db,
            "cfo": self.cfo,
            "timing": self.start,
            "sync_metric": self.metric,
        } | ({} if self.sfo_ppm is None else {"sfo_ppm": self.sfo_ppm})


@dataclass
class _Front:
    """A frame's state once its training and header symbols are decoded (reused while its data arrive)."""

    cfo: float  # final CFO, cycles per sample
    h: np.ndarray  # (Nr, Nt, Nu) denoised channel estimate
    noise_var: float
    err_var: float
    g: np.ndarray  # (Nr, Nu) effective channel of the CDD header/pilots
    yh: np.ndarray  # (Nr, Hs, Nu) header symbols, CFO removed, common phase not yet
    header: FrameHeader | None
    own_training: bool = True  # the own training sequence found in the training symbols (step 4)


@dataclass
class RxCounters:
    """What happened to every detected preamble. `sequence_mismatch` counts the header CRC failures
    (already in `header_crc_fail`) whose training did not carry the own sequence: frames of another
    sequence_id, or noise that tripped detection."""

    samples: int = 0
    detections: int = 0
    frames: int = 0
    header_crc_fail: int = 0
    header_invalid: int = 0
    sequence_mismatch: int = 0
    as_dict = asdict


@dataclass
class ReferenceFrameReceiver:
    """The receiver written plainly: the definition `FrameReceiver` (the fast path) is tested against."""

    layout: OfatLayout
    threshold: float = 0.2
    phase_tracking: str = "linear"
    max_int_cfo: int = 4  # integer CFO search range in subcarriers (even shifts up to this)
    sfo_tracking: bool = False  # estimate and remove a sampling-clock offset from the pilots (step 7)
    dc_removal: bool = False  # subtract a slow running mean per antenna first (step 0: a DC spur)
    iq_correction: bool = False  # undo a receive IQ imbalance blindly (step 0: circularity)
    noise_estimate: str = "repetitions"  # or "fit_residual": noise plus interference (step 4)
    counters: RxCounters = field(default_factory=RxCounters)
    # Step 3's delay taps on a grid shifted by the channel's fractional delay (False: the integer grid
    # only, the estimator before; experiments/phy/channel_estimate.py compares the two). Not a field.
    align_fraction: ClassVar[bool] = True

    def __post_init__(self) -> None:
        if self.phase_tracking not in ("linear", "per_symbol"):
            raise ValueError("phase_tracking must be 'linear' or 'per_symbol'")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
        if self.noise_estimate not in ("repetitions", "fit_residual"):
            raise ValueError("noise_estimate must be 'repetitions' or 'fit_residual'")
        lay = self.layout
        guard = lay.fft_len // 2 - max(abs(k) for k in lay.used_carriers)
        if not 0 <= self.max_int_cfo <= guard:
            raise ValueError(f"max_int_cfo must be in [0, {guard}] (the guard band), got {self.max_int_cfo}")
        self._int_shifts = np.arange(-(self.max_int_cfo // 2), self.max_int_cfo // 2 + 1) * 2
        self._buf = np.zeros((lay.n_rx, 0), np.complex64)
        self._buf_start = 0  # absolute index of _buf[:, 0]
        self._search_from = 0  # absolute index where detection resumes
        self._half = lay.fft_len // 2
        # Plateau search: a whole CP worth of positions plus the metric's rise.
        self._plateau_window = lay.cp_len + self._half
        signed = lay.used_signed
        self._signed_used = signed
        margin = max(2, lay.cp_len // 4)
        self._candidate_taps = np.arange(-margin, lay.cp_len + margin)
        far = np.arange(lay.cp_len + 2 * margin, lay.fft_len - 2 * margin)
        self._far_taps = far if far.size >= 4 else np.arange(lay.cp_len, lay.fft_len)
        self._basis = np.exp(-2j * np.pi * np.outer(signed, self._candidate_taps) / lay.fft_len)
        self._far_basis = np.exp(-2j * np.pi * np.outer(signed, self._far_taps) / lay.fft_len)
        # basis^H after a delay shift by each coarse candidate fraction: (FRACTION_GRID, taps, Nu).
        coarse = np.arange(FRACTION_GRID) / FRACTION_GRID - 0.5
        self._coarse_fractions = coarse
        self._grid_shift = int(np.flatnonzero(coarse == 0.0)[0])  # the unshifted grid's index
        self._gram = self._basis.conj().T @ self._basis
        # basis^H weighted by 1, i omega, -omega^2: c, dc/df, d2c/df2 of c = basis^H (ramp(f) pairs).
        omega = 2 * np.pi * signed / lay.fft_len
        weights = np.stack([np.ones_like(omega), 1j * omega, -(omega**2)])  # (3, Nu)
        self._derivative_basis_h = self._basis.conj().T[None] * weights[:, None, :]
        self._coarse_basis_h = self._basis.conj().T[None] * self._delay_ramps(coarse)[:, None, :]
        self.last_taps = np.array([], int)  # delay taps kept for the last frame (diagnostics)
        self.last_fraction = 0.0  # the fractional delay of their grid (diagnostics)
        self._front_state: dict[str, np.ndarray] = {}  # running means per antenna (step 0)

    # ------------------------------------------------------------------ streaming
    def process(self, samples: np.ndarray) -> list[ReceivedFrame]:
        """Feed (Nr, n) samples; returns the frames that completed."""
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[0] != self.layout.n_rx:
            raise ValueError(f"expected ({self.layout.n_rx}, n) samples, got {samples.shape}")
        self.counters.samples += samples.shape[1]
        samples = self._front_end(samples)
        self._buf = np.concatenate([self._buf, samples.astype(np.complex64, copy=False)], axis=1)
        return self._drain()

    def _front_end(self, samples: np.ndarray) -> np.ndarray:
        """Step 0 on (Nr, m) samples: DC removal, then the receive IQ imbalance correction, each from
        one-pole running averages over FRONT_END_SPAN samples per antenna (scipy's lfilter with its
        state kept; started from the first chunk's mean, so only that start depends on the chunking)."""
        if not (self.dc_removal or self.iq_correction):
            return samples
        x = np.asarray(samples, np.complex64)
        if self.dc_removal:
            x = x - self._running_mean("dc", x)
        if self.iq_correction:
            # y = k1 x + k2 conj(x) of a circular x has E[y^2] = 2 k1 k2 E|x|^2: beta = E[y^2] / (2 E|y|^2)
            # ~ k2 / conj(k1), and y - beta conj(y) has no image left (to first order in k2).
            power = np.maximum(self._running_mean("p", np.abs(x) ** 2).real, 1e-20)
            beta = self._running_mean("y2", x * x) / (2 * power)
            x = x - beta * np.conj(x)
        return x.astype(np.complex64)

    def _running_mean(self, name: str, x: np.ndarray) -> np.ndarray:
        from scipy.signal import lfilter

        a = 1.0 / FRONT_END_SPAN
        # Started from the first chunk's own mean rather than 0, so that it need not climb for a span.
        last = self._front_state.get(name, np.mean(x, axis=1, keepdims=True))
        zi = last * (1.0 - a)
        mean, _ = lfilter([a], [1.0, a - 1.0], x.astype(complex), axis=1, zi=zi)
        self._front_state[name] = mean[:, -1:]
        return mean

    def _drain(self) -> list[ReceivedFrame]:
        """Every frame the buffer now completes."""
        frames: list[ReceivedFrame] = []
        while True:
            status, frame = self._try_one()
            if frame is not None:
                frames.append(frame)
            if status == "wait":
                return frames

    def _trim(self, keep_from_abs: int) -> None:
        drop = min(max(0, keep_from_abs - self._buf_start), self._buf.shape[1])
        if drop:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop

    def _try_one(self) -> tuple[str, ReceivedFrame | None]:
        """Look for one frame from `_search_from`; "wait" when more samples are needed."""
        lay = self.layout
        n = self._buf.shape[1]
        rel0 = max(0, self._search_from - self._buf_start)
        n_metric = n - rel0 - lay.fft_len + 1
        if n_metric <= 0:
            return "wait", None
        metric, p = self._metric_from(rel0)
        return self._search(rel0, n_metric, metric, p)

    def _metric_from(self, rel0: int) -> tuple[np.ndarray, np.ndarray]:
        """S&C metric and P from buffer index rel0 to the last position with a full window."""
        return self._schmidl_cox(self._buf[:, rel0:])

    def _search(self, rel0: int, n_metric: int, metric: np.ndarray, p: np.ndarray
                ) -> tuple[str, ReceivedFrame | None]:
        """Threshold crossing and plateau in the metric from buffer index rel0 (n_metric positions)."""
        lay = self.layout
        first = self._first_above(metric)  # relative to rel0
        if first < 0:
            # Nothing here; the last fft_len - 1 samples stay, a window may straddle the next chunk.
            self._search_from = self._buf_start + rel0 + n_metric
            self._trim(self._search_from)
            return "wait", None
        if first + self._plateau_window > n_metric:
            return self._wait_from(rel0 + first)
        window = slice(first, first + self._plateau_window)
        peak, middle, p_sum = self._plateau(metric[window], p[window])
        body = rel0 + first + middle  # preamble body start (buf)
        cfo = math.atan2(p_sum.imag, p_sum.real) / (np.pi * lay.fft_len)  # the angle of P
        return self._decode_at(rel0 + first, body, cfo, peak)

    def _first_above(self, metric: np.ndarray) -> int:
        """Index of the first metric value above the threshold; -1 when there is none."""
        above = np.flatnonzero(metric > self.threshold)
        return int(above[0]) if above.size else -1

    @staticmethod
    def _plateau(seg_m: np.ndarray, seg_p: np.ndarray) -> tuple[float, int, complex]:
        """The metric's peak in a plateau window, the middle of its 90 % plateau (index into the window)
        and P summed over that plateau."""
        peak = float(seg_m.max())
        plateau = np.flatnonzero(seg_m >= 0.9 * peak)
        return peak, (int(plateau[0]) + int(plateau[-1])) // 2, complex(seg_p[plateau].sum())

    def _wait_from(self, rel: int) -> tuple[str, None]:
        self._search_from = self._buf_start + rel
        self._trim(self._search_from)
        return "wait", None

    def _skip_to(self, abs_index: int) -> None:
        self._search_from = abs_index
        self._trim(abs_index)

    def _schmidl_cox(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """M(d), P(d) for every d where a full window fits: x (Nr, n) -> (n - fft + 1,)."""
        half = self._half
        prod = (np.conj(x[:, :-half]) * x[:, half:]).sum(axis=0)
        energy = (np.abs(x) ** 2).sum(axis=0)
        cp = np.concatenate([[0], np.cumsum(prod, dtype=np.complex128)])
        ce = np.concatenate([[0], np.cumsum(energy, dtype=np.float64)])
        n_out = x.shape[1] - 2 * half + 1
        p = cp[half: half + n_out] - cp[:n_out]
        r = 0.5 * (ce[2 * half: 2 * half + n_out] - ce[:n_out])
        # Noise-free idle zeros have no energy and no metric (avoids 0/0).
        metric = np.abs(p) ** 2 / np.maximum(r, 1e-20) ** 2
        metric[r < 1e-12] = 0.0
        return metric, p

    def _symbols(self, body: int, first_sym: int, n_sym: int, cfo: float) -> np.ndarray:
        """FFT of symbols [first_sym, first_sym + n_sym) of the frame whose preamble body starts at
        buffer index `body`, CFO removed (phase referenced to the preamble): (Nr, n_sym, Nu)."""
        lay = self.layout
        start = body + first_sym * lay.symbol_len
        span = self._buf[:, start: start + n_sym * lay.symbol_len]
        n_idx = first_sym * lay.symbol_len + np.arange(span.shape[1])
        span = span * np.exp(-2j * np.pi * cfo * n_idx)
        windows = span.reshape(lay.n_rx, n_sym, lay.symbol_len)[:, :, : lay.fft_len]
        return np.fft.fft(windows, axis=-1, norm="ortho")[:, :, lay.used_bins]

    def _integer_cfo(self, body: int, cfo: float) -> int:
        """Even bin shift 2m (subcarriers) left after the S&C fractional estimate: the shift whose
        training bins, descrambled by the known sequence c_k, are smoothest across subcarriers
        (a channel is; noise and a wrong shift are not). Differential, so it needs no channel estimate."""
        lay = self.layout
        if self._int_shifts.size == 1:
            return 0
        t0 = lay.n_preamble_symbols
        start = body + t0 * lay.symbol_len
        span = self._buf[:, start: start + lay.n_train_symbols * lay.symbol_len]
        n_idx = t0 * lay.symbol_len + np.arange(span.shape[1])
        span = span * np.exp(-2j * np.pi * cfo * n_idx)
        windows = span.reshape(lay.n_rx, lay.n_train_symbols, lay.symbol_len)[:, :, : lay.fft_len]
        return self._integer_shift(np.fft.fft(windows, axis=-1, norm="ortho"))

    def _integer_shift(self, full: np.ndarray) -> int:
        """The even bin shift whose descrambled training bins (full: (Nr, T, fft)) are smoothest."""
        lay = self.layout
        # Adjacent used subcarriers only (the DC gap breaks the chain; skip that pair).
        used = lay.used_signed
        adjacent = np.flatnonzero(np.diff(used) == 1)
        c = lay.training_sequence
        scores = []
        for shift in self._int_shifts:
            z = full[:, :, np.mod(used + shift, lay.fft_len)] * np.conj(c)[None, None, :]
            d = np.conj(z[:, :, adjacent]) * z[:, :, adjacent + 1]
            scores.append(np.abs(d.sum(axis=2)).sum())
        return int(self._int_shifts[int(np.argmax(scores))])

    def _estimate_channel(self, yt: np.ndarray) -> tuple[np.ndarray, float, float, bool]:
        """Training (Nr, T, Nu) -> denoised H (Nr, Nt, Nu), the per-element noise variance, the
        estimate's error variance per element (LS error sigma^2 Nt / T, reduced by the projection onto
        the kept delay taps to sigma^2 Nt / T * taps / Nu) and whether the own training sequence is in
        yt (step 4 of the module docstring).

        Denoising: greedy selection (orthogonal matching pursuit with one support shared by all
        antenna pairs, which see the same delays) of delay taps in [-margin, cp + margin), stopping
        when the best remaining tap is not above what noise alone would give. A plain LS fit over the
        whole window is ill-conditioned on a partial band (guard subcarriers) and amplifies noise.
        """
        lay = self.layout
        n_train = lay.n_train_symbols
        h_ls = np.einsum("rpu,pa->rau", yt, np.conj(lay.training_cover))
        h_ls *= np.sqrt(lay.n_tx) / n_train / lay.training_sequence[None, None, :]
        pairs = h_ls.reshape(-1, lay.n_used).T  # (Nu, Nr*Nt)
        far_power = np.abs(self._far_basis.conj().T @ pairs) ** 2  # (far taps, Nr*Nt)
        near_power = np.abs(self._basis.conj().T @ pairs) ** 2  # (candidate taps, Nr*Nt)
        own_training = bool(near_power.sum(axis=1).max()
                            > OWN_TRAINING_RATIO * max(float(far_power.sum(axis=1).mean()), 1e-30))
        if lay.train_reps >= 2:
            # Identical repeated symbols: their difference is noise only (no channel model involved).
            diff = yt[:, lay.n_tx:] - yt[:, : n_train - lay.n_tx]
            noise_var = float(np.mean(np.abs(diff) ** 2) / 2)
        else:
            # One repetition: the matched-filter output at delays no channel can reach.
            noise_var = float(np.mean(far_power) / lay.n_used * n_train / lay.n_tx)
        noise_var = max(noise_var, 1e-12)
        ls_noise = noise_var * lay.n_tx / n_train  # per-element noise of h_ls
        threshold = 3.0 * ls_noise / lay.n_used  # matched-filter tap power noise alone rarely exceeds
        chosen, fitted, fraction = self._fit_taps(pairs, threshold)
        if self.noise_estimate == "fit_residual":
            residual_var = self._fit_residual_noise(yt, chosen, fraction)
            if residual_var > INTERFERENCE_RATIO * noise_var:
                # Interference the repetitions' difference missed (an interferer whose CFO barely
                # rotates it between repetitions): the taps chosen against the smaller floor chase it,
                # so choose again against the floor of the averaged estimate itself, read at delays no
                # channel reaches (the interference does not average out over coherent repetitions).
                far_ls_noise = float(np.mean(far_power)) / lay.n_used
                threshold = 3.0 * max(far_ls_noise, residual_var * lay.n_tx / n_train) / lay.n_used
                chosen, fitted, fraction = self._fit_taps(pairs, threshold)
                residual_var = self._fit_residual_noise(yt, chosen, fraction)
            noise_var = residual_var
            ls_noise = noise_var * lay.n_tx / n_train
        self.last_taps = np.sort(self._candidate_taps[chosen])
        self.last_fraction = fraction
        err_var = ls_noise * len(chosen) / lay.n_used
        return fitted.T.reshape(lay.n_rx, lay.n_tx, lay.n_used), noise_var, err_var, own_training

    def _fit_residual_noise(self, yt: np.ndarray, chosen: list[int], fraction: float) -> float:
        """Noise plus interference per element: each repetition's LS estimate (Nt symbols, Nr*Nt pairs)
        less its own least-squares fit on the chosen delay taps, whose Nu - taps residual degrees of
        freedom per pair hold white noise of the per-element variance (an LS estimate from Nt symbols
        of one repetition has the symbols' noise variance)."""
        lay = self.layout
        reps = yt.reshape(lay.n_rx, lay.train_reps, lay.n_tx, lay.n_used)
        h_rep = np.einsum("rqpu,pa->uqra", reps, np.conj(lay.training_cover[: lay.n_tx]))
        h_rep *= 1.0 / np.sqrt(lay.n_tx) / lay.training_sequence[:, None, None, None]
        per_rep = h_rep.reshape(lay.n_used, -1)  # (Nu, reps * Nr * Nt)
        sub = self._basis[:, chosen] * np.conj(self._delay_ramps(fraction))[:, None]
        coef, *_ = np.linalg.lstsq(sub, per_rep, rcond=None)
        residual = per_rep - sub @ coef
        dof = max(lay.n_used - len(chosen), 1)
        return max(float(np.sum(np.abs(residual) ** 2) / (dof * per_rep.shape[1])), 1e-12)

    def _delay_ramps(self, fractions: np.ndarray | float) -> np.ndarray:
        """exp(+2 pi j k f / fft) on the used subcarriers, (Nu,) or (len(f), Nu): multiplying a channel by
        it moves every delay f samples earlier (a path at d + f onto the integer tap d)."""
        f = np.asarray(fractions, float)
        return np.exp(2j * np.pi * np.multiply.outer(f, self._signed_used) / self.layout.fft_len)

    def _fit_taps(self, pairs: np.ndarray, threshold: float) -> tuple[list[int], np.ndarray, float]:
        """Step 3's denoiser on pairs (Nu, Nr*Nt): (chosen candidate taps, the fit (Nu, Nr*Nt), the
        fractional delay f of their grid; the taps sit at candidate + f samples).

        `_coarse_fraction` picks, among FRACTION_GRID shifts of the grid (0 included), the one whose
        fit has the lowest Mallows' Cp. Unless that is within half a coarse step of 0 (then the integer
        grid's greedy fit, as before), f is refined by Newton steps on the energy its taps capture
        (`_refine_fraction`) and the greedy selection runs on the grid shifted by f; where it keeps
        other taps, f is refined once more on them and they are fitted at it. Where the coarse Cp
        needed all COARSE_TAPS taps, the shifted fit is checked against the integer grid's by their
        Cp (residual energy + 2 x one tap's noise energy per tap).
        """
        if not self.align_fraction:
            return (*self._select_taps(pairs, threshold), 0.0)
        # threshold = 3 x the LS noise per element / Nu: one tap's noise energy over all pairs, times 2.
        tap_penalty = 2.0 / 3.0 * threshold * self.layout.n_used * pairs.shape[1]
        fraction, strongest = self._coarse_fraction(pairs, tap_penalty)
        if abs(fraction) < 0.5 / FRACTION_GRID:
            return (*self._select_taps(pairs, threshold), 0.0)  # on the sample grid: the integer fit
        fraction = self._refine_fraction(pairs, strongest, fraction)
        ramp = self._delay_ramps(fraction)
        shifted, fit = self._select_taps(pairs * ramp[:, None], threshold)
        if sorted(shifted) != strongest:
            # Refined on other taps than the shifted grid keeps: once more on these, then their fit.
            fraction = self._refine_fraction(pairs, shifted, fraction)
            ramp = self._delay_ramps(fraction)
            fit = self._fit_on(pairs * ramp[:, None], shifted)
        fit = fit * np.conj(ramp)[:, None]
        if len(strongest) < COARSE_TAPS:
            return shifted, fit, fraction
        # The coarse Cp ran out of taps (a dense response, or one that is no shifted set of taps): it
        # told the shifts apart on equal numbers of taps only, so compare with the integer fit here.
        chosen, fitted = self._select_taps(pairs, threshold)

        def cp_cost(estimate: np.ndarray, n_taps: int) -> float:
            r = pairs - estimate
            return float(np.sum(r.real**2 + r.imag**2)) + tap_penalty * n_taps

        if cp_cost(fit, len(shifted)) < cp_cost(fitted, len(chosen)):
            return shifted, fit, fraction
        return chosen, fitted, 0.0

    def _coarse_fraction(self, pairs: np.ndarray, tap_penalty: float) -> tuple[float, list[int]]:
        """The shift of the delay grid (one of FRACTION_GRID over a sample) whose fit of pairs (Nu, P)
        has the lowest Mallows' Cp: residual energy + tap_penalty (2 x one tap's noise energy) per tap,
        the taps taken strongest first in the shifted delay profile (up to COARSE_TAPS; each one's
        energy gain from one vectorised elimination over all shifts). A path sits on one tap of the
        right shift and spreads over several of the others, so sparse channels whose delays share a
        fraction pick it; a response that is no shifted set of taps keeps the integer grid (shift 0)
        unless another fits it better. Returns the shift, refined by a parabola through the energy the
        best shift's number of taps captures at it and its neighbours (0.0 when shift 0 wins), and the
        best shift's taps.
        """
        c = self._coarse_basis_h @ pairs  # (G, taps, P)
        profile = np.sum(c.real**2 + c.imag**2, axis=2)
        order = np.argsort(-profile, axis=1, kind="stable")[:, :COARSE_TAPS]  # (G, K) strongest first
        upper, x = _eliminate(self._gram[order[:, :, None], order[:, None, :]],
                              np.take_along_axis(c, order[:, :, None], axis=1))
        gains = np.sum(x.real**2 + x.imag**2, axis=2) / np.diagonal(upper, axis1=1, axis2=2).real
        captured = np.cumsum(gains, axis=1)  # (G, K): energy of the fit on the k + 1 strongest taps
        cp = -captured + tap_penalty * np.arange(1, captured.shape[1] + 1)  # Cp less the total energy
        n_taps = np.argmin(cp, axis=1)  # (G,) index of the best number of taps (minus one)
        cp_min = cp[np.arange(cp.shape[0]), n_taps]
        best = int(np.argmin(cp_min))
        if cp_min[self._grid_shift] <= cp_min[best]:
            return 0.0, []  # the integer grid fits as well (ties included)
        fraction = _parabola_peak(self._coarse_fractions, captured[:, n_taps[best]], cyclic=True)
        return fraction, sorted(int(t) for t in order[best, : n_taps[best] + 1])

    def _refine_fraction(self, pairs: np.ndarray, chosen: list[int], fraction: float) -> float:
        """Newton steps (NEWTON_STEPS) towards the fractional delay f at which the candidate taps `chosen`,
        shifted by f, capture the most energy of pairs (Nu, P) in a least-squares fit:
        E(f) = sum over pairs of c^H G^-1 c, c = basis[:, chosen]^H (ramp(f) pairs), G their Gram matrix."""
        sub_h = self._derivative_basis_h[:, chosen]  # (3, taps, Nu)
        gram_inv = self._chosen_gram_inv(chosen)
        for _ in range(NEWTON_STEPS):
            c, d1, d2 = sub_h @ (pairs * self._delay_ramps(fraction)[:, None])
            g = gram_inv @ c
            slope = 2 * float(np.sum((d1.conj() * g).real))
            curvature = 2 * float(np.sum((d2.conj() * g).real) + np.sum((d1.conj() * (gram_inv @ d1)).real))
            if curvature >= 0:
                break  # not near a maximum: keep the coarse estimate
            fraction -= float(np.clip(slope / curvature, -0.25, 0.25))
        return fraction

    def _fit_on(self, pairs: np.ndarray, chosen: list[int]) -> np.ndarray:
        """Least-squares fit of pairs (Nu, P) on the candidate taps `chosen`: (Nu, P)."""
        sub = self._basis[:, chosen]
        coef, *_ = np.linalg.lstsq(sub, pairs, rcond=None)
        return sub @ coef

    def _chosen_gram_inv(self, chosen: list[int]) -> np.ndarray:
        """(basis[:, chosen]^H basis[:, chosen])^-1."""
        sub = self._basis[:, chosen]
        return np.linalg.inv(sub.conj().T @ sub)

    def _select_taps(self, pairs: np.ndarray, threshold: float) -> tuple[list[int], np.ndarray]:
        """Greedy tap selection (see _estimate_channel): pairs (Nu, Nr*Nt) -> (chosen candidate indices,
        the least-squares fit of pairs on those taps, (Nu, Nr*Nt))."""
        lay = self.layout
        basis = self._basis
        chosen: list[int] = []
        residual = pairs
        fitted = np.zeros_like(pairs)
        for _ in range(basis.shape[1]):
            score = np.mean(np.abs(basis.conj().T @ residual) ** 2, axis=1) / lay.n_used**2
            score[chosen] = -np.inf
            best = int(np.argmax(score))
            if score[best] <= threshold and chosen:
                break
            chosen.append(best)
            sub = basis[:, chosen]
            coef, *_ = np.linalg.lstsq(sub, pairs, rcond=None)
            fitted = sub @ coef
            residual = pairs - fitted
        return chosen, fitted

    def _phases(self, y: np.ndarray, g: np.ndarray, first_sym: int) -> np.ndarray:
        """Common phase per symbol from the pilots: y (Nr, n, Nu), g effective channel (Nr, Nu)."""
        lay = self.layout
        pidx = lay.pilot_index_in_used
        ref = g[:, None, pidx] * lay.pilot_values(y.shape[1], first_sym)[None]  # (Nr, n, P)
        z = np.sum(np.conj(ref) * y[:, :, pidx], axis=(0, 2))  # (n,)
        if self.phase_tracking == "per_symbol" or z.size < 2:
            return np.angle(z)
        slope = float(np.angle(np.sum(np.conj(z[:-1]) * z[1:])))
        j = np.arange(z.size)
        phase0 = float(np.angle(np.sum(z * np.exp(-1j * slope * j))))
        return phase0 + slope * j

    def _front(self, body: int, cfo: float) -> _Front:
        """Everything before the data symbols of the frame whose preamble body starts at buffer index
        `body` (its training and header symbols are in the buffer): CFO, channel, noise, header."""
        lay = self.layout
        t0 = lay.n_preamble_symbols
        h0 = t0 + lay.n_train_symbols
        cfo += self._integer_cfo(body, cfo) / lay.fft_len
        yt = self._symbols(body, t0, lay.n_train_symbols, cfo)
        if lay.train_reps >= 2:
            cfo = self._refined_cfo(yt, cfo)
            yt = self._symbols(body, t0, lay.n_train_symbols, cfo)
        yh = self._symbols(body, h0, lay.n_header_symbols, cfo)
        return self._channel_and_header(yt, yh, cfo)

    def _refined_cfo(self, yt: np.ndarray, cfo: float) -> float:
        """Repeated training symbols are identical: their phase step is the residual CFO."""
        lay = self.layout
        c = np.sum(np.conj(yt[:, : lay.n_train_symbols - lay.n_tx]) * yt[:, lay.n_tx:])
        return cfo + float(np.angle(c)) / (2 * np.pi * lay.n_tx * lay.symbol_len)

    def _channel_and_header(self, yt: np.ndarray, yh: np.ndarray, cfo: float) -> _Front:
        """Training (Nr, T, Nu) and header (Nr, Hs, Nu) symbols at the final CFO -> _Front."""
        lay = self.layout
        h, noise_var, err_var, own_training = self._estimate_channel(yt)
        g = np.einsum("rau,au->ru", h, lay.cdd_phases(lay.used_bins))
        yh_c = yh * np.exp(-1j * self._phases(yh, g, 0))[None, :, None]
        didx = lay.data_index_in_used
        llr = 4.0 * np.real(np.sum(np.conj(g[:, None, didx]) * yh_c[:, :, didx], axis=0)) / noise_var
        header = decode_header(combine_header_llrs(lay, llr))
        return _Front(cfo, h, noise_var, err_var, g, yh, header, own_training)

    def _remove_sfo(self, y: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, float]:
        """Step 7 of the module docstring on the header + data symbols y (Nr, n, Nu) with the effective
        pilot channel g (Nr, Nu): (y with the SFO phase ramp removed, the SFO estimate in ppm)."""
        lay = self.layout
        pidx = lay.pilot_index_in_used
        ref = g[:, None, pidx] * lay.pilot_values(y.shape[1], 0)[None]  # (Nr, n, P)
        u = np.sum(np.conj(ref) * y[:, :, pidx], axis=0)  # (n, P) pilots, antennas combined
        common = np.sum(u, axis=1, keepdims=True)
        rel = np.angle(u * np.conj(common))  # each pilot's phase against its symbol's common phase
        t_train = lay.n_preamble_symbols + (lay.n_train_symbols - 1) / 2  # where h was estimated
        d = lay.n_preamble_symbols + lay.n_train_symbols + np.arange(y.shape[1]) - t_train
        w = np.abs(u) ** 2
        k = self._signed_used[pidx][None, :]
        # Regressor k (m - m_train) with k centred per symbol on the pilots' weighted mean: what is left
        # of each symbol's own phase (common phase, residual CFO, phase noise) does not leak into it.
        k_mean = np.sum(w * k, axis=1, keepdims=True) / np.maximum(np.sum(w, axis=1, keepdims=True), 1e-30)
        x = (k - k_mean) * d[:, None]
        slope = float(np.sum(w * x * rel) / max(float(np.sum(w * x * x)), 1e-30))  # rad per k per symbol
        ramp = np.exp(-1j * slope * np.outer(d, self._signed_used))  # (n, Nu)
        return y * ramp[None].astype(y.dtype), -slope * lay.fft_len / (2 * np.pi * lay.symbol_len) * 1e6

    def _header_and_data(self, body: int, front: _Front, n_data: int) -> np.ndarray:
        """Header and data symbols, CFO removed: (Nr, Hs + n_data, Nu)."""
        h0 = self.layout.n_preamble_symbols + self.layout.n_train_symbols
        return self._symbols(body, h0, self.layout.n_header_symbols + n_data, front.cfo)

    def _frame_data(self, body: int, front: _Front, n_data: int
                    ) -> tuple[np.ndarray, np.ndarray, float, float | None]:
        """The data of a frame whose symbols have all arrived: (Y (K, Nr, S) complex64 after the CFO,
        SFO (sfo_tracking) and common phase, H (K, Nr, Nt) complex64, the signal power per element, the
        SFO estimate in ppm or None)."""
        lay = self.layout
        yd = self._header_and_data(body, front, n_data)
        sfo_ppm = None
        if self.sfo_tracking:
            yd, sfo_ppm = self._remove_sfo(yd, front.g)
        phases = self._phases(yd, front.g, 0)[lay.n_header_symbols:]
        didx = lay.data_index_in_used
        y_data = yd[:, lay.n_header_symbols:, :][:, :, didx] * np.exp(-1j * phases)[None, :, None]
        h = front.h
        signal_power = float(np.mean(np.sum(np.abs(h) ** 2, axis=1)) / lay.n_tx)
        return (np.ascontiguousarray(y_data.transpose(2, 0, 1)).astype(np.complex64),
                np.ascontiguousarray(h[:, :, didx].transpose(2, 0, 1)).astype(np.complex64),
                signal_power, sfo_ppm)

    def _decode_at(self, first: int, body: int, cfo: float, peak: float
                   ) -> tuple[str, ReceivedFrame | None]:
        lay = self.layout
        n = self._buf.shape[1]
        d0 = lay.n_preamble_symbols + lay.n_train_symbols + lay.n_header_symbols
        if body + d0 * lay.symbol_len > n:
            return self._wait_from(first)
        front = self._front(body, cfo)
        header = front.header
        frame_start_abs = self._buf_start + body - lay.cp_len
        if header is None or header.n_values > lay.capacity:
            self.counters.detections += 1
            if header is None:
                self.counters.header_crc_fail += 1
                self.counters.sequence_mismatch += not front.own_training
            else:
                self.counters.header_invalid += 1
            log.debug("preamble at %d: header %s", frame_start_abs, "CRC failed" if header is None
                      else f"invalid ({header.n_values} values > capacity)")
            self._skip_to(self._buf_start + body + lay.symbol_len)
            return "more", None
        n_data = lay.n_data_symbols(header.n_values)
        end = body + (d0 + n_data) * lay.symbol_len
        if end > n:
            return self._wait_from(first)
        self.counters.detections += 1
        y, h, signal_power, sfo_ppm = self._frame_data(body, front, n_data)
        frame = ReceivedFrame(
            header=header,
            y=y,
            h=h,
            noise_var=front.noise_var,
            snr_db=10 * math.log10(max(signal_power, 1e-20) / front.noise_var),
            cfo=front.cfo,
            start=int(frame_start_abs),
            metric=peak,
            err_var=front.err_var,
            sfo_ppm=sfo_ppm,
        )
        self.counters.frames += 1
        self._skip_to(self._buf_start + end - lay.cp_len)
        return "more", frame


class FrameReceiver(ReferenceFrameReceiver):
    """The receiver ofat_rx runs: ReferenceFrameReceiver's output (equal within float32 rounding, tested)
    with each sample's work done once.

    * Samples are appended to a buffer that grows by doubling and is compacted in place, not
      concatenated per call.
    * The Schmidl & Cox metric is computed once per position and kept, not recomputed over the whole
      remaining buffer after each frame.
    * A frame whose data have not all arrived keeps its CFO, channel estimate and header (`_Front`)
      until they have; it is not decoded again from scratch.
    * Training symbols: one FFT at the fractional CFO serves the integer search and, shifted by the
      integer bins, the residual estimate; one more at the final CFO with the header symbols; the
      header symbols are not FFT'd again with the data. The CFO ramp is complex64 and covers the FFT
      windows only.
    * Tap selection solves the normal equations on the precomputed Gram matrix of the tap basis, so a
      greedy step costs (taps x taps) instead of a least-squares fit over every subcarrier; the
      fractional delay's Newton refinement reuses the inverse the selection grew.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        lay = self.layout
        self._store = np.zeros((lay.n_rx, 1 << 14), np.complex64)
        self._lo = self._hi = 0  # _buf is the view _store[:, _lo:_hi]
        self._metric = np.zeros(0)
        self._p = np.zeros(0, complex)
        self._metric_start = 0  # absolute index of _metric[0]
        self._pending: tuple[int, _Front] | None = None  # (absolute body index, its front)
        self._chosen_inv: tuple[list[int], np.ndarray] = ([], np.zeros((0, 0), complex))
        self._window_ramp = np.arange(lay.fft_len)  # sample index inside an FFT window
        used = lay.used_signed
        self._adjacent = np.flatnonzero(np.diff(used) == 1)
        self._shift_bins = np.mod(used[None, :] + self._int_shifts[:, None], lay.fft_len)
        self._train_conj = np.conj(lay.training_sequence)

    def process(self, samples: np.ndarray | list[np.ndarray]) -> list[ReceivedFrame]:
        """Feed (Nr, n) samples, or a list of Nr arrays of n samples (GNU Radio's input_items, copied
        once into the buffer); returns the frames that completed."""
        if isinstance(samples, (list, tuple)):
            lens = {np.shape(s) for s in samples}
            if len(samples) != self.layout.n_rx or len(lens) != 1 or len(next(iter(lens))) != 1:
                raise ValueError(f"expected {self.layout.n_rx} 1-d sample arrays of one length")
            m = len(samples[0])
        else:
            samples = np.asarray(samples)
            if samples.ndim != 2 or samples.shape[0] != self.layout.n_rx:
                raise ValueError(f"expected ({self.layout.n_rx}, n) samples, got {samples.shape}")
            m = samples.shape[1]
        self.counters.samples += m
        if self.dc_removal or self.iq_correction:
            samples = self._front_end(np.asarray(samples))
        if self._hi + m > self._store.shape[1]:
            keep = self._hi - self._lo
            store = self._store
            if keep + m > store.shape[1] // 2:
                store = np.empty((self.layout.n_rx, 2 * (keep + m)), np.complex64)
            store[:, :keep] = self._store[:, self._lo: self._hi]
            self._store, self._lo, self._hi = store, 0, keep
        for r in range(self.layout.n_rx):
            self._store[r, self._hi: self._hi + m] = samples[r]
        self._hi += m
        self._buf = self._store[:, self._lo: self._hi]
        return self._drain()

    def _trim(self, keep_from_abs: int) -> None:
        drop = min(max(0, keep_from_abs - self._buf_start), self._hi - self._lo)
        if drop:
            self._lo += drop
            self._buf_start += drop
            self._buf = self._store[:, self._lo: self._hi]
        # The metric before the search position is never looked at again.
        cut = min(max(0, self._search_from - self._metric_start), self._metric.size)
        if cut:
            self._metric, self._p = self._metric[cut:], self._p[cut:]
            self._metric_start += cut

    def _metric_from(self, rel0: int) -> tuple[np.ndarray, np.ndarray]:
        n_valid = self._buf_start + self._buf.shape[1] - self.layout.fft_len + 1  # absolute, exclusive
        have = self._metric_start + self._metric.size
        if have < n_valid:
            new_from = max(have, self._buf_start + rel0)
            m, p = self._schmidl_cox(self._buf[:, new_from - self._buf_start:])
            if new_from > have or not self._metric.size:
                # Nothing kept before new_from (a fresh search position, or all of it searched):
                # taken as it is, not copied by a concatenate (the idle stretches' common case).
                self._metric, self._p, self._metric_start = m, p, new_from
            else:
                self._metric = np.concatenate([self._metric, m])
                self._p = np.concatenate([self._p, p])
        off = self._buf_start + rel0 - self._metric_start
        return self._metric[off:], self._p[off:]

    def _windows_fft(self, body: int, first_sym: int, n_sym: int, cfo: float) -> np.ndarray:
        """Full FFT of the windows of symbols [first_sym, first_sym + n_sym), CFO removed with the
        phase referenced to the preamble: (Nr, n_sym, fft)."""
        lay = self.layout
        start = body + first_sym * lay.symbol_len
        span = self._buf[:, start: start + n_sym * lay.symbol_len]
        windows = span.reshape(lay.n_rx, n_sym, lay.symbol_len)[:, :, : lay.fft_len]
        sym_start = (first_sym + np.arange(n_sym)) * lay.symbol_len
        ramp = np.exp(-2j * np.pi * cfo * (sym_start[:, None] + self._window_ramp[None, :]))
        return np.fft.fft(windows * ramp.astype(np.complex64), axis=-1, norm="ortho")

    def _front(self, body: int, cfo: float) -> _Front:
        body_abs = self._buf_start + body
        if self._pending is not None and self._pending[0] == body_abs:
            return self._pending[1]
        front = self._new_front(body, cfo)
        self._pending = (body_abs, front)
        return front

    def _new_front(self, body: int, cfo: float) -> _Front:
        """The front of a frame not seen before (`_front` keeps it while its data arrive)."""
        lay = self.layout
        t0 = lay.n_preamble_symbols
        n_train, n_head = lay.n_train_symbols, lay.n_header_symbols
        used = lay.used_bins
        full = self._windows_fft(body, t0, n_train, cfo)
        shift = self._integer_shift(full)
        # An integer bin shift of the ramp is a bin shift of the FFT and a phase per symbol.
        sym_start = (t0 + np.arange(n_train)) * lay.symbol_len
        yt = full[:, :, (used + shift) % lay.fft_len]
        if shift:
            yt = yt * np.exp(-2j * np.pi * shift * sym_start / lay.fft_len)[None, :, None]
        cfo += shift / lay.fft_len
        if lay.train_reps >= 2:
            cfo = self._refined_cfo(yt, cfo)
            both = self._windows_fft(body, t0, n_train + n_head, cfo)[:, :, used]
            yt, yh = both[:, :n_train], both[:, n_train:]
        else:
            yh = self._windows_fft(body, t0 + n_train, n_head, cfo)[:, :, used]
        return self._channel_and_header(yt, yh, cfo)

    def _header_and_data(self, body: int, front: _Front, n_data: int) -> np.ndarray:
        lay = self.layout
        self._pending = None
        d0 = lay.n_preamble_symbols + lay.n_train_symbols + lay.n_header_symbols
        yd = self._windows_fft(body, d0, n_data, front.cfo)[:, :, lay.used_bins]
        return np.concatenate([front.yh, yd], axis=1)

    def _integer_shift(self, full: np.ndarray) -> int:
        # Every candidate shift in one gather: (Nr, T, shifts, Nu).
        z = full[:, :, self._shift_bins] * self._train_conj
        d = np.conj(z[..., self._adjacent]) * z[..., self._adjacent + 1]
        scores = np.abs(d.sum(axis=3)).sum(axis=(0, 1))
        return int(self._int_shifts[int(np.argmax(scores))])

    def _select_taps(self, pairs: np.ndarray, threshold: float) -> tuple[list[int], np.ndarray]:
        # basis^H residual = c - G[:, S] coef with c = basis^H pairs and G the Gram matrix: the same
        # greedy steps as the reference without touching the Nu subcarriers inside the loop. The
        # inverse of G[S, S] grows by one row and column per step (block inverse through the Schur
        # complement): a few small products, no LAPACK call (whose threads cost more than the solve).
        gram = self._gram
        c = self._basis.conj().T @ pairs  # (C, P)
        limit = threshold * pairs.shape[1] * self.layout.n_used**2  # the reference's score, unnormalised
        corr = c
        chosen: list[int] = []
        inv = np.zeros((0, 0), complex)
        for _ in range(c.shape[0]):
            score = (corr.real**2 + corr.imag**2).sum(axis=1)
            score[chosen] = -np.inf
            best = int(np.argmax(score))
            if score[best] <= limit and chosen:
                break
            g = gram[chosen, best]
            u = inv @ g
            schur = (gram[best, best] - np.vdot(g, u)).real
            # The new tap's part orthogonal to the chosen ones takes corr[best] out of every correlation.
            q = gram[:, best] - gram[:, chosen] @ u
            corr = corr - np.outer(q / schur, corr[best])
            k = len(chosen)
            grown = np.empty((k + 1, k + 1), complex)
            grown[:k, :k] = inv + np.outer(u, u.conj()) / schur
            grown[:k, k] = -u / schur
            grown[k, :k] = -u.conj() / schur
            grown[k, k] = 1.0 / schur
            inv = grown
            chosen.append(best)
        self._chosen_inv = (list(chosen), inv)  # for _refine_fraction on the same taps
        return chosen, self._basis[:, chosen] @ (inv @ c[chosen])

    def _fit_on(self, pairs: np.ndarray, chosen: list[int]) -> np.ndarray:
        sub = self._basis[:, chosen]
        return sub @ (self._chosen_gram_inv(chosen) @ (sub.conj().T @ pairs))

    def _chosen_gram_inv(self, chosen: list[int]) -> np.ndarray:
        # The inverse the greedy selection of these taps has just grown; else by elimination (no LAPACK).
        last, inv = self._chosen_inv
        if last == list(chosen):
            return inv
        return _hpd_solve(self._gram[np.ix_(chosen, chosen)][None], np.eye(len(chosen))[None])[0]
