#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""mimo_channel: the loopback "hardware": Nt streams in, Nr streams out through a random MIMO channel."""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import threading

import numpy as np
import pmt
from gnuradio import gr
from numpy.lib.stride_tricks import as_strided
from threadpoolctl import threadpool_limits

from semcom.ofat.channel_model import (
    ChannelSpec,
    Impairments,
    Realisation,
    SfoResampler,
    apply_iq,
    iq_coefficients,
    wiener_phase,
)

from .arrived_block import arrived_block
from .messages import tensor_message
from .ofat_tx import semcom_python, use_compiled

FADING_MODES = ("per_frame", "held", "per_block")


DRAW_BATCH = 32  # realisations drawn ahead at a time: ~25 us each in a batch against ~300 alone


def compiled_channel_available() -> bool:
    """Whether the compiled module (build/ or the install) has the channel kernels."""
    return semcom_python is not None and hasattr(semcom_python, "mimo_channel_kernels")


def compiled_block_available() -> bool:
    """Whether the compiled module has the compiled channel block (mimo_channel_fast)."""
    return semcom_python is not None and hasattr(semcom_python, "mimo_channel_fast")


def _per_antenna(value: float | list[float] | tuple[float, ...]) -> float | tuple[float, ...]:
    """A float for every antenna, or a tuple of one value per antenna (GRC passes lists)."""
    return tuple(float(v) for v in value) if isinstance(value, (list, tuple, np.ndarray)) else float(value)


TWO_PI = 2.0 * math.pi


def _complex_lists(arrays) -> list[list[complex]]:
    """Per-antenna coefficient arrays as lists of complex (what the kernel's setters take)."""
    return [np.asarray(a, np.complex64).ravel().tolist() for a in arrays]


def _blas_on_one_thread() -> None:
    """numpy's BLAS on one thread in this process (what a GNU Radio flowgraph wants).

    The FIR product is one (Nr, Nt*L) @ (Nt*L, m) matmul per chunk; with OpenBLAS's default threads a
    second BLAS thread wakes for every chunk and spins beside the flowgraph's own threads (measured: 719
    vs 204 us CPU per 4x20 @ 20x8192 product on this 2-core machine; the 2x4 loopback 21-59 % more CPU per
    frame, benchmarks/profile_loopback.py). The limit is process-wide and set when a channel block is
    made, in the thread that builds the flowgraph (OpenBLAS's thread count cannot be scoped to one
    block's work() reliably while other threads use BLAS). torch's own thread pool is not affected.
    """
    threadpool_limits(limits=1, user_api="blas")


