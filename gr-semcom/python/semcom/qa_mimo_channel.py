#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for mimo_channel: exact FIR when held, redraws exactly at tx_sob, noise and CFO against theory."""

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest, semcom
from gnuradio.semcom.messages import parse_tensor_message


def run_channel(inputs, tags=(), **kwargs):
    """inputs (Nt, n) -> outputs (Nr, n), the block, and its truth messages."""
    n_tx = inputs.shape[0]
    n_rx = kwargs.pop("n_rx")
    tb = gr.top_block()
    ch = semcom.mimo_channel(n_tx, n_rx, **kwargs)
    for a in range(n_tx):
        sob = [gr.tag_utils.python_to_tag((o, pmt.intern("tx_sob"), pmt.PMT_T)) for o in tags]
        tag_list = sob if a == 0 else []
        tb.connect(blocks.vector_source_c(inputs[a].tolist(), False, 1, tag_list), (ch, a))
    sinks = [blocks.vector_sink_c() for _ in range(n_rx)]
    for r, s in enumerate(sinks):
        tb.connect((ch, r), s)
    dbg = blocks.message_debug()
    tb.msg_connect((ch, "truth"), (dbg, "store"))
    tb.run()
    truth = [parse_tensor_message(dbg.get_message(i)) for i in range(dbg.num_messages())]
    return np.array([s.data() for s in sinks]), ch, truth, sinks[0].tags()


class qa_mimo_channel(gr_unittest.TestCase):
    def test_held_channel_is_the_drawn_fir_with_integer_delay(self):
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((2, 3000)) + 1j * rng.standard_normal((2, 3000))).astype(np.complex64)
        y, ch, truth, _ = run_channel(x, n_rx=3, snr_db=300, fading="held", max_int_delay=7, seed=3)
        (meta, t), = truth
        taps, d = t["taps"].astype(complex), meta["int_delay"]
        expected = np.zeros((3, 3000), complex)
        for r in range(3):
            for a in range(2):
                expected[r] += np.convolve(np.concatenate([np.zeros(d), x[a]]), taps[r, a])[:3000]
        np.testing.assert_allclose(y, expected, atol=1e-4)

    def test_per_frame_redraws_exactly_at_tx_sob(self):
        x = np.zeros((1, 4000), np.complex64)
        x[0, [100, 1100, 2600]] = 1.0  # an impulse right at each tag
        y, ch, truth, tags = run_channel(x, tags=(100, 1100, 2600), n_rx=1, snr_db=300, n_taps=1,
                                         frac_delay=False, seed=5)
        offsets = [m["offset"] for m, _ in truth]
        self.assertEqual(offsets, [0, 100, 1100, 2600])
        for (_meta, t), at in zip(truth[1:], (100, 1100, 2600), strict=True):
            self.assertAlmostEqual(complex(y[0, at]), complex(t["taps"][0, 0, 0]), places=5)
        self.assertEqual(ch.draws, 4)
        self.assertEqual(sorted(tag.offset for tag in tags), [100, 1100, 2600])  # tags reach the outputs

    def test_noise_variance_matches_snr(self):
        x = np.zeros((2, 200000), np.complex64)
        y, _, _, _ = run_channel(x, n_rx=2, snr_db=7.0, fading="held", seed=1)
        self.assertAlmostEqual(np.var(y) / 10 ** -0.7, 1.0, delta=0.02)

    def test_average_received_power_is_total_transmit_power(self):
        rng = np.random.default_rng(2)
        n, n_frames = 500, 400
        x = ((rng.standard_normal((2, n * n_frames)) + 1j * rng.standard_normal((2, n * n_frames)))
             / np.sqrt(4)).astype(np.complex64)  # 0.5 per antenna, 1.0 total
        y, _, _, _ = run_channel(x, tags=tuple(range(0, n * n_frames, n)), n_rx=2, snr_db=300, seed=4)
        self.assertAlmostEqual(np.mean(np.abs(y) ** 2), 1.0, delta=0.1)

    def test_cfo_is_a_continuous_phase_ramp(self):
        x = np.ones((1, 5000), np.complex64)
        y, _, _, _ = run_channel(x, n_rx=1, snr_db=300, fading="held", n_taps=1, frac_delay=False,
                                 cfo=0.01, seed=0)
        step = np.angle(y[0, 1000:4999].conj() * y[0, 1001:5000])
        np.testing.assert_allclose(step, 2 * np.pi * 0.01, atol=1e-4)

    def test_fixed_channel_offsets_are_part_of_the_fir_and_drift_is_a_ramp(self):
        rng = np.random.default_rng(6)
        x = (rng.standard_normal((2, 2000)) + 1j * rng.standard_normal((2, 2000))).astype(np.complex64)
        kw = dict(n_rx=2, snr_db=300, fading="held", n_taps=1, frac_delay=False, seed=8)
        y0, _, (truth,), _ = run_channel(x, **kw)
        y1, _, _, _ = run_channel(x, rx_phase=[0.0, 1.0], rx_delay=[0, 3], tx_phase=[0.5, 0.0],
                                  tx_delay=[2, 0], **kw)
        h = truth[1]["taps"][:, :, 0]
        expected = np.zeros((2, 2000), complex)
        for r, (pr, dr) in enumerate(((0.0, 0), (1.0, 3))):
            for a, (pa, da) in enumerate(((0.5, 2), (0.0, 0))):
                d = dr + da
                expected[r, d:] += h[r, a] * np.exp(1j * (pr + pa)) * x[a, : 2000 - d]
        np.testing.assert_allclose(y1, expected, atol=1e-4)
        y2, _, _, _ = run_channel(x, rx_phase_drift=[0.0, 1e-3], **kw)
        np.testing.assert_allclose(y2[0], y0[0], atol=1e-5)
        np.testing.assert_allclose(y2[1], y0[1] * np.exp(1e-3j * np.arange(2000)), atol=1e-4)

    def test_seed_reproducible_and_set_snr_db(self):
        x = np.ones((2, 1000), np.complex64)
        y1, ch, _, _ = run_channel(x, n_rx=2, snr_db=10, seed=9)
        y2, _, _, _ = run_channel(x, n_rx=2, snr_db=10, seed=9)
        np.testing.assert_array_equal(y1, y2)
        ch.set_snr_db(20)
        self.assertAlmostEqual(ch.noise_var(), 0.01)


if __name__ == "__main__":
    gr_unittest.run(qa_mimo_channel)
