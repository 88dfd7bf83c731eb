#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""tensor_sink: tensor messages from the flowgraph out over ZeroMQ as wire-protocol FRAME messages."""

from __future__ import annotations

import collections

import pmt
import zmq
from gnuradio import gr

from semcom.wire import DEFAULT_FRAME_ENDPOINT, Kind, WireError, bound_endpoint, encode, make_socket

from .messages import MessageError, parse_tensor_message


class tensor_sink(gr.basic_block):
    """Binds a ZeroMQ PUSH socket at `address`; each message on port "frames" (from ofat_rx or
    ofat_equalizer) goes out as one FRAME with seq = meta["seq"].

    Never blocks the flowgraph for long: when the host does not take a frame within
    `send_timeout_ms` (no peer connected, or its queue is full), the frame is counted as
    counters()["dropped_backpressure"] and logged, never dropped silently.
    """

    def __init__(self, address: str = DEFAULT_FRAME_ENDPOINT, hwm: int = 64, send_timeout_ms: int = 100):
        gr.basic_block.__init__(self, name="semcom_tensor_sink", in_sig=None, out_sig=None)
        self.address = address
        self.hwm = int(hwm)
        self.send_timeout_ms = int(send_timeout_ms)
        self._counters = collections.Counter()
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._open()
        self.message_port_register_in(pmt.intern("frames"))
        self.set_msg_handler(pmt.intern("frames"), self._on_frame)

    def _open(self) -> None:
        self._sock = make_socket(self._ctx, zmq.PUSH, self.address, bind=True, hwm=self.hwm,
                                 send_timeout_ms=self.send_timeout_ms)
        self._endpoint = bound_endpoint(self._sock)

    def endpoint(self) -> str:
        return self._endpoint

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def start(self) -> bool:
        if self._sock is None:
            self._open()
        return True

    def stop(self) -> bool:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return True

    def _on_frame(self, msg) -> None:
        try:
            meta, tensors = parse_tensor_message(msg)
            seq = int(meta.get("seq", -1))
            if seq < 0:
                raise MessageError("meta['seq'] missing")
            parts = encode(Kind.FRAME, seq, tensors, meta)
        except (MessageError, WireError, TypeError, ValueError) as err:
            self._counters["error_malformed"] += 1
            self.logger.error(f"frame not sent: {err}")
            return
        if self._sock is None:
            self._counters["dropped_stopped"] += 1
            return
        try:
            self._sock.send_multipart(parts, copy=False)
            self._counters["sent"] += 1
        except zmq.Again:
            self._counters["dropped_backpressure"] += 1
            self.logger.warn(f"frame seq {seq} dropped: host did not take it within "
                             f"{self.send_timeout_ms} ms")
