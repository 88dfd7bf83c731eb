#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for link_probe: what it sends, NMSE and SNR figures against values computed here, loss by
timeout, late / foreign frames, the scatter PDU."""

import time

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest, semcom
from gnuradio.semcom.messages import parse_tensor_message, tensor_message


def wait_for(predicate, timeout_s=5.0):
    deadline = time.monotonic() + timeout_s
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


class qa_link_probe(gr_unittest.TestCase):
    def setUp(self):
        self.tb = gr.top_block()
        # A period far beyond the test: only send_one() sends.
        self.probe = semcom.link_probe(shape=(4, 16), period_ms=1e7, seed=3, window=10, timeout_s=0.3)
        self.sent = blocks.message_debug()
        self.scatter = blocks.message_debug()
        self.tb.msg_connect(self.probe, "tensors", self.sent, "store")
        self.tb.msg_connect(self.probe, "scatter", self.scatter, "store")
        self.tb.start()

    def tearDown(self):
        self.tb.stop()
        self.tb.wait()

    def reply(self, seq, values, snr_db, cfo=0.0):
        self.probe._post(pmt.intern("values"), tensor_message({"seq": seq, "snr_db": snr_db, "cfo": cfo},
                                                              {"values": values.astype(np.float32)}))

    def test_sends_the_seeded_tensor_with_increasing_seq(self):
        seqs = [self.probe.send_one() for _ in range(3)]
        self.assertEqual(seqs, [0, 1, 2])
        self.assertTrue(wait_for(lambda: self.sent.num_messages() == 3))
        meta, tensors = parse_tensor_message(self.sent.get_message(2))
        self.assertEqual(meta["seq"], 2)
        expected = np.random.default_rng(3).standard_normal((4, 16)).astype(np.float32)
        np.testing.assert_array_equal(tensors["x"], expected)

    def test_nmse_and_snr_estimate_against_values_computed_here(self):
        ref = self.probe.reference
        rng = np.random.default_rng(0)
        errors, snrs = [], [10.0, 20.0]
        for snr in snrs:
            seq = self.probe.send_one()
            received = ref + 0.1 * rng.standard_normal(ref.shape).astype(np.float32)
            errors.append(np.sum((received - ref) ** 2) / np.sum(ref**2))
            self.reply(seq, received, snr, cfo=snr / 1000)
        self.assertTrue(wait_for(lambda: self.probe.stats()["delivered"] == 2))
        stats = self.probe.stats()
        self.assertAlmostEqual(stats["nmse_db"], 10 * np.log10(np.mean(errors)), places=4)
        self.assertAlmostEqual(stats["snr_estimate_db"], 10 * np.log10((10 + 100) / 2), places=4)
        self.assertAlmostEqual(stats["cfo_estimate"], 0.015, places=9)
        self.assertEqual((stats["sent"], stats["lost"], stats["in_flight"]), (2, 0, 0))
        self.assertEqual(self.probe.status(), "sent 2 | delivered 2 | lost 0 | in flight 0")
        # The scatter PDU: sent on the real axis, received on the imaginary one.
        self.assertTrue(wait_for(lambda: self.scatter.num_messages() == 2))
        points = pmt.c32vector_elements(pmt.cdr(self.scatter.get_message(1)))
        np.testing.assert_allclose(np.real(points), ref.ravel(), rtol=1e-6)

    def test_timeout_counts_lost_and_a_late_frame_is_not_delivered(self):
        seq = self.probe.send_one()
        self.probe.send_one()
        self.assertEqual(self.probe.stats()["in_flight"], 2)
        time.sleep(0.4)  # past timeout_s
        self.assertEqual(self.probe.stats()["lost"], 2)
        self.reply(seq, self.probe.reference, 30.0)  # late: already counted lost
        self.reply(12345, self.probe.reference, 30.0)  # never sent
        self.assertTrue(wait_for(lambda: self.probe.stats()["unexpected"] == 2))
        stats = self.probe.stats()
        self.assertEqual((stats["delivered"], stats["in_flight"]), (0, 0))
        self.assertTrue(np.isnan(stats["nmse_db"]))

    def test_malformed_values_are_counted_not_raised(self):
        self.probe._post(pmt.intern("values"), pmt.intern("not a tensor message"))
        self.assertTrue(wait_for(lambda: self.probe.stats()["malformed"] == 1))


if __name__ == "__main__":
    gr_unittest.run(qa_link_probe)
