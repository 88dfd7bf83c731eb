"""The ZeroMQ bridge: PMT tensor messages, tensor_source/tensor_sink in running flowgraphs on random
127.0.0.1 ports (every bad input gets a counted error, the flowgraph keeps running and the next valid
frame is delivered), and the link client's accounting for every sequence number."""

import json
import threading
import time
from pathlib import Path

import numpy as np
import pmt
import pytest
import zmq
from gnuradio import blocks, gr, semcom
from gnuradio.semcom.messages import (
    SUPPORTED_DTYPES,
    MessageError,
    parse_tensor_message,
    serialize,
    tensor_message,
    wire_message,
    wire_parts,
)

from semcom.link import LinkClient, LossAccounting
from semcom.ofat.frame import make_layout, modulate_frame
from semcom.wire import DTYPES, HEADER, Kind, bind_random, decode, encode

LAYOUT = make_layout("wifi64", n_tx=2, n_rx=2, max_data_symbols=8)
COMPILED = getattr(semcom.semcom_python, "tensor_source_fast", None) is not None
# Both bridge implementations run the same tests (the compiled one where it was built).
IMPLEMENTATIONS = ["python", pytest.param("cxx", marks=pytest.mark.skipif(
    not COMPILED, reason="gr-semcom built without its compiled bridge"))]


@pytest.fixture(params=IMPLEMENTATIONS)
def chain(request):
    """tensor_source -> ofat_tx -> (wire) -> ofat_rx -> tensor_sink, on random 127.0.0.1 ports."""
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", max_message_bytes=200_000, implementation=request.param)
    tx = semcom.ofat_tx(LAYOUT)
    rx = semcom.ofat_rx(LAYOUT)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=2000, implementation=request.param)
    tb.msg_connect((src, "tensors"), (tx, "tensors"))
    tb.msg_connect((rx, "frames"), (snk, "frames"))
    for a in range(2):
        tb.connect((tx, a), (rx, a))
    tb.start()
    yield tb, src, tx, snk
    tb.stop()
    tb.wait()


def _raw_push(endpoint: str) -> zmq.Socket:
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 200)
    sock.connect(endpoint)
    return sock


def _good_parts(seq: int) -> list[bytes]:
    return encode(Kind.TENSOR, seq, {"x": np.arange(12, dtype=np.float32).reshape(3, 4)})


BAD_INPUTS = {
    "bad_magic": lambda p: [b"NOPE" + p[0][4:], *p[1:]],
    "bad_version": lambda p: [HEADER.pack(b"SCOM", 9, 1, 1, 100), *p[1:]],
    "bad_dtype": lambda p: [p[0], json.dumps({"tensors": [{"name": "x", "dtype": "U8", "shape": [3, 4]}],
                                               "meta": {}}).encode(), p[2]],
    "shape_mismatch": lambda p: [*p[:2], p[2] + b"\0\0\0\0"],
    "oversized": lambda p: [*p[:2], b"\0" * 300_000],
    "truncated": lambda p: p[:2],
    "bad_json": lambda p: [p[0], b"this is not json", p[2]],
    "bad_kind": lambda p: [HEADER.pack(b"SCOM", 1, int(Kind.FRAME), 1, 100), *p[1:]],  # FRAME is not for us
    "bad_meta": lambda p: [p[0], json.dumps({"tensors": [{"name": "x", "dtype": "float32", "shape": [3, 4]}],
                                              "meta": {"n": 2**70}}).encode(), p[2]],  # no 64-bit PMT form
}


@pytest.mark.parametrize("reason", sorted(BAD_INPUTS))
def test_bad_input_is_counted_and_next_valid_frame_is_delivered(chain, reason):
    tb, src, tx, snk = chain
    push = _raw_push(src.endpoint())
    with LinkClient(src.endpoint(), snk.endpoint(), timeout_s=5.0) as link:
        push.send_multipart(BAD_INPUTS[reason](_good_parts(100)))
        seq = link.send(np.arange(12, dtype=np.float32).reshape(3, 4))
        msg = link.receive(timeout_s=5.0)
        assert msg is not None and msg.seq == seq
        assert msg.meta["shape"] == [3, 4]
    push.close()
    assert src.counters()[f"error_{reason}"] == 1
    assert src.counters()["posted"] == 1


def test_tensor_larger_than_a_frame_is_rejected_and_next_is_delivered(chain):
    tb, src, tx, snk = chain
    with LinkClient(src.endpoint(), snk.endpoint(), timeout_s=3.0) as link:
        link.send(np.zeros(LAYOUT.capacity + 1, np.float32))
        good = link.send(np.ones(10, np.float32))
        msg = link.receive(timeout_s=5.0)
        assert msg is not None and msg.seq == good
        summary = link.finish(drain_s=0.5)
    assert tx.counters()["rejected_oversize"] == 1
    assert summary["sent"] == 2 and summary["delivered"] == 1 and summary["lost"] == 1


def test_every_sequence_number_is_delivered_or_lost_never_both(chain):
    tb, src, tx, snk = chain
    with LinkClient(src.endpoint(), snk.endpoint(), timeout_s=1.0, window=4) as link:
        sent = [link.send(np.full(20, i, np.float32)) for i in range(6)]
        # A NaN tensor is a valid message the transmitter must refuse: that seq can only be lost.
        sent.append(link.send(np.array([np.nan, 1.0], np.float32)))
        got = []
        while link.in_flight():
            msg = link.receive(timeout_s=1.5)
            if msg is not None:
                got.append(msg.seq)
        acct = link.accounting
    assert sorted(got) == sent[:6]
    assert acct.lost_seqs == [sent[6]]
    assert acct.sent == acct.delivered + acct.lost == 7
    assert tx.counters()["rejected_nonfinite"] == 1


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sink_counts_frames_nobody_takes_as_backpressure(implementation):
    tb = gr.top_block()
    tx = semcom.ofat_tx(LAYOUT)
    rx = semcom.ofat_rx(LAYOUT)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", hwm=1, send_timeout_ms=10, implementation=implementation)
    tb.msg_connect((rx, "frames"), (snk, "frames"))
    for a in range(2):
        tb.connect((tx, a), (rx, a))
    import pmt
    from gnuradio.semcom.messages import tensor_message

    for i in range(4):
        tx._post(pmt.intern("tensors"), tensor_message({"seq": i}, {"x": np.ones(5, np.float32)}))
    tb.start()
    deadline = time.monotonic() + 10
    while snk.counters().get("dropped_backpressure", 0) + snk.counters().get("sent", 0) < 4:
        assert time.monotonic() < deadline, snk.counters()
        time.sleep(0.05)
    tb.stop()
    tb.wait()
    # No peer ever connected: nothing can be sent, every frame is counted as dropped.
    assert snk.counters()["dropped_backpressure"] == 4


# ------------------------------------------------------------------ PMT tensor messages (messages.py)
@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_pmt_round_trip_keeps_dtype_and_shape(dtype):
    rng = np.random.default_rng(1)
    for shape in [(), (4,), (2, 0, 3), (3, 2, 5)]:
        a = (rng.standard_normal(shape) * 50).astype(dtype)
        if np.issubdtype(a.dtype, np.complexfloating):
            a = a + 1j * a[::-1] if a.ndim else a
        meta, tensors = parse_tensor_message(tensor_message({"seq": 7}, {"t": a}))
        assert meta == {"seq": 7}
        assert tensors["t"].dtype == a.dtype and tensors["t"].shape == a.shape
        np.testing.assert_array_equal(tensors["t"], a)


