"""Messages (byte strings) over the digital link: framing into packets, reassembly, and the two payloads
of Fig. 6's digital baselines (the natural-language summary in UTF-8, the JPEG file of the image).

A message is ``len (2 bytes, little-endian) + bytes``, cut into ``payload_bytes`` chunks (the last one
zero-padded), one packet each; a message is delivered only when every one of its packets is.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch

from .ofdm import DigitalConfig, DigitalLink, RunResult, make_packets

LEN_BYTES = 2
GREY = 0.5  # what the raw-image receiver sees when the JPEG is lost: a uniform mid-grey image


def packets_per_message(n_bytes: int, cfg: DigitalConfig) -> int:
    """Packets a message of ``n_bytes`` needs (with its 2-byte length)."""
    return -(-(n_bytes + LEN_BYTES) // cfg.payload_bytes)


def to_packets(messages: Sequence[bytes], cfg: DigitalConfig, first_seq: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
    """-> packets (N, info_bytes) uint8 with sequence numbers ``first_seq`` .. and owner (N,): the index
    of the message each packet carries."""
    chunks, owner = [], []
    for i, msg in enumerate(messages):
        if len(msg) >= 1 << (8 * LEN_BYTES):
            raise ValueError(f"message {i} is {len(msg)} bytes, more than the framing's {(1 << 16) - 1}")
        framed = len(msg).to_bytes(LEN_BYTES, "little") + bytes(msg)
        n = packets_per_message(len(msg), cfg)
        buf = np.zeros(n * cfg.payload_bytes, np.uint8)
        buf[:len(framed)] = np.frombuffer(framed, np.uint8)
        chunks.append(buf.reshape(n, cfg.payload_bytes))
        owner += [i] * n
    payloads = np.concatenate(chunks) if chunks else np.zeros((0, cfg.payload_bytes), np.uint8)
    seqs = np.arange(first_seq, first_seq + len(owner), dtype=np.uint32)
    return make_packets(seqs, payloads), np.asarray(owner, dtype=np.int64)


def reassemble(received: dict[int, bytes], owner: np.ndarray, n_messages: int, first_seq: int = 0
               ) -> list[bytes | None]:
    """Messages from the delivered packets {seq: payload}; ``None`` for a message missing any packet."""
    out: list[bytes | None] = []
    seqs = np.arange(first_seq, first_seq + len(owner))
    for i in range(n_messages):
        mine = seqs[owner == i]
        if not all(int(s) in received for s in mine):
            out.append(None)
            continue
        data = b"".join(received[int(s)] for s in mine)
        n = int.from_bytes(data[:LEN_BYTES], "little")
        out.append(data[LEN_BYTES:LEN_BYTES + n] if n <= len(data) - LEN_BYTES else None)
    return out


def send_messages(link: DigitalLink, messages: Sequence[bytes], snr_db: float, channel: str = "awgn",
                  seed: int = 0) -> tuple[list[bytes | None], RunResult]:
    """Every message through one flowgraph run; returns the received messages (None = lost) and counts."""
    packets, owner = to_packets(messages, link.cfg)
    result = link.run(packets, snr_db, channel, seed)
    return reassemble(result.packets, owner, len(messages)), result


# ---------------------------------------------------------------------------------------- payloads

def summary_text(ids: torch.Tensor, itos: Sequence[str]) -> str:
    """Natural-language summary ids (L,) (BOS ... EOS, PAD) -> the sentence the sensor would send."""
    return " ".join(itos[int(i)] for i in ids if int(i) > 3)  # 0..3: PAD, BOS, EOS, UNK


def jpeg_bytes(image: torch.Tensor, quality: int = 75) -> bytes:
    """uint8 image (3, H, W) -> a JPEG file (Pillow, baseline, ``optimize=True``)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def decode_jpeg(data: bytes | None, size: int) -> torch.Tensor:
    """A received JPEG file -> (3, size, size) float in [0, 1]; a lost one (None) -> a grey image."""
    from PIL import Image

    if data is None:
        return torch.full((3, size, size), GREY)
    img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(img).permute(2, 0, 1).contiguous()
