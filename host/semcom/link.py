"""The host's end of the ZeroMQ link to a flowgraph, with loss accounting by sequence number.

`LinkClient` connects a PUSH socket to the flowgraph's `tensor_source` and a PULL socket to its
`tensor_sink`. Every tensor it sends gets the next sequence number; every sequence number ends up
exactly once as delivered (a FRAME with that seq arrived within `timeout_s`) or lost (it did not,
or the books were closed with `finish()`). Late, duplicate and unknown arrivals are counted apart.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from semcom.wire import DEFAULT_MAX_MESSAGE_BYTES, Kind, WireError, WireMessage, decode, encode, make_socket

log = logging.getLogger(__name__)


@dataclass
class LossAccounting:
    """Sent = delivered + lost + in flight, always."""

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    late: int = 0  # arrived after being counted lost (stays lost)
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0  # a seq this client never sent
    lost_seqs: list[int] = field(default_factory=list)
    _pending: dict[int, float] = field(default_factory=dict, repr=False)
    _lost_set: set[int] = field(default_factory=set, repr=False)
    _delivered_set: set[int] = field(default_factory=set, repr=False)
    _last_delivered: int = -1

    def on_send(self, seq: int, now: float) -> None:
        self._pending[seq] = now
        self.sent += 1

    def on_receive(self, seq: int) -> bool:
        """True if this arrival delivers a pending seq."""
        if seq in self._pending:
            del self._pending[seq]
            self._delivered_set.add(seq)
            self.delivered += 1
            if seq < self._last_delivered:
                self.out_of_order += 1
            self._last_delivered = max(self._last_delivered, seq)
            return True
        if seq in self._delivered_set:
            self.duplicates += 1
        elif seq in self._lost_set:
            self.late += 1
        else:
            self.unexpected += 1
        return False

    def expire(self, now: float, timeout_s: float) -> list[int]:
        gone = [s for s, t in self._pending.items() if now - t > timeout_s]
        for s in gone:
            self._mark_lost(s)
        return gone

    def close_books(self) -> list[int]:
        gone = list(self._pending)
        for s in gone:
            self._mark_lost(s)
        return gone

    def _mark_lost(self, seq: int) -> None:
        del self._pending[seq]
        self._lost_set.add(seq)
        self.lost_seqs.append(seq)
        self.lost += 1

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def summary(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("sent", "delivered", "lost", "late", "duplicates",
                                              "out_of_order", "unexpected")}


class LinkClient:
    """Send tensors to a flowgraph and receive its frames. Use as a context manager."""

    def __init__(self, tx_endpoint: str, rx_endpoint: str, *, window: int = 8, timeout_s: float = 5.0,
                 first_seq: int = 0, hwm: int = 64, send_timeout_ms: int = 5000,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self.window = window
        self.timeout_s = timeout_s
        self.max_message_bytes = max_message_bytes
        self.accounting = LossAccounting()
        self.decode_errors = 0
        self._next_seq = first_seq
        self._ctx = zmq.Context.instance()
        self._push = make_socket(self._ctx, zmq.PUSH, tx_endpoint, bind=False, hwm=hwm,
                                 send_timeout_ms=send_timeout_ms)
        self._pull = make_socket(self._ctx, zmq.PULL, rx_endpoint, bind=False, hwm=hwm)

    def __enter__(self) -> LinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, array: np.ndarray, meta: dict[str, Any] | None = None, name: str = "x") -> int:
        """Send one tensor; returns its sequence number. Raises TimeoutError if the flowgraph does
        not take it within the send timeout (nothing is counted as sent then)."""
        seq = self._next_seq
        parts = encode(Kind.TENSOR, seq, {name: np.asarray(array)}, meta)
        try:
            self._push.send_multipart(parts, copy=False)
        except zmq.Again:
            raise TimeoutError(f"flowgraph did not accept seq {seq} (is it running?)") from None
        self._next_seq += 1
        self.accounting.on_send(seq, time.monotonic())
        return seq

    def receive(self, timeout_s: float | None = None) -> WireMessage | None:
        """The next FRAME that delivers a pending seq, or None on timeout. Expires old seqs."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self._pull.poll(remaining_ms):
                self.expire()
                return None
            parts = self._pull.recv_multipart()
            try:
                msg = decode(parts, max_message_bytes=self.max_message_bytes)
            except WireError as err:
                self.decode_errors += 1
                log.error("undecodable message from the flowgraph: %s", err)
                continue
            if msg.kind != Kind.FRAME:
                continue
            if self.accounting.on_receive(msg.seq):
                return msg

    def in_flight(self) -> int:
        return self.accounting.in_flight

    def expire(self) -> list[int]:
        lost = self.accounting.expire(time.monotonic(), self.timeout_s)
        if lost:
            log.warning("counted lost after %.1f s: seq %s", self.timeout_s, lost)
        return lost

    def finish(self, drain_s: float = 0.0) -> dict[str, int]:
        """Wait up to drain_s for in-flight frames, then count the rest as lost."""
        end = time.monotonic() + drain_s
        while self.in_flight() and time.monotonic() < end:
            self.receive(timeout_s=end - time.monotonic())
        self.accounting.close_books()
        return self.accounting.summary()

    def close(self) -> None:
        self._push.close()
        self._pull.close()
