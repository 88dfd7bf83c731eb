"""The receiver's feedback: a small digital control message telling each edge agent where to sample next.

Format, version 1 (bits packed most significant first, then zero-padded to whole bytes; the last byte
is a CRC-8 of everything before it). Field by field (docs/wire-protocol.md, "Partial-sampling
feedback"):

| bits | field |
| --- | --- |
| 4 | version = 1 |
| 4 | round index (0 .. 15): the round the positions are for |
| 4 | number of edge agents A, minus 1 (A = 1 .. 16) |
| 8 | G, sampling places per side of the canvas (1 .. 255) |
| A x b | one place index per agent, agent 0 first, ``b = max(1, ceil(log2(G^2)))`` bits each, < G^2 |
| 0 .. 7 | zero padding to a byte boundary |
| 8 | CRC-8 (polynomial 0x07, initial value 0) over the bytes before it |

So a message is ``ceil((20 + A b) / 8) + 1`` bytes: 6 bytes (48 bits) for two agents on a 112 px canvas
with 4 x 4 patches (G = 28, b = 10). ``decode`` refuses anything else with a ``FeedbackError`` that
names the reason: empty, bad_version, bad_length, bad_padding, bad_crc, bad_field (G = 0, a place
>= G^2, the same place asked of two agents).

On the flowgraph run the message travels from the receiver to the edge over a real ZeroMQ PUSH/PULL
pair (``FeedbackLink``; one message = one ZeroMQ frame holding exactly these bytes), the receiver end
bound to 127.0.0.1, with the wire protocol's socket options (HWM, finite LINGER).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import zmq

from semcom import wire

VERSION = 1
HEADER_BITS = 4 + 4 + 4 + 8
CRC_BITS = 8
MAX_AGENTS = 16
MAX_ROUND = 15
MAX_GRID = 255
REASONS = ("empty", "bad_version", "bad_length", "bad_padding", "bad_crc", "bad_field")


class FeedbackError(ValueError):
    """A feedback message that is not version-1 well formed; ``reason`` is one of ``REASONS``."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"feedback message {reason}: {detail}")
        self.reason = reason


def index_bits(grid: int) -> int:
    """Bits of one place index on a G x G grid: ``max(1, ceil(log2(G^2)))``."""
    return max(1, math.ceil(math.log2(grid * grid)))


def message_bytes(grid: int, agents: int) -> int:
    """Bytes of one message for ``agents`` agents on a ``grid`` x ``grid`` sampling grid."""
    return -(-(HEADER_BITS + agents * index_bits(grid)) // 8) + CRC_BITS // 8


def crc8(data: bytes, poly: int = 0x07) -> int:
    """CRC-8 (poly 0x07, init 0, no reflection, no final xor): crc8(b"123456789") == 0xF4."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ poly) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


@dataclass(frozen=True)
class FeedbackMessage:
    """Where each of the edge agents samples in round ``round``: ``places[a]`` is agent a's grid index."""

    round: int
    grid: int
    places: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 0 <= self.round <= MAX_ROUND:
            raise ValueError(f"round {self.round} outside 0..{MAX_ROUND}")
        if not 1 <= self.grid <= MAX_GRID:
            raise ValueError(f"grid {self.grid} outside 1..{MAX_GRID}")
        if not 1 <= len(self.places) <= MAX_AGENTS:
            raise ValueError(f"{len(self.places)} agents: need 1..{MAX_AGENTS}")
        if any(not 0 <= p < self.grid * self.grid for p in self.places):
            raise ValueError(f"places {self.places} outside 0..{self.grid * self.grid - 1}")
        if len(set(self.places)) != len(self.places):
            raise ValueError(f"places {self.places}: two agents asked for the same place")

    @property
    def n_bytes(self) -> int:
        return message_bytes(self.grid, len(self.places))

    def encode(self) -> bytes:
        b = index_bits(self.grid)
        value, n = VERSION, 4
        for field, width in [(self.round, 4), (len(self.places) - 1, 4), (self.grid, 8)] + \
                [(p, b) for p in self.places]:
            value, n = (value << width) | field, n + width
        pad = -n % 8
        body = (value << pad).to_bytes((n + pad) // 8, "big")
        return body + bytes([crc8(body)])


def decode(data: bytes) -> FeedbackMessage:
    """Bytes -> FeedbackMessage; raises ``FeedbackError`` naming what is wrong."""
    if not data:
        raise FeedbackError("empty", "no bytes")
    version = data[0] >> 4
    if version != VERSION:
        raise FeedbackError("bad_version", f"version {version}, this code reads {VERSION}")
    if len(data) < 4:
        raise FeedbackError("bad_length", f"{len(data)} bytes, a message has at least 4")
    rnd = data[0] & 0x0F
    agents = (data[1] >> 4) + 1
    grid = ((data[1] & 0x0F) << 4) | (data[2] >> 4)
    if grid == 0:
        raise FeedbackError("bad_field", "grid side 0")
    want = message_bytes(grid, agents)
    if len(data) != want:
        raise FeedbackError("bad_length", f"{len(data)} bytes, {agents} agents on a {grid}x{grid} grid "
                            f"take {want}")
    body, crc = data[:-1], data[-1]
    if crc8(body) != crc:
        raise FeedbackError("bad_crc", f"CRC-8 {crc8(body):#04x} != {crc:#04x} (corrupted)")
    b = index_bits(grid)
    n = HEADER_BITS + agents * b
    value = int.from_bytes(body, "big")
    pad = len(body) * 8 - n
    if value & ((1 << pad) - 1):
        raise FeedbackError("bad_padding", "non-zero padding bits")
    value >>= pad
    places = tuple((value >> (b * (agents - 1 - a))) & ((1 << b) - 1) for a in range(agents))
    try:
        return FeedbackMessage(round=rnd, grid=grid, places=places)
    except ValueError as e:
        raise FeedbackError("bad_field", str(e)) from e


class FeedbackLink:
    """The downlink control channel over ZeroMQ: the receiver's PUSH (bound on 127.0.0.1) -> the edge's PULL.

    ``send(msg)`` on the receiver side, ``recv()`` on the edge side (decoded and validated; a malformed
    message raises ``FeedbackError``); ``messages`` and ``bits`` count what went over the socket.
    """

    def __init__(self, host: str = "127.0.0.1", timeout_ms: int = 5000) -> None:
        self._ctx = zmq.Context()
        self.push, self.endpoint = wire.bind_random(self._ctx, zmq.PUSH, host=host,
                                                    send_timeout_ms=timeout_ms)
        self.pull = wire.make_socket(self._ctx, zmq.PULL, self.endpoint, bind=False)
        self.timeout_ms = timeout_ms
        self.messages = 0
        self.bits = 0

    def send(self, msg: FeedbackMessage) -> None:
        self.send_bytes(msg.encode())

    def send_bytes(self, data: bytes) -> None:
        self.push.send(data)
        self.messages += 1
        self.bits += 8 * len(data)

    def recv(self) -> FeedbackMessage:
        if not self.pull.poll(self.timeout_ms):
            raise TimeoutError(f"no feedback message on {self.endpoint} within {self.timeout_ms} ms")
        return decode(self.pull.recv())

    def close(self) -> None:
        self.push.close()
        self.pull.close()
        self._ctx.term()

    def __enter__(self) -> FeedbackLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
