#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""usrp_events: count UHD's U/O/L/S events so the run report shows numbers, not letters on stderr."""

from __future__ import annotations

import collections
import threading

import numpy as np
import pmt
from gnuradio import gr

# uhd::async_metadata_t event codes (bit mask) and the symbols gr-uhd's usrp_sink publishes.
TX_EVENTS = {
    "burst_ack": 0x1, "underflow": 0x2, "seq_error": 0x4, "time_error": 0x8,
    "underflow_in_packet": 0x10, "seq_error_in_burst": 0x20, "user_payload": 0x40,
}
LETTERS = {"underflow": "U", "underflow_in_packet": "U", "seq_error": "S", "seq_error_in_burst": "S",
           "time_error": "L", "overflow": "O"}
RX_TIME = pmt.intern("rx_time")


def tx_event_names(msg) -> list[str]:
    """Event names in one `async_msgs` message of uhd.usrp_sink: a pair (uhd_async_msg . dict)
    whose dict holds event_code as a list of symbols (gr-uhd) or an integer bit mask (raw UHD)."""
    body = pmt.cdr(msg) if pmt.is_pair(msg) and not pmt.is_dict(msg) else msg
    if not pmt.is_dict(body):
        raise ValueError("not a UHD async message")
    code = pmt.dict_ref(body, pmt.intern("event_code"), pmt.PMT_NIL)
    if pmt.is_integer(code) or pmt.is_uint64(code):
        mask = pmt.to_uint64(code) if pmt.is_uint64(code) else pmt.to_long(code)
        return [name for name, bit in TX_EVENTS.items() if mask & bit]
    names = []
    while pmt.is_pair(code):
        names.append(pmt.symbol_to_string(pmt.car(code)))
        code = pmt.cdr(code)
    if pmt.is_symbol(code) and not pmt.eq(code, pmt.PMT_NIL):
        names.append(pmt.symbol_to_string(code))
    return names


class usrp_events(gr.sync_block):
    """Counts UHD stream events.

    * Message input "async": connect uhd.usrp_sink's "async_msgs"; counts underflow (U), late
      (time_error, L), sequence errors (S) and burst ACKs.
    * Stream inputs (`n_rx` of them, may be 0): connect the uhd.usrp_source outputs; every rx_time
      tag after the first on a stream marks a discontinuity, which UHD inserts after an overflow (O)
      or a dropped packet.
    counters() gives the totals; report() one line for a run report.
    """

    def __init__(self, n_rx: int = 1):
        gr.sync_block.__init__(self, name="semcom_usrp_events", in_sig=[np.complex64] * n_rx, out_sig=None)
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()
        self._rx_time_seen = [False] * n_rx
        self.message_port_register_in(pmt.intern("async"))
        self.set_msg_handler(pmt.intern("async"), self._on_async)

    def _on_async(self, msg) -> None:
        try:
            names = tx_event_names(msg)
        except ValueError:
            names = ["unparsed"]
        with self._lock:
            for name in names:
                self._counts[name] += 1

    def work(self, input_items, output_items):
        n = len(input_items[0])
        for port in range(len(input_items)):
            for _ in self.get_tags_in_window(port, 0, n, RX_TIME):
                with self._lock:
                    if self._rx_time_seen[port]:
                        self._counts["overflow"] += 1
                    self._rx_time_seen[port] = True
        return n

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def letters(self) -> dict[str, int]:
        """Totals by UHD's console letters: U (underflow), O (overflow), L (late), S (sequence)."""
        totals = dict.fromkeys("UOLS", 0)
        for name, count in self.counters().items():
            if name in LETTERS:
                totals[LETTERS[name]] += count
        return totals

    def report(self) -> str:
        t = self.letters()
        return (f"UHD events: underflows (U) {t['U']}, overflows (O) {t['O']}, late (L) {t['L']}, "
                f"sequence errors (S) {t['S']}, burst ACKs {self.counters().get('burst_ack', 0)}")
