#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for mimo_channel: exact FIR when held, redraws exactly at tx_sob, noise and CFO against theory."""

import os
import time
import unittest.mock

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest, semcom
from gnuradio.semcom.arrived_block import record_calls
from gnuradio.semcom.messages import parse_tensor_message
from gnuradio.semcom.mimo_channel import (
    DRAW_BATCH,
    compiled_block_available,
    compiled_channel_available,
    mimo_channel_compiled,
    mimo_channel_python,
)

from semcom.ofat.channel_model import Realisation, exponential_correlation

# The implementations this build has: the numpy definition, and the compiled kernels where built.
IMPLEMENTATIONS_HERE = ("numpy", "cxx") if compiled_channel_available() else ("numpy",)
COMPILED_BLOCK_HERE = compiled_block_available()


class random_chunks(gr.basic_block):
    """Passes n streams through in calls of random sizes (1 .. most), each port's tags on the same port:
    the channel downstream then sees random work() sizes and tags anywhere in them."""

    def __init__(self, n: int, most: int, seed: int):
        gr.basic_block.__init__(self, name="random_chunks", in_sig=[np.complex64] * n,
                                out_sig=[np.complex64] * n)
        self.set_tag_propagation_policy(gr.TPP_ONE_TO_ONE)
        self._rng, self._most = np.random.default_rng(seed), most

    def general_work(self, input_items, output_items):
        available = min(len(output_items[0]), *(len(x) for x in input_items))
        n = min(available, int(self._rng.integers(1, self._most + 1)))
        for x, y in zip(input_items, output_items, strict=True):
            y[:n] = x[:n]
        self.consume_each(n)
        return n


def _tags(offsets, key="tx_sob"):
    return [gr.tag_utils.python_to_tag((int(o), pmt.intern(key), pmt.PMT_T)) for o in offsets]


def run_channel(inputs, tags=(), *, eob=(), tags_on_all=False, max_noutput_items=None, truth_port=True,
                chunks=None, block=semcom.mimo_channel, **kwargs):
    """inputs (Nt, n) -> outputs (Nr, n), the block, its truth messages and output 0's tags.

    ``tags``: tx_sob offsets (on input 0, or on every input with tags_on_all); ``eob``: tx_eob offsets.
    ``max_noutput_items`` caps every work() call, to exercise state kept across calls; ``chunks=(most,
    seed)`` feeds the channel in calls of random sizes. truth_port=False leaves the truth port unconnected
    (as the loopback does; then no truth is returned). ``block``: what makes the channel.
    """
    n_tx = inputs.shape[0]
    n_rx = kwargs.pop("n_rx")
    tb = gr.top_block()
    ch = block(n_tx, n_rx, **kwargs)
    if max_noutput_items:
        ch.set_max_noutput_items(max_noutput_items)
    chunker = random_chunks(n_tx, *chunks) if chunks else None
    for a in range(n_tx):
        tag_list = _tags(tags) + _tags(eob, "tx_eob") if (a == 0 or tags_on_all) else []
        source = blocks.vector_source_c(inputs[a].tolist(), False, 1, tag_list)
        if chunker is not None:
            tb.connect(source, (chunker, a), (ch, a))
        else:
            tb.connect(source, (ch, a))
    sinks = [blocks.vector_sink_c() for _ in range(n_rx)]
    for r, s in enumerate(sinks):
        tb.connect((ch, r), s)
    dbg = blocks.message_debug()
    if truth_port:
        tb.msg_connect((ch, "truth"), (dbg, "store"))
    tb.run()
    truth = [parse_tensor_message(dbg.get_message(i)) for i in range(dbg.num_messages())]
    return np.array([s.data() for s in sinks]), ch, truth, sinks[0].tags()


def reference_output(x, truth):
    """Noise-free output from the truth messages alone: each realisation's Realisation.apply, with the CFO
    phase its message reports at its offset, from that offset to the next, (Nr, n)."""
    n = x.shape[1]
    y = np.zeros((truth[0][1]["taps"].shape[0], n), complex)
    starts = [m["offset"] for m, _ in truth] + [n]
    for (meta, t), end in zip(truth, starts[1:], strict=True):
        real = Realisation(taps=t["taps"].astype(complex), int_delay=meta["int_delay"], cfo=meta["cfo"])
        o = meta["offset"]
        y[:, o:end] = real.apply(x, phase=meta["phase"] - 2 * np.pi * meta["cfo"] * o)[:, o:end]
    return y


