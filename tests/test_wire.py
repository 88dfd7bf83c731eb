"""Wire protocol (pure host, no GNU Radio): round trips for every dtype, one test per rejection reason,
the documented example, socket helpers."""

import json
import struct

import numpy as np
import pytest
import zmq

from semcom import wire
from semcom.wire import (
    DEFAULT_LINGER_MS,
    DTYPES,
    HEADER,
    Kind,
    WireError,
    bind_random,
    decode,
    encode,
    make_socket,
    send_parts,
)


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


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_literals_are_bad_json(literal):
    parts = _good()
    body = json.loads(parts[1])
    text = json.dumps(body)[:-1] + f', "x": {literal}}}'
    assert json.loads(text)["x"] != 0  # Python's json alone would accept it
    _expect("bad_json", [parts[0], text.encode(), *parts[2:]])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_encoder_refuses_what_the_decoder_refuses(value):
    """A NaN / infinite meta value raises at the sender (tensor_sink counts it as error_bad_meta)
    instead of leaving as a message every peer must refuse."""
    with pytest.raises(ValueError, match="JSON"):
        encode(Kind.FRAME, 1, {}, {"snr_db": value})


def test_deeply_nested_json_is_bad_json_not_an_internal_error():
    parts = _good()
    body = json.dumps(json.loads(parts[1]))[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}"
    _expect("bad_json", [parts[0], body.encode(), *parts[2:]])


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


def test_decoded_tensors_are_read_only_views():
    parts = encode(Kind.FRAME, 3, {"Y": np.ones((2, 2), np.complex64)})
    parts[2] = bytearray(parts[2])  # even over a writable buffer the contract holds
    msg = decode(parts)
    assert not msg.tensors["Y"].flags.writeable
    with pytest.raises(ValueError):
        msg.tensors["Y"][0, 0] = 5


def test_big_endian_input_goes_out_little_endian():
    parts = encode(Kind.TENSOR, 0, {"x": np.array([1.0, -2.0], dtype=">f4")})
    assert parts[2].hex(" ") == "00 00 80 3f 00 00 00 c0"
    np.testing.assert_array_equal(decode(parts).tensors["x"], [1.0, -2.0])


def test_later_version_with_longer_header_is_bad_version_not_bad_magic():
    parts = _good()
    _expect("bad_version", [b"SCOM\x02" + b"\0" * 27, *parts[1:]])


def test_header_of_wrong_length():
    parts = _good()
    _expect("truncated", [parts[0][:10], *parts[1:]])
    _expect("bad_magic", [parts[0] + b"\0", *parts[1:]])
    _expect("truncated", [])


def test_malformed_tensor_specs_are_bad_json():
    parts = _good()
    for spec in ({"name": "x", "dtype": "float32"}, {"name": 3, "dtype": "float32", "shape": [2, 3]},
                 {"name": "x", "dtype": "float32", "shape": "2x3"},
                 {"name": "x", "dtype": "float32", "shape": [2.0, 3]}):
        _expect("bad_json", [parts[0], json.dumps({"tensors": [spec], "meta": {}}).encode(), parts[2]])
    # n_tensors in the header and the JSON list disagree
    body = {"tensors": [], "meta": {}}
    _expect("bad_json", [parts[0], json.dumps(body).encode(), parts[2]])


def test_duplicate_tensor_names_are_bad_json():
    x = np.ones(2, np.float32)
    header = HEADER.pack(b"SCOM", 1, 1, 2, 5)
    spec = {"name": "x", "dtype": "float32", "shape": [2]}
    body = json.dumps({"tensors": [spec, spec], "meta": {}}).encode()
    _expect("bad_json", [header, body, x.tobytes(), x.tobytes()])


def test_negative_dimension_is_shape_mismatch():
    parts = _good()
    body = json.dumps({"tensors": [{"name": "x", "dtype": "float32", "shape": [-2, -3]}], "meta": {}})
    _expect("shape_mismatch", [parts[0], body.encode(), parts[2]])


def test_oversized_is_checked_before_parsing_and_limit_is_inclusive():
    parts = encode(Kind.TENSOR, 1, {"x": np.zeros(10, np.float32)})
    size = sum(len(p) for p in parts)
    assert decode(parts, max_message_bytes=size).tensors["x"].shape == (10,)
    _expect("oversized", [b"garbage", *parts[1:]], max_message_bytes=10)


def test_every_reason_has_a_test_here():
    tested = {"bad_magic", "bad_version", "bad_kind", "truncated", "bad_json", "bad_dtype",
              "shape_mismatch", "oversized"}
    assert set(WireError.REASONS) == tested


