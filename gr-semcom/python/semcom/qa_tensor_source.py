#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for tensor_source: wire messages in over a real socket, tensor messages out; bad input counted.
Every test runs on the Python block and, where it was built, on the compiled one (qa_tensor_source_cxx)."""

import threading
import time
import unittest

import numpy as np
import zmq
from gnuradio import blocks, gr, gr_unittest, semcom
from gnuradio.semcom.messages import parse_tensor_message

from semcom.wire import Kind, encode

COMPILED = getattr(semcom.semcom_python, "tensor_source_fast", None) is not None


class qa_tensor_source(gr_unittest.TestCase):
    IMPLEMENTATION = "python"

    def make(self):
        return semcom.tensor_source("tcp://127.0.0.1:*", implementation=self.IMPLEMENTATION)

    def setUp(self):
        self.tb = gr.top_block()
        self.src = self.make()
        self.dbg = blocks.message_debug()
        self.tb.msg_connect((self.src, "tensors"), (self.dbg, "store"))
        self.tb.start()
        self.push = zmq.Context.instance().socket(zmq.PUSH)
        self.push.setsockopt(zmq.LINGER, 100)
        self.push.connect(self.src.endpoint())

    def tearDown(self):
        self.push.close()
        self.tb.stop()
        self.tb.wait()

    def wait_for(self, n):
        deadline = time.monotonic() + 5
        while self.dbg.num_messages() < n and time.monotonic() < deadline:
            time.sleep(0.01)

    def test_tensor_arrives_with_seq_dtype_and_shape(self):
        x = np.arange(6, dtype=np.float32).reshape(2, 3)
        self.push.send_multipart(encode(Kind.TENSOR, 42, {"x": x}, {"tag": "a"}))
        self.wait_for(1)
        meta, tensors = parse_tensor_message(self.dbg.get_message(0))
        self.assertEqual(meta["seq"], 42)
        self.assertEqual(meta["tag"], "a")
        np.testing.assert_array_equal(tensors["x"], x)
        self.assertEqual(tensors["x"].dtype, np.float32)

    def test_wrong_kind_is_counted_and_flowgraph_keeps_running(self):
        self.push.send_multipart(encode(Kind.FRAME, 1, {"x": np.ones(2, np.float32)}))
        self.push.send_multipart(encode(Kind.TENSOR, 2, {"x": np.ones(2, np.float32)}))
        self.wait_for(1)
        self.assertEqual(self.src.counters()["error_bad_kind"], 1)
        meta, _ = parse_tensor_message(self.dbg.get_message(0))
        self.assertEqual(meta["seq"], 2)

    def test_complex_and_0d_tensors_keep_dtype_and_shape(self):
        y = (np.arange(24) + 1j * np.arange(24)).astype(np.complex64).reshape(2, 3, 4)
        self.push.send_multipart(encode(Kind.TENSOR, 7, {"Y": y, "s": np.array(3, np.int64)}))
        self.wait_for(1)
        meta, tensors = parse_tensor_message(self.dbg.get_message(0))
        self.assertEqual(meta, {"seq": 7})
        self.assertEqual((tensors["Y"].dtype, tensors["Y"].shape), (np.complex64, (2, 3, 4)))
        self.assertEqual((tensors["s"].dtype, tensors["s"].shape, int(tensors["s"])), (np.int64, (), 3))
        np.testing.assert_array_equal(tensors["Y"], y)

    def test_start_after_stop_waits_for_the_port_a_closed_socket_still_holds(self):
        """ZeroMQ releases a closed socket's port in its I/O thread, a moment later: start() after
        stop() binds the same port once it is free instead of failing with 'Address already in use'."""
        src = self.make()
        endpoint = src.endpoint()
        src.stop()
        holder = zmq.Context.instance().socket(zmq.PULL)
        deadline = time.monotonic() + 2.0
        while True:  # the port still taken when start() comes (this bind meets the same delay first)
            try:
                holder.bind(endpoint)
                break
            except zmq.ZMQError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        release = threading.Timer(0.2, lambda: holder.close(linger=0))
        release.start()
        try:
            self.assertTrue(src.start())
            self.assertEqual(src.endpoint(), endpoint)
        finally:
            release.join()
            src.stop()

    def test_no_second_receive_thread_after_a_stop_that_timed_out(self):
        """stop() that cannot join its thread leaves it (and the socket) alone; a later start() must not
        add a second thread on that socket (it used to), and starts cleanly once the first has ended.
        (The Python block's; the compiled one's stop() joins its thread, which sees the stop flag within
        its 100 ms receive timeout.)"""
        if self.IMPLEMENTATION != "python":
            self.skipTest("the Python block's receive thread")
        src = self.make()
        release = threading.Event()
        src._run = lambda: release.wait(10)  # a receive loop that does not see the stop flag
        src.POLL_MS = 10
        src.start()
        first = src._thread
        src.stop()
        self.assertTrue(first.is_alive())
        self.assertFalse(src.start())
        self.assertIs(src._thread, first)
        release.set()
        first.join(5)
        self.assertTrue(src.start())
        self.assertIsNot(src._thread, first)
        release.set()
        src.stop()

    @unittest.skip("GNU Radio 3.10.5: top_block.start() after stop()/wait() hung in scheduler_tpb's "
                   "constructor in 6 of 160 runs here (and once in a CI run); re-enable once isolated")
    def test_restart_keeps_the_port(self):
        endpoint = self.src.endpoint()
        self.tb.stop()
        self.tb.wait()
        self.tb.start()  # tensor_source re-binds the same port: connected peers keep working
        self.assertEqual(self.src.endpoint(), endpoint)
        self.push.send_multipart(encode(Kind.TENSOR, 3, {"x": np.ones(2, np.float32)}))
        self.wait_for(1)
        self.assertEqual(parse_tensor_message(self.dbg.get_message(0))[0]["seq"], 3)


@unittest.skipUnless(COMPILED, "gr-semcom built without its compiled bridge")
class qa_tensor_source_cxx(qa_tensor_source):
    IMPLEMENTATION = "cxx"


if __name__ == "__main__":
    gr_unittest.run(qa_tensor_source)
