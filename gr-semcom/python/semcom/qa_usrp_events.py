#!/usr/bin/env python3
#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""QA for usrp_events: async messages as gr-uhd publishes them, rx_time discontinuities."""

import numpy as np
import pmt
from gnuradio import blocks, gr, gr_unittest, semcom


def async_msg(*events):
    body = pmt.dict_add(pmt.make_dict(), pmt.intern("channel"), pmt.from_uint64(0))
    lst = pmt.PMT_NIL
    for e in events:
        lst = pmt.list_add(lst, pmt.intern(e)) if not pmt.eq(lst, pmt.PMT_NIL) else pmt.list1(pmt.intern(e))
    body = pmt.dict_add(body, pmt.intern("event_code"), lst)
    return pmt.cons(pmt.intern("uhd_async_msg"), body)


class qa_usrp_events(gr_unittest.TestCase):
    def test_counts_tx_events_and_rx_discontinuities(self):
        tb = gr.top_block()
        ev = semcom.usrp_events(n_rx=1)
        tags = [gr.tag_utils.python_to_tag((o, pmt.intern("rx_time"), pmt.make_tuple(pmt.from_uint64(0),
                                                                                      pmt.from_double(0.0))))
                for o in (0, 500, 900)]
        tb.connect(blocks.vector_source_c(np.zeros(1000, np.complex64).tolist(), False, 1, tags), ev)
        for events in (("underflow",), ("time_error",), ("seq_error", "underflow"), ("burst_ack",)):
            ev._post(pmt.intern("async"), async_msg(*events))
        raw = pmt.dict_add(pmt.make_dict(), pmt.intern("event_code"), pmt.from_long(0x2 | 0x8))
        ev._post(pmt.intern("async"), raw)
        tb.run()
        self.assertEqual(ev.letters(), {"U": 3, "O": 2, "L": 2, "S": 1})
        self.assertEqual(ev.counters()["burst_ack"], 1)
        self.assertIn("overflows (O) 2", ev.report())


if __name__ == "__main__":
    gr_unittest.run(qa_usrp_events)