def test_encode_rejects_what_the_header_cannot_hold():
    with pytest.raises(ValueError):
        encode(Kind.TENSOR, 2**64, {})
    with pytest.raises(ValueError):
        encode(Kind.TENSOR, -1, {})
    with pytest.raises(WireError) as info:
        encode(Kind.TENSOR, 0, {7: np.ones(1, np.float32)})
    assert info.value.reason == "bad_json"
    with pytest.raises(WireError) as info:
        encode(Kind.TENSOR, 0, {"b": np.ones(2, bool)})  # bool is not on the wire's list
    assert info.value.reason == "bad_dtype"


def test_stats_message_without_tensors():
    msg = decode(encode(Kind.STATS, 0, None, {"posted": 4, "error_bad_magic": 1}))
    assert msg.kind == Kind.STATS and msg.tensors == {} and msg.meta["posted"] == 4


def test_sockets_push_pull_only_with_finite_linger_and_a_random_port():
    ctx = zmq.Context.instance()
    with pytest.raises(ValueError):
        make_socket(ctx, zmq.PUB, "tcp://127.0.0.1:*", bind=True)
    with pytest.raises(ValueError):
        make_socket(ctx, zmq.PULL, "tcp://127.0.0.1:*", bind=True, linger_ms=-1)
    pull, endpoint = bind_random(ctx, zmq.PULL, hwm=4)
    assert endpoint.startswith("tcp://127.0.0.1:") and int(endpoint.rsplit(":", 1)[1]) > 0
    assert pull.getsockopt(zmq.RCVHWM) == 4 and pull.getsockopt(zmq.LINGER) == DEFAULT_LINGER_MS
    push = make_socket(ctx, zmq.PUSH, endpoint, bind=False, hwm=2, send_timeout_ms=50)
    assert push.getsockopt(zmq.SNDHWM) == 2 and push.getsockopt(zmq.SNDTIMEO) == 50
    x = np.arange(6, dtype=np.int64).reshape(3, 2)
    push.send_multipart(encode(Kind.TENSOR, 11, {"x": x}, {"a": [1, 2]}))
    assert pull.poll(5000)
    msg = decode(pull.recv_multipart(copy=False))  # zmq.Frame parts decode too
    assert msg.seq == 11 and msg.meta == {"a": [1, 2]}
    np.testing.assert_array_equal(msg.tensors["x"], x)
    # A second bind on the same port fails cleanly (and does not leak the socket).
    with pytest.raises(zmq.ZMQError):
        make_socket(ctx, zmq.PULL, endpoint, bind=True)
    push.close()
    pull.close()


def test_send_parts_delivers_small_and_large_messages_and_memoryview_parts():
    """send_parts copies small messages into ZeroMQ and sends large ones zero-copy: both arrive whole."""
    ctx = zmq.Context.instance()
    pull, endpoint = bind_random(ctx, zmq.PULL)
    push = make_socket(ctx, zmq.PUSH, endpoint, bind=False, send_timeout_ms=2000)
    small = np.arange(12, dtype=np.float32)
    large = np.arange(zmq.COPY_THRESHOLD // 4 + 1, dtype=np.float32)  # one part above the threshold
    for seq, x in enumerate((small, large)):
        parts = encode(Kind.FRAME, seq, {"x": x})
        send_parts(push, [memoryview(p) for p in parts])
        assert pull.poll(5000)
        msg = decode(pull.recv_multipart())
        assert msg.seq == seq
        np.testing.assert_array_equal(msg.tensors["x"], x)
    push.close()
    pull.close()


def test_meta_json_text_is_the_standard_encoders():
    """The once-made C encoder writes what json.JSONEncoder (same settings) writes, numpy values included."""
    meta = {"snr_db": np.float32(12.5), "taps": np.arange(3), "name": "é\"x", "nested": {"k": [1, 2.5, None]},
            "flag": True, "seq": np.int64(7)}
    body = encode(Kind.FRAME, 3, {}, meta)[1]
    expected = wire._JSON_ENCODER.encode({"tensors": [], "meta": meta}).encode()
    assert body == expected
    assert json.loads(body)["meta"]["taps"] == [0, 1, 2]


def test_circular_or_too_deep_meta_is_a_value_error():
    """A meta the encoder cannot write raises ValueError at the sender (tensor_sink counts error_bad_meta),
    never a RecursionError."""
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular"):
        encode(Kind.FRAME, 1, {}, circular)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError):
        encode(Kind.FRAME, 1, {}, {"deep": deep})