@pytest.mark.parametrize("dtype", SUPPORTED_DTYPES)
def test_pmt_tensor_vectors_equal_the_element_wise_pmt_construction(dtype):
    """The serialized-bytes fast path builds and reads the very PMT vector pmt.init_*vector makes from a
    list (and a hand-built message is read back), so nothing observable changed with it."""
    from gnuradio.semcom import messages

    rng = np.random.default_rng(2)
    a = (rng.standard_normal(37) * 50).astype(dtype)
    if np.issubdtype(a.dtype, np.complexfloating):
        a = a + 1j * a[::-1]
    init, elements, _, storage = messages._CODECS[dtype]
    flat = a.view(np.uint16) if dtype == "float16" else a.astype(storage)
    reference = init(flat.size, flat.tolist())
    assert pmt.equal(messages._tensor_to_pmt("t", a), reference)
    np.testing.assert_array_equal(messages._tensor_from_pmt("t", reference, dtype), a)
    np.testing.assert_array_equal(np.array(elements(messages._tensor_to_pmt("t", a)), storage), flat)


def test_pmt_meta_types_survive():
    meta = {"seq": 2**64 - 1, "neg": -(2**63), "f": 0.25, "b": False, "none": None, "s": "zf",
            "shape": [3, 4], "layout": {"used": [-2, -1, 1, 2], "mode": "real"}, "c": 1 - 2j,
            "np_f": np.float32(1.5), "np_i": np.int64(-4), "arr": np.arange(3)}
    back, tensors = parse_tensor_message(tensor_message(meta, {}))
    assert tensors == {}
    expected = {**meta, "np_f": 1.5, "np_i": -4, "arr": [0, 1, 2]}
    assert back == expected and type(back["np_i"]) is int and type(back["b"]) is bool


def test_repeated_names_with_new_shapes_and_dtypes_come_back_right():
    """tensor_message keeps each (name, shape, dtype)'s serialized entries for the next message: a name
    seen before with another shape or dtype must not get the kept ones."""
    for a in (np.ones((2, 3), np.float32), np.ones((3, 2), np.float32), np.ones((2, 3), np.int32),
              np.ones((2, 3), np.float32), np.ones(6, np.float32)):
        meta, tensors = parse_tensor_message(tensor_message({"seq": 1}, {"x": a}))
        assert tensors["x"].shape == a.shape and tensors["x"].dtype == a.dtype


def _reference_pmt(value):
    """Meta -> PMT node by node with PMT's own constructors (what messages.py did before it built the
    serialized bytes in one go)."""
    if value is None:
        return pmt.PMT_NIL
    if isinstance(value, bool):
        return pmt.from_bool(value)
    if isinstance(value, int):
        return pmt.from_long(value) if value < 2**63 else pmt.from_uint64(value)
    if isinstance(value, float):
        return pmt.from_double(value)
    if isinstance(value, complex):
        return pmt.from_complex(value)
    if isinstance(value, str):
        return pmt.intern(value)
    if isinstance(value, dict):
        d = pmt.make_dict()
        for k, v in value.items():
            d = pmt.dict_add(d, _reference_pmt(k), _reference_pmt(v))
        return d
    if isinstance(value, tuple):
        return pmt.make_tuple(*(_reference_pmt(v) for v in value))
    vec = pmt.make_vector(len(value), pmt.PMT_NIL)
    for i, v in enumerate(value):
        pmt.vector_set(vec, i, _reference_pmt(v))
    return vec


def test_tensor_message_is_the_pmt_that_pmt_constructors_build():
    """The message built from serialized bytes in one C++ call equals, node for node (pmt.equal: same
    types, same dict order), the one PMT's constructors build, for every meta type and 64-bit edge."""
    meta = {"seq": 7, "i32": -(2**31), "i32_top": 2**31 - 1, "i64": 2**31, "neg": -(2**63),
            "u64": 2**64 - 1, "f": -0.5, "b": True, "f_": False, "none": None, "s": "zf é",
            "c": 1 - 2j, "list": [1, [2.5, "x"], {}], "tuple": (1, "a", None),
            "nested": {"a": {"b": [True]}, "z": 3}}
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1 + 2j], np.complex64)
    reference = pmt.make_dict()
    reference = pmt.dict_add(reference, pmt.intern("meta"), _reference_pmt(meta))
    tensors, shapes, dtypes = pmt.make_dict(), pmt.make_dict(), pmt.make_dict()
    for name, arr in (("a", a), ("b", b)):
        key = pmt.intern(name)
        flat = arr.reshape(-1).tolist()
        init = pmt.init_f32vector if arr.dtype == np.float32 else pmt.init_c32vector
        vec = init(len(flat), flat)
        tensors = pmt.dict_add(tensors, key, vec)
        shapes = pmt.dict_add(shapes, key, _reference_pmt(list(arr.shape)))
        dtypes = pmt.dict_add(dtypes, key, pmt.intern(arr.dtype.name))
    for key, value in (("tensors", tensors), ("shapes", shapes), ("dtypes", dtypes)):
        reference = pmt.dict_add(reference, pmt.intern(key), value)
    built = tensor_message(meta, {"a": a, "b": b})
    assert pmt.equal(built, reference)
    back_meta, back = parse_tensor_message(reference)  # and the reader takes the constructors' message
    assert back_meta == {**meta, "list": [1, [2.5, "x"], None]}  # an empty dict is PMT_NIL
    assert list(back_meta) == list(meta)  # keys in the order they were added
    np.testing.assert_array_equal(back["a"], a)
    np.testing.assert_array_equal(back["b"], b)


@pytest.mark.parametrize("bad", [
    pmt.intern("not a dict"),
    pmt.PMT_NIL,
    pmt.cons(pmt.make_dict(), pmt.init_u8vector(2, [1, 2])),  # a PDU is not a tensor message
    pmt.to_pmt({"meta": {}, "tensors": {}}),  # no shapes
    pmt.to_pmt({"meta": {}, "tensors": {"x": 3}, "shapes": {"x": [1]}}),  # not a vector
    pmt.to_pmt({"meta": {}, "tensors": {"x": np.ones(3, np.float32)}, "shapes": {"x": [2]}}),
    pmt.to_pmt({"meta": {}, "tensors": {"x": np.ones(3, np.float32)}, "shapes": {"x": [3]},
                "dtypes": {"x": "complex64"}}),  # the vector does not hold the announced dtype
])
def test_malformed_pmt_messages_raise_message_error(bad):
    with pytest.raises(MessageError):
        parse_tensor_message(bad)


def test_tensor_message_refuses_what_pmt_cannot_hold():
    with pytest.raises(MessageError):
        tensor_message({}, {"x": np.array(["text"])})
    with pytest.raises(MessageError):
        tensor_message({"big": 2**64}, {})
    with pytest.raises(MessageError, match="empty tuple"):  # PMT cannot read one back
        tensor_message({"t": ()}, {})
    assert issubclass(MessageError, ValueError)


# ------------------------------------------------------------------ the wire form (messages.wire_message)
# What ofat_rx publishes is the wire FRAME itself: parse_tensor_message reads it as the same (meta,
# tensors) the PMT dict form gives, tensor_sink sends its bytes unchanged, and whatever the wire cannot
# carry still travels (and is counted at the sink) as before.
WF_RNG = np.random.default_rng(5)
Y = (WF_RNG.standard_normal((48, 4, 7)) + 1j * WF_RNG.standard_normal((48, 4, 7))).astype(np.complex64)
H = (WF_RNG.standard_normal((48, 4, 2)) + 1j * WF_RNG.standard_normal((48, 4, 2))).astype(np.complex64)
# The keys and types of a receiver's meta (ints near the int32/int64 edge included).
RX_META = {"seq": 2**32 - 1, "shape": [5, 256], "n_values": 1280, "scale": 0.5088776114160352, "flags": 0,
        "noise_var": 0.009526728461128644, "err_var": 1e-300, "snr_db": -3.25, "cfo": -0.0029977554,
        "timing": 2**40 + 3, "sync_metric": 0.979, "sfo_ppm": 12.5,
        "rx_counters": {"samples": 2**31, "detections": 20, "frames": 19, "header_crc_fail": 1}}


