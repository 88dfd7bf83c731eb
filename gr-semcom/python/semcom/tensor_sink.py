#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""tensor_sink: tensor messages from the flowgraph out over ZeroMQ as wire-protocol FRAME messages."""

from __future__ import annotations

from typing import Any

import pmt
import zmq
from gnuradio import gr

from semcom.wire import DEFAULT_FRAME_ENDPOINT, HEADER, Kind, WireError, encode, send_parts

from .bridge_socket import BoundSocket
from .messages import MessageError, parse_serialized, serialize, wire_parts


class tensor_sink(BoundSocket, gr.basic_block):
    """Binds a ZeroMQ PUSH socket at `address`; each tensor message on port "frames" (from ofat_rx
    or ofat_equalizer) goes out as one wire FRAME with seq = meta["seq"], the message's tensors
    (dtype and shape kept) and its meta as the JSON meta. A message in the wire form (ofat_rx's,
    messages.wire_message) is that FRAME already: its parts are sent as they are.

    Never blocks the flowgraph for long: when the host does not take a frame within
    `send_timeout_ms` (no peer connected, or its queue of `hwm` messages is full), the frame is
    counted as counters()["dropped_backpressure"] and logged, never dropped silently. Other
    counters: "sent"; "error_malformed" (not a tensor message, or no integer meta["seq"]),
    "error_bad_dtype" (a dtype the wire does not allow), "error_bad_meta" (meta JSON cannot hold),
    "dropped_stopped" (a frame after stop()).
    """

    def __init__(self, address: str = DEFAULT_FRAME_ENDPOINT, hwm: int = 64, send_timeout_ms: int = 100):
        gr.basic_block.__init__(self, name="semcom_tensor_sink", in_sig=None, out_sig=None)
        self.send_timeout_ms = int(send_timeout_ms)
        self._init_socket(address, zmq.PUSH, hwm)
        self.message_port_register_in(pmt.intern("frames"))
        self.set_msg_handler(pmt.intern("frames"), self._on_frame)

    def _socket_options(self) -> dict[str, Any]:
        return {"send_timeout_ms": self.send_timeout_ms}

    def set_send_timeout_ms(self, send_timeout_ms: int) -> None:
        with self._lock:
            self.send_timeout_ms = int(send_timeout_ms)
            if self._sock is not None:
                self._sock.setsockopt(zmq.SNDTIMEO, self.send_timeout_ms)

    def start(self) -> bool:
        with self._lock:
            self._reopen()
        return True

    def stop(self) -> bool:
        with self._lock:  # never in the middle of a send
            self._close()
        return True

    def _on_frame(self, msg: pmt.pmt_base) -> None:
        try:
            raw = serialize(msg)
            encoded = wire_parts(raw)  # a FRAME already in wire form (ofat_rx): sent as it is
        except MessageError as err:
            self._fail("error_malformed", f"frame not sent: {err}")
            return
        if encoded is not None:
            seq, parts = encoded
        else:
            parts = self._encode(raw)
            if parts is None:
                return
            seq = HEADER.unpack_from(parts[0])[4]
        with self._lock:  # stop() must not close the socket in the middle of a send
            if self._sock is None:
                self._counters["dropped_stopped"] += 1
                self.logger.warn(f"frame seq {seq} dropped: sink is stopped")
                return
            try:
                send_parts(self._sock, parts)
                self._counters["sent"] += 1
                return
            except zmq.Again:
                self._counters["dropped_backpressure"] += 1
        self.logger.warn(f"frame seq {seq} dropped (dropped_backpressure): host did not take it within "
                         f"{self.send_timeout_ms} ms")

    def _encode(self, raw: bytes) -> list[bytes] | None:
        """The wire FRAME of a message in the PMT dict form (its serialized bytes); None (counted,
        logged) when it has none."""
        try:
            meta, tensors = parse_serialized(raw)
            seq = meta.get("seq")
            if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**64:
                raise MessageError(f"meta['seq'] must be an integer in [0, 2^64), got {seq!r}")
        except MessageError as err:
            self._fail("error_malformed", f"frame not sent: {err}")
            return None
        try:
            return encode(Kind.FRAME, seq, tensors, meta)
        except WireError as err:
            self._fail(f"error_{err.reason}", f"frame seq {seq} not sent ({err.reason}): {err.detail}")
        except (TypeError, ValueError) as err:  # meta that JSON cannot hold
            self._fail("error_bad_meta", f"frame seq {seq} not sent (bad_meta): {err}")
        return None

    def _fail(self, key: str, text: str) -> None:
        self._count(key)
        self.logger.error(text)
