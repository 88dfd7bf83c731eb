#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""CompiledFrameReceiver: semcom.ofat.receiver.FrameReceiver with its hot methods in C++.

The numpy receiver stays the definition: this class overrides only methods whose compiled version
(`ofat_rx_kernels` in gr-semcom/lib, bound in `semcom_python`) computes what the numpy method does,
tested equal within float32 rounding on recorded inputs (tests/test_compiled_receiver.py):

* `_schmidl_cox` (per sample: the S&C metric and P over the Nr antennas),
* `_windows_fft` (per frame: the CFO-removed FFT of the training, header and data windows, FFTW),
* `_fit_taps` (per frame: step 3's delay-tap denoiser with the shifted grid: coarse Mallows' Cp,
  Newton refinement, greedy selection on the Gram matrix).

Every receiver option is covered: the front end (dc_removal, iq_correction), the CFO search, the
noise estimate, the header, phase and SFO tracking stay the numpy methods; with align_fraction off
`_fit_taps` is the numpy one. The layout-derived arrays (tap basis, shifted and derivative bases) are
the receiver's own, computed in Python from semcom.ofat.frame and handed to C++.
"""

from __future__ import annotations

import numpy as np

from semcom.ofat.receiver import COARSE_TAPS, NEWTON_STEPS, FrameReceiver

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

    def _schmidl_cox(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.dtype != np.complex64 or (x.shape[1] > 1 and x.strides[1] != x.itemsize):
            return super()._schmidl_cox(x)
        return self._kernels.schmidl_cox(x, self.layout.n_rx, self.layout.fft_len)

    def _windows_fft(self, body: int, first_sym: int, n_sym: int, cfo: float) -> np.ndarray:
        lay = self.layout
        return self._kernels.windows_fft(self._buf, lay.n_rx, lay.fft_len, lay.symbol_len,
                                         body + first_sym * lay.symbol_len, first_sym, n_sym, cfo)

    def _fit_taps(self, pairs: np.ndarray, threshold: float) -> tuple[list[int], np.ndarray, float]:
        if not self.align_fraction:
            return super()._fit_taps(pairs, threshold)
        chosen, fit, fraction = self._kernels.fit_taps(pairs, threshold)
        return list(chosen), fit, fraction
