"""OFAT receiver DSP (numpy only): Nr sample streams in, decoded frames out.

`FrameReceiver.process()` takes any chunk of samples and returns the frames completed by it, keeping
what it needs across calls (a Schmidl & Cox plateau or a frame split between chunks is not lost).
The GNU Radio block `ofat_rx` is a thin wrapper; offline replay of recordings uses this class directly.

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
4. Noise variance: from the difference of repeated training symbols (independent of any channel
   model); from the projection residual when there is one repetition.
5. Header: BPSK with cyclic delay diversity, maximum-ratio combined over antennas and repetitions,
   CRC-16 checked. A failed CRC is counted, never delivered.
6. Residual phase: common phase per symbol from the pilots, fitted as phase0 + slope * symbol over
   the header and data symbols ("linear", residual CFO) or taken per symbol ("per_symbol").
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

import numpy as np

from .frame import FrameHeader, OfatLayout, combine_header_llrs, decode_header

log = logging.getLogger(__name__)


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

    def meta(self, layout: OfatLayout) -> dict:
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
            "layout": layout.to_dict(),
        }


@dataclass
class RxCounters:
    """What happened to every detected preamble."""

    samples: int = 0
    detections: int = 0
    frames: int = 0
    header_crc_fail: int = 0
    header_invalid: int = 0
    as_dict = asdict


@dataclass
class FrameReceiver:
    layout: OfatLayout
    threshold: float = 0.2
    phase_tracking: str = "linear"
    max_int_cfo: int = 4  # integer CFO search range in subcarriers (even shifts up to this)
    counters: RxCounters = field(default_factory=RxCounters)

    def __post_init__(self) -> None:
        if self.phase_tracking not in ("linear", "per_symbol"):
            raise ValueError("phase_tracking must be 'linear' or 'per_symbol'")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError("threshold must be in (0, 1)")
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
        used = lay.used_bins
        signed = np.where(used >= lay.fft_len // 2, used - lay.fft_len, used)
        self._signed_used = signed
        margin = max(2, lay.cp_len // 4)
        self._candidate_taps = np.arange(-margin, lay.cp_len + margin)
        far = np.arange(lay.cp_len + 2 * margin, lay.fft_len - 2 * margin)
        self._far_taps = far if far.size >= 4 else np.arange(lay.cp_len, lay.fft_len)
        self._basis = np.exp(-2j * np.pi * np.outer(signed, self._candidate_taps) / lay.fft_len)
        self.last_taps = np.array([], int)  # delay taps kept for the last frame (diagnostics)

    # ------------------------------------------------------------------ streaming
    def process(self, samples: np.ndarray) -> list[ReceivedFrame]:
        """Feed (Nr, n) samples; returns the frames that completed."""
        samples = np.asarray(samples)
        if samples.ndim != 2 or samples.shape[0] != self.layout.n_rx:
            raise ValueError(f"expected ({self.layout.n_rx}, n) samples, got {samples.shape}")
        self.counters.samples += samples.shape[1]
        self._buf = np.concatenate([self._buf, samples.astype(np.complex64, copy=False)], axis=1)
        frames: list[ReceivedFrame] = []
        while True:
            status, frame = self._try_one()
            if frame is not None:
                frames.append(frame)
            if status == "wait":
                break
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
        metric, p = self._schmidl_cox(self._buf[:, rel0:])
        above = np.flatnonzero(metric > self.threshold)
        if above.size == 0:
            # Nothing here; the last fft_len - 1 samples stay, a window may straddle the next chunk.
            self._search_from = self._buf_start + rel0 + n_metric
            self._trim(self._search_from)
            return "wait", None
        first = int(above[0])  # relative to rel0
        if first + self._plateau_window > n_metric:
            return self._wait_from(rel0 + first)
        seg_m = metric[first: first + self._plateau_window]
        seg_p = p[first: first + self._plateau_window]
        peak = float(seg_m.max())
        plateau = np.flatnonzero(seg_m >= 0.9 * peak)
        body = rel0 + first + (int(plateau[0]) + int(plateau[-1])) // 2  # preamble body start (buf)
        cfo = float(np.angle(seg_p[plateau].sum())) / (np.pi * lay.fft_len)
        return self._decode_at(rel0 + first, body, cfo, peak)

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
        full = np.fft.fft(windows, axis=-1, norm="ortho")  # (Nr, T, fft)
        # Adjacent used subcarriers only (the DC gap breaks the chain; skip that pair).
        used = np.sort(np.array(lay.used_carriers))
        adjacent = np.flatnonzero(np.diff(used) == 1)
        c = lay.training_sequence
        scores = []
        for shift in self._int_shifts:
            z = full[:, :, np.mod(used + shift, lay.fft_len)] * np.conj(c)[None, None, :]
            d = np.conj(z[:, :, adjacent]) * z[:, :, adjacent + 1]
            scores.append(np.abs(d.sum(axis=2)).sum())
        return int(self._int_shifts[int(np.argmax(scores))])

    def _estimate_channel(self, yt: np.ndarray) -> tuple[np.ndarray, float, float]:
        """Training (Nr, T, Nu) -> denoised H (Nr, Nt, Nu), the per-element noise variance and the
        estimate's error variance per element: LS error sigma^2 Nt / T, reduced by the projection onto
        the kept delay taps to sigma^2 Nt / T * taps / Nu.

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
        basis = self._basis
        if lay.train_reps >= 2:
            # Identical repeated symbols: their difference is noise only (no channel model involved).
            diff = yt[:, lay.n_tx:] - yt[:, : n_train - lay.n_tx]
            noise_var = float(np.mean(np.abs(diff) ** 2) / 2)
        else:
            # One repetition: the matched-filter output at delays no channel can reach.
            far = np.exp(-2j * np.pi * np.outer(self._signed_used, self._far_taps) / lay.fft_len)
            noise_var = float(np.mean(np.abs(far.conj().T @ pairs) ** 2) / lay.n_used * n_train / lay.n_tx)
        noise_var = max(noise_var, 1e-12)
        ls_noise = noise_var * lay.n_tx / n_train  # per-element noise of h_ls
        threshold = 3.0 * ls_noise / lay.n_used  # matched-filter tap power noise alone rarely exceeds
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
        self.last_taps = np.sort(self._candidate_taps[chosen])
        err_var = ls_noise * len(chosen) / lay.n_used
        return fitted.T.reshape(lay.n_rx, lay.n_tx, lay.n_used), noise_var, err_var

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

    def _decode_at(self, first: int, body: int, cfo: float, peak: float
                   ) -> tuple[str, ReceivedFrame | None]:
        lay = self.layout
        n = self._buf.shape[1]
        t0 = lay.n_preamble_symbols
        h0 = t0 + lay.n_train_symbols
        d0 = h0 + lay.n_header_symbols
        if body + d0 * lay.symbol_len > n:
            return self._wait_from(first)
        cfo += self._integer_cfo(body, cfo) / lay.fft_len
        yt = self._symbols(body, t0, lay.n_train_symbols, cfo)
        if lay.train_reps >= 2:
            # Repeated training symbols are identical: their phase step is the residual CFO.
            c = np.sum(np.conj(yt[:, : lay.n_train_symbols - lay.n_tx]) * yt[:, lay.n_tx:])
            cfo += float(np.angle(c)) / (2 * np.pi * lay.n_tx * lay.symbol_len)
            yt = self._symbols(body, t0, lay.n_train_symbols, cfo)
        h, noise_var, err_var = self._estimate_channel(yt)
        g = np.einsum("rau,au->ru", h, lay.cdd_phases(lay.used_bins))
        yh = self._symbols(body, h0, lay.n_header_symbols, cfo)
        yh = yh * np.exp(-1j * self._phases(yh, g, 0))[None, :, None]
        didx = lay.data_index_in_used
        llr = 4.0 * np.real(np.sum(np.conj(g[:, None, didx]) * yh[:, :, didx], axis=0)) / noise_var
        header = decode_header(combine_header_llrs(lay, llr))
        frame_start_abs = self._buf_start + body - lay.cp_len
        if header is None or header.n_values > lay.capacity:
            self.counters.detections += 1
            if header is None:
                self.counters.header_crc_fail += 1
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
        yd = self._symbols(body, h0, lay.n_header_symbols + n_data, cfo)
        phases = self._phases(yd, g, 0)[lay.n_header_symbols:]
        y_data = yd[:, lay.n_header_symbols:, :][:, :, didx] * np.exp(-1j * phases)[None, :, None]
        signal_power = float(np.mean(np.sum(np.abs(h) ** 2, axis=1)) / lay.n_tx)
        frame = ReceivedFrame(
            header=header,
            y=np.ascontiguousarray(y_data.transpose(2, 0, 1)).astype(np.complex64),
            h=np.ascontiguousarray(h[:, :, didx].transpose(2, 0, 1)).astype(np.complex64),
            noise_var=noise_var,
            snr_db=float(10 * np.log10(max(signal_power, 1e-20) / noise_var)),
            cfo=cfo,
            start=int(frame_start_abs),
            metric=peak,
            err_var=err_var,
        )
        self.counters.frames += 1
        self._skip_to(self._buf_start + end - lay.cp_len)
        return "more", frame
