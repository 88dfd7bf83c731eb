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
the vectors through a per-element Python `map` (about 8x slower than passing a list). Tensors go
through PMT's serialized bytes instead of any per-element conversion (the same PMT vectors, tested).

Storage per dtype: float32 f32vector, float64 f64vector, complex64 c32vector, complex128 c64vector,
int8/16/32/64 s8/s16/s32/s64vector, uint8/16/32/64 u8/u16/u32/u64vector, float16 as the raw bits in
a u16vector, bool as a u8vector. A tensor comes back with exactly the dtype and shape it was made
with (a new, writable array).

Meta values may be None, bool, int (-2^63 .. 2^64-1), float, complex, str, list, tuple, dict and numpy
scalars/arrays (numpy arrays become lists). One PMT quirk remains: an empty dict is PMT_NIL, so an
empty dict nested inside meta comes back as None (the top-level meta comes back as {}).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pmt


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

_META, _TENSORS, _SHAPES, _DTYPES = (pmt.intern(k) for k in ("meta", "tensors", "shapes", "dtypes"))
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


# PMT's serialized uniform vector: 0x0a, the vector type, u32 length, one pad byte, then the elements
# big-endian. (De)serializing through these bytes is one C++ call and one numpy byte swap instead of a
# Python object per element (5-7x faster than the list path for a 1 344-element complex64 tensor).
_PST_UNIFORM_VECTOR = 0x0A
_UVI_CODES = {"uint8": 0, "int8": 1, "uint16": 2, "int16": 3, "uint32": 4, "int32": 5, "uint64": 6,
              "int64": 7, "float32": 8, "float64": 9, "complex64": 10, "complex128": 11}
_UV_HEADER_LEN = 8


def _tensor_to_pmt(name: str, array: np.ndarray) -> pmt.pmt_base:
    codec = _CODECS.get(array.dtype.name)
    if codec is None:
        raise MessageError(f"tensor {name!r}: dtype {array.dtype} has no PMT form "
                           f"(supported: {', '.join(SUPPORTED_DTYPES)})")
    storage = codec[3]
    flat = np.ascontiguousarray(array).reshape(-1)
    if array.dtype.name == "float16":
        flat = flat.view(np.uint16)
    header = bytes((_PST_UNIFORM_VECTOR, _UVI_CODES[storage.name], *flat.size.to_bytes(4, "big"), 1, 0))
    return pmt.deserialize_str(header + flat.astype(storage.newbyteorder(">"), copy=False).tobytes())


def _tensor_from_pmt(name: str, vector: pmt.pmt_base, dtype_name: str) -> np.ndarray:
    codec = _CODECS.get(dtype_name)
    if codec is None:
        raise MessageError(f"tensor {name!r}: unknown dtype {dtype_name!r}")
    _, _, is_vector, storage = codec
    if not is_vector(vector):
        raise MessageError(f"tensor {name!r}: PMT vector does not hold {dtype_name} data")
    raw = pmt.serialize_str(vector)
    n = int.from_bytes(raw[2:6], "big")
    flat = np.frombuffer(raw, storage.newbyteorder(">"), count=n, offset=_UV_HEADER_LEN).astype(storage)
    if dtype_name == "float16":
        return flat.view(np.float16)
    if dtype_name == "bool":
        return flat.astype(bool)
    return flat


def _dtype_of_vector(name: str, vector: pmt.pmt_base) -> str:
    """Dtype of a bare uniform vector (a message without "dtypes", e.g. built by hand)."""
    for dtype_name, (_, _, is_vector, _) in _CODECS.items():
        if dtype_name not in ("float16", "bool") and is_vector(vector):
            return dtype_name
    raise MessageError(f"tensor {name!r} is not a uniform vector")


def _to_pmt(value: Any) -> pmt.pmt_base:
    """Python/numpy value -> PMT (meta only; tensors go through _tensor_to_pmt)."""
    if value is None:
        return pmt.PMT_NIL
    if isinstance(value, (bool, np.bool_)):
        return pmt.from_bool(bool(value))
    if isinstance(value, (int, np.integer)):
        value = int(value)
        if _INT64_MIN <= value <= _INT64_MAX:
            return pmt.from_long(value)
        if 0 <= value <= _UINT64_MAX:
            return pmt.from_uint64(value)
        raise MessageError(f"integer {value} does not fit 64 bits")
    if isinstance(value, (float, np.floating)):
        return pmt.from_double(float(value))
    if isinstance(value, (complex, np.complexfloating)):
        return pmt.from_complex(complex(value))
    if isinstance(value, str):
        return pmt.intern(value)
    if isinstance(value, np.ndarray):
        return _to_pmt(value.tolist())
    if isinstance(value, dict):
        d = pmt.make_dict()
        for k, v in value.items():
            d = pmt.dict_add(d, _to_pmt(k), _to_pmt(v))
        return d
    if isinstance(value, tuple):
        return pmt.make_tuple(*(_to_pmt(v) for v in value)) if value else pmt.make_tuple()
    if isinstance(value, list):
        vec = pmt.make_vector(len(value), pmt.PMT_NIL)
        for i, v in enumerate(value):
            pmt.vector_set(vec, i, _to_pmt(v))
        return vec
    raise MessageError(f"meta value of type {type(value).__name__} has no PMT form: {value!r}")


