#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for tensor_sink: tensor messages in, wire FRAME messages out over a real socket. Every test runs on
the Python block and, where it was built, on the compiled one (qa_tensor_sink_cxx)."""

import time
import unittest

import numpy as np
import pmt
import zmq
from gnuradio import gr, gr_unittest, semcom
from gnuradio.semcom.messages import tensor_message

from semcom.wire import Kind, decode

COMPILED = getattr(semcom.semcom_python, "tensor_sink_fast", None) is not None


class qa_tensor_sink(gr_unittest.TestCase):
    IMPLEMENTATION = "python"

    def test_frame_goes_out_with_seq_meta_and_tensors(self):
        tb = gr.top_block()
        snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=2000,
                                 implementation=self.IMPLEMENTATION)
        # A block is part of a flowgraph only when connected: an idle transmitter feeds ofat_rx.
        layout = semcom.make_layout("wifi64", n_tx=1, n_rx=1)
        tx, rx = semcom.ofat_tx(layout), semcom.ofat_rx(layout)
        tb.connect(tx, rx)
        tb.msg_connect((rx, "frames"), (snk, "frames"))
        pull = zmq.Context.instance().socket(zmq.PULL)
        pull.setsockopt(zmq.LINGER, 100)
        pull.connect(snk.endpoint())
        y = (np.arange(8) + 1j).astype(np.complex64).reshape(2, 4)
        snk._post(pmt.intern("frames"), tensor_message({"seq": 9, "snr_db": 12.5}, {"Y": y}))
        snk._post(pmt.intern("frames"), pmt.intern("not a tensor message"))
        tb.start()
        self.assertTrue(pull.poll(5000))
        msg = decode(pull.recv_multipart())
        tb.stop()
        tb.wait()
        pull.close()
        self.assertEqual((msg.kind, msg.seq), (Kind.FRAME, 9))
        self.assertEqual(msg.meta["snr_db"], 12.5)
        np.testing.assert_array_equal(msg.tensors["Y"], y)
        self.assertEqual(snk.counters()["error_malformed"], 1)

    def test_frames_nobody_takes_are_counted_as_backpressure(self):
        tb = gr.top_block()
        src = semcom.tensor_source("tcp://127.0.0.1:*")  # idle; gives the sink a flowgraph to live in
        snk = semcom.tensor_sink("tcp://127.0.0.1:*", hwm=1, send_timeout_ms=20,
                                 implementation=self.IMPLEMENTATION)
        tb.msg_connect((src, "tensors"), (snk, "frames"))
        for seq in range(3):  # no host ever connects
            snk._post(pmt.intern("frames"), tensor_message({"seq": seq}, {"values": np.ones(4, np.float32)}))
        tb.start()
        deadline = time.monotonic() + 10
        while snk.counters().get("dropped_backpressure", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        tb.stop()
        tb.wait()
        self.assertEqual(snk.counters(), {"dropped_backpressure": 3})


@unittest.skipUnless(COMPILED, "gr-semcom built without its compiled bridge")
class qa_tensor_sink_cxx(qa_tensor_sink):
    IMPLEMENTATION = "cxx"


if __name__ == "__main__":
    gr_unittest.run(qa_tensor_sink)