def white(rng, shape, power=1.0):
    return ((rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * np.sqrt(power / 2)).astype(
        np.complex64)


class qa_mimo_channel(gr_unittest.TestCase):
    def test_held_channel_is_realisation_apply_for_the_whole_burst(self):
        """The streaming block (state across 211-sample work() calls) and the one-shot
        Realisation.apply give the same samples for a burst, to float32 rounding: multipath, fractional
        and integer delay, CFO."""
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((2, 3000)) + 1j * rng.standard_normal((2, 3000))).astype(np.complex64)
        y, ch, truth, _ = run_channel(x, n_rx=3, snr_db=300, fading="held", max_int_delay=7, seed=3,
                                      cfo=0.4 / 64, cfo_jitter=0.1 / 64, max_noutput_items=211)
        (meta, t), = truth
        real = ch.current()
        self.assertEqual(real.taps.shape, (3, 2, 3 + 7))  # n_taps + 8-tap fractional delay - 1
        np.testing.assert_array_equal(t["taps"], real.taps.astype(np.complex64))
        self.assertEqual((meta["int_delay"], meta["cfo"]), (real.int_delay, real.cfo))
        self.assertNotEqual(real.cfo, 0.4 / 64)  # the jitter was drawn, so the ramp is the realisation's
        expected = real.apply(x)
        self.assertEqual(expected.shape, (3, 3000 + real.int_delay + 9))
        np.testing.assert_allclose(y, expected[:, :3000], rtol=0, atol=1e-4)
        self.assertEqual(ch.draws, 1)

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

    def test_per_frame_output_is_the_piecewise_truth_fir_across_small_work_calls(self):
        """Multipath + fractional + integer delay + CFO jitter, switched only at tx_sob (not tx_eob)."""
        rng = np.random.default_rng(10)
        n = 6000
        x = white(rng, (2, n), 0.5)
        sob = (0, 700, 701, 1999, 3333, 5000)  # includes back-to-back frames and a tag at sample 0
        eob = (699, 1998, 3332, 4999)
        y, ch, truth, _ = run_channel(x, tags=sob, eob=eob, n_rx=4, snr_db=300, max_int_delay=9,
                                      cfo=0.4 / 64, cfo_jitter=0.1 / 64, seed=7, max_noutput_items=97)
        self.assertEqual([m["offset"] for m, _ in truth], list(sob))
        self.assertEqual([m["index"] for m, _ in truth], list(range(len(sob))))
        cfos = np.array([m["cfo"] for m, _ in truth])
        self.assertTrue(np.all(np.abs(cfos - 0.4 / 64) <= 0.1 / 64))
        self.assertGreater(np.ptp(cfos), 0)  # jitter redrawn per frame
        self.assertTrue(all(0 <= m["int_delay"] <= 9 and 0 <= m["frac_delay"] < 1 for m, _ in truth))
        np.testing.assert_allclose(y, reference_output(x, truth), atol=2e-4)

    def test_bursts_between_zeros_are_the_truth_fir_including_their_tails(self):
        """Frames between runs of zeros (ofat_tx's idle fill and gaps), cut by small and large work()
        calls: the block filters only the outputs that read a nonzero input; the rest, and each frame's
        tail of delay spread into the zeros, must still be the FIR's output."""
        rng = np.random.default_rng(11)
        n = 9000
        x = np.zeros((2, n), np.complex64)
        sob = (0, 1000, 4100, 4700)
        for a, b in ((1000, 2500), (4100, 4600), (4700, 4701), (8990, 9000)):  # one burst of 1 sample
            x[:, a:b] = white(rng, (2, b - a), 0.5)
        for cap in (61, 4096):
            y, _, truth, _ = run_channel(x, tags=sob, n_rx=4, snr_db=300, max_int_delay=9, cfo=0.3 / 64,
                                         seed=12, max_noutput_items=cap)
            np.testing.assert_allclose(y, reference_output(x, truth), atol=2e-4)
            self.assertTrue(np.all(np.abs(y[:, :1000]) < 1e-6))  # the output before the first burst
            tail = np.abs(y[:, 2500:2520]).max()  # the first frame's delay spread reaches past its end
            self.assertGreater(tail, 1e-3)

    def test_per_block_redraws_at_multiples_of_block_len(self):
        x = np.ones((2, 2600), np.complex64)
        _, ch, truth, _ = run_channel(x, tags=(123,), n_rx=2, snr_db=300, fading="per_block",
                                      block_len=500, seed=2, max_noutput_items=333)
        self.assertEqual([m["offset"] for m, _ in truth], [0, 500, 1000, 1500, 2000, 2500])
        self.assertEqual(ch.draws, 6)

    def test_noise_variance_matches_snr(self):
        x = np.zeros((2, 200000), np.complex64)
        y, _, _, _ = run_channel(x, n_rx=2, snr_db=7.0, fading="held", seed=1)
        self.assertAlmostEqual(np.var(y) / 10 ** -0.7, 1.0, delta=0.02)

    def test_noise_is_white_per_antenna_circular_and_gaussian(self):
        """In both implementations (their noise streams differ, their statistics must not): variance,
        halves per real part, independent antennas, white over lags 1..8, Gaussian (excess kurtosis,
        skew and the mass beyond 3 sigma)."""
        x = np.zeros((2, 100000), np.complex64)
        sigma2 = 2.0 * 10 ** -1.0
        for implementation in IMPLEMENTATIONS_HERE:
            with self.subTest(implementation=implementation):
                y, ch, _, _ = run_channel(x, n_rx=4, snr_db=10.0, noise_ref_power=2.0, fading="held", seed=11,
                                          implementation=implementation)
                self.assertEqual(ch.implementation, implementation)
                self.assertAlmostEqual(ch.noise_var(), sigma2)
                np.testing.assert_allclose(np.mean(np.abs(y) ** 2, axis=1), sigma2, rtol=0.02)
                np.testing.assert_allclose(np.var(y.real, axis=1), sigma2 / 2, rtol=0.03)
                np.testing.assert_allclose(np.var(y.imag, axis=1), sigma2 / 2, rtol=0.03)
                self.assertLess(abs(np.mean(y.real * y.imag)) / sigma2, 0.01)  # circular
                cov = y @ y.conj().T / y.shape[1] / sigma2
                self.assertLess(np.max(np.abs(cov - np.diag(np.diag(cov)))), 0.02)  # independent antennas
                for lag in range(1, 9):  # white in time
                    self.assertLess(abs(np.mean(y[:, lag:] * y[:, :-lag].conj())) / sigma2, 0.02)
                v = np.concatenate([y.real.ravel(), y.imag.ravel()]) / np.sqrt(sigma2 / 2)  # 800 000 N(0, 1)
                self.assertLess(abs(np.mean(v ** 4) - 3.0), 0.05)  # excess kurtosis 0 (sd ~0.005)
                self.assertLess(abs(np.mean(v ** 3)), 0.02)
                self.assertAlmostEqual(np.mean(np.abs(v) > 3.0) / 0.0026998, 1.0, delta=0.1)

    def test_compiled_equals_numpy_with_the_noise_off(self):
        """The compiled per-sample work against the numpy definition, every option on at once and with
        small, whole and random work() calls: per-frame redraws at tx_sob (back-to-back frames, a tag at
        0), multipath with fractional and integer delay, CFO jitter, fixed per-channel phases and delays,
        phase drift, TX and RX IQ imbalance, DC offset, and per-block redraws; -300 dB of noise (its own
        stream in each, 1e-15). Without phase noise and SFO the compiled block runs (mimo_channel_compiled:
        no Python per call); with them (numpy in both) the Python block with the compiled kernels. Truth
        messages equal in every field, the taps included; tags the same."""
        if "cxx" not in IMPLEMENTATIONS_HERE:
            self.skipTest("the compiled module is not built")
        rng = np.random.default_rng(30)
        x = white(rng, (2, 7000), 0.5)
        x[:, 3000:3400] = 0  # a gap
        compiled_block = dict(tags=(0, 900, 901, 2500, 5100), eob=(899, 2499), n_rx=4, snr_db=300,
                              max_int_delay=9, cfo=0.3 / 64, cfo_jitter=0.1 / 64, seed=31,
                              rx_phase=[0.1, 0.2, 0.3, 0.4], rx_delay=[0, 1, 0, 2], tx_phase=[0.5, -0.5],
                              tx_delay=[1, 0], rx_phase_drift=[0.0, 1e-4, -2e-4, 0.0],
                              tx_iq_gain_db=[0.3, -0.2], tx_iq_phase_deg=2.0, rx_iq_gain_db=0.5,
                              rx_iq_phase_deg=[1.0, 2.0, 3.0, 4.0], dc_offset_dbc=-30.0)
        configs = {"every option but phase noise and SFO, per frame": (compiled_block, "compiled"),
                   "every option, per frame": ({**compiled_block, "phase_noise_linewidth": 1e-5,
                                                "sfo_ppm": 30.0}, "python"),
                   "per block, 1x3": (dict(n_rx=3, snr_db=300, fading="per_block", block_len=777, seed=32,
                                           max_int_delay=3, cfo=0.01), "compiled")}
        for name, (kw, block) in configs.items():
            if block == "compiled" and not COMPILED_BLOCK_HERE:
                continue
            xin = x if kw["n_rx"] == 4 else x[:1]
            for cap, chunks in ((None, None), (61, None), (None, (700, 7))):
                with self.subTest(name, max_noutput_items=cap, chunks=chunks):
                    y_np, ch_np, t_np, tags_np = run_channel(xin, implementation="numpy",
                                                             max_noutput_items=cap, chunks=chunks, **kw)
                    y_c, ch_c, t_c, tags_c = run_channel(xin, implementation="cxx",
                                                         max_noutput_items=cap, chunks=chunks, **kw)
                    self.assertEqual((ch_np.implementation, ch_c.implementation), ("numpy", "cxx"))
                    self.assertEqual((ch_np.block, ch_c.block), ("python", block))
                    self.assertGreater(np.mean(np.abs(y_np) ** 2), 0.1)
                    np.testing.assert_allclose(y_c, y_np, rtol=0, atol=2e-5)
                    self.assertGreater(len(t_c), 1)
                    for (meta_c, tensors_c), (meta_np, tensors_np) in zip(t_c, t_np, strict=True):
                        # Same draws, offsets, indices; the CFO phase summed over other call sizes
                        # (random chunks are scheduled differently in each run) to double rounding.
                        self.assertAlmostEqual(meta_c.pop("phase"), meta_np.pop("phase"), delta=1e-9)
                        self.assertEqual(meta_c, meta_np)
                        self.assertEqual(tensors_c["taps"].dtype, np.complex64)
                        np.testing.assert_array_equal(tensors_c["taps"], tensors_np["taps"])
                    self.assertEqual([(t.offset, str(t.key)) for t in tags_c],
                                     [(t.offset, str(t.key)) for t in tags_np])
                    self.assertEqual(ch_c.draws, ch_np.draws)

    def test_compiled_noise_is_seeded_and_independent_of_work_sizes(self):
        if "cxx" not in IMPLEMENTATIONS_HERE:
            self.skipTest("the compiled module is not built")
        x = white(np.random.default_rng(33), (2, 5000))
        kw = dict(tags=(0, 1200, 3100), n_rx=4, snr_db=10, seed=9, max_int_delay=4, cfo_jitter=0.003,
                  implementation="cxx")
        y1, _, _, _ = run_channel(x, **kw)
        y2, _, _, _ = run_channel(x, max_noutput_items=61, **kw)
        np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-6)
        y3, _, _, _ = run_channel(x, **{**kw, "snr_db": 300})
        w = y1 - y3  # the noise alone, at 10 dB
        self.assertAlmostEqual(np.var(w) / 0.1, 1.0, delta=0.05)
        y4, _, _, _ = run_channel(x, **{**kw, "seed": 10})
        self.assertGreater(np.mean(np.abs(y1 - y4) ** 2), 0.5)

    def test_implementation_is_checked(self):
        with self.assertRaises(ValueError):
            semcom.mimo_channel(2, 2, implementation="fortran")
        self.assertEqual(semcom.mimo_channel(2, 2, implementation="numpy").implementation, "numpy")
        auto = semcom.mimo_channel(2, 2).implementation
        self.assertEqual(auto, "cxx" if "cxx" in IMPLEMENTATIONS_HERE else "numpy")
        with unittest.mock.patch.dict(os.environ, {"SEMCOM_MIMO_CHANNEL": "numpy"}):
            self.assertEqual(semcom.mimo_channel(2, 2).implementation, "numpy")  # overrides "auto" only
            if "cxx" in IMPLEMENTATIONS_HERE:
                self.assertEqual(semcom.mimo_channel(2, 2, implementation="cxx").implementation, "cxx")
        with unittest.mock.patch.dict(os.environ, {"SEMCOM_MIMO_CHANNEL": "fortran"}), \
                self.assertRaises(ValueError):
            semcom.mimo_channel(2, 2)
        if COMPILED_BLOCK_HERE:  # the compiled block, except where only the Python block can run
            self.assertEqual(semcom.mimo_channel(2, 2, implementation="cxx").block, "compiled")
            python = semcom.mimo_channel(2, 2, implementation="cxx", sfo_ppm=1.0)
            self.assertEqual((python.block, python.implementation), ("python", "cxx"))
            with unittest.mock.patch.dict(os.environ, {"SEMCOM_MIMO_CHANNEL_BLOCK": "python"}):
                self.assertEqual(semcom.mimo_channel(2, 2, implementation="cxx").block, "python")
            with unittest.mock.patch.dict(os.environ, {"SEMCOM_MIMO_CHANNEL_BLOCK": "java"}), \
                    self.assertRaisesRegex(ValueError, "SEMCOM_MIMO_CHANNEL_BLOCK"):
                semcom.mimo_channel(2, 2)

    def test_average_received_power_is_total_transmit_power(self):
        rng = np.random.default_rng(2)
        n, n_frames = 500, 400
        x = ((rng.standard_normal((2, n * n_frames)) + 1j * rng.standard_normal((2, n * n_frames)))
             / np.sqrt(4)).astype(np.complex64)  # 0.5 per antenna, 1.0 total
        y, _, _, _ = run_channel(x, tags=tuple(range(0, n * n_frames, n)), n_rx=2, snr_db=300, seed=4)
        self.assertAlmostEqual(np.mean(np.abs(y) ** 2), 1.0, delta=0.1)

    def test_received_power_per_antenna_matches_each_realisation(self):
        """White input of power 1/Nt per antenna: E|y_r|^2 = sum_t ||taps[r, t]||^2 / Nt per draw."""
        rng = np.random.default_rng(12)
        block, n_blocks = 4000, 6
        x = white(rng, (2, block * n_blocks), 0.5)
        y, _, truth, _ = run_channel(x, n_rx=4, snr_db=300, fading="per_block", block_len=block,
                                     max_int_delay=3, seed=13)
        self.assertEqual(len(truth), n_blocks)
        for meta, t in truth:
            o = meta["offset"]
            seg = y[:, o + 20: o + block]  # skip the FIR's transition after the switch
            expected = np.sum(np.abs(t["taps"]) ** 2, axis=(1, 2)) * 0.5
            np.testing.assert_allclose(np.mean(np.abs(seg) ** 2, axis=1), expected, rtol=0.1)

    def test_cfo_is_a_continuous_phase_ramp(self):
        x = np.ones((1, 5000), np.complex64)
        y, _, _, _ = run_channel(x, n_rx=1, snr_db=300, fading="held", n_taps=1, frac_delay=False,
                                 cfo=0.01, seed=0, max_noutput_items=123)
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
        y2, _, _, _ = run_channel(x, rx_phase_drift=[0.0, 1e-3], max_noutput_items=77, **kw)
        np.testing.assert_allclose(y2[0], y0[0], atol=1e-5)
        np.testing.assert_allclose(y2[1], y0[1] * np.exp(1e-3j * np.arange(2000)), atol=1e-4)

    def test_tags_of_input_0_reach_every_output_once(self):
        x = np.zeros((2, 1000), np.complex64)
        tb = gr.top_block()
        ch = semcom.mimo_channel(2, 3, snr_db=300, seed=0)
        for a in range(2):  # both inputs tagged, as a transmitter that tags every antenna
            tb.connect(blocks.vector_source_c(x[a].tolist(), False, 1, _tags((10, 500))), (ch, a))
        sinks = [blocks.vector_sink_c() for _ in range(3)]
        for r, s in enumerate(sinks):
            tb.connect((ch, r), s)
        tb.run()
        for s in sinks:
            self.assertEqual(sorted((t.offset, pmt.symbol_to_string(t.key)) for t in s.tags()),
                             [(10, "tx_sob"), (500, "tx_sob")])

    def test_seed_reproducible_whatever_the_work_sizes(self):
        rng = np.random.default_rng(14)
        x = white(rng, (2, 5000))
        kw = dict(tags=(0, 1200, 3100), n_rx=4, snr_db=10, seed=9, max_int_delay=4, cfo_jitter=0.003)
        y1, ch, _, _ = run_channel(x, **kw)
        y2, _, _, _ = run_channel(x, max_noutput_items=61, **kw)
        # Same draws and same noise; the FIR is a BLAS product whose last-bit rounding depends on how
        # many samples one call holds, so equality is to float32 rounding (a wrong draw is O(1) off).
        np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-5)
        y3, _, _, _ = run_channel(x, **{**kw, "seed": 10})
        self.assertGreater(np.mean(np.abs(y1 - y3) ** 2), 0.5)
        # Another SNR leaves the channel draws unchanged.
        _, _, t_a, _ = run_channel(x, **kw)
        _, _, t_b, _ = run_channel(x, **{**kw, "snr_db": 30})
        for (_, a), (_, b) in zip(t_a, t_b, strict=True):
            np.testing.assert_array_equal(a["taps"], b["taps"])

    def test_a_call_takes_all_the_input_that_has_arrived(self):
        """general_work with a forecast of one item: a 1 760-sample burst goes through in one call (as a
        sync block it went in calls of 1 024, 512, 128, 64 and 32: GNU Radio halves a sync block's call
        until its input covers it), and equals the same burst cut into 61-sample calls. Both blocks."""
        x = white(np.random.default_rng(16), (2, 1760))
        makers = [mimo_channel_python] + ([mimo_channel_compiled] if COMPILED_BLOCK_HERE else [])
        for make in makers:
            with self.subTest(make.__name__):
                tb = gr.top_block()
                ch = make(2, 4, seed=4, fading="held")
                sizes = record_calls(ch) if make is mimo_channel_python else None
                for a in range(2):
                    tb.connect(blocks.vector_source_c(x[a].tolist()), (ch, a))
                sinks = [blocks.vector_sink_c() for _ in range(4)]
                for r, sink in enumerate(sinks):
                    tb.connect((ch, r), sink)
                tb.run()
                calls = sizes if sizes is not None else [ch.counters()["samples"]] * ch.counters()["calls"]
                self.assertEqual(calls, [1760])
                y_cut, _, _, _ = run_channel(x, n_rx=4, seed=4, fading="held", max_noutput_items=61,
                                             block=make)
                np.testing.assert_allclose(np.array([s.data() for s in sinks]), y_cut, rtol=0, atol=1e-5)

    def test_redraws_in_batches_and_no_truth_listener_change_nothing(self):
        """Per-frame redraws come from batches drawn ahead (ChannelSpec.draw_many) and the truth message
        is not built while its port has no listener: neither changes a draw or the noise stream."""
        rng = np.random.default_rng(15)
        x = white(rng, (2, (mimo_channel_compiled.PREFILL + 2 * DRAW_BATCH) * 50))
        sob = range(0, x.shape[1], 50)  # more frames than the compiled block's prefill
        kw = dict(tags=sob, n_rx=4, snr_db=20, seed=3, max_int_delay=9, cfo_jitter=0.003)
        y1, ch1, truth, _ = run_channel(x, **kw)
        y2, ch2, none, _ = run_channel(x, truth_port=False, **kw)
        self.assertEqual((ch1.draws, ch2.draws, len(truth), len(none)), (len(sob), len(sob), len(sob), 0))
        if ch1.block == "compiled":  # refilled on "low" beyond the prefilled batches, none lost
            self.assertGreater(ch1.counters()["pushed"], mimo_channel_compiled.PREFILL)
            self.assertGreater(ch1.counters()["low_signals"], 0)
        np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-5)  # float32 rounding (work() sizes), see above
        # The draws in force are the spec's draws one by one from the channel stream.
        stream = np.random.default_rng(np.random.SeedSequence(3).spawn(3)[0])  # the block's channel stream
        for _, t in truth:
            np.testing.assert_array_equal(t["taps"], ch1.spec.draw(stream).taps.astype(np.complex64))

    def test_compiled_block_waits_for_a_late_refill_and_loses_nothing(self):
        """The compiled block's queue runs dry (a refill that takes 50 ms, 300 frames in one burst): it
        stops at the switch point that has no realisation yet, waits and goes on; every frame gets its
        own draw, in order, and the samples equal the numpy block's (noise off)."""
        if not COMPILED_BLOCK_HERE:
            self.skipTest("the compiled block is not built")
        x = white(np.random.default_rng(40), (2, 300 * 40))
        sob = range(0, x.shape[1], 40)
        kw = dict(tags=sob, n_rx=2, snr_db=300, seed=41, max_int_delay=4, cfo_jitter=0.003)

        def slow(make, n_tx, n_rx, **options):
            ch = make(n_tx, n_rx, **options)
            refill = ch._refiller._refill

            def late():
                time.sleep(0.05)
                refill()

            ch._refiller._refill = late
            return ch

        y_c, ch_c, t_c, _ = run_channel(x, block=lambda *a, **o: slow(mimo_channel_compiled, *a, **o), **kw)
        y_np, _, t_np, _ = run_channel(x, implementation="numpy", **kw)
        counters = ch_c.counters()
        self.assertGreater(counters["waits"], 0)
        self.assertEqual((counters["draws"], counters["samples"], len(t_c)), (len(sob), x.shape[1], len(sob)))
        self.assertEqual([m["index"] for m, _ in t_c], list(range(len(sob))))
        np.testing.assert_allclose(y_c, y_np, rtol=0, atol=2e-5)
        self.assertEqual([m["offset"] for m, _ in t_c], [m["offset"] for m, _ in t_np])

    def test_compiled_block_refuses_bad_parameters_and_what_it_cannot_do(self):
        if not COMPILED_BLOCK_HERE:
            self.skipTest("the compiled block is not built")
        from gnuradio.semcom.ofat_tx import semcom_python

        make = semcom_python.mimo_channel_fast
        args = dict(n_tx=2, n_rx=2, history_len=9, noise_seed=1, fading=0, block_len=100, sob_key="tx_sob",
                    low_water=4)
        for bad in (dict(fading=3), dict(block_len=0), dict(low_water=-1), dict(n_tx=0)):
            with self.assertRaises(ValueError):
                make(**{**args, **bad})
        core = make(**args)
        taps = np.zeros((3, 2, 2, 10), np.complex64)
        with self.assertRaisesRegex(ValueError, "push needs"):
            core.push(taps, [0, 0], [0.0, 0.0, 0.0], [])  # two delays for three realisations
        with self.assertRaisesRegex(ValueError, "exceeds the history"):  # 5 + 10 - 1 > 9, at push time
            core.push(taps[:1], [5], [0.0], [])
        core.push(taps[:1], [0], [0.0], [])
        self.assertEqual(core.queued(), 1)
        with self.assertRaises(ValueError):
            core.set_front_end([1 + 0j], [0j], [], [], [])  # one TX coefficient for two antennas
        ch = mimo_channel_compiled(2, 2)
        ch.set_sfo_ppm(0.0)  # what GRC's callbacks call with the options off
        ch.set_phase_noise_linewidth(0.0)
        ch.set_rx_iq(0.5, 3.0)
        with self.assertRaisesRegex(ValueError, "no phase noise or sampling-clock offset"):
            ch.set_sfo_ppm(10.0)
        self.assertEqual(ch.impairments.sfo_ppm, 0.0)  # refused, not half applied

    def test_set_snr_db_before_and_while_running(self):
        x = np.zeros((2, 20000), np.complex64)
        tb = gr.top_block()
        ch = semcom.mimo_channel(2, 2, snr_db=0.0, fading="held", seed=3)
        ch.set_snr_db(20)
        self.assertAlmostEqual(ch.noise_var(), 0.01)
        self.assertEqual(ch.snr_db, 20.0)
        y, _, _, _ = run_channel(x, n_rx=2, snr_db=0.0, fading="held", seed=3)
        self.assertAlmostEqual(np.var(y), 1.0, delta=0.04)

        n, switch_at = 200000, 100000

        class Trigger(gr.sync_block):
            """Pass-through that changes the channel's SNR once its input passes `switch_at`."""

            def __init__(self):
                gr.sync_block.__init__(self, "trigger", [np.complex64], [np.complex64])
                self.fired = False

            def work(self, input_items, output_items):
                m = len(output_items[0])
                if not self.fired and self.nitems_read(0) + m > switch_at:
                    ch.set_snr_db(10.0)
                    self.fired = True
                output_items[0][:] = input_items[0]
                return m

        ch = semcom.mimo_channel(2, 2, snr_db=30.0, fading="held", seed=3)
        trig = Trigger()
        tb.connect(blocks.vector_source_c([0j] * n), trig, (ch, 0))
        tb.connect(blocks.vector_source_c([0j] * n), (ch, 1))
        sinks = [blocks.vector_sink_c() for _ in range(2)]
        for r, s in enumerate(sinks):
            tb.connect((ch, r), s)
        trig.set_max_noutput_items(1000)
        tb.run()
        y = np.array([s.data() for s in sinks])
        # The channel cannot lag the trigger by more than its buffer (far below 50000 samples).
        self.assertAlmostEqual(np.var(y[:, : switch_at // 2]) / 1e-3, 1.0, delta=0.03)
        self.assertAlmostEqual(np.var(y[:, switch_at:]) / 1e-1, 1.0, delta=0.03)

    def test_spatial_correlation_and_rician_k_through_the_block(self):
        n, block = 60000, 30  # 2000 draws
        x = np.zeros((2, n), np.complex64)
        kw = dict(n_rx=3, snr_db=300, fading="per_block", block_len=block, n_taps=1, frac_delay=False)
        _, _, truth, _ = run_channel(x, corr_rx=0.8, corr_tx=0.4, seed=21, **kw)
        h = np.stack([t["taps"][:, :, 0] for _, t in truth]).astype(complex)  # (draws, Nr, Nt)
        r_rx = np.einsum("nit,njt->ij", h, h.conj()) / (h.shape[0] * 2)
        r_tx = np.einsum("nrs,nrt->st", h, h.conj()) / (h.shape[0] * 3)
        np.testing.assert_allclose(r_rx, exponential_correlation(3, 0.8), atol=0.08)
        np.testing.assert_allclose(r_tx, exponential_correlation(2, 0.4), atol=0.08)
        _, _, truth, _ = run_channel(x, rician_k=3.0, seed=22, **kw)
        pw = np.abs(np.stack([t["taps"] for _, t in truth])) ** 2
        k = 3.0
        self.assertAlmostEqual(np.mean(pw), 1.0, delta=0.05)
        self.assertAlmostEqual(np.mean(pw**2) / np.mean(pw) ** 2, (k * k + 4 * k + 2) / (k + 1) ** 2,
                               delta=0.08)  # Rician 1.44 (Rayleigh would be 2)

    def test_invalid_arguments_raise(self):
        for kw in (dict(fading="sometimes"), dict(block_len=0), dict(rx_phase=[0.0]),
                   dict(rx_delay=[-1, 0]), dict(noise_ref_power=-1.0), dict(corr_rx=1.5)):
            with self.assertRaises(ValueError):
                semcom.mimo_channel(2, 2, **kw)

    def test_integer_delay_longer_than_the_gap_is_refused(self):
        # max_int_delay + (3 taps + 7 FD) - 1: 151 gives 160 = the gap (fits), 152 gives 161.
        semcom.mimo_channel(2, 2, max_int_delay=151, gap_samples=160)
        with self.assertRaisesRegex(ValueError, "gap_samples=160"):
            semcom.mimo_channel(2, 2, max_int_delay=152, gap_samples=160)
        semcom.mimo_channel(2, 2, max_int_delay=152)  # unchecked without a gap

    # ------------------------------------------------------------------ front-end impairments
    def test_impairments_off_leave_the_output_unchanged(self):
        x = white(np.random.default_rng(20), (2, 3000))
        kw = dict(tags=(0, 1500), n_rx=2, snr_db=15, seed=3, cfo=0.002)
        y0, _, _, _ = run_channel(x, **kw)
        y1, _, _, _ = run_channel(x, sfo_ppm=0.0, phase_noise_linewidth=0.0, tx_iq_gain_db=0.0,
                                  tx_iq_phase_deg=[0.0, 0.0], rx_iq_gain_db=0.0, rx_iq_phase_deg=0.0,
                                  dc_offset_dbc=None, **kw)
        np.testing.assert_array_equal(y0, y1)

    def _flat(self, x, **kw):
        """1x1 through a held single-tap channel, no noise: output / input gain removed."""
        kw = dict(n_rx=1, fading="held", n_taps=1, frac_delay=False, noise_ref_power=0.0, seed=2, **kw)
        y, ch, truth, _ = run_channel(x, **kw)
        return y[0] / complex(truth[0][1]["taps"][0, 0, 0]), ch

    def test_rx_iq_imbalance_gives_the_theoretical_image_rejection(self):
        from semcom.ofat.channel_model import image_rejection_db

        n, f_bin = 4096, 300
        x = np.exp(2j * np.pi * f_bin * np.arange(n) / n)[None].astype(np.complex64)
        y, _ = self._flat(x, rx_iq_gain_db=0.5, rx_iq_phase_deg=3.0)  # the gain does not change the ratio
        spec = np.abs(np.fft.fft(y)) ** 2
        irr = 10 * np.log10(spec[f_bin] / spec[-f_bin])
        self.assertAlmostEqual(irr, image_rejection_db(0.5, 3.0), places=3)

    def test_iq_imbalance_matches_gnu_radio_iqbal_gen(self):
        """Cross-check with GNU Radio's own IQ imbalance blocks (channels.iqbal_gen, TX and RX models,
        magnitude in dB and phase in degrees): a tone's image rejection through them equals the one
        through mimo_channel's RX IQ imbalance and the closed form, 28.2 dB at 0.5 dB / 3 degrees."""
        from gnuradio import channels

        from semcom.ofat.channel_model import image_rejection_db, iq_coefficients

        n, f_bin = 4096, 300
        x = np.exp(2j * np.pi * f_bin * np.arange(n) / n).astype(np.complex64)

        def irr(y):
            spec = np.abs(np.fft.fft(y)) ** 2
            return 10 * np.log10(spec[f_bin] / spec[-f_bin])

        ours, _ = self._flat(x[None], rx_iq_gain_db=0.5, rx_iq_phase_deg=3.0)
        for mode in (0, 1):  # GNU Radio's TX and RX models
            tb = gr.top_block()
            sink = blocks.vector_sink_c()
            tb.connect(blocks.vector_source_c(x.tolist()), channels.iqbal_gen(0.5, 3.0, mode), sink)
            tb.run()
            self.assertAlmostEqual(irr(np.array(sink.data())), irr(ours), places=2)
        self.assertAlmostEqual(irr(ours), image_rejection_db(0.5, 3.0), places=3)
        # Coefficient for coefficient: iqbal_gen's receive (mode 1) and transmit (mode 0) models are
        # y = k1 x + k2 conj(x) with ours (the transmit k1 is the conjugate of the receive k1), and
        # mimo_channel's TX and RX imbalances are those two models.
        noise = white(np.random.default_rng(23), (1, 5000))
        basis = np.stack([noise[0], np.conj(noise[0])], axis=1)
        for mode, side in ((1, "rx"), (0, "tx")):
            tb = gr.top_block()
            sink = blocks.vector_sink_c()
            tb.connect(blocks.vector_source_c(noise[0].tolist()), channels.iqbal_gen(0.5, 3.0, mode), sink)
            tb.run()
            fit, *_ = np.linalg.lstsq(basis, np.array(sink.data()), rcond=None)
            expected = np.concatenate(iq_coefficients(0.5, 3.0, 1, transmit=mode == 0))
            np.testing.assert_allclose(fit, expected, atol=1e-5)
            y, ch = self._flat(noise, **{f"{side}_iq_gain_db": 0.5, f"{side}_iq_phase_deg": 3.0})
            # TX: y / h = k1 x + k2 conj(x); RX: y = k1 (h x) + k2 conj(h x), the imbalance after the tap.
            h = 1.0 if side == "tx" else complex(ch.current().taps[0, 0, 0])
            fit, *_ = np.linalg.lstsq(basis * [h, np.conj(h)], y * h, rcond=None)
            np.testing.assert_allclose(fit, expected, atol=1e-5)

    def test_tx_iq_imbalance_and_dc_offset(self):
        from semcom.ofat.channel_model import apply_iq, iq_coefficients

        x = white(np.random.default_rng(21), (1, 2000))
        y, _ = self._flat(x, tx_iq_gain_db=-1.0, tx_iq_phase_deg=5.0)
        expected = apply_iq(x.astype(complex), *iq_coefficients(-1.0, 5.0, 1, transmit=True))[0]
        np.testing.assert_allclose(y, expected, atol=1e-5)
        zeros = np.zeros((1, 5000), np.complex64)
        y, _, _, _ = run_channel(zeros, n_rx=2, noise_ref_power=1.0, snr_db=300, dc_offset_dbc=-20.0, seed=4)
        for r in range(2):
            np.testing.assert_allclose(np.abs(y[r]) ** 2, 10 ** (-20 / 10), rtol=1e-4)  # a constant
            self.assertLess(np.std(y[r]), 1e-6)
        self.assertGreater(abs(np.angle(y[0, 0]) - np.angle(y[1, 0])), 1e-3)  # phase per antenna

    def test_phase_noise_is_a_wiener_process_of_the_set_linewidth(self):
        lw = 2e-4
        y, _ = self._flat(np.ones((1, 60000), np.complex64), phase_noise_linewidth=lw)
        np.testing.assert_allclose(np.abs(y), 1.0, atol=1e-4)
        steps = np.angle(y[1:] * np.conj(y[:-1]))
        self.assertAlmostEqual(np.var(steps) / (2 * np.pi * lw), 1.0, delta=0.03)
        d = 200
        drift = np.angle(y[d:] * np.conj(y[:-d]))
        self.assertAlmostEqual(np.var(drift) / (2 * np.pi * lw * d), 1.0, delta=0.2)

    def test_sfo_shifts_a_tone_by_the_clock_ratio_and_recentres_at_tx_sob(self):
        f, ppm, n = 0.2, 500.0, 20000
        x = np.exp(2j * np.pi * f * np.arange(n))[None].astype(np.complex64)
        y, ch = self._flat(x, sfo_ppm=ppm)
        steps = np.angle(y[100:] * np.conj(y[99:-1]))
        jumps = np.abs(steps - np.median(steps)) > 0.05  # the whole-sample jumps, one per 2 000 samples
        self.assertEqual(int(jumps.sum()), n // 2000 - 1)
        self.assertAlmostEqual(np.mean(steps[~jumps]) / (2 * np.pi), f / (1 + ppm * 1e-6), delta=1e-8)
        # 500 ppm over 1 800 samples: -0.9 of a sample left alone, or re-centred at the tag at 1 300
        # (-0.65 -> +0.35) and then 500 more samples of drift.
        for tags, tau in (((0,), -0.9), ((0, 1300), 0.1)):
            _, ch, _, _ = run_channel(x[:, :1800], tags=tags, n_rx=1, fading="held", sfo_ppm=ppm, seed=2)
            self.assertAlmostEqual(ch._sfo.tau, tau, delta=2e-3)

    def test_impairments_reproducible_whatever_the_work_sizes_and_settable(self):
        x = white(np.random.default_rng(22), (2, 6000))
        kw = dict(tags=(0, 2500), n_rx=2, snr_db=20, seed=5, sfo_ppm=-20.0, phase_noise_linewidth=1e-5,
                  rx_iq_gain_db=[0.5, -0.5], rx_iq_phase_deg=3.0, tx_iq_gain_db=0.2, dc_offset_dbc=-25.0)
        y1, ch, _, _ = run_channel(x, **kw)
        y2, _, _, _ = run_channel(x, max_noutput_items=97, **kw)
        np.testing.assert_allclose(y1, y2, rtol=0, atol=1e-5)
        ch.set_sfo_ppm(4.0)
        ch.set_rx_iq(0.0, 0.0)
        ch.set_dc_offset_dbc(None)
        ch.set_phase_noise_linewidth(0.0)
        self.assertEqual((ch.impairments.sfo_ppm, ch.impairments.rx_iq, ch.impairments.dc_offset_dbc),
                         (4.0, False, None))
        with self.assertRaises(ValueError):
            ch.set_rx_iq([0.5, 0.5, 0.5], 0.0)  # three values for two antennas

    def test_making_a_channel_block_puts_numpy_blas_on_one_thread(self):
        from threadpoolctl import ThreadpoolController, threadpool_limits

        blas = ThreadpoolController().select(user_api="blas")
        with threadpool_limits(limits=2, user_api="blas"):
            before = max(i["num_threads"] for i in blas.info())
            semcom.mimo_channel(2, 2, seed=1)
            after = max(i["num_threads"] for i in blas.info())
        self.assertEqual((before, after), (2, 1))

if __name__ == "__main__":
    gr_unittest.run(qa_mimo_channel)
