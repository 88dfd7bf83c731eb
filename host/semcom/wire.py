"""The wire protocol between the host and the flowgraph (numpy + pyzmq; no GNU Radio).

Authoritative description: docs/wire-protocol.md. A message is a ZeroMQ multipart message:

    part 0   fixed header, 16 bytes, little-endian: magic b"SCOM", version u8, kind u8,
             n_tensors u16, seq u64
    part 1   JSON (UTF-8): {"tensors": [{"name", "dtype", "shape"}, ...], "meta": {...}}
    part 2+  one part per tensor: raw little-endian C-order bytes

Sockets are PUSH/PULL (a full queue blocks or times out; it never drops silently), with explicit
high-water marks and a finite LINGER so that closing never hangs.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import zmq

MAGIC = b"SCOM"
VERSION = 1
HEADER = struct.Struct("<4sBBHQ")
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
DEFAULT_TENSOR_ENDPOINT = "tcp://127.0.0.1:5555"
DEFAULT_FRAME_ENDPOINT = "tcp://127.0.0.1:5556"
DEFAULT_HWM = 64
DEFAULT_LINGER_MS = 200

# Allowed dtypes, always little-endian on the wire.
DTYPES: dict[str, np.dtype] = {name: np.dtype(name).newbyteorder("<") for name in (
    "float16", "float32", "float64", "complex64", "complex128", "int8", "uint8", "int32", "int64")}


class Kind(IntEnum):
    TENSOR = 1  # host -> flowgraph: a tensor to transmit
    FRAME = 2  # flowgraph -> host: one received frame (Y, H + meta, or reconstructed values)
    STATS = 3  # either way: counters, no tensors required


class WireError(ValueError):
    """A message that breaks the protocol. `reason` is a stable code used for error counters."""

    REASONS = ("bad_magic", "bad_version", "bad_kind", "truncated", "bad_json", "bad_dtype",
               "shape_mismatch", "oversized")

    def __init__(self, reason: str, detail: str):
        assert reason in self.REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass
class WireMessage:
    """A decoded message. Tensors are read-only numpy views of the received bytes (copy to modify)."""

    kind: Kind
    seq: int
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def encode(kind: Kind | int, seq: int, tensors: dict[str, np.ndarray] | None = None,
           meta: dict[str, Any] | None = None) -> list[bytes]:
    """Build the multipart message. Raises WireError for dtypes outside the allow-list."""
    tensors = tensors or {}
    specs, payloads = [], []
    for name, array in tensors.items():
        array = np.asarray(array)
        dtype_name = array.dtype.name
        if dtype_name not in DTYPES:
            raise WireError("bad_dtype", f"tensor {name!r}: dtype {array.dtype} not allowed "
                                         f"(allowed: {', '.join(DTYPES)})")
        specs.append({"name": name, "dtype": dtype_name, "shape": list(array.shape)})
        payloads.append(np.ascontiguousarray(array, dtype=DTYPES[dtype_name]).tobytes())
    header = HEADER.pack(MAGIC, VERSION, int(Kind(kind)), len(specs), int(seq))
    body = json.dumps({"tensors": specs, "meta": meta or {}}, default=_json_default).encode()
    return [header, body, *payloads]


def decode(parts: list[bytes], *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> WireMessage:
    """Validate and decode a multipart message; raises WireError with a reason code."""
    total = sum(len(p) for p in parts)
    if total > max_message_bytes:
        raise WireError("oversized", f"{total} bytes > limit {max_message_bytes}")
    if not parts or len(parts[0]) != HEADER.size:
        raise WireError("truncated" if parts and len(parts[0]) < HEADER.size else "bad_magic",
                        f"part 0 must be {HEADER.size} bytes")
    magic, version, kind, n_tensors, seq = HEADER.unpack(parts[0])
    if magic != MAGIC:
        raise WireError("bad_magic", f"magic {magic!r} != {MAGIC!r}")
    if version != VERSION:
        raise WireError("bad_version", f"version {version}, this end speaks {VERSION}")
    try:
        kind = Kind(kind)
    except ValueError:
        raise WireError("bad_kind", f"unknown kind {kind}") from None
    if len(parts) != 2 + n_tensors:
        raise WireError("truncated", f"header announces {n_tensors} tensors, got {len(parts) - 2} "
                                     f"tensor parts")
    try:
        body = json.loads(bytes(parts[1]).decode("utf-8"))
        specs, meta = body["tensors"], body.get("meta", {})
        if not isinstance(specs, list) or not isinstance(meta, dict) or len(specs) != n_tensors:
            raise ValueError("tensors must be a list of n_tensors entries, meta an object")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as err:
        raise WireError("bad_json", str(err)) from None
    tensors = {}
    for spec, payload in zip(specs, parts[2:], strict=True):
        try:
            name, dtype_name, shape = str(spec["name"]), spec["dtype"], [int(d) for d in spec["shape"]]
        except (KeyError, TypeError, ValueError) as err:
            raise WireError("bad_json", f"tensor spec {spec!r}: {err}") from None
        if dtype_name not in DTYPES:
            raise WireError("bad_dtype", f"tensor {name!r}: dtype {dtype_name!r} not allowed")
        if any(d < 0 for d in shape):
            raise WireError("shape_mismatch", f"tensor {name!r}: negative dimension in {shape}")
        dtype = DTYPES[dtype_name]
        expected = math.prod(shape) * dtype.itemsize
        if expected != len(payload):
            raise WireError("shape_mismatch", f"tensor {name!r}: shape {shape} x {dtype_name} needs "
                                              f"{expected} bytes, payload has {len(payload)}")
        tensors[name] = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return WireMessage(kind=kind, seq=seq, tensors=tensors, meta=meta)


def make_socket(context: zmq.Context, socket_type: int, endpoint: str, *, bind: bool,
                hwm: int = DEFAULT_HWM, linger_ms: int = DEFAULT_LINGER_MS,
                send_timeout_ms: int | None = None) -> zmq.Socket:
    """A PUSH or PULL socket with explicit HWM and linger. Returns it bound or connected."""
    if socket_type not in (zmq.PUSH, zmq.PULL):
        raise ValueError("the wire protocol uses PUSH/PULL only (PUB/SUB drops silently)")
    sock = context.socket(socket_type)
    sock.setsockopt(zmq.LINGER, linger_ms)
    sock.setsockopt(zmq.SNDHWM if socket_type == zmq.PUSH else zmq.RCVHWM, hwm)
    if send_timeout_ms is not None:
        sock.setsockopt(zmq.SNDTIMEO, send_timeout_ms)
    if bind:
        sock.bind(endpoint)
    else:
        sock.connect(endpoint)
    return sock


def bound_endpoint(sock: zmq.Socket) -> str:
    """The endpoint a socket bound to (resolves tcp://127.0.0.1:* to the actual port)."""
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)
