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
