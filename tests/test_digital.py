"""The digital baseline: gr-fec + gr-digital OFDM through the SISO mimo_channel, packet accounting,
message framing, the PER table, the payloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("gnuradio.digital")
pytest.importorskip("gnuradio.fec")

from gnuradio import blocks, digital, gr  # noqa: E402

from semcom.digital import DigitalConfig, DigitalLink, PerTable, reassemble, to_packets  # noqa: E402
from semcom.digital.messages import decode_jpeg, jpeg_bytes, send_messages, summary_text  # noqa: E402
from semcom.digital.ofdm import CRC_BYTES, crc32_le, make_packets, n_data_carriers  # noqa: E402

gr.logging().set_default_level(gr.log_levels.warn)


def _random_packets(n: int, cfg: DigitalConfig, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    payloads = np.random.default_rng(seed).integers(0, 256, (n, cfg.payload_bytes), dtype=np.uint8)
    return make_packets(np.arange(n, dtype=np.uint32), payloads), payloads


def test_high_snr_every_packet_arrives_bit_exact():
    link = DigitalLink()
    packets, payloads = _random_packets(24, link.cfg)
    res = link.run(packets, 30.0, "awgn")  # returns only once the flowgraph has stopped by itself
    assert res.counts() == {"sent": 24, "detected": 24, "bad_length": 0, "crc_ok": 24, "crc_fail": 0,
                            "lost": 0}
    assert all(res.packets[k] == payloads[k].tobytes() for k in range(24))


def test_very_low_snr_packets_are_counted_lost():
    link = DigitalLink()
    packets, _ = _random_packets(24, link.cfg, seed=1)
    res = link.run(packets, 0.0, "awgn")
    assert res.crc_ok == 0 and res.lost == 24 and not res.packets
    assert res.crc_ok + res.crc_fail == res.detected  # every packet found is decoded and checked


def test_fading_channel_delivers_only_exact_packets():
    link = DigitalLink()
    packets, payloads = _random_packets(30, link.cfg, seed=2)
    res = link.run(packets, 25.0, "rayleigh", seed=3)
    assert res.crc_ok + res.lost == 30 and res.crc_ok >= 20  # SISO block fading: a few deep fades
    assert all(payloads[k].tobytes() == data for k, data in res.packets.items())


def test_outer_crc_is_the_one_gnu_radio_appends():
    data = np.random.default_rng(4).integers(0, 256, 40, dtype=np.uint8)
    tb = gr.top_block()
    sink = blocks.vector_sink_b()
    tb.connect(blocks.vector_source_b(data.tolist()),
               blocks.stream_to_tagged_stream(gr.sizeof_char, 1, 40, "len"), digital.crc32_bb(False, "len"),
               sink)
    tb.run()
    assert bytes(sink.data()) == data.tobytes() + crc32_le(data.tobytes())


def test_transmit_power_matches_the_project_snr_definition():
    """Unit energy per used resource element under a unitary FFT (docs/ARCHITECTURE.md, SNR)."""
    link = DigitalLink()
    cfg = link.cfg
    packets, _ = _random_packets(3, cfg)
    x = link.tx_samples(packets).reshape(3, cfg.burst_samples)
    sym = cfg.fft_len + cfg.cp_len
    # payload symbols (after 2 sync symbols and the header), CP removed, unitary FFT
    body = x[:, 3 * sym:cfg.samples_per_packet - sym].reshape(3, -1, sym)[:, :, cfg.cp_len:]
    grid = np.fft.fft(body, axis=-1) / np.sqrt(cfg.fft_len)
    energy = np.abs(grid) ** 2
    used = energy.mean(axis=(0, 1)) > 0.5
    assert used.sum() == n_data_carriers() + 4  # 48 data + 4 pilots
    assert np.allclose(energy[..., used], 1.0, atol=1e-4)
    assert np.abs(x[:, cfg.samples_per_packet:]).max() == 0  # the gap is silent


def test_code_rate_and_packet_sizes():
    cfg = DigitalConfig()
    assert cfg.frame_bits == 8 * (4 + cfg.payload_bytes + CRC_BYTES)
    assert cfg.coded_bytes == -(-2 * (cfg.frame_bits + 6) // 8)
    assert 0.49 < cfg.rate < 0.5
    assert cfg.samples_per_packet == (3 + cfg.payload_symbols) * 80


def test_messages_round_trip_and_a_missing_packet_loses_its_message():
    cfg = DigitalConfig()
    msgs = [b"", b"x" * 200, "une sc\u00e8ne".encode(), bytes(range(256)) * 2]
    packets, owner = to_packets(msgs, cfg, first_seq=10)
    assert packets.shape == (len(owner), cfg.info_bytes) and np.bincount(owner).tolist() == [1, 3, 1, 6]
    received = {10 + k: packets[k, 4:].tobytes() for k in range(len(owner))}
    assert reassemble(received, owner, len(msgs), first_seq=10) == msgs
    del received[10 + 2]  # the last packet of message 1
    assert reassemble(received, owner, len(msgs), first_seq=10) == [msgs[0], None, msgs[2], msgs[3]]


def test_messages_through_the_flowgraph():
    link = DigitalLink()
    msgs = [b"there are three objects : a small red cube .", bytes(range(250))]
    got, res = send_messages(link, msgs, 30.0)
    assert got == msgs and res.lost == 0


def test_per_table_interpolates_and_draws_message_losses_at_the_measured_rate():
    rows = [{"channel": "awgn", "snr_db": s, "sent": 100, "lost": lost}
            for s, lost in ((0.0, 100), (10.0, 20), (20.0, 0))]
    table = PerTable(rows)
    assert table.per("awgn", 5.0) == pytest.approx(0.6)
    assert table.per("awgn", 20.0) == 0.0
    with pytest.raises(ValueError):
        table.per("awgn", 25.0)
    with pytest.raises(KeyError):
        table.per("rayleigh", 5.0)
    rng = np.random.default_rng(0)
    ok = table.delivered(np.full(20000, 3), "awgn", 10.0, rng)
    assert ok.mean() == pytest.approx(0.8 ** 3, abs=0.015)  # all 3 packets of a message must arrive
    assert table.delivered(np.array([1, 5]), "awgn", 0.0, rng).tolist() == [False, False]


def test_payloads_summary_text_and_jpeg():
    itos = ["<pad>", "<bos>", "<eos>", "<unk>", "there", "is", "a", "cube"]
    assert summary_text(torch.tensor([1, 4, 5, 6, 7, 2, 0]), itos) == "there is a cube"
    img = torch.zeros(3, 64, 64, dtype=torch.uint8)
    img[0, 10:30, 10:30] = 200
    data = jpeg_bytes(img)
    assert data[:2] == b"\xff\xd8"
    back = decode_jpeg(data, 64)
    assert back.shape == (3, 64, 64) and (back - img.float() / 255).abs().mean() < 0.02
    assert torch.equal(decode_jpeg(None, 64), torch.full((3, 64, 64), 0.5))