def _from_pmt(p: pmt.pmt_base) -> Any:
    """PMT -> Python (meta only). Order matters: PMT_NIL is also the empty dict."""
    if pmt.is_null(p):
        return None
    # Scalars are disjoint PMT types; the most frequent in meta (doubles, longs) are tested first.
    if pmt.is_real(p):
        return pmt.to_double(p)
    if pmt.is_integer(p):
        return pmt.to_long(p)
    if pmt.is_symbol(p):
        return pmt.symbol_to_string(p)
    if pmt.is_bool(p):
        return pmt.to_bool(p)
    if pmt.is_uint64(p):
        return int(pmt.to_uint64(p))
    if pmt.is_complex(p):
        return pmt.to_complex(p)
    if pmt.is_dict(p):
        out = {}
        items = pmt.dict_items(p)
        while not pmt.is_null(items):  # walk the list (nth(i) would walk it again for every i)
            pair = pmt.car(items)
            out[_from_pmt(pmt.car(pair))] = _from_pmt(pmt.cdr(pair))
            items = pmt.cdr(items)
        return out
    if pmt.is_vector(p):
        return [_from_pmt(pmt.vector_ref(p, i)) for i in range(pmt.length(p))]
    if pmt.is_tuple(p):
        return tuple(_from_pmt(pmt.tuple_ref(p, i)) for i in range(pmt.length(p)))
    if pmt.is_uniform_vector(p):
        return _tensor_from_pmt("meta", p, _dtype_of_vector("meta", p))
    if pmt.is_pair(p):
        return (_from_pmt(pmt.car(p)), _from_pmt(pmt.cdr(p)))
    raise MessageError(f"PMT {p} has no Python form")


def tensor_message(meta: dict[str, Any], tensors: dict[str, np.ndarray]) -> pmt.pmt_base:
    """Build a tensor message. `tensors`: name -> array of any shape (0-d included) and a dtype in
    SUPPORTED_DTYPES. Raises MessageError for other dtypes or meta values without a PMT form."""
    if not isinstance(meta, dict) or not isinstance(tensors, dict):
        raise MessageError("meta and tensors must be dicts")
    t_pmt, s_pmt, d_pmt = pmt.make_dict(), pmt.make_dict(), pmt.make_dict()
    for name, tensor in tensors.items():
        if not isinstance(name, str):
            raise MessageError(f"tensor names must be str, got {name!r}")
        array = np.asarray(tensor)
        key = pmt.intern(name)
        t_pmt = pmt.dict_add(t_pmt, key, _tensor_to_pmt(name, array))
        s_pmt = pmt.dict_add(s_pmt, key, _to_pmt([int(d) for d in array.shape]))
        d_pmt = pmt.dict_add(d_pmt, key, pmt.intern(array.dtype.name))
    msg = pmt.make_dict()
    msg = pmt.dict_add(msg, _META, _to_pmt(meta))
    msg = pmt.dict_add(msg, _TENSORS, t_pmt)
    msg = pmt.dict_add(msg, _SHAPES, s_pmt)
    return pmt.dict_add(msg, _DTYPES, d_pmt)


def parse_tensor_message(msg: pmt.pmt_base) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Inverse of tensor_message: (meta, tensors) with each tensor's dtype and shape restored.
    Raises MessageError for anything that is not a well-formed tensor message."""
    if not isinstance(msg, pmt.pmt_base) or pmt.is_null(msg) or not pmt.is_dict(msg):
        raise MessageError(f"a tensor message is a PMT dict with keys meta, tensors, shapes; got {msg}")
    try:
        return _parse(msg)
    except (RuntimeError, TypeError, IndexError) as err:  # pybind11's forms of pmt's wrong_type
        raise MessageError(f"tensor message not convertible: {err}") from err


def _parse(msg: pmt.pmt_base) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    missing = [k for k in ("meta", "tensors", "shapes") if not pmt.dict_has_key(msg, pmt.intern(k))]
    if missing:
        raise MessageError(f"tensor message lacks key(s) {missing}")
    meta = _from_pmt(pmt.dict_ref(msg, _META, pmt.PMT_NIL))
    t_pmt = pmt.dict_ref(msg, _TENSORS, pmt.PMT_NIL)
    shapes = _from_pmt(pmt.dict_ref(msg, _SHAPES, pmt.PMT_NIL)) or {}
    dtypes = _from_pmt(pmt.dict_ref(msg, _DTYPES, pmt.PMT_NIL)) or {}
    meta = {} if meta is None else meta
    if not isinstance(meta, dict) or not isinstance(shapes, dict) or not isinstance(dtypes, dict):
        raise MessageError("meta, shapes and dtypes must be dicts")
    tensors: dict[str, np.ndarray] = {}
    if pmt.is_null(t_pmt):  # PMT's empty dict
        return meta, tensors
    if not pmt.is_dict(t_pmt):
        raise MessageError("'tensors' must be a dict name -> uniform vector")
    items = pmt.dict_items(t_pmt)
    for i in range(pmt.length(items)):
        pair = pmt.nth(i, items)
        name, vector = _from_pmt(pmt.car(pair)), pmt.cdr(pair)
        dtype_name = dtypes.get(name) or _dtype_of_vector(name, vector)
        flat = _tensor_from_pmt(name, vector, dtype_name)
        shape = shapes.get(name)
        if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise MessageError(f"tensor {name!r}: missing or invalid shape {shape!r}")
        if int(np.prod(shape, dtype=np.int64)) != flat.size:
            raise MessageError(f"tensor {name!r}: shape {list(shape)} does not match {flat.size} values")
        tensors[name] = flat.reshape(shape)
    return meta, tensors
