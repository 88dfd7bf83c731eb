"""Wire protocol: round trips for every dtype, one test per rejection reason, the documented example."""

import json
import struct

import numpy as np
import pytest

from semcom.wire import DTYPES, HEADER, Kind, WireError, decode, encode


@pytest.mark.parametrize("dtype", sorted(DTYPES))
@pytest.mark.parametrize("shape", [(), (3,), (2, 5, 4)])
def test_round_trip_every_dtype_and_shape(dtype, shape):
    rng = np.random.default_rng(0)
    array = (rng.standard_normal(shape) * 10).astype(dtype)
    msg = decode(encode(Kind.TENSOR, 2**40 + 3, {"x": array, "y": array + 1}, {"note": "hi", "k": 5}))
    assert msg.kind == Kind.TENSOR and msg.seq == 2**40 + 3 and msg.meta == {"note": "hi", "k": 5}
    for name, expected in (("x", array), ("y", array + 1)):
        assert msg.tensors[name].dtype == expected.dtype and msg.tensors[name].shape == shape
        np.testing.assert_array_equal(msg.tensors[name], expected)


def test_documented_example_bytes():
    parts = encode(Kind.TENSOR, 7, {"x": np.array([1.0, -2.0], np.float32)})
    assert parts[0].hex(" ") == "53 43 4f 4d 01 01 01 00 07 00 00 00 00 00 00 00"
    assert parts[2].hex(" ") == "00 00 80 3f 00 00 00 c0"
    assert json.loads(parts[1]) == {"tensors": [{"name": "x", "dtype": "float32", "shape": [2]}], "meta": {}}


def _good() -> list[bytes]:
    return encode(Kind.TENSOR, 1, {"x": np.ones((2, 3), np.float32)})


def _expect(reason: str, parts: list[bytes], **kw) -> None:
    with pytest.raises(WireError) as info:
        decode(parts, **kw)
    assert info.value.reason == reason


def test_bad_magic():
    parts = _good()
    _expect("bad_magic", [b"XXXX" + parts[0][4:], *parts[1:]])


def test_bad_version():
    parts = _good()
    _expect("bad_version", [HEADER.pack(b"SCOM", 99, 1, 1, 1), *parts[1:]])


def test_bad_kind():
    parts = _good()
    _expect("bad_kind", [HEADER.pack(b"SCOM", 1, 77, 1, 1), *parts[1:]])


def test_truncated_multipart():
    _expect("truncated", _good()[:-1])
    _expect("truncated", [b"SCOM\x01"])


def test_non_json_header():
    parts = _good()
    _expect("bad_json", [parts[0], b"\xff{not json", *parts[2:]])
    _expect("bad_json", [parts[0], json.dumps({"meta": {}}).encode(), *parts[2:]])


def test_disallowed_dtype():
    parts = _good()
    body = json.dumps({"tensors": [{"name": "x", "dtype": "object", "shape": [2, 3]}], "meta": {}})
    _expect("bad_dtype", [parts[0], body.encode(), parts[2]])
    with pytest.raises(WireError) as info:
        encode(Kind.TENSOR, 1, {"x": np.array(["a"])})
    assert info.value.reason == "bad_dtype"


def test_shape_not_matching_payload():
    parts = _good()
    _expect("shape_mismatch", [*parts[:2], parts[2][:-4]])


def test_oversized_message():
    _expect("oversized", encode(Kind.TENSOR, 1, {"x": np.zeros(1000, np.float64)}), max_message_bytes=4000)


def test_header_struct_is_16_bytes_little_endian():
    assert HEADER.size == 16
    assert struct.unpack("<Q", _good()[0][8:])[0] == 1
