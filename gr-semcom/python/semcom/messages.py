#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""The one conversion between in-flowgraph PMT messages and (meta dict, tensors dict).

Every block that carries tensors as messages (tensor_source, ofat_tx, ofat_rx, ofat_equalizer,
tensor_sink, ...) goes through `tensor_message` / `parse_tensor_message` and nothing else.

A tensor message is a PMT dict with four keys:

    "meta"     dict: free-form metadata (seq, noise_var, layout, ...)
    "tensors"  dict: name -> flat (C-order) uniform vector
    "shapes"   dict: name -> vector of ints (() for a 0-d tensor)
    "dtypes"   dict: name -> symbol with the numpy dtype name

Why our own conversion instead of `pmt.to_pmt`: pmt's numpy bridge has no int64/float16/bool
vectors, maps int8 back as uint8, cannot convert numpy scalars or ints >= 2^63 in meta, and builds
the vectors through a per-element Python `map` (about 8x slower than passing a list). Whole messages
go through PMT's serialized bytes, one C++ call each way, instead of a pybind11 call per PMT node or
element (the very same PMT objects as dict_add / init_*vector build, tested).

Storage per dtype: float32 f32vector, float64 f64vector, complex64 c32vector, complex128 c64vector,
int8/16/32/64 s8/s16/s32/s64vector, uint8/16/32/64 u8/u16/u32/u64vector, float16 as the raw bits in
a u16vector, bool as a u8vector. A tensor comes back with exactly the dtype and shape it was made
with (a new, writable array).

Meta values may be None, bool, int (-2^63 .. 2^64-1), float, complex, str, list, non-empty tuple, dict
and numpy scalars/arrays (numpy arrays become lists). Two PMT quirks remain: an empty dict is PMT_NIL,
so an empty dict nested inside meta comes back as None (the top-level meta comes back as {}); and PMT
cannot deserialize an empty tuple, so () is refused (MessageError).

The wire form (`wire_message`, what ofat_rx publishes): a received frame is bound for the host, which
parses the wire protocol anyway, so the receiver encodes the wire FRAME itself (semcom.wire.encode)
and the message carries those bytes, a GNU Radio PDU:

    (("semcom_wire" . 1) . u8vector)   car: the dict {"semcom_wire": 1} (1 = this layout), cdr: the
                                        wire parts, each as a u32 little-endian length, then its bytes

tensor_sink sends the parts as they are (`wire_parts`: no PMT walk, no re-encoding) and
parse_tensor_message reads both forms, so every other block sees the same (meta, tensors).
Why: building and reading the PMT dict of a frame's meta (about 20 nodes, each a symbol or a number
the C++ side allocates and the Python side walks) cost more than the wire encoding of the whole frame.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import pmt

from semcom.wire import HEADER, MAGIC, VERSION, Kind, WireError, decode, encode_arrays


class MessageError(ValueError):
    """A PMT message that is not a tensor message, or a tensor/meta that cannot become one."""


# dtype name -> (init(n, list), elements(v) -> list, is_vector(v), storage dtype on the PMT side);
# tensors are built and read through PMT's serialized form (below), init/elements are the reference.
_Codec = tuple[Callable[..., Any], Callable[[Any], Any], Callable[[Any], bool], np.dtype]
_CODECS: dict[str, _Codec] = {
    "float32": (pmt.init_f32vector, pmt.f32vector_elements, pmt.is_f32vector, np.dtype(np.float32)),
    "float64": (pmt.init_f64vector, pmt.f64vector_elements, pmt.is_f64vector, np.dtype(np.float64)),
    "complex64": (pmt.init_c32vector, pmt.c32vector_elements, pmt.is_c32vector, np.dtype(np.complex64)),
    "complex128": (pmt.init_c64vector, pmt.c64vector_elements, pmt.is_c64vector, np.dtype(np.complex128)),
    "int8": (pmt.init_s8vector, pmt.s8vector_elements, pmt.is_s8vector, np.dtype(np.int8)),
    "int16": (pmt.init_s16vector, pmt.s16vector_elements, pmt.is_s16vector, np.dtype(np.int16)),
    "int32": (pmt.init_s32vector, pmt.s32vector_elements, pmt.is_s32vector, np.dtype(np.int32)),
    "int64": (pmt.init_s64vector, pmt.s64vector_elements, pmt.is_s64vector, np.dtype(np.int64)),
    "uint8": (pmt.init_u8vector, pmt.u8vector_elements, pmt.is_u8vector, np.dtype(np.uint8)),
    "uint16": (pmt.init_u16vector, pmt.u16vector_elements, pmt.is_u16vector, np.dtype(np.uint16)),
    "uint32": (pmt.init_u32vector, pmt.u32vector_elements, pmt.is_u32vector, np.dtype(np.uint32)),
    "uint64": (pmt.init_u64vector, pmt.u64vector_elements, pmt.is_u64vector, np.dtype(np.uint64)),
    # No PMT vector for these: float16 travels as its raw 16-bit patterns, bool as 0/1 bytes.
    "float16": (pmt.init_u16vector, pmt.u16vector_elements, pmt.is_u16vector, np.dtype(np.uint16)),
    "bool": (pmt.init_u8vector, pmt.u8vector_elements, pmt.is_u8vector, np.dtype(np.uint8)),
}
SUPPORTED_DTYPES = tuple(_CODECS)
# numpy computes dtype.name in Python (~3 us a call here): the names of the usual dtypes looked up instead.
_DTYPE_NAMES = {np.dtype(name): name for name in SUPPORTED_DTYPES}


