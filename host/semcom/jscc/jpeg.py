"""Digital baseline: JPEG (Pillow) at the bits an ideal capacity-achieving channel code could deliver.

Bit budget per image (separation, Shannon-optimal channel code, error-free delivery assumed):

    bits = k * log2(1 + SNR)        k = complex channel uses per image, SNR linear,

i.e. the AWGN capacity ``log2(1 + SNR)`` bits per complex channel use times the channel uses the JSCC codec
gets for the same image (k = 512 for 32x32x3 at k/n = 1/6). Over fading channels this is optimistic (it is
the AWGN capacity at the average SNR), which only favours the baseline.

The image is coded at the **largest** JPEG quality (1..95) whose size in bytes fits ``floor(bits / 8)``.
Two ways of counting the size:

* ``"file"``: the complete JPEG/JFIF file Pillow writes with ``optimize=True`` (the smallest file it
  makes): headers, quantisation and Huffman tables included -- what a receiver needs to decode it with
  no prior agreement. This is the baseline of the acceptance test.
* ``"payload"``: only the entropy-coded scan (bytes after the SOS header up to and including EOI) with the
  standard Huffman tables, plus one byte for the quality index, assuming the receiver already knows
  everything else. A deliberately generous lower bound on JPEG's cost.

If even quality 1 does not fit, nothing decodable arrives and the receiver outputs the **mean image**
(the per-pixel mean of a reference set, by default of the evaluated images themselves); its PSNR is what
the baseline scores then, and the result records ``quality = 0``.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

QUALITIES = np.arange(1, 96)
SIZE_MODES = ("file", "payload")


def capacity_bits(snr_db: float, n_channel_uses: int) -> float:
    """``n_channel_uses * log2(1 + 10^(snr_db/10))`` bits (AWGN capacity per complex channel use)."""
    return n_channel_uses * math.log2(1.0 + 10.0 ** (snr_db / 10.0))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    """(3, H, W) float in [0, 1] -> (H, W, 3) uint8."""
    u8 = np.clip(np.rint(np.asarray(img, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)
    return u8.transpose(1, 2, 0)


def encode(img: np.ndarray, quality: int, mode: str = "file") -> tuple[bytes, int]:
    """JPEG-encode one (3, H, W) image in [0, 1]. Returns (file bytes, counted size in bytes for ``mode``)."""
    if mode not in SIZE_MODES:
        raise ValueError(f"mode must be one of {SIZE_MODES}, got {mode!r}")
    buf = io.BytesIO()
    Image.fromarray(_to_uint8(img)).save(buf, format="JPEG", quality=int(quality), optimize=(mode == "file"))
    data = buf.getvalue()
    if mode == "file":
        return data, len(data)
    sos = data.find(b"\xff\xda")
    header_len = int.from_bytes(data[sos + 2:sos + 4], "big")
    return data, len(data) - (sos + 2 + header_len) + 1  # + 1 byte: the quality index


def decode(data: bytes) -> np.ndarray:
    """JPEG bytes -> (3, H, W) float in [0, 1]."""
    arr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.float64) / 255.0
    return arr.transpose(2, 0, 1)


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    """PSNR in dB for values in [0, 1] (peak 1); inf for identical inputs."""
    mse = float(np.mean((np.asarray(x, np.float64) - np.asarray(y, np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(1.0 / mse)


@dataclass
class JPEGResult:
    """Per-image outcome at one SNR. ``quality == 0`` means nothing fitted and the mean image was output."""

    budget_bytes: int
    quality: np.ndarray     # (N,) int
    size_bytes: np.ndarray  # (N,) int, 0 where nothing was sent
    psnr: np.ndarray        # (N,) float, per-image PSNR of the reconstruction
    recon: np.ndarray       # (N, 3, H, W) float

    @property
    def fallback_fraction(self) -> float:
        return float(np.mean(self.quality == 0))


class JPEGBaseline:
    """JPEG at the capacity bit budget for a batch of images.

    images: (N, 3, H, W) float in [0, 1]; ``mean_image`` (3, H, W) is what the receiver outputs when nothing
    fits (default: the per-pixel mean of ``images``). Sizes at every quality are computed once, so
    evaluating many SNRs costs one decode per image and SNR.
    """

    def __init__(self, images: np.ndarray, mode: str = "file", mean_image: np.ndarray | None = None) -> None:
        if mode not in SIZE_MODES:
            raise ValueError(f"mode must be one of {SIZE_MODES}, got {mode!r}")
        self.images = np.asarray(images, dtype=np.float64)
        if self.images.ndim != 4 or self.images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), got {self.images.shape}")
        self.mode = mode
        self.mean_image = (self.images.mean(axis=0) if mean_image is None
                           else np.asarray(mean_image, np.float64))
        # sizes[i, j]: counted size of image i at quality QUALITIES[j]
        self.sizes = np.array([[encode(im, int(q), mode)[1] for q in QUALITIES] for im in self.images])

    def run(self, budget_bytes: int) -> JPEGResult:
        """Code each image at the largest quality whose counted size is <= ``budget_bytes``."""
        n = len(self.images)
        quality = np.zeros(n, dtype=int)
        size = np.zeros(n, dtype=int)
        recon = np.empty_like(self.images)
        for i, im in enumerate(self.images):
            fits = np.nonzero(self.sizes[i] <= budget_bytes)[0]
            if fits.size == 0:
                recon[i] = self.mean_image
                continue
            q = int(QUALITIES[fits[-1]])
            data, counted = encode(im, q, self.mode)
            quality[i], size[i] = q, counted
            recon[i] = decode(data)
        scores = np.array([psnr(a, b) for a, b in zip(self.images, recon, strict=True)])
        return JPEGResult(budget_bytes=budget_bytes, quality=quality, size_bytes=size, psnr=scores,
                          recon=recon)

    def at_snr(self, snr_db: float, n_channel_uses: int) -> JPEGResult:
        """``run`` with ``floor(capacity_bits(snr_db, n_channel_uses) / 8)`` bytes."""
        return self.run(int(capacity_bits(snr_db, n_channel_uses) // 8))
