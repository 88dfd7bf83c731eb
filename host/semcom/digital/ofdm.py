"""A conventional digital link built from GNU Radio's own blocks: gr-fec convolutional code + gr-digital OFDM.

One flowgraph per run (``DigitalLink.run``), stopping by itself when the packets have passed::

    vector_source_b (packets: seq + data)          -- semcom packet: 4-byte sequence number + payload
    -> stream_to_tagged_stream -> crc32_bb          -- outer CRC-32 over the information bytes
    -> tag_gate -> unpack_k_bits_bb -> fec.extended_encoder(cc_encoder: K = 7, rate 1/2, [109, 79],
       terminated, padded to whole bytes)
    -> repack_bits_bb (LSB first) -> stream_to_tagged_stream
    -> digital.ofdm_tx (stock: FFT 64, CP 16, 48 data + 4 pilot carriers, BPSK header + payload,
       Schmidl & Cox preamble; it appends its own CRC-32 over the *coded* bytes)
    -> multiply_const (1/sqrt(64): unitary IFFT, so every used resource element carries unit energy)
    -> stream_mux with a null_source (a silent gap after every packet: bursts, as a radio sends them)
    -> tag_gate (the receiver finds the packets itself: no transmitter tags reach it)
    -> semcom.mimo_channel (1 x 1: SISO)
    -> SoftOfdmRx: gr-digital's ofdm_rx receiver chain (sync_sc_cfb, header_payload_demux, chanest,
       simpledfe equalizers, header parser) up to the payload serializer, then the BPSK soft bits
       (Re of the equalised symbol) instead of ofdm_rx's hard decisions and CRC
    -> CodedPayload (drops the 32 soft bits of ofdm_tx's inner CRC; the outer code protects the packet)
    -> fec.extended_decoder(cc_decoder, soft Viterbi) -> pack_k_bits_bb
    -> PacketSink (outer CRC-32 check; a packet is delivered when its CRC holds)

Why not the stock ``ofdm_rx``: it checks ofdm_tx's CRC on the hard-decided *coded* bits and drops the
packet at the first bit error, before any decoder could correct it. Every sent packet is counted:
``detected`` (its OFDM header was found and parsed with the expected length), ``crc_ok`` (delivered),
``lost = sent - crc_ok`` (missed sync / header, wrong length, or decoding errors).

SNR: the project's definition (docs/ARCHITECTURE.md): unit energy per used resource element, noise
variance per complex sample = per resource element = 10^(-SNR/10), measured in-band per subcarrier.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from gnuradio import analog, blocks, digital, fec, fft, gr

PACKET_LEN_KEY = "packet_len"
FRAME_LEN_KEY = "frame_len"
PACKET_NUM_KEY = "packet_num"
SEQ_BYTES = 4
CRC_BYTES = 4
CHANNELS = ("awgn", "rayleigh")


@dataclass(frozen=True)
class DigitalConfig:
    """The link's parameters. ``payload_bytes`` of data per packet (after the 4-byte sequence number);
    ``cc_k``, ``cc_polys``: the convolutional code (rate 1/len(polys), terminated); BPSK (1 bit per
    symbol) on header and payload, as ofdm_tx's defaults."""

    payload_bytes: int = 92
    fft_len: int = 64
    cp_len: int = 16
    cc_k: int = 7
    cc_polys: tuple[int, ...] = (109, 79)
    gap_samples: int = 400
    # Schmidl & Cox plateau threshold. GNU Radio's default (0.9) needs (S/(S+N))^2 > 0.9 in the time
    # domain, i.e. about 13 dB here: the packets would be lost to sync long before the code fails.
    sync_threshold: float = 0.5

    @property
    def info_bytes(self) -> int:
        """Bytes the outer CRC covers: sequence number + payload."""
        return SEQ_BYTES + self.payload_bytes

    @property
    def frame_bits(self) -> int:
        """Information bits per code frame: sequence number + payload + outer CRC."""
        return 8 * (self.info_bytes + CRC_BYTES)

    @property
    def rate(self) -> float:
        """Code rate including termination and byte padding: frame bits / coded bits."""
        return self.frame_bits / (8 * self.coded_bytes)

    @property
    def coded_bytes(self) -> int:
        """ofdm_tx's input per packet: the terminated code word, padded to whole bytes."""
        bits = len(self.cc_polys) * (self.frame_bits + self.cc_k - 1)
        return math.ceil(bits / 8)

    @property
    def payload_symbols(self) -> int:
        """OFDM payload symbols per packet (coded bytes + ofdm_tx's CRC, BPSK on 48 data carriers)."""
        return math.ceil(8 * (self.coded_bytes + CRC_BYTES) / n_data_carriers())

    @property
    def samples_per_packet(self) -> int:
        """Complex samples (= channel uses) per packet: 2 sync symbols + 1 header + payload, each with CP."""
        return (3 + self.payload_symbols) * (self.fft_len + self.cp_len)

    @property
    def burst_samples(self) -> int:
        """Channel uses per packet including the silent gap after it."""
        return self.samples_per_packet + self.gap_samples

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(cc_polys=list(self.cc_polys), code_rate=self.rate, coded_bytes=self.coded_bytes,
                 samples_per_packet=self.samples_per_packet, burst_samples=self.burst_samples,
                 payload_symbols=self.payload_symbols)
        return d


