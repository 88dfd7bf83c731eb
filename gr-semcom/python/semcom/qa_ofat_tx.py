#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for ofat_tx: frames on the streams equal GNU Radio's own OFDM modulator (fft_vcc + cyclic prefixer)
applied to the frame module's reference resource grid, burst tags, rejections. And for ofat_tx_fast, its
compiled core (qa_ofat_tx_fast below; tests/test_ofat_tx_fast.py compares the two at length)."""

import time
import unittest

import numpy as np
import pmt
from gnuradio import blocks, digital, fft, gr, gr_unittest, semcom
from gnuradio.semcom.messages import tensor_message

from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, frame_grid_reference, make_layout, modulate_frame


def run_tx(layout, messages, n_samples, make=semcom.ofat_tx, **kwargs):
    """Post messages to a fresh ofat_tx (or `make`'s block), collect n_samples per antenna and the tags."""
    tb = gr.top_block()
    tx = make(layout, **kwargs)
    sinks = [blocks.vector_sink_c() for _ in range(layout.n_tx)]
    for port, sink in enumerate(sinks):
        tb.connect((tx, port), blocks.head(gr.sizeof_gr_complex, n_samples), sink)
    for msg in messages:
        tx._post(pmt.intern("tensors"), msg)
    tb.start()
    if kwargs.get("idle_fill", True):
        tb.wait()
    else:
        # An idle burst-mode source waits for messages and never sees head finish: stop it.
        deadline = time.monotonic() + 30
        # Every sink, not only the last: the antennas' heads finish in any order (a run stopped once
        # the last one was full found antenna 0's sink still empty, once, in a loaded CI run).
        while min(len(s.data()) for s in sinks) < n_samples and time.monotonic() < deadline:
            time.sleep(0.01)
        tb.stop()
        tb.wait()
    run_tx.last_sinks = sinks
    return tx, [np.array(s.data()) for s in sinks], sinks[0].tags()


def gnuradio_ofdm_oracle(layout, grid):
    """An independent modulator: GNU Radio's C++ inverse FFT (`fft.fft_vcc`, natural bin order) and
    cyclic prefixer on each antenna's resource grid (Nt, n_sym, fft_len) -> (Nt, n_sym * symbol_len).
    GNU Radio's IFFT is unnormalised, the frame module's unitary: scaled by 1/sqrt(fft_len)."""
    n = layout.fft_len
    out = []
    for ant_grid in grid:
        tb = gr.top_block()
        src = blocks.vector_source_c(ant_grid.astype(np.complex64).reshape(-1).tolist(), False, n)
        ifft = fft.fft_vcc(n, False, [], False, 1)
        cp = digital.ofdm_cyclic_prefixer(n, n + layout.cp_len, 0, "")
        sink = blocks.vector_sink_c()
        tb.connect(src, ifft, cp, sink)
        tb.run()
        out.append(np.array(sink.data()) / np.sqrt(n))
    return np.array(out)


class qa_ofat_tx(gr_unittest.TestCase):
    def setUp(self):
        self.layout = make_layout("wifi64", n_tx=2, n_rx=4)

    def test_frames_equal_gnu_radio_ofdm_on_the_reference_grid(self):
        """Every preset and mode, 1-4 antennas: ofat_tx (cached template, in-place IFFT, gap) against GNU
        Radio's own IFFT + cyclic prefixer on the plain per-frame grid (`frame_grid_reference`), which
        only puts energy on used subcarriers."""
        rng = np.random.default_rng(7)
        cases = (("wifi64", "complex", 1), ("wifi64", "real", 2), ("ofat128", "complex", 4))
        for preset, mode, n_tx in cases:
            layout = make_layout(preset, n_tx=n_tx, n_rx=4, mode=mode)
            tensors = [rng.standard_normal(n).astype(np.float32) for n in (300, 37)]
            msgs = [tensor_message({"seq": 5 + i}, {"x": t}) for i, t in enumerate(tensors)]
            gap = 50
            lengths = [layout.frame_len(t.size) + gap for t in tensors]
            _, streams, _ = run_tx(layout, msgs, sum(lengths), gap_samples=gap, idle_fill=True)
            start = 0
            for i, t in enumerate(tensors):
                grid, _ = frame_grid_reference(layout, t, seq=5 + i)
                unused = np.setdiff1d(np.arange(layout.fft_len), layout.used_bins)
                self.assertTrue(np.all(grid[:, 1:, unused] == 0))  # after the preamble: used bins only
                expected = gnuradio_ofdm_oracle(layout, grid)
                frame_len = lengths[i] - gap
                for a in range(n_tx):
                    got = streams[a][start: start + frame_len]
                    np.testing.assert_allclose(got, expected[a], atol=2e-6, err_msg=f"{preset} {mode} {a}")
                    self.assertTrue(np.all(streams[a][start + frame_len: start + lengths[i]] == 0))
                start += lengths[i]

    def test_frames_are_burst_tagged_with_their_seq(self):
        rng = np.random.default_rng(0)
        tensors = [rng.standard_normal((5, 64)).astype(np.float32) for _ in range(3)]
        msgs = [tensor_message({"seq": 10 + i}, {"x": t}) for i, t in enumerate(tensors)]
        gap = 100
        frame_len = self.layout.frame_len(320)
        tx, streams, tags = run_tx(self.layout, msgs, 3 * (frame_len + gap), gap_samples=gap, idle_fill=True)
        for i, t in enumerate(tensors):
            expected = gnuradio_ofdm_oracle(self.layout, frame_grid_reference(self.layout, t, seq=10 + i)[0])
            start = i * (frame_len + gap)
            for a in range(2):
                np.testing.assert_allclose(streams[a][start: start + frame_len], expected[a], atol=1e-6)
                self.assertTrue(np.all(streams[a][start + frame_len: start + frame_len + gap] == 0))
        keys = [(pmt.symbol_to_string(t.key), t.offset) for t in tags]
        sob = [o for k, o in keys if k == "tx_sob"]
        eob = [o for k, o in keys if k == "tx_eob"]
        self.assertEqual(sob, [i * (frame_len + gap) for i in range(3)])
        self.assertEqual(eob, [(i + 1) * (frame_len + gap) - 1 for i in range(3)])  # after the gap
        seqs = [pmt.to_python(t.value) for t in tags if pmt.symbol_to_string(t.key) == "semcom_seq"]
        self.assertEqual(seqs, [10, 11, 12])
        self.assertEqual(tx.counters()["frames_sent"], 3)

    def test_burst_mode_every_sample_lies_in_a_closed_burst(self):
        """idle_fill=False over frames of different sizes: SOB ... EOB, nothing between EOB and SOB."""
        rng = np.random.default_rng(1)
        sizes = [320, 40, 700, 8]
        msgs = [tensor_message({"seq": i}, {"x": rng.standard_normal(n).astype(np.float32)})
                for i, n in enumerate(sizes)]
        gap = DEFAULT_GAP_SAMPLES  # the block's default gap
        lengths = [self.layout.frame_len(n) + gap for n in sizes]
        total = sum(lengths)
        tx, streams, _ = run_tx(self.layout, msgs, total, idle_fill=False)
        self.assertEqual(len(streams[0]), total)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        for port in range(self.layout.n_tx):
            tags = run_tx.last_sinks[port].tags()
            sob = sorted(t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_sob")
            eob = sorted(t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_eob")
            self.assertEqual(len(sob), len(sizes))
            self.assertEqual(len(eob), len(sizes))
            inside = np.zeros(total, bool)
            for s, e in zip(sob, eob, strict=True):
                self.assertLessEqual(s, e)
                inside[s: e + 1] = True
            self.assertTrue(inside.all(), "a sample was emitted outside any burst")
            # The next SOB follows its EOB immediately: no sample after an EOB before the next SOB.
            self.assertEqual(sob[1:], [e + 1 for e in eob[:-1]])
            self.assertEqual(eob[-1], total - 1)
            self.assertEqual(list(sob), list(starts))
        # The frames themselves are unchanged (the gap is zeros inside the burst).
        for n, s in zip(sizes, starts, strict=True):
            flen = self.layout.frame_len(n)
            self.assertTrue(np.all(streams[0][s + flen: s + flen + gap] == 0))
        self.assertEqual(tx.counters()["frames_sent"], len(sizes))

    def test_idle_fill_emits_zeros_without_frames(self):
        tx, streams, tags = run_tx(self.layout, [], 5000, idle_fill=True, idle_sleep_s=0.0)
        self.assertTrue(np.all(streams[0] == 0) and len(streams[0]) == 5000)
        self.assertEqual(len(tags), 0)

    def test_bad_tensors_are_rejected_counted_and_the_next_frame_still_goes_out(self):
        too_big = np.zeros(self.layout.capacity + 1, np.float32)
        good = np.ones((4, 4), np.float32)
        msgs = [
            tensor_message({"seq": 1}, {"x": too_big}),
            tensor_message({"seq": 2}, {"x": np.array([1.0, np.nan], np.float32)}),
            tensor_message({"seq": 3}, {"a": good, "b": good}),
            tensor_message({"seq": -5}, {"x": good}),
            tensor_message({"seq": 4}, {"x": np.zeros((2, 2, 2, 2), np.float32)}),
            tensor_message({"seq": 5}, {"x": good}),
        ]
        frame_len = self.layout.frame_len(16)
        tx, streams, tags = run_tx(self.layout, msgs, frame_len + 200, gap_samples=200)
        c = tx.counters()
        self.assertEqual(c["rejected_oversize"], 1)
        self.assertEqual(c["rejected_nonfinite"], 1)
        self.assertEqual(c["rejected_tensor_count"], 1)
        self.assertEqual(c["rejected_bad_seq"], 1)
        self.assertEqual(c["rejected_frame"], 1)  # 4-d shape not representable in the header
        expected, _ = modulate_frame(self.layout, good, seq=5)
        np.testing.assert_allclose(streams[0][:frame_len], expected[0], atol=1e-6)

    def test_queued_counts_accepted_frames_until_they_start(self):
        tx = semcom.ofat_tx(self.layout, max_queue=3)
        for i in range(5):  # the handler alone, as the scheduler calls it between work() calls
            tx._on_tensor(tensor_message({"seq": i}, {"x": np.ones(8, np.float32)}))
        self.assertEqual(tx.queued(), 3)
        self.assertEqual(tx.counters()["dropped_backpressure"], 2)
        self.assertEqual(tx.counters()["frames_queued"], 3)

    def test_queue_full_is_counted_as_backpressure(self):
        msgs = [tensor_message({"seq": i}, {"x": np.ones(8, np.float32)}) for i in range(5)]
        tx, _, _ = run_tx(self.layout, msgs, 10, max_queue=2)
        time.sleep(0.05)
        c = tx.counters()
        self.assertEqual(c["dropped_backpressure"], 3)
        self.assertEqual(c["frames_queued"], 2)


@unittest.skipIf(semcom.semcom_python is None, "compiled blocks not built")
class qa_ofat_tx_fast(gr_unittest.TestCase):
    def setUp(self):
        self.layout = make_layout("wifi64", n_tx=2, n_rx=4)

    def test_frames_equal_modulate_frame_in_closed_bursts(self):
        rng = np.random.default_rng(3)
        sizes, gap = [320, 40, 1280], 100
        tensors = [rng.standard_normal(n).astype(np.float32) for n in sizes]
        msgs = [tensor_message({"seq": 20 + i}, {"x": t}) for i, t in enumerate(tensors)]
        lengths = [self.layout.frame_len(n) + gap for n in sizes]
        tx, streams, tags = run_tx(self.layout, msgs, sum(lengths), make=semcom.ofat_tx_fast, gap_samples=gap,
                                   idle_fill=False)
        start = 0
        for i, t in enumerate(tensors):
            expected, _ = modulate_frame(self.layout, t, seq=20 + i, pad=gap)
            for a in range(self.layout.n_tx):
                np.testing.assert_allclose(streams[a][start: start + lengths[i]], expected[a], rtol=0,
                                           atol=1e-6)
            start += lengths[i]
        sob = [t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_sob"]
        eob = [t.offset for t in tags if pmt.symbol_to_string(t.key) == "tx_eob"]
        seqs = [pmt.to_python(t.value) for t in tags if pmt.symbol_to_string(t.key) == "semcom_seq"]
        self.assertEqual(sob, list(np.cumsum(lengths) - lengths))
        self.assertEqual(eob, list(np.cumsum(lengths) - 1))  # every sample inside a burst
        self.assertEqual(seqs, [20, 21, 22])
        self.assertEqual(tx.counters(), {"frames_queued": 3, "frames_sent": 3})

    def test_bad_tensors_are_counted_and_the_next_frame_still_goes_out(self):
        good = np.ones((4, 4), np.float32)
        msgs = [tensor_message({"seq": 1}, {"x": np.zeros(self.layout.capacity + 1, np.float32)}),
                tensor_message({"seq": 2}, {"x": np.array([1.0, np.nan], np.float32)}),
                tensor_message({"seq": 3}, {"a": good, "b": good}),
                tensor_message({"seq": -5}, {"x": good}),
                tensor_message({"seq": 4}, {"x": np.zeros((2, 2, 2, 2), np.float32)}),
                pmt.from_long(7),
                tensor_message({"seq": 5}, {"x": good})]
        frame_len = self.layout.frame_len(16)
        tx, streams, _ = run_tx(self.layout, msgs, frame_len + 200, make=semcom.ofat_tx_fast, gap_samples=200)
        self.assertEqual(tx.counters(), {"rejected_oversize": 1, "rejected_nonfinite": 1,
                                         "rejected_tensor_count": 1, "rejected_bad_seq": 1,
                                         "rejected_frame": 1, "rejected_malformed": 1,
                                         "frames_queued": 1, "frames_sent": 1})
        expected, _ = modulate_frame(self.layout, good, seq=5)
        np.testing.assert_allclose(streams[0][:frame_len], expected[0], rtol=0, atol=1e-6)


if __name__ == "__main__":
    gr_unittest.run(qa_ofat_tx)  # every TestCase of this file (gr_unittest.main)