class _ChannelDefinition:
    """What both mimo_channel blocks define the same way (see `mimo_channel`): the arguments and their
    checks, the ChannelSpec and its seeded streams, the per-channel offsets, the noise and front-end
    settings and their setters, the batched draws and the truth message. Mixed into a GNU Radio block."""

    def _define(self, n_tx: int, n_rx: int, snr_db: float = 20.0, fading: str = "per_frame",
                block_len: int = 10000, n_taps: int = 3, decay: float = 1.0, rician_k: float = 0.0,
                corr_tx: float = 0.0, corr_rx: float = 0.0, cfo: float = 0.0, cfo_jitter: float = 0.0,
                frac_delay: bool = True, max_int_delay: int = 0, seed: int = 0,
                noise_ref_power: float = 1.0, rx_phase: list[float] | None = None,
                rx_delay: list[int] | None = None, rx_phase_drift: list[float] | None = None,
                tx_phase: list[float] | None = None, tx_delay: list[int] | None = None,
                los: str = "ula", sob_key: str = "tx_sob", gap_samples: int = 0,
                sfo_ppm: float = 0.0, phase_noise_linewidth: float = 0.0,
                tx_iq_gain_db: float | list[float] = 0.0, tx_iq_phase_deg: float | list[float] = 0.0,
                rx_iq_gain_db: float | list[float] = 0.0, rx_iq_phase_deg: float | list[float] = 0.0,
                dc_offset_dbc: float | None = None) -> None:
        n_tx, n_rx = int(n_tx), int(n_rx)
        _blas_on_one_thread()
        if fading not in FADING_MODES:
            raise ValueError(f"fading must be one of {FADING_MODES}, got {fading!r}")
        if int(block_len) < 1:
            raise ValueError(f"block_len must be >= 1, got {block_len}")
        if noise_ref_power < 0:
            raise ValueError(f"noise_ref_power must be >= 0, got {noise_ref_power}")
        self.spec = ChannelSpec(n_rx=n_rx, n_tx=n_tx, n_taps=int(n_taps), decay=float(decay),
                                rician_k=float(rician_k), corr_tx=corr_tx, corr_rx=corr_rx, los=los,
                                frac_delay=bool(frac_delay), max_int_delay=int(max_int_delay),
                                cfo=float(cfo), cfo_jitter=float(cfo_jitter))
        self.n_tx, self.n_rx = n_tx, n_rx
        self.fading = fading
        self.block_len = int(block_len)
        self.noise_ref_power = float(noise_ref_power)
        self._sob_key = pmt.intern(sob_key)

        def per_channel(values, n, name, kind=float):
            values = [kind(v) for v in (values or [])] or [kind(0)] * n
            if len(values) != n:
                raise ValueError(f"{name} needs {n} values, got {len(values)}")
            return np.array(values)

        self.rx_phase = per_channel(rx_phase, n_rx, "rx_phase")
        self.tx_phase = per_channel(tx_phase, n_tx, "tx_phase")
        self.rx_delay = per_channel(rx_delay, n_rx, "rx_delay", int)
        self.tx_delay = per_channel(tx_delay, n_tx, "tx_delay", int)
        self.rx_phase_drift = per_channel(rx_phase_drift, n_rx, "rx_phase_drift")
        if (self.rx_delay < 0).any() or (self.tx_delay < 0).any():
            raise ValueError("per-channel delays must be >= 0 samples")
        self._max_offset = int(self.rx_delay.max() + self.tx_delay.max())

        self._lock = threading.Lock()
        self._noise_var = 0.0
        self.set_snr_db(snr_db)
        # The third child stream is new; the first two are the same as with spawn(2) before it.
        ss_chan, self._ss_noise, ss_imp = np.random.SeedSequence(int(seed)).spawn(3)
        self._rng_chan = np.random.default_rng(ss_chan)
        self._rng_noise = np.random.default_rng(self._ss_noise)
        self._rng_imp = np.random.default_rng(ss_imp)
        self._dc_phase = self._rng_imp.uniform(0, 2 * np.pi, n_rx)
        self._pn_phase = np.zeros(1)
        self._sfo: SfoResampler | None = None
        self.set_impairments(Impairments(
            sfo_ppm=float(sfo_ppm), phase_noise_linewidth=float(phase_noise_linewidth),
            tx_iq_gain_db=_per_antenna(tx_iq_gain_db), tx_iq_phase_deg=_per_antenna(tx_iq_phase_deg),
            rx_iq_gain_db=_per_antenna(rx_iq_gain_db), rx_iq_phase_deg=_per_antenna(rx_iq_phase_deg),
            dc_offset_dbc=None if dc_offset_dbc is None else float(dc_offset_dbc)))

        # Own tail buffer of past input (zeros before the stream): longest FIR + integer delay + offsets.
        self._history_len = self.spec.max_total_len - 1 + self._max_offset
        # A redraw at tx_sob that shortens the delay by D skips D input samples, and the new FIR reads
        # L - 1 old ones: both must fall in the previous frame's gap, or its tail is cut silently.
        if int(gap_samples) > 0 and self._history_len > int(gap_samples):
            raise ValueError(f"max_int_delay + impulse length - 1 + offsets = {self._history_len} samples "
                             f"exceeds the transmitter's gap_samples={int(gap_samples)}: a redrawn delay "
                             f"would truncate frames (raise gap_samples or lower max_int_delay)")
        self._phase = 0.0  # CFO phase (rad) at the next output sample
        self._truth_port = pmt.intern("truth")

    @property
    def fir_len(self) -> int:
        """Taps per antenna pair that the FIR runs: the spec's L plus the largest per-channel delay."""
        return self.spec.fir_len + self._max_offset

    def _noise_seed(self) -> int:
        """The compiled noise generator's seed, from the noise stream's SeedSequence."""
        return int(self._ss_noise.generate_state(1, np.uint64)[0])

    # ------------------------------------------------------------------ control
    def set_snr_db(self, snr_db: float) -> None:
        """In-band SNR (dB), see the class docstring; takes effect from the next work() call."""
        with self._lock:
            self.snr_db = float(snr_db)
            self._noise_var = self.noise_ref_power * 10 ** (-self.snr_db / 10)
        self._settings_changed()

    def set_impairments(self, impairments: Impairments) -> None:
        """Replace the front-end impairments (see the class docstring); from the next work() call."""
        for name in ("tx_iq_gain_db", "tx_iq_phase_deg", "rx_iq_gain_db", "rx_iq_phase_deg"):
            n = self.n_tx if name.startswith("tx") else self.n_rx
            if np.ndim(getattr(impairments, name)) and np.size(getattr(impairments, name)) != n:
                raise ValueError(f"{name} needs one value or {n}, got {getattr(impairments, name)}")
        self._check_impairments(impairments)
        with self._lock:
            self.impairments = impairments
            self._tx_k = iq_coefficients(impairments.tx_iq_gain_db, impairments.tx_iq_phase_deg, self.n_tx,
                                         transmit=True)
            self._rx_k = iq_coefficients(impairments.rx_iq_gain_db, impairments.rx_iq_phase_deg, self.n_rx)
            if impairments.sfo_ppm == 0.0:
                self._sfo = None
            elif self._sfo is None or self._sfo.ppm != impairments.sfo_ppm:
                resampler = SfoResampler(self.n_rx, impairments.sfo_ppm)
                if self._sfo is not None:  # keep the stream's history and offset, change the rate
                    resampler._hist, resampler.tau = self._sfo._hist, self._sfo.tau
                self._sfo = resampler
            self._dc = None
            if impairments.dc_offset_dbc is not None:
                amp = impairments.dc_amplitude(self.noise_ref_power)
                self._dc = (amp * np.exp(1j * self._dc_phase)).astype(np.complex64)
        self._settings_changed()

    def _check_impairments(self, impairments: Impairments) -> None:
        """Refuse impairments the block cannot apply (ValueError); all of them here."""

    def _settings_changed(self) -> None:
        """The noise or the impairments changed (under no lock): hand them to the compiled side, if any."""

    def _replace_impairment(self, **change) -> None:
        self.set_impairments(dataclasses.replace(self.impairments, **change))

    def set_sfo_ppm(self, ppm: float) -> None:
        self._replace_impairment(sfo_ppm=float(ppm))

    def set_phase_noise_linewidth(self, linewidth: float) -> None:
        self._replace_impairment(phase_noise_linewidth=float(linewidth))

    def set_tx_iq(self, gain_db: float | list[float], phase_deg: float | list[float]) -> None:
        self._replace_impairment(tx_iq_gain_db=_per_antenna(gain_db), tx_iq_phase_deg=_per_antenna(phase_deg))

    def set_rx_iq(self, gain_db: float | list[float], phase_deg: float | list[float]) -> None:
        self._replace_impairment(rx_iq_gain_db=_per_antenna(gain_db), rx_iq_phase_deg=_per_antenna(phase_deg))

    def set_dc_offset_dbc(self, dbc: float | None) -> None:
        self._replace_impairment(dc_offset_dbc=None if dbc is None else float(dbc))

    def noise_var(self) -> float:
        """Complex noise variance per sample per receive antenna."""
        return self._noise_var

    def _next_draws(self, count: int) -> list[Realisation]:
        """The next `count` realisations of the channel stream (the one source of draws, in batches)."""
        return self.spec.draw_many(self._rng_chan, count)

    def _truth_message(self, real: Realisation, offset: int, index: int, phase: float) -> pmt.pmt_base:
        """The truth message of `real` taking effect at sample `offset` (see the port "truth")."""
        meta = {"offset": int(offset), "index": int(index), "int_delay": int(real.int_delay),
                "frac_delay": -1.0 if real.frac_delay is None else float(real.frac_delay),
                "delay": float(real.delay), "cfo": float(real.cfo), "phase": float(phase),
                "snr_db": self.snr_db, "noise_var": self._noise_var}
        return tensor_message(meta, {"taps": real.taps.astype(np.complex64)})

    def _with_channel_offsets(self, taps: np.ndarray) -> np.ndarray:
        """Fixed per-channel phases and whole-sample delays folded into the FIR: (Nr, Nt, L + max)."""
        if not (self._max_offset or self.rx_phase.any() or self.tx_phase.any()):
            return taps
        n_rx, n_tx, length = taps.shape
        out = np.zeros((n_rx, n_tx, length + self._max_offset), complex)
        phase = np.exp(1j * (self.rx_phase[:, None] + self.tx_phase[None, :]))
        for r in range(n_rx):  # a handful of antenna pairs, not samples
            for a in range(n_tx):
                d = self.rx_delay[r] + self.tx_delay[a]
                out[r, a, d: d + length] = taps[r, a] * phase[r, a]
        return out