def _dtype_name(dtype: np.dtype) -> str:
    return _DTYPE_NAMES.get(dtype) or dtype.name

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


# PMT's own serialization (pmt_serial_tags.h): a message is built as these bytes and turned into PMT by
# one C++ call (pmt.deserialize_str), and read by one pmt.serialize_str and a walk over the bytes here.
# Why: going node by node costs a pybind11 call per dict entry, key, type test and value (about 90 PMT
# calls for a one-tensor message, 50-90 us); the bytes build the very same PMT objects (tested).
_PST_TRUE, _PST_FALSE, _PST_SYMBOL, _PST_INT32, _PST_DOUBLE, _PST_COMPLEX, _PST_NULL = range(7)
_PST_PAIR, _PST_VECTOR, _PST_DICT, _PST_UNIFORM_VECTOR, _PST_UINT64, _PST_TUPLE, _PST_INT64 = range(7, 14)
_I32, _I64, _U64, _F64, _C128 = (struct.Struct(f) for f in (">i", ">q", ">Q", ">d", ">dd"))
_U16, _U32 = struct.Struct(">H"), struct.Struct(">I")
# A uniform vector: the tag, the element type, u32 length, one pad byte, then the elements big-endian.
_UVI_CODES = {"uint8": 0, "int8": 1, "uint16": 2, "int16": 3, "uint32": 4, "int32": 5, "uint64": 6,
              "int64": 7, "float32": 8, "float64": 9, "complex64": 10, "complex128": 11}
_UVI_STORAGE = {code: np.dtype(name).newbyteorder(">") for name, code in _UVI_CODES.items()}
# Per uniform-vector code, the native dtype its elements are read into (numpy builds a dtype per
# newbyteorder() call); per tensor dtype, its storage's code and big-endian dtype.
_UVI_NATIVE = {code: storage.newbyteorder("=") for code, storage in _UVI_STORAGE.items()}
_STORAGE_OUT = {name: (_UVI_CODES[codec[3].name], codec[3].newbyteorder(">"))
                for name, codec in _CODECS.items()}
_UV_HEADER_LEN = 8
_NULL, _DICT_ENTRY = bytes((_PST_NULL,)), bytes((_PST_DICT, _PST_PAIR))  # a dict cell: (key . value)


def _symbol_bytes(value: str) -> bytes:
    text = value.encode()
    if len(text) > 0xFFFF:
        raise MessageError(f"string of {len(text)} bytes: a PMT symbol holds at most 65535")
    return bytes((_PST_SYMBOL,)) + _U16.pack(len(text)) + text


_KEY_BYTES = {key: _symbol_bytes(key) for key in ("meta", "tensors", "shapes", "dtypes")}


def _tensor_bytes(name: str, array: np.ndarray, dtype_name: str | None = None) -> bytes:
    """A tensor's flat elements as a serialized PMT uniform vector of its storage type."""
    dtype_name = dtype_name or _dtype_name(array.dtype)
    codec = _CODECS.get(dtype_name)
    if codec is None:
        raise MessageError(f"tensor {name!r}: dtype {array.dtype} has no PMT form "
                           f"(supported: {', '.join(SUPPORTED_DTYPES)})")
    code, big_endian = _STORAGE_OUT[dtype_name]
    flat = np.ascontiguousarray(array).reshape(-1)
    if dtype_name == "float16":
        flat = flat.view(np.uint16)
    header = bytes((_PST_UNIFORM_VECTOR, code, *_U32.pack(flat.size), 1, 0))
    return header + flat.astype(big_endian, copy=False).tobytes()


