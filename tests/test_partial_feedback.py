"""The partial-sampling feedback message: bit layout, round trips, every malformed case, the ZeroMQ link."""

import pytest

from semcom.partial.feedback import (
    FeedbackError,
    FeedbackLink,
    FeedbackMessage,
    crc8,
    decode,
    index_bits,
    message_bytes,
)


def _with_crc(body: bytes) -> bytes:
    return body + bytes([crc8(body)])


def test_crc8_check_value():
    assert crc8(b"123456789") == 0xF4  # the CRC-8 (poly 0x07) catalogue check value
    assert crc8(b"") == 0


@pytest.mark.parametrize(("grid", "bits"), [(1, 1), (2, 2), (6, 6), (7, 6), (8, 6), (27, 10), (28, 10),
                                            (255, 16)])
def test_index_bits_is_ceil_log2_of_places(grid, bits):
    assert index_bits(grid) == bits


def test_message_size_is_header_positions_padding_and_crc():
    # 20 header bits + 2 x 10 position bits = 40 bits = 5 bytes, + 1 CRC byte.
    assert message_bytes(28, 2) == 6
    # 20 + 4 x 10 = 60 bits -> 8 bytes, + CRC.
    assert message_bytes(28, 4) == 9
    assert message_bytes(7, 1) == 5  # 20 + 6 = 26 bits -> 4 bytes + CRC


def test_known_encoding():
    msg = FeedbackMessage(round=3, grid=28, places=(5, 783))
    data = msg.encode()
    # version 1 | round 3 | agents-1 = 1 | grid 28 = 0x1c | 5 (10 bits) | 783 (10 bits), MSB first.
    bits = "0001" + "0011" + "0001" + "00011100" + format(5, "010b") + format(783, "010b")
    assert data[:-1] == int(bits, 2).to_bytes(5, "big")
    assert data[-1] == crc8(data[:-1])
    assert data.hex(" ") == "13 11 c0 17 0f 79"  # the worked example of docs/wire-protocol.md
    assert decode(data) == msg


@pytest.mark.parametrize("grid", [1, 2, 6, 7, 13, 27, 28, 255])
@pytest.mark.parametrize("agents", [1, 2, 4, 16])
def test_round_trip(grid, agents):
    if agents > grid * grid:
        pytest.skip("more agents than places")
    places = tuple((i * 7919) % (grid * grid) for i in range(agents))
    if len(set(places)) != agents:
        places = tuple(range(agents))
    for rnd in (0, 15):
        msg = FeedbackMessage(round=rnd, grid=grid, places=places)
        data = msg.encode()
        assert len(data) == message_bytes(grid, agents) == msg.n_bytes
        assert decode(data) == msg


def test_constructor_refuses_out_of_range_fields():
    with pytest.raises(ValueError, match="round"):
        FeedbackMessage(round=16, grid=7, places=(0,))
    with pytest.raises(ValueError, match="grid"):
        FeedbackMessage(round=0, grid=0, places=(0,))
    with pytest.raises(ValueError, match="agents"):
        FeedbackMessage(round=0, grid=7, places=tuple(range(17)))
    with pytest.raises(ValueError, match="outside"):
        FeedbackMessage(round=0, grid=7, places=(49,))
    with pytest.raises(ValueError, match="same place"):
        FeedbackMessage(round=0, grid=7, places=(3, 3))


def _reason(data: bytes) -> str:
    with pytest.raises(FeedbackError) as err:
        decode(data)
    assert str(err.value).startswith(f"feedback message {err.value.reason}:")
    return err.value.reason


def test_malformed_messages_get_a_clear_reason():
    good = FeedbackMessage(round=2, grid=28, places=(10, 20)).encode()
    assert _reason(b"") == "empty"
    assert _reason(bytes([0x22]) + good[1:]) == "bad_version"          # version 2
    assert _reason(good[:3]) == "bad_length"
    assert _reason(good[:-1]) == "bad_length"                           # CRC byte cut off
    assert _reason(good + b"\x00") == "bad_length"
    flipped = bytearray(good)
    flipped[3] ^= 0x04
    assert _reason(bytes(flipped)) == "bad_crc"
    # grid 0 in the header (the CRC is right: a sender's bug, not corruption).
    assert _reason(_with_crc(bytes([0x10, 0x00, 0x00, 0x00]))) == "bad_field"


def test_well_checksummed_but_invalid_content_is_refused():
    # Two agents on a 7 x 7 grid (6 bits each): 20 + 12 = 32 bits, no padding.
    def body(p0: int, p1: int) -> bytes:
        v = (1 << 28) | (0 << 24) | (1 << 20) | (7 << 12) | (p0 << 6) | p1
        return v.to_bytes(4, "big")

    assert decode(_with_crc(body(3, 48))).places == (3, 48)
    assert _reason(_with_crc(body(3, 49))) == "bad_field"             # place 49 >= 7 x 7
    assert _reason(_with_crc(body(5, 5))) == "bad_field"              # two agents, one place
    # One agent on 7 x 7: 26 bits + 6 padding bits, which must be zero.
    v = ((1 << 22) | (0 << 18) | (7 << 6) | 9) << 6
    assert decode(_with_crc(v.to_bytes(4, "big"))).places == (9,)
    assert _reason(_with_crc((v | 1).to_bytes(4, "big"))) == "bad_padding"


def test_feedback_link_over_zeromq_counts_bits_and_refuses_malformed():
    with FeedbackLink(timeout_ms=2000) as link:
        assert link.endpoint.startswith("tcp://127.0.0.1:")
        msgs = [FeedbackMessage(round=r, grid=27, places=(r, 100 + r, 700)) for r in range(4)]
        for m in msgs:
            link.send(m)
        assert [link.recv() for _ in msgs] == msgs
        assert link.messages == 4 and link.bits == 4 * 8 * message_bytes(27, 3)
        link.send_bytes(b"\x10\x00")
        with pytest.raises(FeedbackError, match="bad_length"):
            link.recv()
