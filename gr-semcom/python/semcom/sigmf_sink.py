#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""sigmf_sink: record all receive channels as one SigMF recording (for replay and regression tests)."""

from __future__ import annotations

import numpy as np
from gnuradio import gr

from semcom.capture import RecordingWriter
from semcom.ofat.frame import OfatLayout


class sigmf_sink(gr.sync_block):
    """Writes the `layout.n_rx` input streams, interleaved, as cf32_le to `<path>.sigmf-data`, hashing
    them as they are written (no second pass over a long capture), and the SigMF metadata (sample
    rate, frequency, gains, antennas, hardware, the start time, OFAT layout, core:sha512) to
    `<path>.sigmf-meta` when the flowgraph stops. Memory: one work() call's samples.
    A write that fails (disk full) stops the recording, never the flowgraph: logged once, no metadata
    written, every later sample counted in `samples_dropped`.
    Replay: `semcom replay <path>` (streamed, see semcom.capture)."""

    def __init__(self, path: str, layout: OfatLayout, sample_rate: float = 1e6, center_freq: float = 0.0,
                 gains_db: list[float] | None = None, antennas: list[str] | None = None,
                 hardware: str = "", description: str = ""):
        gr.sync_block.__init__(self, name="semcom_sigmf_sink", in_sig=[np.complex64] * layout.n_rx,
                               out_sig=None)
        self.path = path
        self.layout = layout
        self._meta = dict(sample_rate=sample_rate, center_freq=center_freq, gains_db=gains_db,
                          antennas=antennas, hardware=hardware, description=description)
        self._writer: RecordingWriter | None = None
        self._written = 0
        self.samples_dropped = 0

    @property
    def samples_written(self) -> int:
        """Samples per channel written by the current (or the last) run."""
        return self._writer.samples_written if self._writer is not None else self._written

    def start(self) -> bool:
        # The capture starts now: core:datetime is the writer's creation time.
        self._writer = RecordingWriter(self.path, self.layout, **self._meta)
        self.samples_dropped = 0
        return True

    def stop(self) -> bool:
        if self._writer is not None:
            writer, self._writer = self._writer, None
            self._written = writer.samples_written
            try:
                writer.close()
            except OSError as err:
                writer.abort()
                self.logger.error(f"recording {self.path} not completed, no metadata written: {err}")
        return True

    def work(self, input_items, output_items):
        n = len(input_items[0])
        if self._writer is None:
            self.samples_dropped += n
            return n
        try:
            self._writer.write(np.stack(input_items))
        except OSError as err:
            self._written = self._writer.samples_written
            self._writer.abort()
            self._writer = None
            self.samples_dropped += n
            self.logger.error(f"recording {self.path} stopped after {self._written} samples, no metadata "
                              f"written: {err}")
        return n