@functools.cache
def n_data_carriers() -> int:
    """Data carriers of gr-digital's default OFDM allocation (48 of 64; 4 pilots); read once."""
    return len(digital.ofdm_tx().occupied_carriers[0])


def crc32_le(data: bytes) -> bytes:
    """The CRC-32 that ``digital.crc32_bb`` appends (zlib's polynomial), little-endian."""
    return zlib.crc32(data).to_bytes(CRC_BYTES, "little")


def make_packets(seqs: np.ndarray, payloads: np.ndarray) -> np.ndarray:
    """seqs (N,) uint32, payloads (N, payload_bytes) uint8 -> (N, 4 + payload_bytes) uint8 packets."""
    head = np.asarray(seqs, dtype="<u4").reshape(-1, 1).view(np.uint8)
    return np.concatenate([head, np.asarray(payloads, dtype=np.uint8)], axis=1)


class SoftOfdmRx(gr.hier_block2):
    """gr-digital's OFDM receiver (the blocks and settings of ``digital.ofdm_rx``) ending in soft bits.

    In: complex baseband. Out: float soft bits of each detected packet's payload (Re of the equalised
    BPSK symbol, +1 for bit 1), tagged ``packet_len`` = the packet's bit count from its header."""

    def __init__(self, tx: digital.ofdm_tx, sync_threshold: float = 0.9) -> None:
        gr.hier_block2.__init__(self, "semcom_soft_ofdm_rx", gr.io_signature(1, 1, gr.sizeof_gr_complex),
                                gr.io_signature(1, 1, gr.sizeof_float))
        n, cp = tx.fft_len, tx.cp_len
        occupied, pilots, pilot_symbols = tx.occupied_carriers, tx.pilot_carriers, tx.pilot_symbols
        bpsk = digital.constellation_bpsk()
        sync = digital.ofdm_sync_sc_cfb(n, cp, False, sync_threshold)
        delay = blocks.delay(gr.sizeof_gr_complex, n + cp)
        oscillator = analog.frequency_modulator_fc(-2.0 / n)
        mixer = blocks.multiply_cc()
        hpd = digital.header_payload_demux(3, n, cp, FRAME_LEN_KEY, "", True)
        self.connect(self, sync)
        self.connect(self, delay, (mixer, 0), (hpd, 0))
        self.connect((sync, 0), oscillator, (mixer, 1))
        self.connect((sync, 1), (hpd, 1))
        header_eq = digital.ofdm_frame_equalizer_vcvc(
            digital.ofdm_equalizer_simpledfe(n, bpsk.base(), occupied, pilots, pilot_symbols,
                                             symbols_skipped=0).base(), cp, FRAME_LEN_KEY, True, 1)
        formatter = digital.packet_header_ofdm(occupied, 1, PACKET_LEN_KEY, FRAME_LEN_KEY, PACKET_NUM_KEY,
                                               1, 1, scramble_header=False)
        self.header_parser = digital.packet_headerparser_b(formatter.formatter())
        self.connect((hpd, 0), fft.fft_vcc(n, True, (), True),
                     digital.ofdm_chanest_vcvc(tx.sync_word1, tx.sync_word2, 1), header_eq,
                     digital.ofdm_serializer_vcc(n, occupied, FRAME_LEN_KEY),
                     digital.constellation_decoder_cb(bpsk.base()), self.header_parser)
        self.msg_connect(self.header_parser, "header_data", hpd, "header_data")
        payload_eq = digital.ofdm_frame_equalizer_vcvc(
            digital.ofdm_equalizer_simpledfe(n, bpsk.base(), occupied, pilots, pilot_symbols,
                                             symbols_skipped=1, alpha=0.1).base(), cp, FRAME_LEN_KEY)
        self.connect((hpd, 1), fft.fft_vcc(n, True, (), True), payload_eq,
                     digital.ofdm_serializer_vcc(n, occupied, FRAME_LEN_KEY, PACKET_LEN_KEY, 1),
                     blocks.complex_to_real(1), self)


