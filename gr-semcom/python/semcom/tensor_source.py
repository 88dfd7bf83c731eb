#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""tensor_source: wire-protocol TENSOR messages from ZeroMQ into the flowgraph as tensor messages."""

from __future__ import annotations

import threading

import pmt
import zmq
from gnuradio import gr

from semcom.wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TENSOR_ENDPOINT,
    Kind,
    WireError,
    decode,
)

from .bridge_socket import BoundSocket, compiled_bridge, semcom_python
from .messages import MessageError, tensor_message


def tensor_source(address: str = DEFAULT_TENSOR_ENDPOINT, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                  hwm: int = 16, implementation: str = "auto"):
    """The Tensor Source as GRC makes it (semcom_tensor_source.block.yml): the compiled block
    (semcom_python.tensor_source_fast, gr-semcom/lib/tensor_bridge_impl.cc: the same socket, messages
    and counters, its receive thread never takes Python's GIL) where it was built, else the Python
    block tensor_source_python. `implementation`: see bridge_socket.compiled_bridge."""
    if compiled_bridge(implementation):
        return semcom_python.tensor_source_fast(address, int(max_message_bytes), int(hwm))
    return tensor_source_python(address, max_message_bytes, hwm)


class tensor_source_python(BoundSocket, gr.basic_block):
    """Binds a ZeroMQ PULL socket at `address` and posts each valid TENSOR message on the message
    port "tensors" as a tensor message (messages.tensor_message: the wire message's tensors with
    their dtype and shape, meta = the message's meta plus "seq" from the wire header).

    A bad message (wrong magic or version, unknown kind or a kind other than TENSOR, truncated
    multipart, non-JSON header, disallowed dtype, shape not matching the payload, larger than
    `max_message_bytes`) is logged with its reason and counted in counters()["error_<reason>"]
    (meta that has no PMT form: "error_bad_meta"); the flowgraph keeps running. Other counters:
    "received" (every multipart message), "posted" (messages sent on to the flowgraph).

    The socket is bound in the constructor (so endpoint() is known before start(); use
    "tcp://127.0.0.1:*" for a free port). A receive thread runs between start() and stop(); it
    receives with a 100 ms timeout, so stop() returns promptly, and LINGER is finite.
    """

    POLL_MS = 100

    def __init__(self, address: str = DEFAULT_TENSOR_ENDPOINT,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, hwm: int = 16):
        gr.basic_block.__init__(self, name="semcom_tensor_source", in_sig=None, out_sig=None)
        self.max_message_bytes = int(max_message_bytes)
        self._port = pmt.intern("tensors")
        self.message_port_register_out(self._port)
        self._init_socket(address, zmq.PULL, hwm)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> bool:
        if self._thread is not None:  # a stop() that timed out left its thread on the socket
            self._thread.join(timeout=10 * self.POLL_MS / 1000)
            if self._thread.is_alive():  # never a second thread on the same socket
                self.logger.error("previous receive thread still running; not started again")
                return False
            self._thread = None
            self._close()
        self._reopen()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="semcom_tensor_source", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10 * self.POLL_MS / 1000)
            if self._thread.is_alive():  # should not happen: never close a socket another thread uses
                self.logger.error("receive thread did not stop; socket left open")
                return True
            self._thread = None
        self._close()
        return True

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        # One blocking receive with a timeout (not poll, then receive): one wake-up per message.
        sock.setsockopt(zmq.RCVTIMEO, self.POLL_MS)
        while not self._stop.is_set():
            try:
                parts = sock.recv_multipart()
            except zmq.Again:
                continue
            except zmq.ZMQError as err:
                self.logger.error(f"receive failed: {err}")
                self._count("error_socket")
                continue
            self._count("received")
            try:
                self._handle(parts)
            except Exception as err:  # keep receiving whatever happens to one message
                self._count("error_internal")
                self.logger.error(f"message dropped by an internal error: {err!r}")

    def _handle(self, parts: list[bytes]) -> None:
        reason, detail, out = source_message(parts, self.max_message_bytes)
        if out is None:
            self._count(f"error_{reason}")
            self.logger.error(f"message rejected ({reason}): {detail}")
            return
        self.message_port_pub(self._port, out)
        self._count("posted")


def source_message(parts: list[bytes], max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
                   ) -> tuple[str, str, pmt.pmt_base | None]:
    """What tensor_source makes of one multipart message: ("", "", the tensor message it posts) or
    (reason, detail, None) for one it counts as error_<reason> (wire.decode's reasons, bad_kind for a
    valid message other than a TENSOR, bad_meta for meta without a PMT form). The definition the
    compiled block's decoder (semcom_python.decode_tensor_message) is tested against."""
    try:
        msg = decode(parts, max_message_bytes=max_message_bytes)
        if msg.kind != Kind.TENSOR:
            raise WireError("bad_kind", f"tensor_source takes TENSOR messages, got {msg.kind.name}")
    except WireError as err:
        return err.reason, err.detail, None
    try:
        return "", "", tensor_message({**msg.meta, "seq": msg.seq}, msg.tensors)
    except MessageError as err:
        return "bad_meta", f"seq {msg.seq}: {err}", None
