#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""What the two ZeroMQ bridge blocks (tensor_source, tensor_sink) share: one bound socket that keeps
its real port across stop()/start(), counters that any thread may read, and the choice between the
compiled blocks and the Python ones."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import zmq

from semcom.wire import bound_endpoint, make_socket

from .ofat_tx import semcom_python, use_compiled


def compiled_bridge(implementation: str) -> bool:
    """Whether tensor_source / tensor_sink are made compiled (gr-semcom/lib/tensor_bridge_impl.cc):
    "auto" where the compiled module was built (the environment variable SEMCOM_BRIDGE, auto / cxx /
    python, overrides "auto", e.g. to run a flowgraph or the tests through the Python blocks), "cxx"
    always (RuntimeError where not built), "python" never."""
    built = semcom_python is not None and hasattr(semcom_python, "tensor_source_fast")
    return use_compiled(implementation, "SEMCOM_BRIDGE", built, "python", "its compiled bridge")


class BoundSocket:
    """Mixin for a GNU Radio block that binds one PUSH or PULL socket at ``address``.

    The socket is bound in ``_init_socket`` (so ``endpoint()`` is known before the flowgraph starts;
    "tcp://127.0.0.1:*" takes a free port) and re-bound by ``_reopen`` after a stop, on the port peers
    already know. ``_lock`` guards the counters and the socket: the scheduler's threads, a receive
    thread and stop() may all touch them.
    """

    REBIND_TIMEOUT_S = 2.0  # how long _reopen waits for the port a closed socket still holds

    def _init_socket(self, address: str, socket_type: int, hwm: int) -> None:
        self.address = address
        self.hwm = int(hwm)
        self._socket_type = socket_type
        self._counters: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._endpoint = ""
        self._open()

    def _socket_options(self) -> dict[str, Any]:
        """Extra ``semcom.wire.make_socket`` options (a send timeout, ...)."""
        return {}

    def _open(self) -> None:
        self._sock = make_socket(self._ctx, self._socket_type, self.address, bind=True, hwm=self.hwm,
                                 **self._socket_options())
        self._endpoint = bound_endpoint(self._sock)

    def _reopen(self) -> None:
        """Bind again after a stop(): the real port, so a "*" address keeps the port peers know."""
        if self._sock is None:
            self.address = self._endpoint or self.address
            # ZeroMQ closes a socket in its I/O thread: the port can stay bound for a moment after
            # close(), so binding it again right after a stop() may find it in use (seen in a CI run).
            deadline = time.monotonic() + self.REBIND_TIMEOUT_S
            while True:
                try:
                    self._open()
                    return
                except zmq.ZMQError as err:
                    if err.errno != zmq.EADDRINUSE or time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def endpoint(self) -> str:
        """The bound endpoint (the real port when `address` ends in :*)."""
        return self._endpoint

    def counters(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counters)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counters[key] += 1
