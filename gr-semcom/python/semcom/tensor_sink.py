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

from semcom.wire import DEFAULT_FRAME_ENDPOINT, Kind, WireError, encode, send_parts

from .bridge_socket import BoundSocket, compiled_bridge, semcom_python
from .messages import MessageError, parse_serialized, serialize, wire_parts


def tensor_sink(address: str = DEFAULT_FRAME_ENDPOINT, hwm: int = 64, send_timeout_ms: int = 100,
                implementation: str = "auto"):
    """The Tensor Sink as GRC makes it (semcom_tensor_sink.block.yml): the compiled block
    (semcom_python.tensor_sink_fast, gr-semcom/lib/tensor_bridge_impl.cc: the same socket, FRAMEs and
    counters, without Python's GIL) where it was built, else the Python block tensor_sink_python.
    `implementation`: see bridge_socket.compiled_bridge."""
    if compiled_bridge(implementation):
        return semcom_python.tensor_sink_fast(address, int(hwm), int(send_timeout_ms))
    return tensor_sink_python(address, hwm, send_timeout_ms)


class tensor_sink_python(BoundSocket, gr.basic_block):
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
        reason, detail, seq, parts = frame_parts(msg)
        if reason:
            self._count(f"error_{reason}")
            self.logger.error(detail)
            return
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


def frame_parts(msg: pmt.pmt_base) -> tuple[str, str, int, list[bytes] | list[memoryview]]:
    """The wire FRAME tensor_sink sends for an in-flowgraph message: ("", "", seq, parts), or (reason,
    detail, -1, []) for one it counts as error_<reason> (malformed, bad_dtype, bad_json for a tensor name
    that is not a string, bad_meta for meta JSON cannot hold). A message in the wire form (ofat_rx's) is
    that FRAME already: its parts as they are. The definition the compiled block's encoder
    (semcom_python.encode_frame_message) is tested against."""
    try:
        raw = serialize(msg)
        encoded = wire_parts(raw)  # a FRAME already in wire form (ofat_rx): sent as it is
        if encoded is not None:
            return "", "", *encoded
        meta, tensors = parse_serialized(raw)
        seq = meta.get("seq")
        if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq < 2**64:
            raise MessageError(f"meta['seq'] must be an integer in [0, 2^64), got {seq!r}")
    except MessageError as err:
        return "malformed", f"frame not sent: {err}", -1, []
    try:
        return "", "", seq, encode(Kind.FRAME, seq, tensors, meta)
    except WireError as err:
        return err.reason, f"frame seq {seq} not sent ({err.reason}): {err.detail}", -1, []
    except (TypeError, ValueError) as err:  # meta that JSON cannot hold
        return "bad_meta", f"frame seq {seq} not sent (bad_meta): {err}", -1, []