class CodedPayload(gr.basic_block):
    """Per tagged packet of ``packet_bits`` soft bits: keeps the first ``keep`` (the code word), drops the
    rest (ofdm_tx's CRC over the coded bytes) and drops whole packets of any other length (a header
    that passed its CRC-8 with a wrong length), so the decoder's fixed frames stay aligned.

    Counts ``packets`` (with the expected length) and ``bad_length``."""

    def __init__(self, packet_bits: int, keep: int) -> None:
        gr.basic_block.__init__(self, name="semcom_coded_payload", in_sig=[np.float32], out_sig=[np.float32])
        if not 0 < keep <= packet_bits:
            raise ValueError(f"need 0 < keep <= packet_bits, got {keep}, {packet_bits}")
        self.packet_bits, self.keep = packet_bits, keep
        self.set_tag_propagation_policy(gr.TPP_DONT)
        self._left = 0      # items of the current packet not yet consumed
        self._emit = 0      # of those, items still to copy to the output
        self.packets = 0
        self.bad_length = 0

    def forecast(self, noutput_items, ninputs):
        return [noutput_items] * ninputs

    def general_work(self, input_items, output_items):
        import pmt

        inp, out = input_items[0], output_items[0]
        start = self.nitems_read(0)
        tags = {t.offset - start: pmt.to_long(t.value)
                for t in self.get_tags_in_window(0, 0, len(inp), pmt.intern(PACKET_LEN_KEY))}
        i = o = 0
        while i < len(inp):
            if self._left == 0:
                if i not in tags:  # between packets (should not happen): skip to the next packet
                    nxt = min((k for k in tags if k > i), default=len(inp))
                    i = nxt
                    continue
                self._left = tags[i]
                ok = self._left == self.packet_bits
                self.packets += ok
                self.bad_length += not ok
                self._emit = self.keep if ok else 0
            n_emit = min(self._emit, len(inp) - i, len(out) - o)
            out[o:o + n_emit] = inp[i:i + n_emit]
            o += n_emit
            self._emit -= n_emit
            if self._emit:  # output full
                i += n_emit
                self._left -= n_emit
                break
            n_skip = min(self._left - n_emit, len(inp) - i - n_emit)
            i += n_emit + n_skip
            self._left -= n_emit + n_skip
        self.consume(0, i)
        return o


