#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""tensor_source: wire-protocol TENSOR messages from ZeroMQ into the flowgraph as tensor messages."""

from __future__ import annotations

import collections
import threading

import pmt
import zmq
from gnuradio import gr

from semcom.wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_TENSOR_ENDPOINT,
    Kind,
    WireError,
    bound_endpoint,
    decode,
    make_socket,
)

from .messages import tensor_message


class tensor_source(gr.basic_block):
    """Binds a ZeroMQ PULL socket at `address` and posts each valid TENSOR message on the message
    port "tensors" (meta = the message's meta plus "seq" from the wire header).

    A bad message (wrong magic or version, unknown kind, truncated multipart, non-JSON header,
    disallowed dtype, shape not matching the payload, larger than `max_message_bytes`) is logged
    with its reason and counted in counters()["error_<reason>"]; the flowgraph keeps running.
    The receive thread polls with a timeout, so stop() never hangs; LINGER is finite.
    """

    def __init__(self, address: str = DEFAULT_TENSOR_ENDPOINT,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, hwm: int = 16):
        gr.basic_block.__init__(self, name="semcom_tensor_source", in_sig=None, out_sig=None)
        self.address = address
        self.max_message_bytes = int(max_message_bytes)
        self.hwm = int(hwm)
        self._port = pmt.intern("tensors")
        self.message_port_register_out(self._port)
        self._counters = collections.Counter()
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._open()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _open(self) -> None:
        self._sock = make_socket(self._ctx, zmq.PULL, self.address, bind=True, hwm=self.hwm)
        self._endpoint = bound_endpoint(self._sock)

    def endpoint(self) -> str:
        """The bound endpoint (the real port when `address` ends in :*)."""
        return self._endpoint

    def counters(self) -> dict[str, int]:
        return dict(self._counters)

    def start(self) -> bool:
        if self._sock is None:
            self._open()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="semcom_tensor_source", daemon=True)
        self._thread.start()
        return True

    def stop(self) -> bool:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return True

    def _run(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            if not self._sock.poll(100):
                continue
            parts = self._sock.recv_multipart()
            self._counters["received"] += 1
            try:
                msg = decode(parts, max_message_bytes=self.max_message_bytes)
                if msg.kind != Kind.TENSOR:
                    raise WireError("bad_kind", f"tensor_source takes TENSOR messages, got {msg.kind.name}")
            except WireError as err:
                self._counters[f"error_{err.reason}"] += 1
                self.logger.error(f"message rejected ({err.reason}): {err.detail}")
                continue
            meta = {**msg.meta, "seq": msg.seq}
            tensors = {k: v.copy() for k, v in msg.tensors.items()}  # own the memory past the zmq frame
            self.message_port_pub(self._port, tensor_message(meta, tensors))
            self._counters["posted"] += 1
