"""The ZeroMQ bridge in a running flowgraph: every bad input gets a counted error, the flowgraph keeps
running and the next valid frame is delivered; the link client accounts for every sequence number."""

import json
import time

import numpy as np
import pytest
import zmq
from gnuradio import gr, semcom

from semcom.link import LinkClient
from semcom.ofat.frame import make_layout
from semcom.wire import HEADER, Kind, encode

LAYOUT = make_layout("wifi64", n_tx=2, n_rx=2, max_data_symbols=8)


@pytest.fixture
def chain():
    """tensor_source -> ofat_tx -> (wire) -> ofat_rx -> tensor_sink, on random 127.0.0.1 ports."""
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", max_message_bytes=200_000)
    tx = semcom.ofat_tx(LAYOUT)
    rx = semcom.ofat_rx(LAYOUT)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=2000)
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


def test_sink_counts_frames_nobody_takes_as_backpressure():
    tb = gr.top_block()
    tx = semcom.ofat_tx(LAYOUT)
    rx = semcom.ofat_rx(LAYOUT)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", hwm=1, send_timeout_ms=10)
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