def _tensor_to_pmt(name: str, array: np.ndarray) -> pmt.pmt_base:
    return pmt.deserialize_str(_tensor_bytes(name, array))


def _tensor_from_array(name: str, flat: Any, dtype_name: str) -> np.ndarray:
    """The tensor of `dtype_name` stored in a decoded uniform vector `flat` (its storage-type array)."""
    codec = _CODECS.get(dtype_name)
    if codec is None:
        raise MessageError(f"tensor {name!r}: unknown dtype {dtype_name!r}")
    if not isinstance(flat, np.ndarray) or flat.dtype != codec[3]:
        raise MessageError(f"tensor {name!r}: PMT vector does not hold {dtype_name} data")
    if dtype_name == "float16":
        return flat.view(np.float16)
    if dtype_name == "bool":
        return flat.astype(bool)
    return flat


def _tensor_from_pmt(name: str, vector: pmt.pmt_base, dtype_name: str) -> np.ndarray:
    return _tensor_from_array(name, _decode_pmt(vector), dtype_name)


def _meta_bytes(value: Any, out: list[bytes]) -> None:
    """Append the serialized PMT of a Python/numpy meta value to `out` (tensors go through _tensor_bytes)."""
    if value is None:
        out.append(_NULL)
    elif isinstance(value, (bool, np.bool_)):
        out.append(bytes((_PST_TRUE if value else _PST_FALSE,)))
    elif isinstance(value, (int, np.integer)):
        value = int(value)
        if -(2**31) <= value < 2**31:  # as pmt.from_long serializes: int32 when it fits, else int64
            out.append(bytes((_PST_INT32,)) + _I32.pack(value))
        elif _INT64_MIN <= value <= _INT64_MAX:
            out.append(bytes((_PST_INT64,)) + _I64.pack(value))
        elif 0 <= value <= _UINT64_MAX:
            out.append(bytes((_PST_UINT64,)) + _U64.pack(value))
        else:
            raise MessageError(f"integer {value} does not fit 64 bits")
    elif isinstance(value, (float, np.floating)):
        out.append(bytes((_PST_DOUBLE,)) + _F64.pack(float(value)))
    elif isinstance(value, (complex, np.complexfloating)):
        out.append(bytes((_PST_COMPLEX,)) + _C128.pack(value.real, value.imag))
    elif isinstance(value, str):
        out.append(_symbol_bytes(value))
    elif isinstance(value, np.ndarray):
        _meta_bytes(value.tolist(), out)
    elif isinstance(value, dict):
        # pmt.dict_add puts every new key in front: the same order gives the very same PMT dict.
        for key, item in reversed(value.items()):
            out.append(_DICT_ENTRY)
            _meta_bytes(key, out)
            _meta_bytes(item, out)
        out.append(_NULL)  # the empty dict is PMT_NIL
    elif isinstance(value, (tuple, list)):
        if isinstance(value, tuple) and not value:  # PMT serializes it, but cannot read it back
            raise MessageError("an empty tuple has no PMT form here; use None or an empty list")
        out.append(bytes((_PST_TUPLE if isinstance(value, tuple) else _PST_VECTOR,)) + _U32.pack(len(value)))
        for item in value:
            _meta_bytes(item, out)
    else:
        raise MessageError(f"meta value of type {type(value).__name__} has no PMT form: {value!r}")