class PacketSink(gr.sync_block):
    """Decoded bytes, ``info_bytes + 4`` per packet -> outer CRC check; keeps ``packets`` {seq: payload}
    of the packets whose CRC holds and counts ``crc_ok`` / ``crc_fail``."""

    def __init__(self, info_bytes: int) -> None:
        gr.sync_block.__init__(self, name="semcom_packet_sink", in_sig=[np.uint8], out_sig=None)
        self.size = info_bytes + CRC_BYTES
        self._buf = bytearray()
        self.packets: dict[int, bytes] = {}
        self.crc_ok = 0
        self.crc_fail = 0

    def work(self, input_items, output_items):
        self._buf += input_items[0].tobytes()
        whole = len(self._buf) // self.size * self.size
        for k in range(0, whole, self.size):  # one CRC per packet, not per sample
            pkt = bytes(self._buf[k:k + self.size])
            if crc32_le(pkt[:-CRC_BYTES]) == pkt[-CRC_BYTES:]:
                self.crc_ok += 1
                seq = int.from_bytes(pkt[:SEQ_BYTES], "little")
                self.packets[seq] = pkt[SEQ_BYTES:-CRC_BYTES]
            else:
                self.crc_fail += 1
        del self._buf[:whole]
        return len(input_items[0])


def channel_block(channel: str, snr_db: float, seed: int, samples_per_packet: int) -> gr.basic_block:
    """The project's loopback ``mimo_channel`` as a SISO link.

    ``"awgn"``: one tap of gain 1 (Rician K = 1e12 with the all-ones line of sight), no delay, noise only.
    ``"rayleigh"``: the loopback flowgraphs' multipath (3 taps, exponential profile, Rayleigh) with a
    fractional timing offset, redrawn for every packet (block fading, as OFAT's per-frame fading)."""
    from gnuradio.semcom.mimo_channel import mimo_channel

    if channel == "awgn":
        return mimo_channel(1, 1, snr_db=snr_db, fading="held", n_taps=1, rician_k=1e12, los="ones",
                            frac_delay=False, seed=seed)
    if channel == "rayleigh":
        return mimo_channel(1, 1, snr_db=snr_db, fading="per_block", block_len=samples_per_packet,
                            n_taps=3, frac_delay=True, seed=seed)
    raise ValueError(f"channel must be one of {CHANNELS}, got {channel!r}")


@dataclass
class RunResult:
    """One run: ``packets`` {seq: payload bytes} of the delivered packets and every count."""

    sent: int
    detected: int
    bad_length: int
    crc_ok: int
    crc_fail: int
    packets: dict[int, bytes]

    @property
    def lost(self) -> int:
        return self.sent - self.crc_ok

    def counts(self) -> dict[str, int]:
        return {"sent": self.sent, "detected": self.detected, "bad_length": self.bad_length,
                "crc_ok": self.crc_ok, "crc_fail": self.crc_fail, "lost": self.lost}


