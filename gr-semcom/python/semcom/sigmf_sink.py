#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""sigmf_sink: record all receive channels as one SigMF recording (for replay and regression tests)."""

from __future__ import annotations

import numpy as np
from gnuradio import gr

from semcom.capture import _paths, write_meta
from semcom.ofat.frame import OfatLayout


class sigmf_sink(gr.sync_block):
    """Writes the `layout.n_rx` input streams, interleaved, as cf32_le to `<path>.sigmf-data`, and the
    SigMF metadata (sample rate, frequency, gains, antennas, hardware, time, OFAT layout) to
    `<path>.sigmf-meta` when the flowgraph stops. Replay: `semcom replay <path>`."""

    def __init__(self, path: str, layout: OfatLayout, sample_rate: float = 1e6, center_freq: float = 0.0,
                 gains_db: list[float] | None = None, antennas: list[str] | None = None,
                 hardware: str = "", description: str = ""):
        gr.sync_block.__init__(self, name="semcom_sigmf_sink", in_sig=[np.complex64] * layout.n_rx,
                               out_sig=None)
        self.path = path
        self.layout = layout
        self._meta = dict(sample_rate=sample_rate, center_freq=center_freq, gains_db=gains_db,
                          antennas=antennas, hardware=hardware, description=description)
        self._file = None
        self.samples_written = 0

    def start(self) -> bool:
        _, data_path = _paths(self.path)
        self._file = open(data_path, "wb")  # noqa: SIM115 (closed in stop)
        self.samples_written = 0
        return True

    def stop(self) -> bool:
        if self._file is not None:
            self._file.close()
            self._file = None
            write_meta(self.path, layout=self.layout, n_samples=self.samples_written, **self._meta)
        return True

    def work(self, input_items, output_items):
        n = len(input_items[0])
        np.ascontiguousarray(np.stack(input_items).T, dtype="<c8").tofile(self._file)
        self.samples_written += n
        return n
