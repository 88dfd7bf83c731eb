#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""mimo_channel: the loopback "hardware": Nt streams in, Nr streams out through a random MIMO channel."""

from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr
from numpy.lib.stride_tricks import sliding_window_view

from semcom.ofat.channel_model import ChannelSpec, Realisation

from .messages import tensor_message

TX_SOB = pmt.intern("tx_sob")
FADING_MODES = ("per_frame", "held", "per_block")


class mimo_channel(gr.sync_block):
    """y_r[n] = exp(j phi[n]) sum_t (h_rt * x_t)[n - d] + w_r[n], from semcom.ofat.channel_model.

    * Fading: "per_frame" draws a new realisation (taps, fractional and integer delay, CFO jitter)
      at every tx_sob tag on input 0 (block fading per frame, switched exactly at the tag), "held"
      keeps the first draw, "per_block" redraws every `block_len` samples.
    * Multipath: `n_taps` taps, exponential power-delay profile with e-folding `decay` samples,
      i.i.d. Rayleigh per pair, optional Rician `rician_k` (linear) and Kronecker correlation.
      Average power per (rx, tx) pair is 1.
    * Timing: a random fractional delay per draw (`frac_delay`) and an integer delay uniform in
      [0, max_int_delay].
    * CFO `cfo` + uniform(+-cfo_jitter) per draw, in cycles per sample; phase continuous.
    * AWGN: variance noise_ref_power * 10^(-snr_db/10) per complex sample per receive antenna. With
      the OFAT transmitter (unit total energy per used resource element, unitary FFT) snr_db is the
      project's SNR: total transmit power over noise power per receive antenna, per subcarrier.
      `set_snr_db` changes it at run time.
    * Per-channel offsets of one device (fixed unless drifting): rx_phase / tx_phase (rad),
      rx_delay / tx_delay (whole samples) per receive / transmit channel, and rx_phase_drift
      (rad/sample) per receive channel, e.g. LOs that are not shared. Fixed offsets become part of
      the channel and the receiver's estimate absorbs them; drift within a frame does not.
    * Message port "truth": every new realisation as a tensor message (tensor "taps" (Nr, Nt, L)
      without the integer delay; meta offset, int_delay, frac_delay, cfo) for tests and diagnostics.

    Seeded: the same seed gives the same channel and noise for the same input.
    """

    def __init__(self, n_tx: int, n_rx: int, snr_db: float = 20.0, fading: str = "per_frame",
                 block_len: int = 10000, n_taps: int = 3, decay: float = 1.0, rician_k: float = 0.0,
                 corr_tx: float = 0.0, corr_rx: float = 0.0, cfo: float = 0.0, cfo_jitter: float = 0.0,
                 frac_delay: bool = True, max_int_delay: int = 0, seed: int = 0,
                 noise_ref_power: float = 1.0, rx_phase: list[float] | None = None,
                 rx_delay: list[int] | None = None, rx_phase_drift: list[float] | None = None,
                 tx_phase: list[float] | None = None, tx_delay: list[int] | None = None):
        gr.sync_block.__init__(self, name="semcom_mimo_channel", in_sig=[np.complex64] * n_tx,
                               out_sig=[np.complex64] * n_rx)
        if fading not in FADING_MODES:
            raise ValueError(f"fading must be one of {FADING_MODES}, got {fading!r}")
        if block_len < 1:
            raise ValueError("block_len must be >= 1")
        self.spec = ChannelSpec(n_rx=n_rx, n_tx=n_tx, n_taps=n_taps, decay=decay, rician_k=rician_k,
                                corr_tx=corr_tx, corr_rx=corr_rx, frac_delay=bool(frac_delay),
                                max_int_delay=int(max_int_delay), cfo=cfo, cfo_jitter=cfo_jitter)
        self.fading = fading

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
        self.block_len = int(block_len)
        self.noise_ref_power = float(noise_ref_power)
        self._lock = threading.Lock()
        self._noise_var = 0.0
        self.set_snr_db(snr_db)
        self._rng = np.random.default_rng(seed)
        self._history_len = self.spec.max_total_len - 1 + self._max_offset
        self._history = np.zeros((n_tx, self._history_len), np.complex128)
        self._phase = 0.0
        self._truth_port = pmt.intern("truth")
        self.message_port_register_out(self._truth_port)
        self.set_tag_propagation_policy(gr.TPP_DONT)  # tags of input 0 are copied to every output
        self._current = self._draw(offset=0)
        self._published_first = False
        self.draws = 1

    # ------------------------------------------------------------------ control
    def set_snr_db(self, snr_db: float) -> None:
        with self._lock:
            self.snr_db = float(snr_db)
            self._noise_var = self.noise_ref_power * 10 ** (-self.snr_db / 10)

    def noise_var(self) -> float:
        return self._noise_var

    def current(self) -> Realisation:
        return self._current

    def _draw(self, offset: int) -> Realisation:
        return self.spec.draw(self._rng)

    def _publish_truth(self, offset: int, real: Realisation) -> None:
        meta = {"offset": int(offset), "int_delay": real.int_delay, "cfo": real.cfo,
                "frac_delay": -1.0 if real.frac_delay is None else real.frac_delay}
        taps = real.taps.astype(np.complex64)
        self.message_port_pub(self._truth_port, tensor_message(meta, {"taps": taps}))

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

    # ------------------------------------------------------------------ stream
    def _switch_points(self, n: int, start: int) -> list[int]:
        if self.fading == "per_frame":
            tags = self.get_tags_in_window(0, 0, n, TX_SOB)
            return sorted({int(t.offset - start) for t in tags})
        if self.fading == "per_block":
            first = (-start) % self.block_len
            return list(range(first, n, self.block_len))
        return []

    def work(self, input_items, output_items):
        n = len(input_items[0])
        start = self.nitems_read(0)
        x = np.stack(input_items).astype(np.complex128)
        ext = np.concatenate([self._history, x], axis=1)
        y = np.empty((self.spec.n_rx, n), np.complex128)
        bounds = [0, *[p for p in self._switch_points(n, start) if 0 <= p < n], n]
        for s0, s1 in zip(bounds[:-1], bounds[1:], strict=True):
            if s0 in bounds[1:-1]:
                self._current = self._draw(offset=start + s0)
                self.draws += 1
                self._publish_truth(start + s0, self._current)
            elif not self._published_first:
                self._publish_truth(start, self._current)
            self._published_first = True
            if s1 <= s0:
                continue
            real = self._current
            taps = self._with_channel_offsets(real.taps)
            length = taps.shape[-1]
            j0 = self._history_len - real.int_delay - length + 1 + s0
            windows = sliding_window_view(ext[:, j0: j0 + (s1 - s0) + length - 1], length, axis=1)
            seg = np.einsum("ram,anm->rn", taps[:, :, ::-1], windows)
            # CFO: phase continuous across segments and calls.
            ramp = self._phase + 2 * np.pi * real.cfo * np.arange(s1 - s0)
            drift = np.outer(self.rx_phase_drift, start + np.arange(s0, s1))
            y[:, s0:s1] = seg * np.exp(1j * (ramp[None, :] + drift))
            self._phase = float((ramp[-1] + 2 * np.pi * real.cfo) % (2 * np.pi))
        with self._lock:
            noise_var = self._noise_var
        if noise_var > 0:
            noise = self._rng.standard_normal((2, self.spec.n_rx, n))
            y += np.sqrt(noise_var / 2) * (noise[0] + 1j * noise[1])
        for r in range(self.spec.n_rx):
            output_items[r][:] = y[r]
        for tag in self.get_tags_in_window(0, 0, n):
            for r in range(self.spec.n_rx):
                self.add_item_tag(r, tag.offset, tag.key, tag.value)
        self._history = ext[:, -self._history_len:] if self._history_len else self._history
        return n
