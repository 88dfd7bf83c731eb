#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for ofat_rx and ofat_equalizer: frames in streams -> decoded messages -> reconstructed tensors."""

import numpy as np
from gnuradio import blocks, gr, gr_unittest, semcom
from gnuradio.semcom.messages import parse_tensor_message

from semcom.ofat.equalize import zf_nmse_bound
from semcom.ofat.frame import make_layout, modulate_frame


def received_streams(layout, tensors, snr_db, seed, gap=300):
    """Frames through a fixed flat MIMO channel with a timing offset and AWGN: (Nr, n) complex64."""
    rng = np.random.default_rng(seed)
    h = (rng.standard_normal((layout.n_rx, layout.n_tx)) + 1j * rng.standard_normal(
        (layout.n_rx, layout.n_tx))) / np.sqrt(2)
    parts = [np.zeros((layout.n_tx, int(rng.integers(50, 200))))]
    for seq, t in enumerate(tensors):
        parts += [modulate_frame(layout, t, seq=seq)[0], np.zeros((layout.n_tx, gap))]
    x = np.concatenate(parts, axis=1)
    noise = (rng.standard_normal((layout.n_rx, x.shape[1])) + 1j * rng.standard_normal(
        (layout.n_rx, x.shape[1]))) / np.sqrt(2)
    return (h @ x + 10 ** (-snr_db / 20) * noise).astype(np.complex64)


def run_rx(layout, streams, method=None, implementation="auto"):
    tb = gr.top_block()
    rx = semcom.ofat_rx(layout, implementation=implementation)
    for r in range(layout.n_rx):
        tb.connect(blocks.vector_source_c(streams[r].tolist(), False), (rx, r))
    frames_dbg = blocks.message_debug()
    tb.msg_connect((rx, "frames"), (frames_dbg, "store"))
    values_dbg = None
    if method:
        eq = semcom.ofat_equalizer(layout, method=method)
        values_dbg = blocks.message_debug()
        tb.msg_connect((rx, "frames"), (eq, "frames"))
        tb.msg_connect((eq, "values"), (values_dbg, "store"))
    tb.run()
    frames = [parse_tensor_message(frames_dbg.get_message(i)) for i in range(frames_dbg.num_messages())]
    values = ([parse_tensor_message(values_dbg.get_message(i)) for i in range(values_dbg.num_messages())]
              if values_dbg else [])
    return rx, frames, values


