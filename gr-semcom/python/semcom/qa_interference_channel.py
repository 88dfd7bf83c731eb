#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for interference_channel: y = G x + w exactly, noise power against theory, control messages."""

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest, semcom
from gnuradio.semcom.arrived_block import record_calls
from gnuradio.semcom.messages import tensor_message


def run(x, gains=None, noise_var=0.0, seed=0, max_noutput_items=None):
    n = x.shape[0]
    tb = gr.top_block()
    ch = semcom.interference_channel(n, noise_var=0.0, seed=seed)
    if gains is not None:
        ch.set_gains(gains, noise_var, slot=3, power_dbm=[38.0] * n, level=list(range(n)))
    if max_noutput_items:
        ch.set_max_noutput_items(max_noutput_items)
    for j in range(n):
        tb.connect(blocks.vector_source_c(x[j].tolist(), False), (ch, j))
    sinks = [blocks.vector_sink_c() for _ in range(n)]
    for k, s in enumerate(sinks):
        tb.connect((ch, k), s)
    tb.run()
    return np.array([s.data() for s in sinks]), ch


class qa_interference_channel(gr_unittest.TestCase):
    def setUp(self):
        rng = np.random.default_rng(1)
        self.x = ((rng.standard_normal((3, 4000)) + 1j * rng.standard_normal((3, 4000))) / np.sqrt(2)
                  ).astype(np.complex64)
        self.g = (rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))).astype(np.complex64)

    def test_each_receiver_hears_every_transmitter_through_its_gain(self):
        y, ch = run(self.x, self.g, 0.0)
        np.testing.assert_allclose(y, self.g @ self.x, rtol=1e-5, atol=1e-5)
        c = ch.counters()
        self.assertEqual((c["updates"], c["slot"], c["level"], c["samples"]), (1, 3, [0, 1, 2], 4000))
        np.testing.assert_allclose(c["rx_power"], np.mean(np.abs(self.g @ self.x) ** 2, axis=1), rtol=1e-4)

    def test_noise_variance_and_reproducible_across_work_sizes(self):
        zeros = np.zeros((2, 20000), np.complex64)
        y, _ = run(zeros, np.eye(2), [0.5, 2.0], seed=4)
        var = np.mean(np.abs(y) ** 2, axis=1)
        np.testing.assert_allclose(var, [0.5, 2.0], rtol=0.05)  # 20000 draws: std ~1 %
        y2, _ = run(zeros, np.eye(2), [0.5, 2.0], seed=4, max_noutput_items=333)
        np.testing.assert_array_equal(y, y2)

    def test_idle_interferers_are_filled_own_transmitter_never(self):
        x = self.x.copy()
        x[1, :2000] = 0  # transmitter 1 idle for the first half
        g = np.array([[1, 0.5, 0], [0, 1, 0], [0, 0, 1]], np.complex64)
        tb = gr.top_block()
        ch = semcom.interference_channel(3, noise_var=0.0, fill_power=2.0, seed=1)
        ch.set_gains(g, 0.0)
        for j in range(3):
            tb.connect(blocks.vector_source_c(x[j].tolist(), False), (ch, j))
        sinks = [blocks.vector_sink_c() for _ in range(3)]
        for k in range(3):
            tb.connect((ch, k), sinks[k])
        tb.run()
        y = np.array([s.data() for s in sinks])
        np.testing.assert_allclose(y[1], x[1], atol=1e-6)            # own idle stays silent
        np.testing.assert_allclose(y[0, 2000:], x[0, 2000:] + 0.5 * x[1, 2000:], atol=1e-5)
        fill = (y[0, :2000] - x[0, :2000]) / 0.5
        self.assertAlmostEqual(float(np.mean(np.abs(fill) ** 2)), 2.0, delta=0.15)  # 2000 draws: ~3 %

    def test_foreign_oscillators_rotate_interferers_only(self):
        g = np.array([[1, 0.5], [0.25, 1]], np.complex64)
        x = self.x[:2]
        tb = gr.top_block()
        ch = semcom.interference_channel(2, noise_var=0.0, interferer_cfo=0.01, seed=2)
        ch.set_gains(g, 0.0)
        ch.set_max_noutput_items(700)  # phase continuous across work() calls
        for j in range(2):
            tb.connect(blocks.vector_source_c(x[j].tolist(), False), (ch, j))
        sinks = [blocks.vector_sink_c() for _ in range(2)]
        for k in range(2):
            tb.connect((ch, k), sinks[k])
        tb.run()
        y = np.array([s.data() for s in sinks])
        f = ch._cfo
        self.assertTrue(abs(f[0, 1]) > 0 and f[0, 0] == 0 and abs(f[0, 1]) <= 0.01)
        n = np.arange(x.shape[1])
        np.testing.assert_allclose(y[0], x[0] + 0.5 * np.exp(2j * np.pi * f[0, 1] * n) * x[1], atol=1e-4)

    def test_a_call_takes_all_the_input_that_has_arrived(self):
        """arrived_block: a 1 920-sample slot on three inputs goes through in one call (as a sync block it
        went in calls of 1 024, 512, 256 and 128: GNU Radio halves a sync block's call until its input
        covers it), equals the same slot cut into 61-sample calls (noise, fill and foreign CFO included),
        and a tag on an input reaches every output at its offset, as a sync block's did."""
        x = self.x[:, :1920].copy()
        x[2, :700] = 0  # transmitter 2 idle at first: its fill is drawn as well

        def slot(max_noutput_items=None):
            tb = gr.top_block()
            ch = semcom.interference_channel(3, noise_var=0.0, fill_power=0.5, interferer_cfo=0.01, seed=5)
            ch.set_gains(self.g, [0.01, 0.02, 0.03])
            if max_noutput_items:
                ch.set_max_noutput_items(max_noutput_items)
            sizes = record_calls(ch)
            tag = gr.tag_utils.python_to_tag((700, pmt.intern("sob"), pmt.PMT_T, pmt.intern("src")))
            for j in range(3):
                tb.connect(blocks.vector_source_c(x[j].tolist(), False, 1, [tag] if j == 1 else []), (ch, j))
            sinks = [blocks.vector_sink_c() for _ in range(3)]
            for k in range(3):
                tb.connect((ch, k), sinks[k])
            tb.run()
            tags = [[(t.offset, pmt.symbol_to_string(t.key)) for t in s.tags()] for s in sinks]
            return np.array([s.data() for s in sinks]), sizes, tags

        y, sizes, tags = slot()
        self.assertEqual(sizes, [1920])
        self.assertEqual(tags, [[(700, "sob")]] * 3)
        y_cut, sizes_cut, tags_cut = slot(max_noutput_items=61)
        self.assertEqual(len(sizes_cut), 32)
        self.assertEqual(tags_cut, tags)
        np.testing.assert_allclose(y, y_cut, rtol=0, atol=1e-5)

    def test_control_message_and_bad_input(self):
        tb = gr.top_block()
        ch = semcom.interference_channel(2)
        msg = tensor_message({"slot": 7, "power_dbm": [30.0, 38.0], "level": [5, 1]},
                             {"gains": np.array([[1, 0.1], [0.2, 1]], np.complex64),
                              "noise_var": np.array([0.01, 0.02])})
        ch._post(pmt.intern("control"), msg)
        ch._post(pmt.intern("control"), tensor_message({}, {"gains": np.eye(3, dtype=np.complex64),
                                                            "noise_var": np.ones(3)}))
        src = [blocks.vector_source_c([0j] * 100, False) for _ in range(2)]
        for j in range(2):
            tb.connect(src[j], (ch, j), blocks.null_sink(gr.sizeof_gr_complex))
        tb.run()
        c = ch.counters()
        self.assertEqual((c["updates"], c["slot"], c["power_dbm"], c["level"], c["rejected"]),
                         (1, 7, [30.0, 38.0], [5, 1], 1))
        with self.assertRaises(ValueError):
            ch.set_gains(np.eye(3), 1.0)
        with self.assertRaises(ValueError):
            semcom.interference_channel(0)


if __name__ == "__main__":
    gr_unittest.run(qa_interference_channel)