def _decode(buf: bytes, pos: int) -> tuple[Any, int]:
    """(Python value, next position) of the serialized PMT at buf[pos]. Dicts become dicts (PMT_NIL,
    the empty dict, None), vectors lists, tuples and pairs tuples, uniform vectors numpy arrays of
    their storage type. Raises MessageError, IndexError or struct.error on bytes it cannot read."""
    tag = buf[pos]
    pos += 1
    # The most frequent tags first (symbols, dicts, int32 and double scalars).
    if tag == _PST_SYMBOL:
        n = _U16.unpack_from(buf, pos)[0]
        return buf[pos + 2: pos + 2 + n].decode(), pos + 2 + n
    if tag == _PST_DICT:
        items = []
        while tag == _PST_DICT:  # one entry per cell, walked (a long dict must not recurse)
            if buf[pos] != _PST_PAIR:
                raise MessageError(f"PMT dict entry with tag {buf[pos]}, not a pair")
            if buf[pos + 1] == _PST_SYMBOL:  # the usual key, read here (a call less per entry)
                n = _U16.unpack_from(buf, pos + 2)[0]
                key, pos = buf[pos + 4: pos + 4 + n].decode(), pos + 4 + n
            else:
                key, pos = _decode(buf, pos + 1)
            value, pos = _decode(buf, pos)
            items.append((key, value))
            tag = buf[pos]
            pos += 1
        if tag != _PST_NULL:
            raise MessageError(f"PMT dict ends in tag {tag}, not the empty list")
        return dict(reversed(items)), pos  # in the order the keys were added
    if tag == _PST_INT32:
        return _I32.unpack_from(buf, pos)[0], pos + 4
    if tag == _PST_DOUBLE:
        return _F64.unpack_from(buf, pos)[0], pos + 8
    if tag == _PST_NULL:
        return None, pos
    if tag == _PST_UNIFORM_VECTOR:
        storage = _UVI_STORAGE.get(buf[pos])
        if storage is None:
            raise MessageError(f"PMT uniform vector of unknown type {buf[pos]}")
        n = _U32.unpack_from(buf, pos + 1)[0]
        start = pos + 6 + buf[pos + 5]  # after the pad bytes
        end = start + n * storage.itemsize
        if end > len(buf):
            raise MessageError("PMT uniform vector runs past the end of its bytes")
        return np.frombuffer(buf, storage, count=n, offset=start).astype(_UVI_NATIVE[buf[pos]]), end
    if tag in (_PST_VECTOR, _PST_TUPLE):
        items = []
        n, pos = _U32.unpack_from(buf, pos)[0], pos + 4
        for _ in range(n):
            item, pos = _decode(buf, pos)
            items.append(item)
        return (items if tag == _PST_VECTOR else tuple(items)), pos
    if tag in (_PST_TRUE, _PST_FALSE):
        return tag == _PST_TRUE, pos
    if tag == _PST_INT64:
        return _I64.unpack_from(buf, pos)[0], pos + 8
    if tag == _PST_UINT64:
        return _U64.unpack_from(buf, pos)[0], pos + 8
    if tag == _PST_COMPLEX:
        real, imag = _C128.unpack_from(buf, pos)
        return complex(real, imag), pos + 16
    if tag == _PST_PAIR:
        car, pos = _decode(buf, pos)
        cdr, pos = _decode(buf, pos)
        return (car, cdr), pos
    raise MessageError(f"PMT with serial tag {tag} has no Python form")


def _decode_pmt(p: pmt.pmt_base) -> Any:
    """PMT -> Python through its serialized bytes (one C++ call, then _decode)."""
    try:
        raw = pmt.serialize_str(p)
    except RuntimeError as err:
        raise MessageError(f"PMT not convertible: {err!r}") from err
    return _decode_raw(raw)


def _decode_raw(raw: bytes) -> Any:
    """The Python value of a whole serialized PMT (see _decode)."""
    try:
        value, end = _decode(raw, 0)
    except (IndexError, struct.error, UnicodeDecodeError, RecursionError) as err:
        raise MessageError(f"PMT not convertible: {err!r}") from err
    if end != len(raw):
        raise MessageError(f"PMT bytes not all read ({end} of {len(raw)})")
    return value


_ENTRIES: dict[tuple[str, tuple[int, ...], str], tuple[bytes, bytes, bytes]] = {}


def _tensor_entries(name: str, shape: tuple[int, ...], dtype_name: str) -> tuple[bytes, bytes, bytes]:
    """Serialized (dict cell + key, shape, dtype symbol) of a tensor's entries, kept for the next
    message: a stream of tensors repeats a few (name, shape, dtype) (6 -> 1 us per tensor here)."""
    entries = _ENTRIES.get((name, shape, dtype_name))
    if entries is None:
        key, shape_bytes, dtype_bytes = [_DICT_ENTRY], [], []
        _meta_bytes(name, key)
        _meta_bytes([int(d) for d in shape], shape_bytes)
        _meta_bytes(dtype_name, dtype_bytes)
        entries = b"".join(key), b"".join(shape_bytes), b"".join(dtype_bytes)
        if len(_ENTRIES) >= 256:  # bounded: shapes that change with every message are not kept
            _ENTRIES.clear()
        _ENTRIES[(name, shape, dtype_name)] = entries
    return entries


