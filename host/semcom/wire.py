"""The wire protocol between the host and the flowgraph (numpy + pyzmq; no GNU Radio).

Authoritative description: docs/wire-protocol.md. A message is a ZeroMQ multipart message:

    part 0   fixed header, 16 bytes, little-endian: magic b"SCOM", version u8, kind u8,
             n_tensors u16, seq u64
    part 1   JSON (UTF-8): {"tensors": [{"name", "dtype", "shape"}, ...], "meta": {...}}
    part 2+  one part per tensor: raw little-endian C-order bytes

Sockets are PUSH/PULL (a full queue blocks or times out; it never drops silently), with explicit
high-water marks and a finite LINGER so that closing never hangs. Decoded tensors are read-only
numpy views of the received parts (no copy; `.copy()` to own or modify them).
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


# numpy computes dtype.name in Python (~3 us a call here): the allowed dtypes' names looked up instead.
_DTYPE_NAMES = {np.dtype(name): name for name in DTYPES}


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


def _refuse_constant(name: str) -> Any:
    """NaN / Infinity / -Infinity are not JSON (RFC 8259): Python's json accepts them, the wire does not."""
    raise ValueError(f"non-standard JSON literal {name}")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


# One encoder and decoder for every message: json.dumps/loads with options build a new one per call.
# allow_nan=False: the decoder refuses NaN / Infinity, so the encoder must not write them.
_JSON_ENCODER = json.JSONEncoder(default=_json_default, allow_nan=False)
_JSON_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
# JSONEncoder.encode builds a C encoder per call (~1.3 us of a FRAME's ~6 us JSON): the same C encoder,
# with _JSON_ENCODER's settings, made once. Without the circular-reference markers (a dict shared by
# every call would keep a failed call's entries): a circular meta ends in RecursionError instead,
# turned into the ValueError json raises for it.
_C_ENCODER = None if json.encoder.c_make_encoder is None else json.encoder.c_make_encoder(
    None, _json_default, json.encoder.encode_basestring_ascii, None, _JSON_ENCODER.key_separator,
    _JSON_ENCODER.item_separator, False, False, False)


def _json_text(obj: Any) -> str:
    """_JSON_ENCODER.encode(obj), the same text."""
    if _C_ENCODER is None:
        return _JSON_ENCODER.encode(obj)
    try:
        return "".join(_C_ENCODER(obj, 0))
    except RecursionError:
        raise ValueError("Circular reference detected") from None


def encode(kind: Kind | int, seq: int, tensors: dict[str, np.ndarray] | None = None,
           meta: dict[str, Any] | None = None) -> list[bytes]:
    """Build the multipart message: [16-byte header, JSON, one raw little-endian C-order payload per
    tensor]. `tensors`: name -> array of any shape (0-d included). Raises WireError (bad_dtype) for a
    dtype outside DTYPES, (bad_json) for a non-str name; TypeError for meta that JSON cannot hold,
    ValueError for a NaN / infinite float in meta (not JSON)."""
    header, body, payloads = encode_arrays(kind, seq, tensors, meta)
    return [header, body, *(array.tobytes() for array in payloads)]


def encode_arrays(kind: Kind | int, seq: int, tensors: dict[str, np.ndarray] | None = None,
                  meta: dict[str, Any] | None = None) -> tuple[bytes, bytes, list[np.ndarray]]:
    """`encode` with the payloads left as little-endian C-contiguous arrays (their buffers are the
    payload bytes): for a caller that copies them into a buffer of its own anyway (one copy, not two)."""
    tensors = tensors or {}
    specs, payloads = [], []
    if not 0 <= int(seq) < 2**64:
        raise ValueError(f"seq {seq} does not fit u64")
    if len(tensors) > 0xFFFF:
        raise ValueError(f"{len(tensors)} tensors > 65535")
    for name, array in tensors.items():
        if not isinstance(name, str):
            raise WireError("bad_json", f"tensor names must be str, got {name!r}")
        array = np.asarray(array)
        dtype_name = _DTYPE_NAMES.get(array.dtype) or array.dtype.name
        if dtype_name not in DTYPES:
            raise WireError("bad_dtype", f"tensor {name!r}: dtype {array.dtype} not allowed "
                                         f"(allowed: {', '.join(DTYPES)})")
        specs.append({"name": name, "dtype": dtype_name, "shape": list(array.shape)})
        payloads.append(np.ascontiguousarray(array, dtype=DTYPES[dtype_name]))  # no copy when it is one
    header = HEADER.pack(MAGIC, VERSION, int(Kind(kind)), len(specs), int(seq))
    body = _json_text({"tensors": specs, "meta": meta or {}}).encode()
    return header, body, payloads


