"""The host's end of the ZeroMQ link to a flowgraph, with loss accounting by sequence number.

`LinkClient` connects a PUSH socket to the flowgraph's `tensor_source` and a PULL socket to its
`tensor_sink` (docs/wire-protocol.md). Every tensor it sends gets the next sequence number; every
sequence number ends up exactly once as delivered (a FRAME with that seq arrived within `timeout_s`
of the send) or lost (it did not, or the books were closed with `finish()`). Late, duplicate and
unknown arrivals are counted apart and never change a seq's fate. numpy + pyzmq only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import zmq

from semcom.wire import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Kind,
    WireError,
    WireMessage,
    decode,
    encode,
    make_socket,
    send_parts,
)

log = logging.getLogger(__name__)


@dataclass
class LossAccounting:
    """Books per sequence number. Invariant: sent == delivered + lost + in_flight, and no seq is in
    two of those sets. `out_of_order` counts deliveries of a seq lower than one delivered before;
    `late` a FRAME for a seq already counted lost (it stays lost); `duplicates` a second FRAME for
    a delivered seq; `unexpected` a FRAME for a seq this client never sent.

    The fate of settled seqs is remembered for the last SETTLED_MEMORY of them only (a long run would
    otherwise keep one set entry per frame forever): a FRAME for a seq settled before that counts as
    `unexpected`, and only a seq reused within that memory is refused as a repeat. `lost_seqs` keeps
    every lost seq (it grows with the losses, not with the frames)."""

    SETTLED_MEMORY = 1 << 16  # 65 536 seqs, a few MB: far more than any window or timeout spans

    sent: int = 0
    delivered: int = 0
    lost: int = 0
    late: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    unexpected: int = 0
    lost_seqs: list[int] = field(default_factory=list)
    _pending: dict[int, float] = field(default_factory=dict, repr=False)  # seq -> send time
    # seq -> delivered (True) or lost (False), oldest settled first; trimmed to SETTLED_MEMORY
    _settled: dict[int, bool] = field(default_factory=dict, repr=False)
    _last_delivered: int = -1
    _last_send: float = float("-inf")

    def on_send(self, seq: int, now: float) -> None:
        """Book a send at time `now` (the client's monotonic clock; an earlier `now` than the last
        send's is taken as that one's, so the pending seqs stay in order of send time)."""
        if seq in self._pending or seq in self._settled:
            raise ValueError(f"seq {seq} was already sent: sequence numbers must not repeat")
        self._last_send = max(self._last_send, now)
        self._pending[seq] = self._last_send
        self.sent += 1

    def on_receive(self, seq: int) -> bool:
        """Book one arriving FRAME; True if it delivers a pending seq."""
        if seq in self._pending:
            del self._pending[seq]
            self._settle(seq, delivered=True)
            self.delivered += 1
            if seq < self._last_delivered:
                self.out_of_order += 1
            self._last_delivered = max(self._last_delivered, seq)
            return True
        fate = self._settled.get(seq)
        if fate is True:
            self.duplicates += 1
        elif fate is False:
            self.late += 1
        else:
            self.unexpected += 1
        return False

    def expire(self, now: float, timeout_s: float) -> list[int]:
        """Count as lost every pending seq sent more than `timeout_s` before `now`."""
        # The pending seqs are in order of send time: stop at the first that has not expired (the
        # client calls this on every receive; a scan of all of them cost O(window) each time).
        gone = []
        for s, t in self._pending.items():
            if now - t <= timeout_s:
                break
            gone.append(s)
        for s in gone:
            self._mark_lost(s)
        return gone

    def close_books(self) -> list[int]:
        """Count every pending seq as lost (end of a run)."""
        gone = list(self._pending)
        for s in gone:
            self._mark_lost(s)
        return gone

    def _mark_lost(self, seq: int) -> None:
        del self._pending[seq]
        self._settle(seq, delivered=False)
        self.lost_seqs.append(seq)
        self.lost += 1

    def _settle(self, seq: int, delivered: bool) -> None:
        self._settled[seq] = delivered
        if len(self._settled) > self.SETTLED_MEMORY:  # dicts keep insertion order: drop the oldest
            del self._settled[next(iter(self._settled))]

    @property
    def in_flight(self) -> int:
        return len(self._pending)

    def oldest_send_time(self) -> float:
        """Send time of the oldest pending seq (dicts keep insertion order: the first one)."""
        return next(iter(self._pending.values()))

    def pending_seqs(self) -> list[int]:
        return sorted(self._pending)

    def summary(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ("sent", "delivered", "lost", "in_flight", "late",
                                              "duplicates", "out_of_order", "unexpected")}


class LinkClient:
    """Send tensors to a flowgraph and receive its frames. Use as a context manager.

    tx_endpoint: the flowgraph's tensor_source address (we connect PUSH); rx_endpoint: its
    tensor_sink address (we connect PULL). `window`: at most this many frames in flight when
    sending through `wait_for_window` / `stream`. `timeout_s`: a seq not delivered this long after
    its send is lost. `first_seq`: the first sequence number (then +1 per send)."""

    def __init__(self, tx_endpoint: str, rx_endpoint: str, *, window: int = 8, timeout_s: float = 5.0,
                 first_seq: int = 0, hwm: int = 64, send_timeout_ms: int = 5000, linger_ms: int = 200,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        if window < 1:
            raise ValueError("window must be >= 1")
        self.window = int(window)
        self.timeout_s = float(timeout_s)
        self.max_message_bytes = max_message_bytes
        self.accounting = LossAccounting()
        self.decode_errors = 0  # messages from the flowgraph that broke the protocol
        self.ignored = 0  # valid messages of a kind we do not take (TENSOR)
        self.last_stats: dict[str, Any] | None = None  # meta of the latest STATS message
        self._next_seq = int(first_seq)
        self._ctx = zmq.Context.instance()
        self._push = make_socket(self._ctx, zmq.PUSH, tx_endpoint, bind=False, hwm=hwm,
                                 send_timeout_ms=send_timeout_ms, linger_ms=linger_ms)
        self._pull = make_socket(self._ctx, zmq.PULL, rx_endpoint, bind=False, hwm=hwm, linger_ms=linger_ms)
        self._closed = False

    def __enter__(self) -> LinkClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def send(self, array: np.ndarray, meta: dict[str, Any] | None = None, name: str = "x") -> int:
        """Send one tensor (any shape, a wire dtype) as a TENSOR message; returns its seq.

        Raises TimeoutError if the flowgraph does not take it within the send timeout (nothing is
        counted as sent then and the seq is reused by the next send). Does not wait for the window:
        see `wait_for_window` and `stream`."""
        seq = self._next_seq
        parts = encode(Kind.TENSOR, seq, {name: np.asarray(array)}, meta)
        try:
            send_parts(self._push, parts)
        except zmq.Again:
            raise TimeoutError(f"flowgraph did not accept seq {seq} (is it running?)") from None
        self._next_seq += 1
        self.accounting.on_send(seq, time.monotonic())
        return seq

    def receive(self, timeout_s: float | None = None) -> WireMessage | None:
        """The next FRAME that delivers a pending seq, or None after `timeout_s` (default: the
        client's timeout_s), or at once when no seq is in flight (after booking what is queued).
        Books duplicates/late/unexpected frames and keeps waiting; counts as lost every pending
        seq older than the client's timeout_s."""
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        while True:
            self.expire()  # also under steady traffic, not only when the socket is quiet
            remaining_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not self.accounting.in_flight:
                remaining_ms = 0  # nothing can be delivered: do not wait
            else:  # wake up when the oldest pending seq expires, to book it then
                oldest = self.accounting.oldest_send_time()
                expiry_ms = int((oldest + self.timeout_s - time.monotonic()) * 1000) + 1
                remaining_ms = min(remaining_ms, max(expiry_ms, 0))
            if not self._pull.poll(remaining_ms):
                if time.monotonic() >= deadline or not self.accounting.in_flight:
                    self.expire()
                    return None
                continue  # woke up for an expiry: book it and wait on
            # copied: cheaper than zmq.Frame objects for frames of KBs (recv + decode of a 2x4 FRAME:
            # 17.9 against 20.2 us, least of 6 rounds here)
            msg = self._take(self._pull.recv_multipart())
            if msg is not None:
                return msg

    def _take(self, parts: list[bytes]) -> WireMessage | None:
        """Decode and book one received message; the FRAME if it delivers a pending seq, else None
        (counted as a decode error, STATS kept as last_stats, another kind ignored, or a FRAME booked
        late / duplicate / unexpected)."""
        try:
            msg = decode(parts, max_message_bytes=self.max_message_bytes)
        except WireError as err:
            self.decode_errors += 1
            log.error("undecodable message from the flowgraph (%s): %s", err.reason, err.detail)
            return None
        if msg.kind == Kind.STATS:
            self.last_stats = msg.meta
            return None
        if msg.kind != Kind.FRAME:
            self.ignored += 1
            return None
        return msg if self.accounting.on_receive(msg.seq) else None

    def receive_ready(self, timeout_s: float | None = None) -> list[WireMessage]:
        """The next FRAME that delivers a pending seq (waiting as `receive` does) and every other one
        already queued behind it, without waiting for more: the frames a caller can process together
        (the loopback reconstructs them in one batched solve). [] after `timeout_s` with none.

        The queued ones are booked as `receive` books them, after one `expire`: read without waiting,
        one non-blocking read each (a `receive(timeout_s=0)` per frame cost a poll, an expiry and its
        clock arithmetic each)."""
        first = self.receive(timeout_s)
        if first is None:
            return []
        ready = [first]
        self.expire()
        while True:
            try:
                parts = self._pull.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return ready
            msg = self._take(parts)
            if msg is not None:
                ready.append(msg)

    def in_flight(self) -> int:
        return self.accounting.in_flight

    def expire(self) -> list[int]:
        """Count as lost the pending seqs older than timeout_s; returns them."""
        lost = self.accounting.expire(time.monotonic(), self.timeout_s)
        if lost:
            log.warning("counted lost after %.1f s: seq %s", self.timeout_s, lost)
        return lost

    def wait_for_window(self, timeout_s: float | None = None) -> list[WireMessage]:
        """Flow control: receive until fewer than `window` frames are in flight, or `timeout_s`
        passed. Returns the frames delivered meanwhile (the caller must use them: they are not
        returned again). Seqs that time out are counted lost and free their place too."""
        end = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        got = []
        while self.in_flight() >= self.window:
            left = end - time.monotonic()
            if left <= 0:
                break
            msg = self.receive(timeout_s=left)
            if msg is not None:
                got.append(msg)
        return got

    def stream(self, arrays: Iterable[np.ndarray], meta: dict[str, Any] | None = None
               ) -> Iterator[WireMessage]:
        """Send every array with at most `window` in flight, yielding delivered FRAMEs as they
        come; returns once every sent seq is delivered or counted lost (at most timeout_s after
        the last send)."""
        for array in arrays:
            while self.in_flight() >= self.window:
                yield from self.wait_for_window()
            self.send(array, meta)
        while self.in_flight():
            msg = self.receive()
            if msg is not None:
                yield msg

    def finish(self, drain_s: float = 0.0) -> dict[str, int]:
        """Wait up to drain_s for in-flight frames, then count the rest as lost. Returns summary()."""
        end = time.monotonic() + drain_s
        while self.in_flight() and time.monotonic() < end:
            self.receive(timeout_s=end - time.monotonic())
        lost = self.accounting.close_books()
        if lost:
            log.warning("books closed: seq %s counted lost", lost)
        return self.accounting.summary()

    def close(self) -> None:
        """Close both sockets; unsent messages are kept at most `linger_ms`."""
        if not self._closed:
            self._push.close()
            self._pull.close()
            self._closed = True