def wire_form_bytes(parts: list[bytes], announced: int | None = None) -> bytes:
    """Serialized PMT of a message in the wire form holding `parts` (announcing `announced` bytes)."""
    from gnuradio.semcom import messages

    body = b"".join(messages._PART_LEN.pack(len(p)) + p for p in parts)
    size = len(body) if announced is None else announced
    return messages._WIRE_PREFIX + messages._U32.pack(size) + b"\x01\x00" + body


def test_wire_form_reads_back_as_the_pmt_dict_form_does():
    meta, tensors = parse_tensor_message(wire_message(RX_META["seq"], RX_META, {"Y": Y, "H": H}))
    ref_meta, ref_tensors = parse_tensor_message(tensor_message(RX_META, {"Y": Y, "H": H}))
    assert meta == ref_meta == RX_META and list(meta) == list(RX_META)
    assert type(meta["timing"]) is int and type(meta["scale"]) is float
    for name, ref in ref_tensors.items():
        assert tensors[name].dtype == ref.dtype == np.complex64 and tensors[name].shape == ref.shape
        np.testing.assert_array_equal(tensors[name], ref)
        assert tensors[name].flags.writeable and tensors[name].flags.owndata


def test_wire_parts_are_the_wire_encoding_byte_for_byte():
    msg = wire_message(7, RX_META, {"Y": Y, "H": H})
    seq, parts = wire_parts(serialize(msg))
    assert seq == 7
    assert [bytes(p) for p in parts] == encode(Kind.FRAME, 7, {"Y": Y, "H": H}, RX_META)
    assert wire_parts(serialize(tensor_message(RX_META, {"Y": Y}))) is None  # the dict form: parse it
    # A GNU Radio PDU: car the dict {"semcom_wire": 1}, cdr a u8vector.
    assert pmt.is_pair(msg) and pmt.is_u8vector(pmt.cdr(msg))
    assert pmt.to_python(pmt.car(msg)) == {"semcom_wire": 1}


@pytest.mark.parametrize("meta, tensors", [
    ({"seq": 3, "c": 1 - 2j}, {"Y": Y}),  # JSON has no complex numbers
    ({"seq": 3, "snr_db": float("inf")}, {"Y": Y}),  # nor infinities
    ({"seq": 3}, {"x": np.ones(3, np.int16)}),  # int16 is not a wire dtype
])
def test_what_the_wire_cannot_carry_falls_back_to_the_pmt_dict_form(meta, tensors):
    msg = wire_message(3, meta, tensors)
    assert pmt.is_dict(msg) and wire_parts(serialize(msg)) is None
    back_meta, back = parse_tensor_message(msg)
    assert back_meta == meta
    for name, t in tensors.items():
        np.testing.assert_array_equal(back[name], t)


@pytest.mark.parametrize("raw", [
    wire_form_bytes(encode(Kind.FRAME, 1, {"Y": Y}, {"seq": 1}))[:-3],  # cut short
    wire_form_bytes(encode(Kind.FRAME, 1, {"Y": Y}, {"seq": 1}), announced=10),  # length lies
    wire_form_bytes(encode(Kind.FRAME, 1, {"Y": Y}, {"seq": 1})[:2]),  # a tensor part missing
    wire_form_bytes(encode(Kind.TENSOR, 1, {"Y": Y}, {"seq": 1})),  # not a FRAME
    wire_form_bytes([b"\x00" * 16, b"{}"]),  # no magic
])
def test_malformed_wire_form_raises_message_error(raw):
    with pytest.raises(MessageError):
        wire_parts(raw)


def test_malformed_wire_form_payload_is_a_message_error_for_readers():
    parts = encode(Kind.FRAME, 1, {"Y": Y}, {"seq": 1})
    bad = pmt.deserialize_str(wire_form_bytes([*parts[:2], parts[2][:-8]]))  # shape_mismatch
    with pytest.raises(MessageError, match="shape_mismatch"):
        parse_tensor_message(bad)


def test_ofat_rx_publishes_what_the_receiver_decodes():
    """The messages ofat_rx publishes are in the wire form and carry exactly the receiver's frames:
    meta() plus the counters at that frame, Y and H bit for bit (the receiver ofat_rx runs, the compiled
    one where built, run offline on the same samples)."""
    layout = make_layout("wifi64", n_tx=2, n_rx=2)
    rng = np.random.default_rng(8)
    x = np.concatenate([np.zeros((2, 300), np.complex64)]
                       + [modulate_frame(layout, rng.standard_normal(200), seq=s, pad=200)[0]
                          for s in range(3)], axis=1)
    y = (x + 0.02 * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape))).astype(np.complex64)
    tb = gr.top_block()
    rx = semcom.ofat_rx(layout)
    dbg = blocks.message_debug()
    for r in range(2):
        tb.connect(blocks.vector_source_c(y[r].tolist()), (rx, r))
    tb.msg_connect((rx, "frames"), (dbg, "store"))
    tb.run()
    assert all(wire_parts(serialize(dbg.get_message(i))) is not None for i in range(dbg.num_messages()))
    published = [parse_tensor_message(dbg.get_message(i)) for i in range(dbg.num_messages())]
    offline = type(rx.receiver)(layout)
    expected = []
    for frame in offline.process(y):  # one chunk: the counters after the last frame
        expected.append(frame)
    assert [m["seq"] for m, _ in published] == [f.header.seq for f in expected] == [0, 1, 2]
    for (meta, tensors), frame in zip(published, expected, strict=True):
        assert {k: v for k, v in meta.items() if k != "rx_counters"} == frame.meta()
        assert set(meta["rx_counters"]) == set(offline.counters.as_dict())
        np.testing.assert_array_equal(tensors["Y"], frame.y)
        np.testing.assert_array_equal(tensors["H"], frame.h)
    assert published[-1][0]["rx_counters"]["frames"] == 3


# ------------------------------------------------------------------ tensor_source -> message_debug
@pytest.fixture(params=IMPLEMENTATIONS)
def source_to_debug(request):
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", max_message_bytes=100_000, hwm=8,
                               implementation=request.param)
    dbg = blocks.message_debug()
    tb.msg_connect((src, "tensors"), (dbg, "store"))
    tb.start()
    push = _raw_push(src.endpoint())
    yield src, dbg, push
    push.close()
    tb.stop()
    tb.wait()