class mimo_channel_python(_ChannelDefinition, arrived_block):
    """mimo_channel as a Python block (see `mimo_channel`): its work() draws, switches, publishes the truth
    and copies the tags in Python; the samples go through numpy (implementation "numpy", the definition)
    or the compiled kernels ("cxx", `semcom_python.mimo_channel_kernels`). Also the block wherever phase
    noise or a sampling-clock offset is on (numpy in either implementation, on the FIR's output)."""

    def __init__(self, n_tx: int, n_rx: int, snr_db: float = 20.0, implementation: str = "auto", **options):
        compiled = use_compiled(implementation, "SEMCOM_MIMO_CHANNEL", compiled_channel_available(), "numpy",
                                "the mimo_channel kernels")
        arrived_block.__init__(self, name="semcom_mimo_channel", in_sig=[np.complex64] * int(n_tx),
                               out_sig=[np.complex64] * int(n_rx))
        self._kernel = None
        self._define(n_tx, n_rx, snr_db, **options)
        self._history = np.zeros((self.n_tx, self._history_len), np.complex64)
        if compiled:
            self._kernel = semcom_python.mimo_channel_kernels(self.n_tx, self.n_rx, self._history_len,
                                                              self._noise_seed())
            self._kernel.set_drift(self.rx_phase_drift.tolist())
            self._kernel_settings = None  # the impairments last handed to the kernel (set in process)
        self.implementation = "cxx" if self._kernel is not None else "numpy"
        self.block = "python"
        self.message_port_register_out(self._truth_port)
        self.set_tag_propagation_policy(gr.TPP_DONT)  # tags of input 0 are copied to every output
        self.draws = 0
        # Realisations drawn ahead, in batches (ChannelSpec.draw_many: the same draws from the same
        # stream, their fractional-delay filters computed together), taken one per redraw.
        self._drawn: collections.deque[Realisation] = collections.deque()
        self._window_buf = np.empty(0, np.complex64)  # reused by _fir
        self._set_realisation(self._next_draw())
        self._published_first = False

    def current(self) -> Realisation:
        """The realisation in force after the last processed sample."""
        return self._current

    def counters(self) -> dict[str, int]:
        """draws (realisations taken, the first included) and samples processed."""
        return {"draws": self.draws, "samples": int(self.nitems_written(0))}

    # ------------------------------------------------------------------ internals
    def _next_draw(self) -> Realisation:
        if not self._drawn:
            self._drawn.extend(self._next_draws(DRAW_BATCH))
        return self._drawn.popleft()

    def _set_realisation(self, real: Realisation) -> None:
        self._current = real
        self.draws += 1
        taps = self._with_channel_offsets(real.taps)
        self._fir_len = taps.shape[-1]
        if self._kernel is not None:
            self._kernel.set_realisation(taps.astype(np.complex64), int(real.int_delay), float(real.cfo))
            return
        # Flipped once per draw: _g[l] (L, Nr, Nt) is the matrix applied to the input l samples after
        # the window start; _g_flat (Nr, Nt*L) the same taps for one product over a window (`_fir`).
        self._g = np.ascontiguousarray(taps[:, :, ::-1].transpose(2, 0, 1)).astype(np.complex64)
        self._g_flat = np.ascontiguousarray(self._g.transpose(1, 2, 0)).reshape(self.n_rx, -1)

    def _publish_truth(self, offset: int, real: Realisation) -> None:
        if pmt.is_null(self.message_subscribers(self._truth_port)):
            return  # nobody listens (the loopback): the message costs ~0.1 ms to build
        message = self._truth_message(real, offset, self.draws - 1, self._phase)
        self.message_port_pub(self._truth_port, message)

    def _switch_points(self, start: int, n: int) -> list[int]:
        """Absolute offsets in [start, start + n), > 0, where a new realisation takes effect; sorted."""
        if self.fading == "per_frame":
            tags = self.get_tags_in_range(0, start, start + n, self._sob_key)
            return sorted({int(t.offset) for t in tags if t.offset > 0})
        if self.fading == "per_block":
            first = -(-max(start, 1) // self.block_len) * self.block_len
            return list(range(first, start + n, self.block_len))
        return []

    # ------------------------------------------------------------------ stream
    def _fir(self, ext: np.ndarray, j0: int, out: np.ndarray) -> None:
        """out (Nr, m) = sum over lags l of _g[l] @ ext[:, j0 + l: j0 + l + m] (the current FIR).

        One (Nr, Nt*L) @ (Nt*L, m) product on a window copy of the input (Nt*L times the chunk). L
        shifted (Nr, Nt) @ (Nt, m) products accumulated in place avoid the copy, but as a kernel they
        measured 1.3-2.5x slower (L small products, L passes over the output; m = 8192, 1x1 to 4x4)
        and in the block within +-25 %, either way by Nt x Nr (benchmarks/results/summary_tx.md at 90a11a3).
        The compiled kernel (implementation "cxx") replaces this path where it is built.
        """
        length, m = self._fir_len, out.shape[1]
        if self._window_buf.size < self.n_tx * length * m:
            self._window_buf = np.empty(self.n_tx * length * m, np.complex64)
        win = self._window_buf[: self.n_tx * length * m].reshape(self.n_tx, length, m)
        # win[t, l] = ext[t, j0 + l: j0 + l + m]: one strided copy into a buffer kept between calls.
        step_t, step_n = ext.strides
        np.copyto(win, as_strided(ext[:, j0:], (self.n_tx, length, m), (step_t, step_n, step_n)))
        np.matmul(self._g_flat, win.reshape(self.n_tx * length, m), out=out)

    def _filter(self, ext: np.ndarray, y: np.ndarray, s0: int, s1: int, start: int, drifting: bool) -> None:
        """y[:, s0:s1] = current FIR (+ CFO / drift rotation) of ext; ext (Nt, hl + n), y (Nr, n)."""
        real, m = self._current, s1 - s0
        self._fir(ext, self._history_len - real.int_delay - (self._fir_len - 1) + s0, y[:, s0:s1])
        if real.cfo == 0.0 and not drifting:
            return
        # Phases reduced mod 2 pi in float64, then cos/sin in float32 (plenty for a rotation).
        ramp = self._phase + TWO_PI * real.cfo * np.arange(m)
        if drifting:
            ramp = ramp[None, :] + np.outer(self.rx_phase_drift, np.arange(start + s0, start + s1))
        ramp = np.mod(ramp, TWO_PI).astype(np.float32)
        rot = np.empty(ramp.shape, np.complex64)
        rot.real = np.cos(ramp)
        rot.imag = np.sin(ramp)
        y[:, s0:s1] *= rot
        self._phase = math.fmod(self._phase + TWO_PI * real.cfo * m, TWO_PI)

    def process(self, input_items, output_items, n: int) -> None:
        """The n samples that arrived on every input through the channel (`arrived_block`: one call per
        arrival, not a sync block's halving calls)."""
        if self._kernel is not None:
            self._process_compiled(input_items, output_items, n)
        else:
            self._process_numpy(input_items, output_items, n)
        for tag in self.get_tags_in_window(0, 0, n):
            for r in range(self.n_rx):
                self.add_item_tag(r, tag.offset, tag.key, tag.value)

    def _segments(self, start: int, n: int, filter_segment) -> None:
        """filter_segment(s0, s1) over the call's stretches under one realisation, switching to the next
        draw (and publishing it) at each switch point: the one definition of where realisations change."""
        if not self._published_first:
            self._publish_truth(0, self._current)
            self._published_first = True
        seg_start = start
        for point in [*self._switch_points(start, n), None]:
            seg_end = start + n if point is None else point
            if seg_end > seg_start:
                filter_segment(seg_start - start, seg_end - start)
            if point is not None:  # a new realisation from this sample on
                self._set_realisation(self._next_draw())
                self._publish_truth(point, self._current)
                seg_start = point

    def _front_end(self, y: np.ndarray, start: int, n: int, imp: Impairments, sfo: SfoResampler | None
                   ) -> np.ndarray:
        """Phase noise and the sampling-clock offset (numpy in both implementations) on y (Nr, n)."""
        if imp.phase_noise_linewidth > 0:
            phase = wiener_phase(self._rng_imp, 1, n, imp.phase_noise_linewidth, self._pn_phase)
            self._pn_phase = np.mod(phase[:, -1], TWO_PI)
            y *= np.exp(1j * phase).astype(np.complex64)  # one oscillator for every receive antenna
        if sfo is not None:
            sobs = self.get_tags_in_range(0, start, start + n, self._sob_key)
            y = sfo.process(y, [int(t.offset) - start for t in sobs])
        return y

    def _process_compiled(self, input_items, output_items, n: int) -> None:
        start = self.nitems_written(0)
        with self._lock:
            noise_var = self._noise_var
            imp, sfo, dc, tx_k, rx_k = self.impairments, self._sfo, self._dc, self._tx_k, self._rx_k
        kernel = self._kernel
        if self._kernel_settings is not imp:  # hand changed impairments over between calls, not during one
            kernel.set_tx_iq(*(_complex_lists(tx_k) if imp.tx_iq else ([], [])))
            kernel.set_rx_iq(*(_complex_lists(rx_k) if imp.rx_iq else ([], [])))
            kernel.set_dc([] if dc is None else _complex_lists([dc])[0])
            self._kernel_settings = imp
        outputs = list(output_items)
        kernel.begin(list(input_items), outputs, n)

        def filter_segment(s0: int, s1: int) -> None:
            self._phase = kernel.filter(s0, s1, self._phase, start)

        self._segments(start, n, filter_segment)
        if imp.phase_noise_linewidth > 0 or sfo is not None:  # numpy, on the FIR's output, before the noise
            y = self._front_end(np.array([o[:n] for o in outputs]), start, n, imp, sfo)
            for r in range(self.n_rx):
                outputs[r][:n] = y[r]
        kernel.finish(noise_var)

    def _process_numpy(self, input_items, output_items, n: int) -> None:
        start = self.nitems_written(0)
        hl = self._history_len
        # ext[:, j] is input sample start - hl + j.
        ext = np.empty((self.n_tx, hl + n), np.complex64)
        ext[:, :hl] = self._history
        for a in range(self.n_tx):
            ext[a, hl:] = input_items[a][:n]
        with self._lock:
            noise_var = self._noise_var
            imp, sfo, dc, tx_k, rx_k = self.impairments, self._sfo, self._dc, self._tx_k, self._rx_k
        history = ext[:, -hl:].copy() if hl else None  # the raw input (TX IQ is applied per call)
        if imp.tx_iq:
            ext = apply_iq(ext, *tx_k)

        y = np.empty((self.n_rx, n), np.complex64)
        drifting = bool(self.rx_phase_drift.any())
        self._segments(start, n, lambda s0, s1: self._filter(ext, y, s0, s1, start, drifting))
        y = self._front_end(y, start, n, imp, sfo)
        if noise_var > 0:
            # Time-major (n, Nr) draw: the noise sequence does not depend on how work() calls split it.
            w = self._rng_noise.standard_normal((n, 2 * self.n_rx), dtype=np.float32)
            w *= np.float32(math.sqrt(noise_var / 2))
            y += w.view(np.complex64).T
        if imp.rx_iq:
            y = apply_iq(y, *rx_k)
        if dc is not None:
            y += dc[:, None]
        for r in range(self.n_rx):
            output_items[r][:n] = y[r]
        if hl:
            self._history = history


class _refill_block(gr.basic_block):
    """Message-only helper inside mimo_channel_compiled: on the compiled block's "low" message, the next
    batch of realisations is drawn and pushed (its own scheduler thread; Python runs once per batch)."""

    def __init__(self, refill):
        gr.basic_block.__init__(self, name="semcom_mimo_channel_refill", in_sig=None, out_sig=None)
        self._refill = refill
        port = pmt.intern("low")
        self.message_port_register_in(port)
        self.set_msg_handler(port, self.handle_low)  # GNU Radio's gateway looks handlers up by name

    def handle_low(self, _queued) -> None:
        self._refill()


class mimo_channel_compiled(_ChannelDefinition, gr.hier_block2):
    """mimo_channel as a compiled block (see `mimo_channel`): `semcom_python.mimo_channel_fast`
    (gr-semcom/lib/mimo_channel_fast_impl.cc) does every work() call in C++ (switch points, the kernels,
    the truth message's offset / index / phase, the tags). Python draws the realisations
    (`ChannelSpec.draw_many` from the channel stream, per-channel offsets folded in) and their truth
    messages (`_truth_message`, the one format) and pushes them: `PREFILL` at construction, then
    `REFILL` whenever the block reports on its port "low" that fewer than `LOW_WATER` are queued.
    A block whose queue runs dry stops at the switch point and waits for the next push (no sample is
    dropped, no realisation skipped or invented; counters()["waits"]). Truth messages are built for the
    prefilled batches and, later, only while the port "truth" has a listener (~0.1 ms each).
    A hier block around the compiled block and its refill helper: the same ports as the Python block."""

    # The queue holds 59 ms of frames at 2 160 frames/s (back to back at 4 MS/s, 2x2) before it asks for
    # more: the refill runs in Python, in a thread that waits for the GIL behind the host's when both
    # share a process; with 32 the queue ran dry 66 times in 60 s there (realtime_s25_b2b_upper).
    LOW_WATER = 4 * DRAW_BATCH  # "low" is published when fewer are queued
    REFILL = 2 * DRAW_BATCH  # pushed on each "low"
    PREFILL = LOW_WATER + 2 * REFILL  # pushed at construction

    def __init__(self, n_tx: int, n_rx: int, snr_db: float = 20.0, **options):
        gr.hier_block2.__init__(self, "semcom_mimo_channel", gr.io_signature(int(n_tx), int(n_tx), 8),
                                gr.io_signature(int(n_rx), int(n_rx), 8))
        self.core = None
        self._define(n_tx, n_rx, snr_db, **options)
        self.core = semcom_python.mimo_channel_fast(
            n_tx=self.n_tx, n_rx=self.n_rx, history_len=self._history_len, noise_seed=self._noise_seed(),
            fading=FADING_MODES.index(self.fading), block_len=self.block_len,
            sob_key=pmt.symbol_to_string(self._sob_key), low_water=self.LOW_WATER)
        self.core.set_drift(self.rx_phase_drift.tolist())
        self._settings_changed()
        self.implementation, self.block = "cxx", "compiled"
        self._pushed: collections.deque[Realisation] = collections.deque()  # from index _first_pushed on
        self._first_pushed = 0
        self._pushed_lock = threading.Lock()
        self._refill(self.PREFILL, truth=True)
        self._refiller = _refill_block(self._refill)
        for a in range(self.n_tx):
            self.connect((self, a), (self.core, a))
        for r in range(self.n_rx):
            self.connect((self.core, r), (self, r))
        self.message_port_register_hier_out("truth")
        self.msg_connect(self.core, "truth", self, "truth")
        self.msg_connect(self.core, "low", self._refiller, "low")

    def _check_impairments(self, impairments: Impairments) -> None:
        if impairments.sfo_ppm or impairments.phase_noise_linewidth:
            raise ValueError("the compiled mimo_channel has no phase noise or sampling-clock offset: make it "
                             "with them set (mimo_channel then runs its Python block) or with "
                             "implementation='numpy'")

    def _settings_changed(self) -> None:
        if self.core is None:
            return
        with self._lock:
            imp, dc, tx_k, rx_k = self.impairments, self._dc, self._tx_k, self._rx_k
            snr_db, noise_var = self.snr_db, self._noise_var
        self.core.set_noise(snr_db, noise_var)
        self.core.set_front_end(*(_complex_lists(tx_k) if imp.tx_iq else ([], [])),
                                *(_complex_lists(rx_k) if imp.rx_iq else ([], [])),
                                [] if dc is None else _complex_lists([dc])[0])

    def _refill(self, count: int | None = None, truth: bool | None = None) -> None:
        """Draw `count` (default REFILL) realisations and push them (with truth messages if `truth`, or
        None: if the compiled block's truth port has a listener). The C++ side fills in offset, index and
        phase."""
        reals = self._next_draws(count or self.REFILL)
        if truth is None:
            truth = not pmt.is_null(self.core.message_subscribers(self._truth_port))
        taps = np.stack([self._with_channel_offsets(r.taps) for r in reals]).astype(np.complex64)
        truths = [self._truth_message(r, 0, 0, 0.0) for r in reals] if truth else []
        self._forget_past()
        self._pushed.extend(reals)
        self.core.push(taps, [int(r.int_delay) for r in reals], [float(r.cfo) for r in reals], truths)

    # ------------------------------------------------------------------ what the Python block offers
    @property
    def draws(self) -> int:
        """Realisations taken into force (the first included)."""
        return int(self.core.draws())

    def _forget_past(self) -> int:
        """Drop the pushed realisations before the one in force (kept, they grew without bound: 32 000
        a minute at 540 frames/s, and the cyclic GC's pauses with them); the index of the one in force."""
        index = max(self.draws - 1, 0)
        with self._pushed_lock:  # the refill's thread and the caller's
            while index > self._first_pushed:
                self._pushed.popleft()
                self._first_pushed += 1
        return index

    def current(self) -> Realisation:
        """The realisation in force after the last processed sample (the first before any)."""
        index = self._forget_past()
        with self._pushed_lock:
            return self._pushed[index - self._first_pushed]

    def counters(self) -> dict[str, int]:
        """draws, samples, calls (work() calls), waits (calls stopped for want of a realisation),
        low_signals, pushed (the compiled block's counters)."""
        return dict(self.core.counters())

    def set_max_noutput_items(self, n: int) -> None:
        self.core.set_max_noutput_items(n)

    def nitems_written(self, port: int) -> int:
        return self.core.nitems_written(port)


def mimo_channel(n_tx: int, n_rx: int, snr_db: float = 20.0, implementation: str = "auto", **options):
    """Nt complex streams in -> Nr complex streams out, through ``semcom.ofat.channel_model``.

    Receive antenna r, with the realisation ``(taps, D, f)`` that took effect at sample ``n0``::

        y_r[n] = exp(j (phi(n0) + 2 pi f (n - n0) + drift_r n)) sum_t sum_k taps'[r, t, k] x_t[n - D - k]
                 + w_r[n]

    * Fading: ``"per_frame"`` draws a new realisation (taps, fractional and integer delay, CFO jitter)
      at every ``tx_sob`` tag on input 0, switched exactly at the tag's offset (the FIR then still reads
      the samples before the tag: the timing offset changes between bursts); ``"held"`` keeps the first
      draw; ``"per_block"`` redraws at every multiple of ``block_len`` samples. The first realisation
      holds from sample 0 in every mode (a tag at sample 0 does not redraw).
    * Multipath ``taps`` (Nr, Nt, L): ``n_taps`` taps with an exponential power-delay profile of e-folding
      ``decay`` samples, i.i.d. Rayleigh per pair, optional Rician ``rician_k`` (linear) on the first tap
      with a ULA line of sight (``los="ula"``, random angles and phase per draw) or the all-ones
      matrix (``los="ones"``), optional Kronecker exponential correlation ``corr_tx`` / ``corr_rx``.
      Average total power per (rx, tx) pair is 1, so total transmit power P arrives as P per receive
      antenna on average.
    * Timing: ``frac_delay`` convolves an 8-tap Kaiser-windowed sinc (bulk delay 3 + frac, frac uniform
      in [0, 1)) into the taps, so ``L = n_taps + 7`` (else ``L = n_taps``); the integer delay ``D`` is
      uniform in {0, ..., ``max_int_delay``}. The longest impulse response is ``max_int_delay + L``
      (+ the largest rx_delay + tx_delay): the receiver's timing and cyclic prefix must cover it, and the
      transmitter's gap must too (a per-frame redraw to a shorter delay skips that many samples):
      pass ``gap_samples`` (the ofat_tx value) and the block refuses a longer response (0 = unchecked).
    * CFO ``f`` = ``cfo`` + uniform(+-``cfo_jitter``) per draw, in cycles per sample (the OFDM subcarrier
      spacing is 1/fft_len cycles/sample: 0.4 subcarrier at FFT 64 is 0.4/64); the phase is continuous
      across realisations and ``work()`` calls.
    * AWGN ``w_r``: independent per receive antenna, variance ``noise_ref_power * 10**(-snr_db/10)`` per
      complex sample (half per real component). **SNR definition**: the OFAT transmitter puts unit total
      energy, summed over its Nt antennas, on every used subcarrier and uses a unitary FFT, so this
      variance per sample IS the noise variance per resource element, and ``snr_db`` is the in-band SNR =
      total transmit power over noise power per receive antenna per subcarrier. ``set_snr_db`` changes it
      at run time (from the next ``work()`` call).
    * Per-channel offsets of one device (fixed unless drifting): ``rx_phase`` / ``tx_phase`` (rad),
      ``rx_delay`` / ``tx_delay`` (whole samples) per receive / transmit channel, folded into ``taps'``,
      and ``rx_phase_drift`` (rad/sample) per receive channel (LOs that are not shared). Fixed offsets
      become part of the channel and the receiver's estimate absorbs them; drift within a frame does not.
    * Front-end impairments (``semcom.ofat.channel_model.Impairments``; each off by default, and then the
      output is unchanged sample for sample): TX IQ imbalance on each input, the channel, oscillator
      phase noise (Wiener, ``phase_noise_linewidth`` cycles/sample, one process common to every receive
      antenna: one LO per radio, the TX's and the RX's folded into one),
      sampling-clock offset ``sfo_ppm`` (``SfoResampler``: adds 18 samples of latency, re-centred at
      each tx_sob tag so that its whole-sample jumps fall in gaps), AWGN, RX IQ imbalance, RX DC offset
      ``dc_offset_dbc`` (relative to ``noise_ref_power``). All settable while running
      (``set_impairments`` or one setter each); drawn from their own seeded stream, so turning them on
      leaves the channel and noise draws alone.
    * Message port ``truth``: every realisation when it takes effect, as a tensor message
      (``messages.tensor_message``): tensor ``taps`` (Nr, Nt, L) complex64 WITHOUT the integer delay and
      WITHOUT the per-channel offsets; meta ``offset`` (absolute sample index), ``index`` (0, 1, ...),
      ``int_delay``, ``frac_delay`` (-1 when disabled), ``delay`` (bulk delay of the first path, samples),
      ``cfo`` (cycles/sample), ``phase`` (CFO phase phi(n0), rad), ``snr_db``, ``noise_var``.
    * Tags: those of input 0 are copied to every output at the same offsets (others are dropped, so a
      transmitter that tags all its antennas does not get duplicates).

    Seeded: ``numpy.random.SeedSequence(seed)`` is split into a channel stream and a noise stream, and the
    noise is drawn time-major, so the output depends only on the seed and the input, not on how the
    scheduler splits the stream into ``work()`` calls, and changing the SNR leaves the channel draws alone.

    ``implementation``: ``"cxx"`` runs the per-sample work (the FIR over every antenna pair with the
    realisation switching where it switches here, the CFO and drift rotation, AWGN, TX / RX IQ imbalance,
    DC offset) in C++; ``"numpy"`` is the definition it is tested against (``mimo_channel_python`` with
    numpy): the same output to float32 rounding with the noise off (``noise_ref_power=0``), and with it
    the same noise statistics (variance, whiteness, Gaussian) from another stream: the compiled noise comes
    from GNU Radio's xoroshiro128+ generator through a ziggurat (seeded from the same noise SeedSequence),
    not from numpy's Generator, so a seed gives other noise samples in the two implementations. With
    "cxx", the block is ``mimo_channel_compiled``: a compiled GNU Radio block
    (``semcom_python.mimo_channel_fast``, gr-semcom/lib/mimo_channel_fast_impl.cc) that runs no Python per
    work() call, fed with realisations that Python draws in batches (``ChannelSpec.draw_many``, the one
    source of draws); except with phase noise or a sampling-clock offset (numpy only), or with the
    environment variable SEMCOM_MIMO_CHANNEL_BLOCK=python: then ``mimo_channel_python`` with the compiled
    kernels (Python per work() call: draws, switch points, phase, truth, tags; C++ every sample).
    ``"auto"`` (default): compiled where the module is built, numpy otherwise; the environment variable
    SEMCOM_MIMO_CHANNEL (auto / cxx / numpy) overrides "auto", e.g. to run a whole flowgraph or test suite
    through the numpy path (as ofat_rx's SEMCOM_OFAT_RX and make_ofat_tx's SEMCOM_OFAT_TX).
    ``.implementation`` says which ran ("cxx" or "numpy"), ``.block`` which block ("compiled" or "python").
    """
    compiled = use_compiled(implementation, "SEMCOM_MIMO_CHANNEL", compiled_channel_available(), "numpy",
                            "the mimo_channel kernels")
    block = os.environ.get("SEMCOM_MIMO_CHANNEL_BLOCK", "compiled")
    if block not in ("compiled", "python"):
        raise ValueError(f"SEMCOM_MIMO_CHANNEL_BLOCK must be 'compiled' or 'python', got {block!r}")
    numpy_only = options.get("sfo_ppm", 0.0) or options.get("phase_noise_linewidth", 0.0)
    if compiled and block == "compiled" and not numpy_only and compiled_block_available():
        return mimo_channel_compiled(n_tx, n_rx, snr_db, **options)
    return mimo_channel_python(n_tx, n_rx, snr_db, implementation="cxx" if compiled else "numpy", **options)