class qa_ofat_rx(gr_unittest.TestCase):
    def test_decodes_every_frame_with_shapes_and_meta(self):
        layout = make_layout("wifi64", n_tx=2, n_rx=4)
        rng = np.random.default_rng(1)
        tensors = [rng.standard_normal((3, 40)) for _ in range(4)]
        rx, frames, _ = run_rx(layout, received_streams(layout, tensors, 25, seed=2))
        self.assertEqual([m["seq"] for m, _ in frames], [0, 1, 2, 3])
        meta, t = frames[0]
        k, s = layout.n_data_carriers, layout.n_data_symbols(120)
        self.assertEqual(t["Y"].shape, (k, 4, s))
        self.assertEqual(t["H"].shape, (k, 4, 2))
        self.assertEqual(t["Y"].dtype, np.complex64)
        self.assertEqual(list(meta["shape"]), [3, 40])
        self.assertAlmostEqual(meta["snr_db"], 25, delta=2.0)
        self.assertEqual(rx.counters()["frames"], 4)
        self.assertEqual(meta["rx_counters"]["header_crc_fail"], 0)

    def test_equalizer_reconstructs_tensors_near_theory(self):
        layout = make_layout("wifi64", n_tx=2, n_rx=4)
        rng = np.random.default_rng(3)
        tensors = [rng.standard_normal((5, 64)) for _ in range(6)]
        snr_db, seed = 30, 4
        # The genie-CSI ZF NMSE of this very channel (received_streams' first draw of the seed): each
        # stream's error sigma^2 [(H^H H)^-1]_aa against its energy 1/Nt, averaged over the streams the
        # values fill evenly: sigma^2 tr((H^H H)^-1) (zf_nmse_bound is its mean over Rayleigh H).
        h_rng = np.random.default_rng(seed)
        h = (h_rng.standard_normal((4, 2)) + 1j * h_rng.standard_normal((4, 2))) / np.sqrt(2)
        genie = 10 ** (-snr_db / 10) * float(np.trace(np.linalg.inv(h.conj().T @ h)).real)
        self.assertLess(genie, zf_nmse_bound(snr_db, 2, 4))  # this draw is a good one (0.44x the mean)
        for method in ("zf", "mmse"):
            _, _, values = run_rx(layout, received_streams(layout, tensors, snr_db, seed=seed), method=method)
            self.assertEqual(len(values), 6)
            for (meta, t), truth in zip(values, tensors, strict=True):
                got = t["values"]
                self.assertEqual(got.shape, truth.shape)
                nmse = np.sum((got - truth) ** 2) / np.sum(truth**2)
                # 320 values (160 complex elements): the measured NMSE is the genie one times a
                # chi-square mean of ~320 terms (relative std sqrt(2 / 320) = 0.08), plus the estimated
                # channel's error (sigma^2 Nt / T per element over Nu / taps ~ 50 subcarriers: ~1 %) and
                # MMSE's shrinkage (below ZF). +-6 std: 0.5-1.5x the genie NMSE (measured 0.86-1.19
                # over four channel seeds); the bound was 30x the Rayleigh mean (68x this channel's).
                self.assertGreater(nmse, 0.5 * genie)
                self.assertLess(nmse, 1.5 * genie)
                self.assertEqual(meta["method"], method)

    def test_pure_noise_yields_no_frame(self):
        layout = make_layout("wifi64", n_tx=2, n_rx=4)
        tb = gr.top_block()
        rx = semcom.ofat_rx(layout)
        for r in range(4):
            src = blocks.vector_source_c((np.random.default_rng(r).standard_normal(2 * 10**5)
                                          .view(np.complex128) / np.sqrt(2)).astype(np.complex64).tolist())
            tb.connect(src, (rx, r))
        dbg = blocks.message_debug()
        tb.msg_connect((rx, "frames"), (dbg, "store"))
        tb.run()
        self.assertEqual(dbg.num_messages(), 0)
        self.assertEqual(rx.counters()["samples"], 10**5)

    def test_implementation_choice(self):
        # "auto" runs the compiled receiver where the C++ was built; "numpy" forces FrameReceiver.
        from gnuradio.semcom.compiled_receiver import CompiledFrameReceiver, compiled_receiver_available

        from semcom.ofat.receiver import FrameReceiver

        layout = make_layout("wifi64", n_tx=2, n_rx=2)
        auto = semcom.ofat_rx(layout).receiver
        self.assertIs(type(auto), CompiledFrameReceiver if compiled_receiver_available() else FrameReceiver)
        self.assertIs(type(semcom.ofat_rx(layout, implementation="numpy").receiver), FrameReceiver)
        with self.assertRaises(ValueError):
            semcom.ofat_rx(layout, implementation="fortran")
        if compiled_receiver_available():  # the same frames from both through a flowgraph
            tensors = [np.random.default_rng(s).standard_normal((5, 64)).astype(np.float32) for s in range(4)]
            streams = received_streams(layout, tensors, snr_db=25, seed=3)
            got = [run_rx(layout, streams, implementation=i)[1] for i in ("cxx", "numpy")]
            self.assertEqual([m[0]["seq"] for m in got[0]], [0, 1, 2, 3])
            for (meta_c, t_c), (meta_n, t_n) in zip(*got, strict=True):
                self.assertEqual(meta_c["seq"], meta_n["seq"])
                np.testing.assert_allclose(t_c["Y"], t_n["Y"], rtol=0, atol=2e-5 * np.abs(t_n["Y"]).max())

    def test_compiled_core_sends_what_the_python_block_sends(self):
        # ofat_rx_fast (the C++ block "auto" runs in the default configuration) against ofat_rx_python
        # around the same compiled receiver, on the same streams: the same messages (meta but its
        # rx_counters, which depend on how the scheduler cut the calls; Y and H bit for bit) and the same
        # counters at the end. Options only the numpy methods cover keep the Python block.
        from gnuradio.semcom.compiled_receiver import CompiledFrameReceiver, compiled_receiver_available
        from gnuradio.semcom.ofat_rx import ofat_rx_python

        if not compiled_receiver_available():
            self.skipTest("the compiled receiver is not built")
        layout = make_layout("wifi64", n_tx=2, n_rx=4)
        rx = semcom.ofat_rx(layout)
        self.assertIsInstance(rx.core, semcom.semcom_python.ofat_rx_fast)
        self.assertIsInstance(semcom.ofat_rx(layout, sfo_tracking=True).core, ofat_rx_python)
        self.assertIsInstance(semcom.ofat_rx(layout, implementation="numpy").core, ofat_rx_python)
        rng = np.random.default_rng(6)
        tensors = [rng.standard_normal((5, 64)) for _ in range(5)]
        streams = received_streams(layout, tensors, snr_db=20, seed=7)
        messages, counters = [], []
        for block in (rx, ofat_rx_python(CompiledFrameReceiver(layout))):
            tb = gr.top_block()
            for r in range(layout.n_rx):
                tb.connect(blocks.vector_source_c(streams[r].tolist(), False), (block, r))
            dbg = blocks.message_debug()
            tb.msg_connect((block, "frames"), (dbg, "store"))
            tb.run()
            messages.append([parse_tensor_message(dbg.get_message(i)) for i in range(dbg.num_messages())])
            counters.append(rx.counters() if block is rx else block.receiver.counters.as_dict())
        self.assertEqual([m["seq"] for m, _ in messages[0]], [0, 1, 2, 3, 4])
        self.assertEqual(len(messages[0]), len(messages[1]))
        for (meta_c, t_c), (meta_p, t_p) in zip(*messages, strict=True):
            self.assertEqual(meta_c.pop("rx_counters").keys(), meta_p.pop("rx_counters").keys())
            self.assertEqual(meta_c, meta_p)
            for name in ("Y", "H"):
                np.testing.assert_array_equal(t_c[name], t_p[name])
        self.assertEqual(counters[0].pop("frames_unsendable"), 0)
        self.assertEqual(counters[0], counters[1])


if __name__ == "__main__":
    gr_unittest.run(qa_ofat_rx)