def _wait_messages(dbg, n: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while dbg.num_messages() < n:
        assert time.monotonic() < deadline, f"only {dbg.num_messages()} of {n} messages arrived"
        time.sleep(0.01)


def test_source_posts_every_wire_dtype_with_shape_and_seq(source_to_debug):
    src, dbg, push = source_to_debug
    arrays = {name: (np.arange(24) % 7).astype(name).reshape(2, 3, 4) for name in DTYPES}
    arrays["scalar"] = np.array(2.5, np.float32)
    for seq, (name, a) in enumerate(arrays.items()):
        push.send_multipart(encode(Kind.TENSOR, 1000 + seq, {name: a}, {"which": name}))
    _wait_messages(dbg, len(arrays))
    for i, (name, a) in enumerate(arrays.items()):
        meta, tensors = parse_tensor_message(dbg.get_message(i))  # PUSH/PULL keeps the order
        assert meta == {"which": name, "seq": 1000 + i}
        assert tensors[name].dtype == a.dtype and tensors[name].shape == a.shape
        np.testing.assert_array_equal(tensors[name], a)
    assert src.counters() == {"received": len(arrays), "posted": len(arrays)}


def test_source_survives_a_burst_of_bad_messages(source_to_debug):
    src, dbg, push = source_to_debug
    good = _good_parts(1)
    for make in BAD_INPUTS.values():
        push.send_multipart(make(good))
    push.send_multipart([b"x"])
    push.send_multipart(_good_parts(2))
    _wait_messages(dbg, 1)
    counters = src.counters()
    assert {k: v for k, v in counters.items() if k.startswith("error_")} == {
        "error_bad_magic": 2, **{f"error_{r}": 1 for r in BAD_INPUTS if r != "bad_magic"}}
    assert counters["posted"] == 1 and counters["received"] == len(BAD_INPUTS) + 2
    meta, _ = parse_tensor_message(dbg.get_message(0))
    assert meta["seq"] == 2


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_source_stop_returns_promptly_with_a_peer_still_sending(implementation):
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", implementation=implementation)
    dbg = blocks.message_debug()
    tb.msg_connect((src, "tensors"), (dbg, "store"))
    tb.start()
    push = _raw_push(src.endpoint())
    for seq in range(50):
        push.send_multipart(_good_parts(seq))
    t0 = time.monotonic()
    tb.stop()
    tb.wait()
    assert time.monotonic() - t0 < 5.0
    push.close()


# ------------------------------------------------------------------ tensor_sink -> host
def sink_with_host(implementation: str) -> tuple[gr.top_block, gr.basic_block, zmq.Socket]:
    """A tensor_sink in a flowgraph not yet started, and a host PULL socket connected to it."""
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*")  # idle: only gives the sink a flowgraph to live in
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=2000, implementation=implementation)
    tb.msg_connect((src, "tensors"), (snk, "frames"))
    tb.idle_source = src  # a Python block must live as long as its flowgraph (GNU Radio keeps no ref)
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect(snk.endpoint())
    return tb, snk, pull


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sink_sends_frames_with_complex_tensors_and_counts_what_it_cannot_send(implementation):
    tb, snk, pull = sink_with_host(implementation)
    rng = np.random.default_rng(2)
    y = (rng.standard_normal((6, 4, 3)) + 1j * rng.standard_normal((6, 4, 3))).astype(np.complex64)
    h = (rng.standard_normal((6, 4, 2)) + 1j * rng.standard_normal((6, 4, 2))).astype(np.complex64)
    port = pmt.intern("frames")
    snk._post(port, tensor_message({"seq": 5, "noise_var": 0.01, "layout": {"n_tx": 2}}, {"Y": y, "H": h}))
    snk._post(port, tensor_message({"no": "seq"}, {"Y": y}))  # error_malformed
    snk._post(port, tensor_message({"seq": 6}, {"x": np.ones(3, np.int16)}))  # int16 is not a wire dtype
    snk._post(port, tensor_message({"seq": 7, "c": 1j}, {"Y": y}))  # JSON has no complex numbers
    snk._post(port, tensor_message({"seq": 8}, {"values": np.ones((2, 3), np.float32)}))
    tb.start()
    got = []
    for _ in range(2):
        assert pull.poll(5000)
        got.append(decode(pull.recv_multipart()))
    tb.stop()
    tb.wait()
    pull.close()
    assert [(m.kind, m.seq) for m in got] == [(Kind.FRAME, 5), (Kind.FRAME, 8)]
    assert got[0].meta == {"seq": 5, "noise_var": 0.01, "layout": {"n_tx": 2}}
    np.testing.assert_array_equal(got[0].tensors["Y"], y)
    np.testing.assert_array_equal(got[0].tensors["H"], h)
    assert got[0].tensors["Y"].dtype == np.complex64 and got[1].tensors["values"].shape == (2, 3)
    assert snk.counters() == {"sent": 2, "error_malformed": 1, "error_bad_dtype": 1, "error_bad_meta": 1}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sink_forwards_wire_form_unchanged_and_counts_a_broken_one(implementation):
    tb, snk, pull = sink_with_host(implementation)
    rng = np.random.default_rng(3)
    y = (rng.standard_normal((6, 4, 3)) + 1j * rng.standard_normal((6, 4, 3))).astype(np.complex64)
    h = (rng.standard_normal((6, 4, 2)) + 1j * rng.standard_normal((6, 4, 2))).astype(np.complex64)
    meta = {"seq": 11, "shape": [5, 7], "noise_var": 0.01, "rx_counters": {"frames": 3}}
    port = pmt.intern("frames")
    snk._post(port, wire_message(11, meta, {"Y": y, "H": h}))
    parts = encode(Kind.FRAME, 12, {"Y": y}, {"seq": 12})
    snk._post(port, pmt.deserialize_str(wire_form_bytes(parts[:2])))  # malformed: a part missing
    snk._post(port, wire_message(13, {"seq": 13, "c": 1j}, {"Y": y}))  # fell back: bad_meta at the sink
    snk._post(port, wire_message(14, {"seq": 14}, {"Y": y}))
    tb.start()
    got = []
    for _ in range(2):
        assert pull.poll(5000)
        got.append(pull.recv_multipart())
    tb.stop()
    tb.wait()
    pull.close()
    assert got[0] == encode(Kind.FRAME, 11, {"Y": y, "H": h}, meta)
    assert decode(got[1]).seq == 14
    assert snk.counters() == {"sent": 2, "error_malformed": 1, "error_bad_meta": 1}


# ------------------------------------------------------------------ LinkClient against a scripted peer
class ScriptedFlowgraph:
    """A stand-in for a flowgraph (pure pyzmq): PULL bound for tensors, PUSH bound for frames."""

    def __init__(self):
        ctx = zmq.Context.instance()
        self.pull, self.tensor_endpoint = bind_random(ctx, zmq.PULL)
        self.push, self.frame_endpoint = bind_random(ctx, zmq.PUSH, send_timeout_ms=2000)

    def recv_seqs(self, n: int) -> list[int]:
        out = []
        for _ in range(n):
            assert self.pull.poll(5000)
            msg = decode(self.pull.recv_multipart())
            assert msg.kind == Kind.TENSOR
            out.append(msg.seq)
        return out

    def frame(self, seq: int) -> None:
        values = np.full(2, seq, np.float32)
        self.push.send_multipart(encode(Kind.FRAME, seq, {"values": values}, {"seq": seq}))

    def close(self):
        self.pull.close()
        self.push.close()


