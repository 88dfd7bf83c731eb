#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""CompiledFrameReceiver: semcom.ofat.receiver.FrameReceiver with its per-sample and per-frame work in C++.

The numpy receiver stays the definition: this class overrides only methods whose compiled version
(`ofat_rx_kernels` in gr-semcom/lib, bound in `semcom_python`) computes what the numpy method does,
tested equal within float32 rounding on recorded inputs (tests/test_ofat_receiver.py, "compiled"):

* `_schmidl_cox` (per sample: the S&C metric and P over the Nr antennas), `_first_above` and
  `_plateau` (the threshold crossing, the plateau's peak, middle and P sum),
* `_windows_fft` (the CFO-removed FFT of training, header and data windows, FFTW),
* `_fit_taps` (step 3's delay-tap denoiser with the shifted grid: coarse Mallows' Cp, Newton
  refinement, greedy selection on the Gram matrix),
* `_new_front` (everything before the data in one call: integer CFO search, refined CFO, training and
  header FFTs, LS channel, own-training check, noise from the repetitions, tap fit, CDD channel,
  header phase, LLRs and their hard bits as frame.combine_header_llrs makes them; the header's CRC
  check stays frame.decode_header) and `_frame_data` (data
  FFTs, common phase, Y and H), where the configuration is the default one: repeated training
  (train_reps >= 2), noise_estimate="repetitions", align_fraction; `_frame_data` also without
  sfo_tracking. Anything else runs those two through the numpy methods (with the three kernels
  above), so every option is covered.

In that default configuration without sfo_tracking, dc_removal and iq_correction, `process` itself is one
C++ call (`ofat_rx_kernels.receive`: the buffer, the S&C metric kept per position, the threshold crossing
and plateau, the frame waiting for its data, front, frame.decode_header's check and data, FrameReceiver's
bookkeeping step by step). Otherwise the search, the front end (dc_removal, iq_correction) and the frame
bookkeeping stay the numpy receiver's. The layout-derived arrays (tap bases, training, pilots,
CDD, bins) are the receiver's own, computed in Python from semcom.ofat.frame and handed to C++.
"""

from __future__ import annotations

import numpy as np
import pmt

from semcom.ofat.frame import FrameHeader, decode_header
from semcom.ofat.receiver import COARSE_TAPS, NEWTON_STEPS, FrameReceiver, ReceivedFrame, _Front
from semcom.wire import HEADER, MAGIC, VERSION, Kind

from .messages import wire_message
from .ofat_tx import semcom_python


def compiled_receiver_available() -> bool:
    """Whether the compiled module (build/ or the install) is there."""
    return semcom_python is not None and hasattr(semcom_python, "ofat_rx_kernels")


class CompiledFrameReceiver(FrameReceiver):
    """FrameReceiver whose per-sample and hot per-frame methods run in C++ (the same results within
    float32 rounding). Raises RuntimeError when the compiled module is not built."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not compiled_receiver_available():
            raise RuntimeError("the compiled receiver is not built (scripts/setup.sh builds build/)")
        lay = self.layout
        self._kernels = semcom_python.ofat_rx_kernels(
            lay.n_rx, lay.fft_len, lay.symbol_len, [int(k) for k in self._signed_used],
            [int(t) for t in self._candidate_taps], self._basis,
            self._coarse_basis_h, self._derivative_basis_h, [float(f) for f in self._coarse_fractions],
            COARSE_TAPS, NEWTON_STEPS)
        # The whole front and data in C++: the default configuration (see the module docstring).
        self._fused = lay.train_reps >= 2 and self.noise_estimate == "repetitions"
        if self._fused:
            self._kernels.set_frame(
                n_tx=lay.n_tx, n_preamble_symbols=lay.n_preamble_symbols, n_train_symbols=lay.n_train_symbols,
                n_header_symbols=lay.n_header_symbols, used_bins=lay.used_bins.tolist(),
                int_shifts=self._int_shifts.tolist(), shift_bins=self._shift_bins.ravel().tolist(),
                adjacent=self._adjacent.tolist(), train_conj=self._train_conj,
                cover_conj=np.conj(lay.training_cover), training_sequence=lay.training_sequence,
                far_basis_h=self._far_basis.conj().T, far_taps=self._far_taps.tolist(),
                cdd=lay.cdd_phases(lay.used_bins),
                pilot_index=lay.pilot_index_in_used.tolist(), data_index=lay.data_index_in_used.tolist(),
                pilot_table=lay.pilot_values(lay.n_header_symbols + lay.max_data_symbols).ravel().tolist(),
                linear_phase=self.phase_tracking == "linear", header_reps=lay.header_reps,
                header_scrambler=lay.header_scrambler.tolist())
        # The whole of process() in one C++ call (the search, the pending front, the header check): the
        # default configuration, nothing before the buffer (dc_removal, iq_correction) or after the
        # front's phase (sfo_tracking) that only the numpy methods do.
        # (hasattr: a module built before receive() existed keeps the Python search.)
        self._streaming = (self._fused and self.align_fraction and hasattr(self._kernels, "receive")
                           and not (self.sfo_tracking or self.dc_removal or self.iq_correction))
        if self._streaming:
            self._kernels.set_stream(self.threshold, self._plateau_window, lay.cp_len, lay.values_per_symbol,
                                     lay.capacity)
        # process_messages: ofat_rx's FRAME messages built in C++ as well (wire_message's bytes, tested).
        self._messages = self._streaming and hasattr(self._kernels, "receive_messages")
        if self._messages:
            try:
                self._kernels.set_message(pmt.car(wire_message(0, {}, {})),
                                          HEADER.pack(MAGIC, VERSION, Kind.FRAME, 2, 0))
            except RuntimeError:  # a big-endian host: its payload bytes are not the wire's
                self._messages = False

    def _counts(self, counts: tuple[int, ...], front: tuple[list[int], float] | None) -> None:
        """Adds receive()'s counts since its last call to the counters; the last front's taps."""
        c = self.counters
        c.samples += counts[0]
        if counts[1]:
            c.detections += counts[1]
            c.frames += counts[2]
            c.header_crc_fail += counts[3]
            c.header_invalid += counts[4]
            c.sequence_mismatch += counts[5]
        if front is not None:
            self._last_chosen, self.last_fraction = front

    @staticmethod
    def _frame(seq: int, flags: int, shape: tuple[int, ...], scale_code: int, *values) -> ReceivedFrame:
        return ReceivedFrame(FrameHeader(seq, shape, scale_code, flags), *values)

    @staticmethod
    def _rows(samples: np.ndarray | list[np.ndarray], n_rx: int) -> np.ndarray | list[np.ndarray]:
        if isinstance(samples, (list, tuple)):
            return samples
        rows = np.asarray(samples)
        if rows.ndim != 2 or rows.shape[0] != n_rx:
            raise ValueError(f"expected ({n_rx}, n) samples, got {rows.shape}")
        return rows

    def process_messages(self, samples: np.ndarray | list[np.ndarray]) -> list[pmt.pmt_base | ReceivedFrame]:
        """process(samples) with each frame as the FRAME message ofat_rx publishes (ofat_rx.frame_message:
        the wire form, rx_counters as they are after the call), built in C++ in the default
        configuration; a ReceivedFrame for the caller to make into its message otherwise (another
        configuration, or a meta that JSON cannot hold)."""
        if not self._messages:
            return self.process(samples)
        c = self.counters
        before = [c.samples, c.detections, c.frames, c.header_crc_fail, c.header_invalid, c.sequence_mismatch]
        try:
            out, counts, front = self._kernels.receive_messages(self._rows(samples, self.layout.n_rx), before)
        except ValueError as e:  # pybind's invalid_argument
            raise ValueError(f"expected {self.layout.n_rx} 1-d sample arrays of one length ({e})") from None
        self._counts(counts, front)
        return [self._frame(*item) if isinstance(item, tuple) else item for item in out]

    def process(self, samples: np.ndarray | list[np.ndarray]) -> list[ReceivedFrame]:
        """FrameReceiver.process: in the default configuration one C++ call (ofat_rx_kernels.receive:
        FrameReceiver's search and bookkeeping, front, frame.decode_header's check, data); the same
        frames, counters and last_taps (tested)."""
        if not self._streaming:
            return super().process(samples)
        try:
            decoded, counts, front = self._kernels.receive(self._rows(samples, self.layout.n_rx))
        except ValueError as e:  # pybind's invalid_argument
            raise ValueError(f"expected {self.layout.n_rx} 1-d sample arrays of one length ({e})") from None
        self._counts(counts, front)
        return [self._frame(*values) for values in decoded]

    @property
    def last_taps(self) -> np.ndarray:
        """The delay taps kept for the last frame, sorted (diagnostics, as FrameReceiver.last_taps)."""
        if self._last_chosen is not None:
            self._last_taps, self._last_chosen = np.sort(self._candidate_taps[self._last_chosen]), None
        return self._last_taps

    @last_taps.setter
    def last_taps(self, taps: np.ndarray) -> None:
        self._last_taps, self._last_chosen = taps, None

    def _schmidl_cox(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.dtype != np.complex64 or (x.shape[1] > 1 and x.strides[1] != x.itemsize):
            return super()._schmidl_cox(x)
        return self._kernels.schmidl_cox(x)

    def _first_above(self, metric: np.ndarray) -> int:
        if metric.dtype != np.float64 or not metric.flags.c_contiguous:
            return super()._first_above(metric)
        return self._kernels.first_above(metric, self.threshold)

    def _plateau(self, seg_m: np.ndarray, seg_p: np.ndarray) -> tuple[float, int, complex]:
        if seg_m.size == 0 or not (seg_m.flags.c_contiguous and seg_p.flags.c_contiguous):
            return super()._plateau(seg_m, seg_p)
        return self._kernels.plateau(seg_m, seg_p)

    def _windows_fft(self, body: int, first_sym: int, n_sym: int, cfo: float) -> np.ndarray:
        lay = self.layout
        return self._kernels.windows_fft(self._buf, body + first_sym * lay.symbol_len, first_sym, n_sym, cfo)

    def _fit_taps(self, pairs: np.ndarray, threshold: float) -> tuple[list[int], np.ndarray, float]:
        if not self.align_fraction:
            return super()._fit_taps(pairs, threshold)
        chosen, fit, fraction = self._kernels.fit_taps(pairs, threshold)
        return list(chosen), fit, fraction

    def _new_front(self, body: int, cfo: float) -> _Front:
        if not (self._fused and self.align_fraction):
            return super()._new_front(body, cfo)
        cfo, h, noise_var, err_var, own_training, g, yh, bits, chosen, fraction = self._kernels.front(
            self._buf, body, cfo)
        self._last_chosen = chosen  # last_taps sorts them when asked, not per frame
        self.last_fraction = fraction
        header = decode_header(bits)
        return _Front(cfo, h, noise_var, err_var, g, yh, header, own_training)

    def _frame_data(self, body: int, front: _Front, n_data: int
                    ) -> tuple[np.ndarray, np.ndarray, float, float | None]:
        if not self._fused or self.sfo_tracking:
            return super()._frame_data(body, front, n_data)
        self._pending = None  # as FrameReceiver._header_and_data: this frame's front is used up
        y, h, signal_power = self._kernels.data(self._buf, body, front.cfo, front.g, front.yh, front.h,
                                                n_data)
        return y, h, signal_power, None
