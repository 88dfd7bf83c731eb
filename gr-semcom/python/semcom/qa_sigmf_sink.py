#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for sigmf_sink: every RX channel recorded sample for sample, metadata (start time, the hash made
while writing) that replay accepts."""

import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from gnuradio import blocks, gr, gr_unittest, semcom
from sigmf.utils import parse_iso8601_datetime

from semcom.capture import RecordingError, load_recording
from semcom.ofat.frame import make_layout


class qa_sigmf_sink(gr_unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.path = str(Path(self.tmp.name) / "rec")
        self.layout = make_layout("wifi64", n_tx=2, n_rx=3)

    def tearDown(self):
        self.tmp.cleanup()

    def record(self, streams):
        tb = gr.top_block()
        sink = semcom.sigmf_sink(self.path, self.layout, sample_rate=2e6, center_freq=2.45e9,
                                 gains_db=[10.0, 11.0, 12.0], antennas=["RX2", "RX2", "TX/RX"],
                                 hardware="qa", description="qa_sigmf_sink")
        for ch, x in enumerate(streams):
            tb.connect(blocks.vector_source_c(x.tolist(), False), (sink, ch))
        tb.run()
        return sink

    def test_channels_round_trip_with_metadata(self):
        rng = np.random.default_rng(0)
        n = 10_007  # not a multiple of any buffer size: the last work() call is partial
        streams = [(rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
                   for _ in range(3)]
        before = datetime.now(UTC)
        sink = self.record(streams)
        after = datetime.now(UTC)
        self.assertEqual(sink.samples_written, n)
        rec = load_recording(self.path)  # checks the sha512 hashed while writing
        self.assertTrue(before <= parse_iso8601_datetime(rec.start_time) <= after)
        self.assertEqual(rec.read().shape, (3, n))
        for ch in range(3):
            np.testing.assert_array_equal(rec.read()[ch], streams[ch])  # bit exact, channel order kept
        self.assertEqual(rec.sample_rate, 2e6)
        self.assertEqual(rec.layout.to_dict(), self.layout.to_dict())
        self.assertEqual(rec.meta["semcom:n_samples_per_channel"], n)

    def test_a_failed_write_stops_the_recording_not_the_flowgraph(self):
        class FailingSink(semcom.sigmf_sink):
            def start(self):  # a disk that fills up after the first 1000 samples
                ok = super().start()
                write = self._writer.write

                def write_until_full(samples):
                    if self._writer.samples_written + samples.shape[1] > 1000:
                        raise OSError(28, "No space left on device")
                    write(samples)

                self._writer.write = write_until_full
                return ok

        n = 50_000
        tb = gr.top_block()
        sink = FailingSink(self.path, self.layout)
        for ch in range(3):
            tb.connect(blocks.vector_source_c([1j * ch] * n, False), (sink, ch))
        tb.run()  # returns: the flowgraph was not stopped by the failure
        self.assertLessEqual(sink.samples_written, 1000)
        self.assertEqual(sink.samples_written + sink.samples_dropped, n)  # every sample accounted for
        self.assertFalse(Path(self.path + ".sigmf-meta").exists())
        with self.assertRaises(RecordingError):
            load_recording(self.path)

    def test_a_cut_recording_is_refused(self):
        streams = [np.ones(4096, np.complex64) * (ch + 1) for ch in range(3)]
        self.record(streams)
        data = Path(self.path + ".sigmf-data")
        data.write_bytes(data.read_bytes()[:-8])  # one sample of one channel lost
        with self.assertRaises(RecordingError):
            load_recording(self.path)
        meta = json.loads(Path(self.path + ".sigmf-meta").read_text())
        self.assertEqual(meta["global"]["core:num_channels"], 3)


if __name__ == "__main__":
    gr_unittest.run(qa_sigmf_sink)