def test_link_books_drop_reorder_duplicate_unexpected_late_and_garbage():
    peer = ScriptedFlowgraph()
    with LinkClient(peer.tensor_endpoint, peer.frame_endpoint, timeout_s=0.5, first_seq=10) as link:
        sent = [link.send(np.zeros(2, np.float32)) for _ in range(6)]
        assert sent == list(range(10, 16)) and peer.recv_seqs(6) == sent
        for seq in (10, 12, 11, 12, 99):  # 11 out of order, 12 twice, 99 never sent
            peer.frame(seq)
        peer.push.send_multipart([b"garbage"])
        peer.push.send_multipart(encode(Kind.STATS, 0, None, {"dropped_backpressure": 0}))
        peer.frame(14)
        peer.frame(15)  # 13 is deliberately dropped
        delivered = []
        while link.in_flight():
            msg = link.receive(timeout_s=2.0)
            if msg is not None:
                delivered.append(msg.seq)
                np.testing.assert_array_equal(msg.tensors["values"], [msg.seq, msg.seq])
        assert delivered == [10, 12, 11, 14, 15]
        peer.frame(13)  # too late: stays lost
        deadline = time.monotonic() + 5
        while link.accounting.late == 0:
            assert link.receive(timeout_s=0.1) is None and time.monotonic() < deadline
        acct = link.accounting
        assert acct.lost_seqs == [13]
        assert acct.summary() == {"sent": 6, "delivered": 5, "lost": 1, "in_flight": 0, "late": 1,
                                  "duplicates": 1, "out_of_order": 1, "unexpected": 1}
        assert link.decode_errors == 1 and link.last_stats == {"dropped_backpressure": 0}
    peer.close()


def test_link_receive_ready_takes_every_queued_frame_and_waits_for_none_more():
    """receive_ready: the delivering frames already queued, in arrival order, booked as receive books
    them (a duplicate and garbage among them skipped); [] after its timeout when none comes."""
    peer = ScriptedFlowgraph()
    with LinkClient(peer.tensor_endpoint, peer.frame_endpoint, timeout_s=5.0) as link:
        sent = [link.send(np.zeros(2, np.float32)) for _ in range(5)]
        assert peer.recv_seqs(5) == sent
        for seq in (2, 0, 2, 1):
            peer.frame(seq)
        peer.push.send_multipart([b"garbage"])
        time.sleep(0.3)  # all queued at the client
        assert [m.seq for m in link.receive_ready(timeout_s=2.0)] == [2, 0, 1]
        assert link.accounting.duplicates == 1 and link.decode_errors == 1
        assert link.receive_ready(timeout_s=0.2) == []
        peer.frame(4)
        assert [m.seq for m in link.receive_ready(timeout_s=2.0)] == [4]
        assert link.accounting.summary()["in_flight"] == 1
    peer.close()


def test_link_receive_ready_books_what_is_queued_behind_the_first_as_receive_does():
    """The frames queued behind the first are read without waiting but booked as receive books them:
    expired seqs counted lost first (a FRAME for one is late), STATS kept, an unknown seq unexpected."""
    peer = ScriptedFlowgraph()
    with LinkClient(peer.tensor_endpoint, peer.frame_endpoint, timeout_s=1.0) as link:
        old = [link.send(np.zeros(2, np.float32)) for _ in range(2)]
        time.sleep(1.2)  # seqs 0 and 1 are past their timeout
        fresh = link.send(np.zeros(2, np.float32))
        assert peer.recv_seqs(3) == [*old, fresh]
        peer.frame(fresh)
        peer.frame(old[0])
        peer.push.send_multipart(encode(Kind.STATS, 0, None, {"frames": 3}))
        peer.frame(77)
        time.sleep(0.2)  # all queued at the client
        assert [m.seq for m in link.receive_ready(timeout_s=2.0)] == [fresh]
        assert link.accounting.summary() == {"sent": 3, "delivered": 1, "lost": 2, "in_flight": 0, "late": 1,
                                             "duplicates": 0, "out_of_order": 0, "unexpected": 1}
        assert link.accounting.lost_seqs == old and link.last_stats == {"frames": 3}
    peer.close()


def test_link_stream_keeps_at_most_window_in_flight_and_books_every_seq():
    peer = ScriptedFlowgraph()
    dropped = {3, 7}
    stop = threading.Event()

    def echo():  # answers every tensor except the dropped ones
        while not stop.is_set():
            if peer.pull.poll(20):
                seq = decode(peer.pull.recv_multipart()).seq
                if seq not in dropped:
                    peer.frame(seq)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    with LinkClient(peer.tensor_endpoint, peer.frame_endpoint, window=3, timeout_s=0.5) as link:
        peaks = []
        send = link.send

        def spy(*args, **kwargs):
            seq = send(*args, **kwargs)
            peaks.append(link.in_flight())
            return seq

        link.send = spy
        got = [m.seq for m in link.stream(np.full(2, i, np.float32) for i in range(12))]
        summary = link.finish()
    stop.set()
    thread.join()
    peer.close()
    assert max(peaks) <= 3 and len(peaks) == 12
    assert sorted(got) == sorted(set(range(12)) - dropped)
    assert sorted(link.accounting.lost_seqs) == sorted(dropped)
    assert summary["sent"] == 12 and summary["delivered"] == 10 and summary["lost"] == 2


def test_link_send_times_out_when_nobody_takes_tensors():
    ctx = zmq.Context.instance()
    pull, endpoint = bind_random(ctx, zmq.PULL, hwm=1)
    pull.close()  # the port is free again: nobody listens
    with LinkClient(endpoint, endpoint, hwm=1, send_timeout_ms=50) as link:
        with pytest.raises(TimeoutError):
            for _ in range(100):  # fills the connecting socket's queue, then must time out
                link.send(np.zeros(1, np.float32))
        sent = link.accounting.sent
        assert link.next_seq == sent  # the refused tensor did not use up a seq
        assert link.finish() == {"sent": sent, "delivered": 0, "lost": sent, "in_flight": 0, "late": 0,
                                 "duplicates": 0, "out_of_order": 0, "unexpected": 0}


def test_loss_accounting_invariant_under_random_events():
    rng = np.random.default_rng(5)
    acct = LossAccounting()
    fate: dict[int, str] = {}
    now = 0.0
    for seq in range(300):
        acct.on_send(seq, now)
        now += 0.01
        for _ in range(int(rng.integers(0, 3))):  # arrivals of random seqs, some repeated, some unknown
            s = int(rng.integers(0, seq + 20))
            if acct.on_receive(s):
                assert s not in fate
                fate[s] = "delivered"
        for s in acct.expire(now, timeout_s=0.5):
            assert s not in fate
            fate[s] = "lost"
        assert acct.sent == acct.delivered + acct.lost + acct.in_flight
    for s in acct.close_books():
        fate[s] = "lost"
    assert sorted(fate) == list(range(300))
    assert acct.delivered == sum(v == "delivered" for v in fate.values()) > 0
    assert acct.lost == sum(v == "lost" for v in fate.values()) == len(acct.lost_seqs) > 0
    assert acct.duplicates + acct.late + acct.unexpected > 0
    with pytest.raises(ValueError):
        acct.on_send(5, now)  # a seq is never reused


def test_expiry_follows_send_order_even_for_an_earlier_clock_reading():
    """expire() walks the pending seqs in send order and stops at the first that has not expired; a
    send booked with an earlier time than the one before it counts from that one's time."""
    acct = LossAccounting()
    acct.on_send(0, 10.0)
    acct.on_send(1, 5.0)  # earlier than seq 0: taken as 10.0
    acct.on_send(2, 10.3)
    assert acct.on_receive(0)
    assert acct.expire(10.45, timeout_s=0.5) == []
    assert acct.expire(10.6, timeout_s=0.5) == [1]
    assert acct.expire(10.9, timeout_s=0.5) == [2] and acct.in_flight == 0