class DigitalLink:
    """Packets through gr-fec + gr-digital OFDM + the SISO ``mimo_channel``; one flowgraph per ``run``."""

    def __init__(self, cfg: DigitalConfig | None = None) -> None:
        self.cfg = cfg or DigitalConfig()

    def _transmitter(self, tb: gr.top_block, packets: np.ndarray) -> tuple[digital.ofdm_tx, gr.basic_block]:
        """Connect packets -> CRC -> CC encoder -> ofdm_tx -> bursts with gaps in ``tb``; returns the
        ofdm_tx (the receiver reads its sync words) and the last block (complex samples out)."""
        cfg = self.cfg
        packets = np.ascontiguousarray(packets, dtype=np.uint8)
        if packets.ndim != 2 or packets.shape[1] != cfg.info_bytes or packets.shape[0] == 0:
            raise ValueError(f"packets must be (N >= 1, {cfg.info_bytes}) uint8, got {packets.shape}")
        encoder = fec.cc_encoder_make(cfg.frame_bits, cfg.cc_k, len(cfg.cc_polys), list(cfg.cc_polys), 0,
                                      fec.CC_TERMINATED, True)
        tx = digital.ofdm_tx(fft_len=cfg.fft_len, cp_len=cfg.cp_len, packet_length_tag_key=PACKET_LEN_KEY)
        # Bursts, as a radio sends them: every packet is followed by gap_samples of silence (which also
        # drains the receiver's delay line after the last packet).
        mux = blocks.stream_mux(gr.sizeof_gr_complex, [cfg.samples_per_packet, cfg.gap_samples])
        tb.connect(blocks.vector_source_b(packets.ravel().tolist()),
                   blocks.stream_to_tagged_stream(gr.sizeof_char, 1, cfg.info_bytes, PACKET_LEN_KEY),
                   digital.crc32_bb(False, PACKET_LEN_KEY),
                   blocks.tag_gate(gr.sizeof_char, False),
                   blocks.unpack_k_bits_bb(8),
                   fec.extended_encoder(encoder_obj_list=encoder, threading=None, puncpat="11"),
                   blocks.repack_bits_bb(1, 8, "", False, gr.GR_LSB_FIRST),
                   blocks.stream_to_tagged_stream(gr.sizeof_char, 1, cfg.coded_bytes, PACKET_LEN_KEY),
                   tx,
                   blocks.multiply_const_cc(1.0 / math.sqrt(cfg.fft_len)),
                   (mux, 0))
        tb.connect(blocks.null_source(gr.sizeof_gr_complex), (mux, 1))
        gate = blocks.tag_gate(gr.sizeof_gr_complex, False)  # the receiver must find the packets itself
        tb.connect(mux, gate)
        return tx, gate

    def tx_samples(self, packets: np.ndarray) -> np.ndarray:
        """The transmitted baseband of ``packets``: (N * burst_samples,) complex64."""
        tb = gr.top_block("semcom_digital_tx")
        _, out = self._transmitter(tb, packets)
        head = blocks.head(gr.sizeof_gr_complex, packets.shape[0] * self.cfg.burst_samples)
        sink = blocks.vector_sink_c()
        tb.connect(out, head, sink)
        tb.run()
        return np.asarray(sink.data(), np.complex64)

    def build(self, packets: np.ndarray, snr_db: float, channel: str = "awgn", seed: int = 0
              ) -> tuple[gr.top_block, CodedPayload, PacketSink]:
        """The top block for ``packets`` (N, info_bytes) uint8; returns it with its two counting blocks."""
        cfg = self.cfg
        tb = gr.top_block("semcom_digital_link")
        tx, out = self._transmitter(tb, packets)
        decoder = fec.cc_decoder_make(cfg.frame_bits, cfg.cc_k, len(cfg.cc_polys), list(cfg.cc_polys), 0, -1,
                                      fec.CC_TERMINATED, True)
        # Python blocks live only as long as their Python objects: the top block keeps them.
        tb.channel = channel_block(channel, snr_db, seed, cfg.burst_samples)
        tb.rx = SoftOfdmRx(tx, cfg.sync_threshold)
        tb.coded = CodedPayload(8 * (cfg.coded_bytes + CRC_BYTES), 8 * cfg.coded_bytes)
        tb.sink = PacketSink(cfg.info_bytes)
        tb.connect(out, tb.channel, tb.rx, tb.coded,
                   fec.extended_decoder(decoder_obj_list=decoder, threading=None, ann=None, puncpat="11"),
                   blocks.pack_k_bits_bb(8), tb.sink)
        return tb, tb.coded, tb.sink

    def run(self, packets: np.ndarray, snr_db: float, channel: str = "awgn", seed: int = 0) -> RunResult:
        """Send ``packets`` (N, info_bytes) uint8 (each starting with its sequence number) and wait until
        the flowgraph has stopped by itself."""
        tb, coded, sink = self.build(packets, snr_db, channel, seed)
        tb.run()
        return RunResult(sent=int(packets.shape[0]), detected=coded.packets, bad_length=coded.bad_length,
                         crc_ok=sink.crc_ok, crc_fail=sink.crc_fail, packets=dict(sink.packets))