def decode(parts: list[bytes], *, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> WireMessage:
    """Validate and decode a multipart message (bytes or zmq.Frame parts); raises WireError.

    Checks, in this order (the first failing one names the reason): oversized, truncated (no
    parts), bad_magic, bad_version, truncated (short part 0) / bad_magic (long part 0), bad_kind,
    truncated (part count != 2 + n_tensors), bad_json, then per tensor bad_json / bad_dtype /
    shape_mismatch. The version is checked before the header length, so a peer speaking a later
    version with a longer header is told bad_version. Tensors are read-only views of `parts`.
    """
    total = sum(len(p) for p in parts)
    if total > max_message_bytes:
        raise WireError("oversized", f"{total} bytes > limit {max_message_bytes}")
    if not parts:
        raise WireError("truncated", "empty message")
    head = bytes(parts[0])
    if head[:4] != MAGIC:
        raise WireError("bad_magic", f"part 0 starts with {head[:4]!r}, expected {MAGIC!r}")
    if len(head) >= 5 and head[4] != VERSION:
        raise WireError("bad_version", f"version {head[4]}, this end speaks {VERSION}")
    if len(head) != HEADER.size:
        raise WireError("truncated" if len(head) < HEADER.size else "bad_magic",
                        f"part 0 is {len(head)} bytes, a version {VERSION} header is {HEADER.size}")
    _, _, kind_code, n_tensors, seq = HEADER.unpack(head)
    try:
        kind = Kind(kind_code)
    except ValueError:
        raise WireError("bad_kind", f"unknown kind {kind_code}") from None
    if len(parts) != 2 + n_tensors:
        raise WireError("truncated", f"header announces {n_tensors} tensors, got {len(parts) - 2} "
                                     f"tensor parts")
    try:
        body = _JSON_DECODER.decode(bytes(parts[1]).decode("utf-8"))
        specs, meta = body["tensors"], body.get("meta", {})
        if not isinstance(specs, list) or not isinstance(meta, dict) or len(specs) != n_tensors:
            raise ValueError("tensors must be a list of n_tensors entries, meta an object")
    except RecursionError:  # nesting deeper than the interpreter's stack: malformed, not internal
        raise WireError("bad_json", "JSON nested too deeply") from None
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise WireError("bad_json", str(err)) from None
    tensors = {}
    for spec, payload in zip(specs, parts[2:], strict=True):
        try:
            name, dtype_name, shape = spec["name"], spec["dtype"], spec["shape"]
            if not isinstance(name, str) or not isinstance(dtype_name, str) or not isinstance(shape, list):
                raise TypeError("name and dtype must be strings, shape a list")
            if not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
                raise TypeError(f"shape {shape} must hold integers")
        except (KeyError, TypeError) as err:
            raise WireError("bad_json", f"tensor spec {spec!r}: {err}") from None
        if name in tensors:
            raise WireError("bad_json", f"tensor name {name!r} appears twice")
        if dtype_name not in DTYPES:
            raise WireError("bad_dtype", f"tensor {name!r}: dtype {dtype_name!r} not allowed "
                                         f"(allowed: {', '.join(DTYPES)})")
        if any(d < 0 for d in shape):
            raise WireError("shape_mismatch", f"tensor {name!r}: negative dimension in {shape}")
        dtype = DTYPES[dtype_name]
        expected = math.prod(shape) * dtype.itemsize
        if expected != len(payload):
            raise WireError("shape_mismatch", f"tensor {name!r}: shape {shape} x {dtype_name} needs "
                                              f"{expected} bytes, payload has {len(payload)}")
        array = np.frombuffer(payload, dtype=dtype).reshape(shape)
        array.flags.writeable = False  # also when a part is a bytearray: the contract is "read-only view"
        tensors[name] = array
    return WireMessage(kind=kind, seq=seq, tensors=tensors, meta=meta)


def send_parts(sock: zmq.Socket, parts: list[bytes] | list[memoryview]) -> None:
    """Send a multipart message, copying it into ZeroMQ unless a part is large. Why: pyzmq's zero-copy
    send builds a zmq.Frame per part and still copies parts below zmq.COPY_THRESHOLD (64 KiB); for a
    5x256 float32 tensor it took 20 us against 9 us for the plain copying send (one run here)."""
    sock.send_multipart(parts, copy=max(len(p) for p in parts) < zmq.COPY_THRESHOLD)


def make_socket(context: zmq.Context, socket_type: int, endpoint: str, *, bind: bool,
                hwm: int = DEFAULT_HWM, linger_ms: int = DEFAULT_LINGER_MS,
                send_timeout_ms: int | None = None) -> zmq.Socket:
    """A PUSH or PULL socket with explicit HWM and a finite LINGER, bound or connected to `endpoint`.

    PUSH gets SNDHWM (and SNDTIMEO when `send_timeout_ms` is given: a send that cannot queue within
    it raises zmq.Again instead of blocking forever); PULL gets RCVHWM. A finite linger (0 .. 5000
    ms) bounds how long close() waits for unsent messages, so top_block.stop() never hangs."""
    if socket_type not in (zmq.PUSH, zmq.PULL):
        raise ValueError("the wire protocol uses PUSH/PULL only (PUB/SUB drops silently)")
    if not 0 <= linger_ms <= 5000:
        raise ValueError(f"linger_ms={linger_ms}: must be finite (0..5000), or close() may hang")
    if hwm < 1:
        raise ValueError(f"hwm={hwm}: must be >= 1 (0 means unbounded queues in ZeroMQ)")
    sock = context.socket(socket_type)
    try:
        sock.setsockopt(zmq.LINGER, int(linger_ms))
        sock.setsockopt(zmq.SNDHWM if socket_type == zmq.PUSH else zmq.RCVHWM, int(hwm))
        if send_timeout_ms is not None:
            sock.setsockopt(zmq.SNDTIMEO, int(send_timeout_ms))
        if bind:
            sock.bind(endpoint)
        else:
            sock.connect(endpoint)
    except Exception:
        sock.close(linger=0)  # e.g. address in use: do not leak the socket
        raise
    return sock


def bound_endpoint(sock: zmq.Socket) -> str:
    """The endpoint a socket bound to (resolves tcp://127.0.0.1:* to the actual port)."""
    return sock.getsockopt_string(zmq.LAST_ENDPOINT)


def bind_random(context: zmq.Context, socket_type: int, *, host: str = "127.0.0.1",
                **options: Any) -> tuple[zmq.Socket, str]:
    """A PUSH/PULL socket bound to a free port on `host` (for tests and parallel runs).
    Returns (socket, endpoint) with the real port, e.g. ("tcp://127.0.0.1:40123")."""
    sock = make_socket(context, socket_type, f"tcp://{host}:*", bind=True, **options)
    return sock, bound_endpoint(sock)