def test_loss_accounting_memory_is_bounded_and_recent_fates_are_kept(monkeypatch):
    """A long run keeps the fate of the last SETTLED_MEMORY seqs only (it kept one set entry per frame
    forever); within that memory duplicates, late frames and reused seqs are still told apart."""
    monkeypatch.setattr(LossAccounting, "SETTLED_MEMORY", 100)
    acct = LossAccounting()
    for seq in range(1000):
        acct.on_send(seq, float(seq))
        if seq % 10 == 3:
            acct.expire(float(seq) + 2.0, timeout_s=1.0)  # seq is lost
        else:
            assert acct.on_receive(seq)
    assert len(acct._settled) == 100
    assert (acct.delivered, acct.lost, len(acct.lost_seqs)) == (900, 100, 100)  # every loss listed
    assert not acct.on_receive(999) and acct.duplicates == 1
    assert not acct.on_receive(993) and acct.late == 1
    assert not acct.on_receive(5) and acct.unexpected == 1  # settled long ago: forgotten
    with pytest.raises(ValueError, match="already sent"):
        acct.on_send(950, 2000.0)


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_the_documented_minimal_client_works_against_a_real_bridge(implementation):
    """Runs the client snippet of docs/wire-protocol.md (ports swapped for free ones) against
    tensor_source -> tensor_sink, so that the document stays true."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "wire-protocol.md").read_text()
    code = doc.split("A minimal client with only pyzmq and numpy:\n\n```python\n", 1)[1].split("```", 1)[0]
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", implementation=implementation)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=2000, implementation=implementation)
    tb.msg_connect((src, "tensors"), (snk, "frames"))
    tb.start()
    code = code.replace("tcp://127.0.0.1:5555", src.endpoint())
    code = code.replace("tcp://127.0.0.1:5556", snk.endpoint())
    scope: dict = {}
    try:
        exec(compile(code, "wire-protocol.md", "exec"), scope)
    finally:
        tb.stop()
        tb.wait()
        if "ctx" in scope:
            scope["ctx"].destroy(linger=0)
    assert (scope["magic"], scope["version"], scope["kind"], scope["seq"]) == (b"SCOM", 1, int(Kind.FRAME), 7)
    np.testing.assert_array_equal(scope["tensors"]["x"], scope["x"])


# ------------------------------------------------------------------ the compiled bridge vs the Python one
# The compiled blocks' decoder and encoder (semcom_python.decode_tensor_message / encode_frame_message)
# are second implementations of tensor_source.source_message and tensor_sink.frame_parts: the same
# reason for every message of the corpus (every row of the wire protocol's error table), the same PMT
# node for node, the same FRAME byte for byte.
needs_compiled = pytest.mark.skipif(not COMPILED, reason="gr-semcom built without its compiled bridge")


def _spec_json(specs, meta=None, **extra) -> bytes:
    return json.dumps({"tensors": specs, "meta": {} if meta is None else meta, **extra}).encode()


X34 = np.arange(12, dtype=np.float32).reshape(3, 4)
GOOD = _good_parts(100)
SPEC_X = {"name": "x", "dtype": "float32", "shape": [3, 4]}
SOURCE_CORPUS = {
    # valid: every wire dtype, 0-d and empty tensors, several tensors, meta of every JSON type
    **{f"dtype_{name}": encode(Kind.TENSOR, 5, {"t": (np.arange(6) - 2).astype(name).reshape(2, 3)})
       for name in DTYPES},
    "0d_and_empty": encode(Kind.TENSOR, 6, {"s": np.array(2.5, np.float64), "e": np.zeros((2, 0), np.int8)}),
    "no_tensors": encode(Kind.TENSOR, 7, {}, {"only": "meta"}),
    "meta_types": encode(Kind.TENSOR, 2**64 - 1, {"x": X34}, {
        "i": -(2**63), "u": 2**64 - 1, "i32": 2**31, "f": -0.1, "exp": 1e300, "t": True, "n": None,
        "s": "zf é \u2603 \U0001F600", "list": [1, [2.5, "x"], {}], "nested": {"a": {"b": [False]}},
        "empty": {}, "seq": "replaced in its place", "z": 0}),
    "meta_omitted": [GOOD[0], json.dumps({"tensors": [SPEC_X]}).encode(), GOOD[2]],
    "whitespace_and_key_order": [GOOD[0], b' \n{ "meta" : {"b":1,"a":2,"b":3},\t"tensors":[{"shape":[3,4],'
                                 b'"dtype":"float32","name":"x","extra":0}]}\r\n', GOOD[2]],
    "big_negative_zero": [GOOD[0], _spec_json([SPEC_X], {"z": -0.0, "e": 1e-7, "big": 1.5e16}), GOOD[2]],
    # oversized / truncated / bad_magic / bad_version
    "oversized": [*GOOD[:2], b"\0" * 300_000],
    "truncated_part_count": GOOD[:2],
    "truncated_short_header": [GOOD[0][:15], *GOOD[1:]],
    "truncated_magic_only": [b"SCOM", *GOOD[1:]],
    "bad_magic": [b"NOPE" + GOOD[0][4:], *GOOD[1:]],
    "bad_magic_short": [b"SC", *GOOD[1:]],
    "bad_magic_long_header": [GOOD[0] + b"\0", *GOOD[1:]],
    "bad_version": [HEADER.pack(b"SCOM", 9, 1, 1, 100), *GOOD[1:]],
    "bad_version_long_header": [HEADER.pack(b"SCOM", 2, 1, 1, 100) + b"\0" * 8, *GOOD[1:]],
    # bad_kind: unknown, and valid kinds that are not for tensor_source (checked after the whole decode)
    "bad_kind_unknown": [HEADER.pack(b"SCOM", 1, 9, 1, 100), *GOOD[1:]],
    "bad_kind_frame": [HEADER.pack(b"SCOM", 1, int(Kind.FRAME), 1, 100), *GOOD[1:]],
    "bad_kind_stats": encode(Kind.STATS, 3, None, {"sent": 4}),
    "frame_with_bad_json_is_bad_json": [HEADER.pack(b"SCOM", 1, int(Kind.FRAME), 1, 100), b"{", GOOD[2]],
    # bad_json, every form of the table
    "not_json": [GOOD[0], b"this is not json", GOOD[2]],
    "not_an_object": [GOOD[0], b"[1, 2]", GOOD[2]],
    "tensors_missing": [GOOD[0], b'{"meta": {}}', GOOD[2]],
    "tensors_not_a_list": [GOOD[0], _spec_json(SPEC_X), GOOD[2]],
    "tensors_count": [GOOD[0], _spec_json([SPEC_X, SPEC_X]), GOOD[2]],
    "spec_not_object": [GOOD[0], _spec_json(["x"]), GOOD[2]],
    "spec_without_shape": [GOOD[0], _spec_json([{"name": "x", "dtype": "float32"}]), GOOD[2]],
    "name_not_str": [GOOD[0], _spec_json([{**SPEC_X, "name": 3}]), GOOD[2]],
    "dtype_not_str": [GOOD[0], _spec_json([{**SPEC_X, "dtype": None}]), GOOD[2]],
    "shape_not_list": [GOOD[0], _spec_json([{**SPEC_X, "shape": 12}]), GOOD[2]],
    "shape_float": [GOOD[0], _spec_json([{**SPEC_X, "shape": [3.0, 4]}]), GOOD[2]],
    "shape_bool": [GOOD[0], _spec_json([{**SPEC_X, "shape": [True, 12]}]), GOOD[2]],
    "repeated_name": encode(Kind.TENSOR, 1, {"x": X34, "y": X34})[:1]
    + [_spec_json([SPEC_X, SPEC_X]), GOOD[2], GOOD[2]],
    "meta_not_object": [GOOD[0], _spec_json([SPEC_X], meta=[1]), GOOD[2]],
    "meta_null": [GOOD[0], _spec_json([SPEC_X], meta=None).replace(b'"meta": {}', b'"meta": null'), GOOD[2]],
    "nan_literal": [GOOD[0], _spec_json([SPEC_X], {"v": float("nan")}), GOOD[2]],
    "infinity_literal": [GOOD[0], _spec_json([SPEC_X], {"v": float("-inf")}), GOOD[2]],
    "deep_nesting": [GOOD[0], b'{"tensors": [], "meta": {"a": ' + b"[" * 50_000 + b"]" * 50_000 + b"}}",
                     *GOOD[2:]],
    "byte_order_mark": [GOOD[0], b"\xef\xbb\xbf" + GOOD[1], GOOD[2]],
    "not_utf8": [GOOD[0], GOOD[1].replace(b'"x"', b'"\xff"'), GOOD[2]],
    "trailing_data": [GOOD[0], GOOD[1] + b" {}", GOOD[2]],
    "control_char_in_string": [GOOD[0], GOOD[1].replace(b'"x"', b'"\x01"'), GOOD[2]],
    # bad_dtype, shape_mismatch (in the order of the tensors)
    "bad_dtype": [GOOD[0], _spec_json([{**SPEC_X, "dtype": "U8"}]), GOOD[2]],
    "bad_dtype_int16": [GOOD[0], _spec_json([{**SPEC_X, "dtype": "int16"}]), GOOD[2]],
    "dtype_before_a_later_json_error": [HEADER.pack(b"SCOM", 1, 1, 2, 1),
                                        _spec_json([{**SPEC_X, "dtype": "U8"}, {"name": 1}]), GOOD[2], b""],
    "shape_mismatch_size": [*GOOD[:2], GOOD[2] + b"\0\0\0\0"],
    "shape_mismatch_negative": [GOOD[0], _spec_json([{**SPEC_X, "shape": [-3, -4]}]), GOOD[2]],
    "shape_mismatch_huge_dim": [GOOD[0], _spec_json([{**SPEC_X, "shape": [2**70, 4]}]), GOOD[2]],
    "shape_mismatch_wraps_64_bits": [GOOD[0], _spec_json([{**SPEC_X, "shape": [2**62, 16, 3]}]), GOOD[2]],
    # bad_meta: no PMT form
    "bad_meta_big_int": [GOOD[0], _spec_json([SPEC_X], {"n": 2**70}), GOOD[2]],
    "bad_meta_big_negative": [GOOD[0], _spec_json([SPEC_X], {"n": [-(2**63) - 1]}), GOOD[2]],
    "bad_meta_long_string": [GOOD[0], _spec_json([SPEC_X], {"s": "a" * 70_000}), GOOD[2]],
}


# The reason of each bad message of the corpus (docs/wire-protocol.md's table); the others are valid.
SOURCE_REASONS = {
    "oversized": "oversized", "truncated_part_count": "truncated", "truncated_short_header": "truncated",
    "truncated_magic_only": "truncated", "bad_magic": "bad_magic", "bad_magic_short": "bad_magic",
    "bad_magic_long_header": "bad_magic", "bad_version": "bad_version",
    "bad_version_long_header": "bad_version",
    "bad_kind_unknown": "bad_kind", "bad_kind_frame": "bad_kind", "bad_kind_stats": "bad_kind",
    **{case: "bad_json" for case in (
        "frame_with_bad_json_is_bad_json", "not_json", "not_an_object", "tensors_missing",
        "tensors_not_a_list",
        "tensors_count", "spec_not_object", "spec_without_shape", "name_not_str", "dtype_not_str",
        "shape_not_list", "shape_float", "shape_bool", "repeated_name", "meta_not_object", "meta_null",
        "nan_literal", "infinity_literal", "deep_nesting", "byte_order_mark", "not_utf8", "trailing_data",
        "control_char_in_string")},
    "bad_dtype": "bad_dtype", "bad_dtype_int16": "bad_dtype", "dtype_before_a_later_json_error": "bad_dtype",
    "shape_mismatch_size": "shape_mismatch", "shape_mismatch_negative": "shape_mismatch",
    "shape_mismatch_huge_dim": "shape_mismatch", "shape_mismatch_wraps_64_bits": "shape_mismatch",
    "bad_meta_big_int": "bad_meta", "bad_meta_big_negative": "bad_meta", "bad_meta_long_string": "bad_meta",
}


@needs_compiled
@pytest.mark.parametrize("case", sorted(SOURCE_CORPUS))
def test_compiled_source_decodes_as_the_python_source(case):
    from gnuradio.semcom.tensor_source import source_message

    parts = SOURCE_CORPUS[case]
    reason, _, expected = source_message(parts, max_message_bytes=200_000)
    got_reason, got = semcom.semcom_python.decode_tensor_message(parts, 200_000)
    assert got_reason == reason
    if reason:
        assert got is None
    else:
        assert pmt.equal(got, expected)
        meta, tensors = parse_tensor_message(got)
        assert list(meta) == list(parse_tensor_message(expected)[0])  # the same key order
    assert reason == SOURCE_REASONS.get(case, ""), "the corpus covers the error table"


def _dict_form(meta, tensors):
    return tensor_message(meta, tensors)


def _pmt_dict(**items) -> pmt.pmt_base:
    """A PMT dict of these PMT values, keys in this order (as messages.py reads it back)."""
    out = pmt.make_dict()
    for key, value in items.items():
        out = pmt.dict_add(out, pmt.intern(key), value)
    return out


F16 = np.array([0.5, -2, 65504], np.float16)
SINK_CORPUS = {
    **{f"dtype_{name}": _dict_form({"seq": 4}, {"t": (np.arange(6) % 5).astype(name).reshape(3, 2)})
       for name in SUPPORTED_DTYPES},  # the PMT-only dtypes (int16, uint64, bool, ...) are bad_dtype
    "wire_form": wire_message(11, RX_META, {"Y": Y, "H": H}),
    "wire_form_missing_part": pmt.deserialize_str(
        wire_form_bytes(encode(Kind.FRAME, 1, {"Y": Y}, {"seq": 1})[:2])),
    "wire_form_not_frame": pmt.deserialize_str(
        wire_form_bytes(encode(Kind.TENSOR, 1, {"Y": Y}, {"seq": 1}))),
    "receiver_meta": _dict_form(RX_META, {"Y": Y, "H": H, "f16": F16}),
    "floats": _dict_form({"seq": 0, "v": [0.1, -0.0, 1e16, 1e15 + 0.5, 1e-4, 1e-5, 1.5e-7, 5e-324,
                                          1.7976931348623157e308, 123456789.125, 2.0**-1074 * 3, 1 / 3]}, {}),
    "strings": _dict_form({"seq": 1, "s": 'q"\\\n\r\t\b\f\x01\x7f é \u2028 \U0001F600', "k": {"é": 1}}, {}),
    "pmt_shapes_of_meta": tensor_message({"seq": 2, "tup": (1, "a", None), "arr": np.arange(3)}, {}),
    "uniform_vector_in_meta": _pmt_dict(
        meta=_pmt_dict(seq=pmt.from_long(3), v=pmt.init_f32vector(2, [0.1, 2.5]),
                       s=pmt.init_s16vector(2, [-1, 7])),
        tensors=pmt.PMT_NIL, shapes=pmt.PMT_NIL),
    "no_seq": _dict_form({"no": "seq"}, {"Y": Y}),
    "negative_seq": _dict_form({"seq": -1}, {"Y": Y}),
    "bool_seq": _dict_form({"seq": True}, {"Y": Y}),
    "float_seq": _dict_form({"seq": 1.0}, {"Y": Y}),
    "u64_seq": _dict_form({"seq": 2**64 - 1}, {"x": X34}),
    "complex_meta": _dict_form({"seq": 7, "c": 1j}, {"Y": Y}),
    "nan_meta": _dict_form({"seq": 7, "v": [float("nan")]}, {"Y": Y}),
    "int_and_bool_keys": _pmt_dict(meta=pmt.to_pmt({"seq": 1, 5: "five", True: 2, 2.5: 1}),
                                   tensors=pmt.PMT_NIL, shapes=pmt.PMT_NIL),
    "not_a_dict": pmt.intern("not a tensor message"),
    "nil": pmt.PMT_NIL,
    "pdu": pmt.cons(pmt.make_dict(), pmt.init_u8vector(2, [1, 2])),
    "lacks_shapes": pmt.to_pmt({"meta": {"seq": 1}, "tensors": {}}),
    "tensor_not_vector": pmt.to_pmt({"meta": {"seq": 1}, "tensors": {"x": 3}, "shapes": {"x": [1]}}),
    "shape_does_not_match": pmt.to_pmt({"meta": {"seq": 1}, "tensors": {"x": np.ones(3, np.float32)},
                                        "shapes": {"x": [2]}}),
    "dtype_does_not_match": pmt.to_pmt({"meta": {"seq": 1}, "tensors": {"x": np.ones(3, np.float32)},
                                        "shapes": {"x": [3]}, "dtypes": {"x": "complex64"}}),
    "int_tensor_name": pmt.to_pmt({"meta": {"seq": 1}, "tensors": {4: np.ones(3, np.float32)},
                                   "shapes": {4: [3]}}),
}


@needs_compiled
@pytest.mark.parametrize("case", sorted(SINK_CORPUS))
def test_compiled_sink_encodes_as_the_python_sink(case):
    from gnuradio.semcom.tensor_sink import frame_parts

    msg = SINK_CORPUS[case]
    reason, _, _, parts = frame_parts(msg)
    got_reason, got = semcom.semcom_python.encode_frame_message(msg)
    assert got_reason == reason
    if reason:
        assert got is None
    else:
        assert got == [bytes(p) for p in parts]
    assert reason == SINK_REASONS.get(case, ""), "the corpus covers what the sink counts"


SINK_REASONS = {
    **{f"dtype_{name}": "bad_dtype" for name in ("int16", "uint16", "uint32", "uint64", "bool")},
    **{case: "malformed" for case in (
        "wire_form_missing_part", "wire_form_not_frame", "no_seq", "negative_seq", "bool_seq", "float_seq",
        "not_a_dict", "nil", "pdu", "lacks_shapes", "tensor_not_vector", "shape_does_not_match",
        "dtype_does_not_match")},
    "complex_meta": "bad_meta", "nan_meta": "bad_meta", "int_tensor_name": "bad_json",
}


@needs_compiled
@pytest.mark.parametrize("make", [semcom.tensor_source, semcom.tensor_sink])
def test_compiled_block_binds_the_same_port_again_after_stop(make):
    """stop() closes the socket, start() binds the port peers know again (waiting while ZeroMQ's I/O
    thread still holds the closed socket's port); as bridge_socket.BoundSocket._reopen does."""
    block = make("tcp://127.0.0.1:*", implementation="cxx")
    endpoint = block.endpoint()
    assert endpoint.startswith("tcp://127.0.0.1:") and not endpoint.endswith(":*")
    block.stop()
    holder = zmq.Context.instance().socket(zmq.PULL)
    deadline = time.monotonic() + 2.0
    while True:  # the port taken when start() comes
        try:
            holder.bind(endpoint)
            break
        except zmq.ZMQError:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    release = threading.Timer(0.2, lambda: holder.close(linger=0))
    release.start()
    try:
        assert block.start()
        assert block.endpoint() == endpoint
    finally:
        release.join()
        block.stop()


def test_implementation_choice_and_its_errors(monkeypatch):
    source = semcom.tensor_source("tcp://127.0.0.1:*", implementation="python")
    assert type(source).__name__ == "tensor_source_python"
    monkeypatch.setenv("SEMCOM_BRIDGE", "python")
    assert type(semcom.tensor_sink("tcp://127.0.0.1:*")).__name__ == "tensor_sink_python"
    with pytest.raises(ValueError, match="implementation"):
        semcom.tensor_sink("tcp://127.0.0.1:*", implementation="rust")
    if COMPILED:
        sink = semcom.tensor_sink("tcp://127.0.0.1:*", implementation="cxx")
        assert type(sink).__name__ == "tensor_sink_fast"
        with pytest.raises(ValueError, match="hwm"):
            semcom.tensor_source("tcp://127.0.0.1:*", hwm=0, implementation="cxx")


def test_both_implementations_count_the_same_error_corpus():
    """The bad inputs of BAD_INPUTS and the source corpus through running blocks of each implementation:
    the same counters."""
    if not COMPILED:
        pytest.skip("gr-semcom built without its compiled bridge")
    counters = {}
    for implementation in ("python", "cxx"):
        tb = gr.top_block()
        src = semcom.tensor_source("tcp://127.0.0.1:*", max_message_bytes=200_000,
                                   implementation=implementation)
        dbg = blocks.message_debug()
        tb.msg_connect((src, "tensors"), (dbg, "store"))
        tb.start()
        push = _raw_push(src.endpoint())
        corpus = [make(_good_parts(1)) for make in BAD_INPUTS.values()] + list(SOURCE_CORPUS.values())
        for parts in corpus:
            push.send_multipart(parts)
        deadline = time.monotonic() + 10
        while src.counters().get("received", 0) < len(corpus):
            assert time.monotonic() < deadline, src.counters()
            time.sleep(0.02)
        tb.stop()
        tb.wait()
        push.close()
        counters[implementation] = src.counters()
    assert counters["python"] == counters["cxx"]
    assert counters["cxx"]["received"] == len(corpus) and counters["cxx"]["error_bad_json"] > 10


@needs_compiled
def test_compiled_source_started_twice_receives_each_message_once():
    """start() on a running source stops its receive thread first (it used to wait for it forever)."""
    src = semcom.tensor_source("tcp://127.0.0.1:*", implementation="cxx")
    src.start()
    src.start()
    push = _raw_push(src.endpoint())
    push.send_multipart(_good_parts(1))
    deadline = time.monotonic() + 5
    while src.counters().get("received", 0) < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    src.stop()
    push.close()
    assert src.counters() == {"received": 1, "posted": 1}


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
def test_sink_keeps_the_order_of_frames_that_had_to_wait_for_the_host(implementation):
    """Frames that find no room at the host wait in the sink (the compiled one sends a frame at once on
    the publisher's thread only while nothing waits): all sent, in order, once the host connects."""
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", implementation=implementation)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=3000, implementation=implementation)
    tb.msg_connect((src, "tensors"), (snk, "frames"))
    tb.start()
    push = _raw_push(src.endpoint())
    for seq in range(6):  # no host yet: the first frame waits, the others queue behind it
        push.send_multipart(_good_parts(seq))
    time.sleep(0.3)
    pull = zmq.Context.instance().socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect(snk.endpoint())
    for seq in range(6, 9):  # at once, while the waiting frames may still be going out: never before them
        push.send_multipart(_good_parts(seq))
    got = []
    for _ in range(9):
        assert pull.poll(5000)
        got.append(decode(pull.recv_multipart()).seq)
    tb.stop()
    tb.wait()
    push.close()
    pull.close()
    assert got == list(range(9))
    assert snk.counters() == {"sent": 9}