def tensor_message(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> pmt.pmt_base:
    """Build a tensor message. `tensors`: name -> array of any shape (0-d included) and a dtype in
    SUPPORTED_DTYPES. Raises MessageError for other dtypes or meta values without a PMT form."""
    if not isinstance(meta, dict) or not isinstance(tensors, dict):
        raise MessageError("meta and tensors must be dicts")
    vectors: list[bytes] = []
    shapes: list[bytes] = []
    dtypes: list[bytes] = []
    for name, tensor in reversed(tensors.items()):  # dict_add order, as _meta_bytes writes a dict
        if not isinstance(name, str):
            raise MessageError(f"tensor names must be str, got {name!r}")
        array = np.asarray(tensor)
        dtype_name = _dtype_name(array.dtype)
        key, shape, dtype = _tensor_entries(name, array.shape, dtype_name)
        vectors += [key, _tensor_bytes(name, array, dtype_name)]
        shapes += [key, shape]
        dtypes += [key, dtype]
    out = [_DICT_ENTRY, _KEY_BYTES["dtypes"], *dtypes, _NULL,
           _DICT_ENTRY, _KEY_BYTES["shapes"], *shapes, _NULL,
           _DICT_ENTRY, _KEY_BYTES["tensors"], *vectors, _NULL, _DICT_ENTRY, _KEY_BYTES["meta"]]
    _meta_bytes(meta, out)
    out.append(_NULL)
    return pmt.deserialize_str(b"".join(out))


def parse_tensor_message(msg: pmt.pmt_base) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of tensor_message (and of wire_message): (meta, tensors) with each tensor's dtype and
    shape restored. Raises MessageError for anything that is not a well-formed tensor message."""
    return parse_serialized(serialize(msg))


def serialize(msg: pmt.pmt_base) -> bytes:
    """PMT's serialized bytes of a message (one C++ call), for parse_serialized and wire_parts."""
    if not isinstance(msg, pmt.pmt_base):
        raise MessageError(f"a tensor message is a PMT; got {msg!r}")
    try:
        return pmt.serialize_str(msg)
    except (RuntimeError, TypeError) as err:
        raise MessageError(f"PMT not serializable: {err!r}") from err


def parse_serialized(raw: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """parse_tensor_message of a message's serialized bytes (see serialize)."""
    parts = _split_wire_form(raw)
    if parts is not None:
        try:
            wire = decode(parts)
        except WireError as err:
            raise MessageError(f"wire-form message: {err}") from err
        # Writable arrays that own their data, as the PMT form gives.
        return wire.meta, {name: np.array(t) for name, t in wire.tensors.items()}
    if raw[:1] != bytes((_PST_DICT,)):  # PMT_NIL (the empty dict) included
        raise MessageError("a tensor message is a PMT dict with keys meta, tensors, shapes (or the wire "
                           f"form); got a PMT of serial tag {raw[:1].hex() or 'none'}")
    try:
        return _parse(_decode_raw(raw))
    except (TypeError, AttributeError) as err:  # e.g. an unhashable dtype or a dict key that is a list
        raise MessageError(f"tensor message not convertible: {err}") from err


def _parse(body: dict[Any, Any]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    missing = [k for k in ("meta", "tensors", "shapes") if k not in body]
    if missing:
        raise MessageError(f"tensor message lacks key(s) {missing}")
    meta, vectors = body["meta"], body["tensors"]
    shapes, dtypes = body["shapes"] or {}, body.get("dtypes") or {}
    meta = {} if meta is None else meta
    if not isinstance(meta, dict) or not isinstance(shapes, dict) or not isinstance(dtypes, dict):
        raise MessageError("meta, shapes and dtypes must be dicts")
    tensors: dict[str, np.ndarray] = {}
    if vectors is None:  # PMT's empty dict
        return meta, tensors
    if not isinstance(vectors, dict):
        raise MessageError("'tensors' must be a dict name -> uniform vector")
    for name, flat in vectors.items():
        if not isinstance(flat, np.ndarray):
            raise MessageError(f"tensor {name!r} is not a uniform vector")
        flat = _tensor_from_array(name, flat, dtypes.get(name) or _dtype_name(flat.dtype))
        shape = shapes.get(name)
        if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise MessageError(f"tensor {name!r}: missing or invalid shape {shape!r}")
        if math.prod(shape) != flat.size:
            raise MessageError(f"tensor {name!r}: shape {list(shape)} does not match {flat.size} values")
        tensors[name] = flat.reshape(shape)
    return meta, tensors


# The wire form (see the module docstring): a PDU whose car is {"semcom_wire": 1}, cdr a u8vector.
WIRE_FORM_KEY = "semcom_wire"
_WIRE_FORM_VERSION = 1
_PART_LEN = struct.Struct("<I")
_car: list[bytes] = [bytes((_PST_PAIR,))]
_meta_bytes({WIRE_FORM_KEY: _WIRE_FORM_VERSION}, _car)
_WIRE_PREFIX = b"".join(_car) + bytes((_PST_UNIFORM_VECTOR, _UVI_CODES["uint8"]))
del _car


def wire_message(seq: int, meta: dict[str, Any], tensors: dict[str, np.ndarray],
                 kind: Kind = Kind.FRAME) -> pmt.pmt_base:
    """A message in the wire form: the wire message (kind, seq, tensors, meta) encoded once, here.

    What the wire cannot carry (meta JSON cannot hold, e.g. complex or NaN; a dtype outside the wire's
    list; a seq beyond u64) goes out as a tensor_message(meta, tensors) instead, so every block still
    gets it and tensor_sink counts why it cannot send it, as before. Meta reads back as JSON gives it,
    which is what the host gets either way: tuples as lists, non-string dict keys as strings."""
    try:
        header, json_body, payloads = encode_arrays(kind, seq, tensors, meta)
    except (WireError, TypeError, ValueError, OverflowError):
        return tensor_message(meta, tensors)
    body = [_WIRE_PREFIX, b"", _PART_LEN.pack(len(header)), header, _PART_LEN.pack(len(json_body)), json_body]
    size = 2 * _PART_LEN.size + len(header) + len(json_body)
    for array in payloads:  # the arrays' own buffers joined in: one copy of each tensor, not two
        body += (_PART_LEN.pack(array.nbytes), array)
        size += _PART_LEN.size + array.nbytes
    body[1] = _U32.pack(size) + bytes((1, 0))  # the u8vector's length and its one pad byte
    return pmt.deserialize_str(b"".join(body))


def _split_wire_form(raw: bytes) -> list[memoryview] | None:
    """The wire parts of a serialized PMT in the wire form; None for any other PMT. Raises MessageError
    when the bytes start as the wire form but do not hold a whole FRAME's parts."""
    if not raw.startswith(_WIRE_PREFIX):
        return None
    start = len(_WIRE_PREFIX)
    try:
        size = _U32.unpack_from(raw, start)[0]
        pos = start + 5 + raw[start + 4]  # after the length and the pad bytes
    except (struct.error, IndexError):
        raise MessageError("wire-form message cut short") from None
    if pos + size != len(raw):
        raise MessageError(f"wire-form message holds {len(raw) - pos} bytes, announces {size}")
    view = memoryview(raw)
    parts = []
    while pos < len(raw):
        if pos + _PART_LEN.size > len(raw):
            raise MessageError("wire-form message: a part length runs past the end")
        n = _PART_LEN.unpack_from(raw, pos)[0]
        pos += _PART_LEN.size
        if pos + n > len(raw):
            raise MessageError("wire-form message: a part runs past the end")
        parts.append(view[pos: pos + n])
        pos += n
    return parts


def wire_parts(raw: bytes) -> tuple[int, list[memoryview]] | None:
    """(seq, the wire parts ready to send) of a FRAME in the wire form, from its serialized bytes (see
    serialize); None for a message in the PMT dict form (parse_serialized reads it). Checks what
    sending needs without decoding the JSON: the parts' framing, a version-1 FRAME header,
    2 + n_tensors parts. Raises MessageError."""
    parts = _split_wire_form(raw)
    if parts is None:
        return None
    head = bytes(parts[0]) if parts else b""
    if len(head) != HEADER.size:
        raise MessageError(f"wire-form message: header of {len(head)} bytes")
    magic, version, kind, n_tensors, seq = HEADER.unpack(head)
    if (magic, version, kind) != (MAGIC, VERSION, Kind.FRAME) or len(parts) != 2 + n_tensors:
        raise MessageError(f"wire-form message is not a version {VERSION} FRAME of 2 + n_tensors parts")
    return seq, parts
