"""The OFAT frame: the single source of truth for the resource layout (numpy only).

OFAT (orthogonal frequency-division analog transmission) puts real-valued tensor values, as analog
amplitudes, on OFDM subcarriers x transmit antennas x OFDM symbols. This module says which value goes
to which resource element, and builds the known parts of a frame (preamble, training, header, pilots).
It is imported by the GNU Radio blocks, the host reconstruction and the differentiable torch channel;
nothing else may restate these facts.

Frame, in OFDM symbols (each one FFT body with a cyclic prefix):

    [preamble 1][training Nt*R][header Nh][data S]

* preamble: Schmidl & Cox symbol (only even subcarriers used, so the body's two halves repeat), sent
  with a small cyclic delay per antenna (CDD) so the antennas do not cancel each other.
* training: Nt*R symbols; in symbol p antenna a sends c_k * W[p mod Nt, a] / sqrt(Nt) on every used
  subcarrier k, W the Nt-point DFT matrix: orthogonal across antennas, full power in every symbol.
* header: a digital header (seq, flags, shape, scale code, CRC-16), scrambled, BPSK, repeated R_h
  times across the header resource elements, sent from all antennas with CDD (works for any Nr, Nt).
* data: the payload values on the data subcarriers; pilots (BPSK with CDD) on the pilot subcarriers
  for residual phase tracking. Complex mode puts two values on a resource element (re, im), real mode
  one (an amplitude, as in the paper). A partial last symbol is zero padded.

Known sequences (preamble, training c_k, pilot polarities, header scrambler and filler) are drawn from
one generator seeded by the layout's `sequence_id` (0: the original sequences). Links sharing the air
take different ids, so a receiver neither estimates its channel from nor delivers another link's frame.

Power: every used resource element carries unit total energy summed over the Nt antennas (data on
average, after per-frame normalisation by `scale`, which the header carries), and the FFT is unitary.
So noise of variance sigma^2 per time sample is sigma^2 per resource element, and the project's SNR,
"total transmit power over noise power per receive antenna", is 1 / sigma^2 per subcarrier.

Value order: value i of the payload (complex mode: resource element i holds values 2i, 2i+1) goes to
data symbol s, data subcarrier k, antenna a with i = (s * K + k) * Nt + a: consecutive values are
spatially multiplexed on one subcarrier first. Arrays use (K, Nt, S) for transmitted grids,
(K, Nr, S) for received grids and (K, Nr, Nt) for channels, with K the number of data subcarriers.

`map_values` / `unmap_values` accept numpy arrays or torch tensors (the torch channel back-propagates
through them); everything else here is numpy.
"""

from __future__ import annotations

import binascii
import dataclasses
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

import numpy as np

from .clipping import clip_frame

Mode = Literal["complex", "real"]

HEADER_BYTES = 15
HEADER_BITS = HEADER_BYTES * 8
MAX_SHAPE_DIMS = 3
MAX_DIM = 0xFFFF
# Scale code: log2(scale) = (code - SCALE_CODE_ZERO) / SCALE_CODE_STEPS, a 0.07 % step over 2^+-32.
SCALE_CODE_ZERO = 1 << 15
SCALE_CODE_STEPS = 1024
_SEQUENCE_SEED = 0x5EC0_0FA7
MAX_SEQUENCE_ID = 0xFFFF
# Idle samples ofat_tx sends after each frame by default (two wifi64 CP-OFDM symbols): the channel's tail
# (integer delay + FIR) must end in it, or a redrawn delay cuts the frame (mimo_channel checks). The .grc
# files and the OFAT Transmitter's .block.yml restate it as a literal; tests/test_flowgraphs.py holds them.
DEFAULT_GAP_SAMPLES = 160


class FrameError(ValueError):
    """A payload or header that does not fit the frame layout."""


@dataclass(frozen=True)
class FrameHeader:
    """The digital header of one frame.

    `shape` is the payload tensor's shape (at most 3 dims, each <= 65535; () for a scalar);
    `scale_code` is the per-frame power normalisation as sent (see `decode_scale`).
    """

    seq: int
    shape: tuple[int, ...]
    scale_code: int
    flags: int = 0

    @property
    def n_values(self) -> int:
        return int(math.prod(self.shape))

    @property
    def scale(self) -> float:
        return decode_scale(self.scale_code)


def _signed_range(lo: int, hi: int) -> tuple[int, ...]:
    return tuple(k for k in range(lo, hi + 1) if k != 0)


def signed_bins(bins: np.ndarray, fft_len: int) -> np.ndarray:
    """FFT bin numbers in [0, fft_len) -> signed subcarrier indices in [-fft_len/2, fft_len/2) (0 = DC)."""
    bins = np.asarray(bins)
    return np.where(bins >= fft_len // 2, bins - fft_len, bins)


PRESETS: dict[str, dict[str, Any]] = {
    # 802.11a/g-like numerology: 52 used subcarriers, 4 pilots, CP 1/4.
    "wifi64": dict(fft_len=64, cp_len=16, used_carriers=_signed_range(-26, 26),
                   pilot_carriers=(-21, -7, 7, 21)),
    # Twice the subcarriers, 108 used, 8 pilots: better channel-estimate denoising per frame.
    # CDD shift 4 samples (twice wifi64's 2: the same fraction of the longer symbol).
    "ofat128": dict(fft_len=128, cp_len=32, used_carriers=_signed_range(-54, 54),
                    pilot_carriers=(-48, -34, -20, -6, 6, 20, 34, 48), cdd_shift=4),
}


@dataclass(frozen=True)
class OfatLayout:
    """OFAT frame numerology and resource map.

    Subcarriers are given as signed indices (0 = DC, left empty for the radio's LO leakage);
    FFT bins are `index mod fft_len`.
    """

    fft_len: int = 64
    cp_len: int = 16
    used_carriers: tuple[int, ...] = field(default=PRESETS["wifi64"]["used_carriers"])
    pilot_carriers: tuple[int, ...] = field(default=PRESETS["wifi64"]["pilot_carriers"])
    n_tx: int = 2
    n_rx: int = 4
    mode: Mode = "complex"
    train_reps: int = 2
    header_reps: int = 3
    max_data_symbols: int = 64
    cdd_shift: int = 2
    clip_ratio_db: float = 0.0  # clip data symbols this far above their RMS (0 = off); see papr.py
    sequence_id: int = 0  # which known sequences (preamble, training, pilots, header scrambler); see below

    def __post_init__(self) -> None:
        def fail(msg: str) -> None:
            raise FrameError(f"invalid OFAT layout: {msg}")

        if self.fft_len < 8 or self.fft_len & (self.fft_len - 1):
            fail(f"fft_len must be a power of two >= 8, got {self.fft_len}")
        if not 0 <= self.cp_len < self.fft_len:
            fail(f"cp_len must be in [0, fft_len), got {self.cp_len}")
        used = set(self.used_carriers)
        if len(used) != len(self.used_carriers):
            fail("used_carriers has duplicates")
        if 0 in used:
            fail("the DC subcarrier (0) must stay empty")
        if any(not -self.fft_len // 2 < k < self.fft_len // 2 for k in used):
            fail(f"used_carriers must lie in (-{self.fft_len // 2}, {self.fft_len // 2})")
        if not set(self.pilot_carriers) <= used:
            fail("pilot_carriers must be a subset of used_carriers")
        if self.n_data_carriers < 1:
            fail("no data subcarriers left after pilots")
        if self.mode not in ("complex", "real"):
            fail(f"mode must be 'complex' or 'real', got {self.mode!r}")
        for name in ("n_tx", "n_rx", "train_reps", "header_reps", "max_data_symbols"):
            if getattr(self, name) < 1:
                fail(f"{name} must be >= 1")
        if self.clip_ratio_db < 0 or not math.isfinite(self.clip_ratio_db):
            fail(f"clip_ratio_db must be 0 (off) or a positive finite ratio, got {self.clip_ratio_db}")
        if not 0 <= self.sequence_id <= MAX_SEQUENCE_ID:
            fail(f"sequence_id must be in [0, {MAX_SEQUENCE_ID}], got {self.sequence_id}")
        if (self.n_tx - 1) * self.cdd_shift >= self.cp_len:
            fail("cyclic delay diversity spread (n_tx-1)*cdd_shift must be shorter than the CP")

    # ----------------------------------------------------------------- derived numerology
    @cached_property
    def symbol_len(self) -> int:
        return self.fft_len + self.cp_len

    @cached_property
    def used_bins(self) -> np.ndarray:
        """FFT bins of the used subcarriers, in ascending signed-index order (Nu,)."""
        return np.mod(np.array(sorted(self.used_carriers)), self.fft_len)

    @cached_property
    def used_signed(self) -> np.ndarray:
        """Signed indices of the used subcarriers (Nu,), ascending: `used_bins` in [-fft_len/2, fft_len/2)."""
        return signed_bins(self.used_bins, self.fft_len)

    @cached_property
    def data_carriers(self) -> tuple[int, ...]:
        pilots = set(self.pilot_carriers)
        return tuple(k for k in sorted(self.used_carriers) if k not in pilots)

    @cached_property
    def data_bins(self) -> np.ndarray:
        return np.mod(np.array(self.data_carriers), self.fft_len)

    @cached_property
    def pilot_bins(self) -> np.ndarray:
        return np.mod(np.array(sorted(self.pilot_carriers)), self.fft_len)

    @cached_property
    def data_index_in_used(self) -> np.ndarray:
        """Positions of the data subcarriers within `used_bins` (K,)."""
        return np.searchsorted(np.sort(self.used_carriers), self.data_carriers)

    @cached_property
    def pilot_index_in_used(self) -> np.ndarray:
        return np.searchsorted(np.sort(self.used_carriers), sorted(self.pilot_carriers))

    @cached_property
    def n_used(self) -> int:
        return len(self.used_carriers)

    @cached_property
    def n_data_carriers(self) -> int:
        return len(self.used_carriers) - len(self.pilot_carriers)

    @cached_property
    def values_per_element(self) -> int:
        return 2 if self.mode == "complex" else 1

    @cached_property
    def values_per_symbol(self) -> int:
        return self.n_data_carriers * self.n_tx * self.values_per_element

    @cached_property
    def capacity(self) -> int:
        """Largest number of values one frame carries."""
        return self.values_per_symbol * self.max_data_symbols

    @cached_property
    def n_train_symbols(self) -> int:
        return self.n_tx * self.train_reps

    @cached_property
    def n_header_symbols(self) -> int:
        return math.ceil(self.header_reps * HEADER_BITS / self.n_data_carriers)

    @property
    def n_preamble_symbols(self) -> int:
        return 1

    @cached_property
    def n_sync_symbols(self) -> int:
        """Symbols before the data: preamble, training and header."""
        return self.n_preamble_symbols + self.n_train_symbols + self.n_header_symbols

    def n_data_symbols(self, n_values: int) -> int:
        if n_values < 0:
            raise FrameError("negative payload size")
        return max(1, math.ceil(n_values / self.values_per_symbol))

    def frame_len(self, n_values: int) -> int:
        """Samples per antenna of a frame carrying n_values values."""
        return (self.n_sync_symbols + self.n_data_symbols(n_values)) * self.symbol_len

    @property
    def max_frame_len(self) -> int:
        return self.frame_len(self.capacity)

    @property
    def occupied_fraction(self) -> float:
        return self.n_used / self.fft_len

    # ----------------------------------------------------------------- known sequences
    @cached_property
    def _rng_sequences(self) -> dict[str, np.ndarray]:
        """Every known sequence of the frame, drawn from one generator per `sequence_id`.

        Id 0 is the project's original seed (every recording and result so far); id s > 0 seeds with
        (seed, s). Links that share the air take different ids: their training sequences are nearly
        orthogonal (a foreign frame's training, despread by the own sequence, spreads over all delays
        instead of the few channel taps) and their header scramblers differ, so a receiver that
        synchronises to a foreign frame fails its header CRC instead of delivering it.
        """
        seed = _SEQUENCE_SEED if self.sequence_id == 0 else [_SEQUENCE_SEED, self.sequence_id]
        rng = np.random.default_rng(seed)
        qpsk = np.exp(1j * np.pi / 4 * (2 * rng.integers(0, 4, size=(2, self.fft_len)) + 1))
        return {
            "preamble": qpsk[0],
            "training": qpsk[1],
            "pilot_polarity": 1.0 - 2.0 * rng.integers(0, 2, size=self.max_data_symbols + 64),
            "pilot_base": 1.0 - 2.0 * rng.integers(0, 2, size=len(self.pilot_carriers)),
            "header_scrambler": rng.integers(0, 2, size=HEADER_BITS).astype(np.uint8),
            "header_filler": 1.0 - 2.0 * rng.integers(0, 2, size=self.n_header_symbols
                                                       * self.n_data_carriers),
        }

    def cdd_phases(self, bins: np.ndarray) -> np.ndarray:
        """Per-antenna cyclic-delay phases on the given FFT bins, scaled 1/sqrt(Nt): (Nt, len(bins))."""
        signed = signed_bins(bins, self.fft_len)
        shifts = np.arange(self.n_tx)[:, None] * self.cdd_shift
        return np.exp(-2j * np.pi * shifts * signed[None, :] / self.fft_len) / np.sqrt(self.n_tx)

    @cached_property
    def preamble_freq(self) -> np.ndarray:
        """Schmidl & Cox symbol per antenna, frequency domain (Nt, fft_len): even used bins only."""
        bins = self.used_bins
        even = bins[self.used_signed % 2 == 0]
        grid = np.zeros((self.n_tx, self.fft_len), complex)
        # sqrt(2): half of the used subcarriers carry all the power.
        grid[:, even] = np.sqrt(2) * self._rng_sequences["preamble"][even] * self.cdd_phases(even)
        return grid

    @cached_property
    def training_sequence(self) -> np.ndarray:
        """c_k on the used bins (Nu,), unit modulus."""
        return self._rng_sequences["training"][self.used_bins]

    @cached_property
    def training_cover(self) -> np.ndarray:
        """W[p, a] for every training symbol p: (n_train, Nt), unit modulus, orthogonal over Nt symbols."""
        p = np.arange(self.n_train_symbols)[:, None]
        a = np.arange(self.n_tx)[None, :]
        return np.exp(-2j * np.pi * (p % self.n_tx) * a / self.n_tx)

    @cached_property
    def training_freq(self) -> np.ndarray:
        """Training symbols, frequency domain (Nt, n_train, fft_len)."""
        grid = np.zeros((self.n_tx, self.n_train_symbols, self.fft_len), complex)
        values = self.training_cover.T[:, :, None] * self.training_sequence[None, None, :]
        grid[:, :, self.used_bins] = values / np.sqrt(self.n_tx)
        return grid

    def pilot_values(self, n_symbols: int, first_symbol: int = 0) -> np.ndarray:
        """Pilot BPSK (before CDD) for data/header symbols: (n_symbols, n_pilots)."""
        polarity = self._rng_sequences["pilot_polarity"]
        idx = (first_symbol + np.arange(n_symbols)) % len(polarity)
        return polarity[idx, None] * self._rng_sequences["pilot_base"][None, :]

    @cached_property
    def header_scrambler(self) -> np.ndarray:
        return self._rng_sequences["header_scrambler"]

    @cached_property
    def header_filler(self) -> np.ndarray:
        return self._rng_sequences["header_filler"]

    # ----------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["used_carriers"] = list(self.used_carriers)
        d["pilot_carriers"] = list(self.pilot_carriers)
        if not self.sequence_id:  # id 0: the dict of every layout recorded before ids existed
            del d["sequence_id"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OfatLayout:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise FrameError(f"unknown OFAT layout fields: {sorted(unknown)}")
        d = dict(d)
        for key in ("used_carriers", "pilot_carriers"):
            if key in d:
                d[key] = tuple(int(k) for k in d[key])
        return cls(**d)

    def describe(self) -> str:
        return (f"OFAT fft={self.fft_len} cp={self.cp_len} used={self.n_used} "
                f"data={self.n_data_carriers} pilots={len(self.pilot_carriers)} Nt={self.n_tx} "
                f"Nr={self.n_rx} mode={self.mode} train={self.n_train_symbols} "
                f"header={self.n_header_symbols} sym, capacity={self.capacity} values/frame"
                + (f" sequence_id={self.sequence_id}" if self.sequence_id else ""))


def make_layout(preset: str = "wifi64", **overrides: Any) -> OfatLayout:
    """A layout from a named preset (`PRESETS`) with any field overridden."""
    if preset not in PRESETS:
        raise FrameError(f"unknown OFAT preset {preset!r}; choose from {sorted(PRESETS)}")
    return OfatLayout(**{**PRESETS[preset], **overrides})


# --------------------------------------------------------------------- scale code
def encode_scale(scale: float) -> int:
    """Nearest 16-bit scale code; raises for scales outside 2^+-32."""
    if not (math.isfinite(scale) and scale > 0):
        raise FrameError(f"scale must be positive and finite, got {scale}")
    code = SCALE_CODE_ZERO + round(math.log2(scale) * SCALE_CODE_STEPS)
    if not 0 <= code <= 0xFFFF:
        raise FrameError(f"scale {scale:g} outside the header's range 2^+-32 (payload power out of range)")
    return code


def decode_scale(code: int) -> float:
    return 2.0 ** ((code - SCALE_CODE_ZERO) / SCALE_CODE_STEPS)


# --------------------------------------------------------------------- value mapping
def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def payload_scale(layout: OfatLayout, values: Any) -> float:
    """Normalisation making the mean energy per data resource element and antenna 1/Nt (numpy)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    n_elements = math.ceil(v.size / layout.values_per_element)
    energy = float(np.dot(v, v))
    if energy == 0.0 or n_elements == 0:
        return 1.0
    return math.sqrt(n_elements / (layout.n_tx * energy))


def map_values(layout: OfatLayout, values: Any, scale: float | None = None) -> tuple[Any, float]:
    """Payload values -> transmitted data grid.

    values: (n,) real, numpy or torch (any shape, flattened in C order).
    scale: normalisation to apply; default the quantised `payload_scale` (what the header can carry).
        The torch channel may pass a differentiable scale of its own.
    Returns X: (K, Nt, S) complex (torch if values were torch) and the scale used.
    """
    torch_in = _is_torch(values)
    flat = values.reshape(-1)
    n = flat.shape[0]
    if n > layout.capacity:
        raise FrameError(f"{n} values exceed the frame capacity of {layout.capacity} "
                         f"({layout.describe()})")
    if scale is None:
        scale = decode_scale(encode_scale(payload_scale(layout, flat.detach().cpu().numpy()
                                                        if torch_in else flat)))
    n_sym = layout.n_data_symbols(n)
    total = n_sym * layout.values_per_symbol
    if torch_in:
        return map_values_batch(layout, flat[None], scale)[0], scale
    padded = np.zeros(total, np.float64)
    padded[:n] = np.asarray(flat, np.float64) * scale
    if not np.all(np.isfinite(padded)):
        raise FrameError("payload contains NaN or Inf")
    elements = padded[0::2] + 1j * padded[1::2] if layout.mode == "complex" else padded.astype(complex)
    return elements.reshape(n_sym, layout.n_data_carriers, layout.n_tx).transpose(1, 2, 0), scale


def map_values_batch(layout: OfatLayout, values: Any, scale: Any) -> Any:
    """`map_values` for B payloads of one length at once, torch (the torch channel's batch).

    values: (B, n) real torch; scale: a scalar or (B,), applied as given (differentiable).
    Returns X: (B, K, Nt, S) complex, each frame element for element what `map_values` gives it.
    """
    import torch

    b, n = values.shape
    if n > layout.capacity:
        raise FrameError(f"{n} values exceed the frame capacity of {layout.capacity} ({layout.describe()})")
    n_sym = layout.n_data_symbols(n)
    if torch.is_tensor(scale) and scale.dim():
        scale = scale[:, None]
    padded = torch.cat([values, values.new_zeros(b, n_sym * layout.values_per_symbol - n)], dim=1) * scale
    if layout.mode == "complex":
        elements = torch.complex(padded[:, 0::2], padded[:, 1::2])
    else:
        elements = padded.to(torch.complex64 if padded.dtype != torch.float64 else torch.complex128)
    return elements.reshape(b, n_sym, layout.n_data_carriers, layout.n_tx).permute(0, 2, 3, 1)


def unmap_values(layout: OfatLayout, grid: Any, n_values: int, scale: Any) -> Any:
    """Reconstructed data grid (..., K, Nt, S) complex -> payload values (..., n_values) real.

    Inverse of `map_values` (numpy or torch). Real mode keeps the real part, which halves the noise.
    Leading dims are frames decoded together: `scale` is a scalar or one per frame (shape (...)).
    """
    lead = tuple(grid.shape[:-3])
    if _is_torch(grid):
        import torch

        elements = grid.movedim(-1, -3).reshape(*lead, -1)  # symbol-major, as map_values fills
        # (re, im) pairs in place: view_as_real is a view, where stacking the parts copied twice
        flat = (torch.view_as_real(elements).reshape(*lead, -1) if layout.mode == "complex"
                else elements.real)
        if np.ndim(scale):  # one per frame, in the values' dtype as a scalar divisor would be
            scale = torch.as_tensor(scale, dtype=flat.dtype, device=flat.device)[..., None]
    else:
        elements = np.ascontiguousarray(np.moveaxis(np.asarray(grid), -1, -3).reshape(*lead, -1))
        flat = (elements.view(elements.real.dtype) if layout.mode == "complex" else elements.real)
        if np.ndim(scale):
            scale = np.asarray(scale, dtype=flat.dtype)[..., None]
    if flat.shape[-1] < n_values:
        raise FrameError(f"grid holds {flat.shape[-1]} values, header says {n_values}")
    return flat[..., :n_values] / scale


# --------------------------------------------------------------------- header
def _header_bytes(header: FrameHeader) -> bytes:
    """The header's HEADER_BYTES bytes, CRC-16/CCITT last; raises FrameError for fields that do not fit."""
    if not 0 <= header.seq <= 0xFFFFFFFF:
        raise FrameError(f"sequence number {header.seq} does not fit 32 bits")
    if len(header.shape) > MAX_SHAPE_DIMS or any(not 1 <= d <= MAX_DIM for d in header.shape):
        raise FrameError(f"payload shape {header.shape} not representable: at most {MAX_SHAPE_DIMS} "
                         f"dims, each 1..{MAX_DIM} (reshape the tensor before sending)")
    if not 0 <= header.flags <= 0xFF or not 0 <= header.scale_code <= 0xFFFF:
        raise FrameError("flags or scale code out of range")
    dims = list(header.shape) + [0] * (MAX_SHAPE_DIMS - len(header.shape))
    body = struct.pack("<IB3HH", header.seq, header.flags, *dims, header.scale_code)
    raw = body + struct.pack("<H", binascii.crc_hqx(body, 0xFFFF))
    assert len(raw) == HEADER_BYTES
    return raw


def encode_header(header: FrameHeader) -> np.ndarray:
    """Header -> HEADER_BITS bits (uint8 0/1), CRC-16/CCITT protected."""
    return np.unpackbits(np.frombuffer(_header_bytes(header), np.uint8))


def decode_header(bits: np.ndarray) -> FrameHeader | None:
    """HEADER_BITS hard bits -> header, or None when the CRC fails or the fields are inconsistent."""
    raw = np.packbits(np.asarray(bits, np.uint8)).tobytes()
    body, crc = raw[:-2], struct.unpack("<H", raw[-2:])[0]
    if binascii.crc_hqx(body, 0xFFFF) != crc:
        return None
    seq, flags, d0, d1, d2, scale_code = struct.unpack("<IB3HH", body)
    dims = [d0, d1, d2]
    ndim = next((i for i, d in enumerate(dims) if d == 0), MAX_SHAPE_DIMS)
    if any(dims[ndim:]):
        return None
    return FrameHeader(seq=seq, shape=tuple(dims[:ndim]), scale_code=scale_code, flags=flags)


def header_symbols(layout: OfatLayout, header: FrameHeader) -> np.ndarray:
    """BPSK header resource elements before CDD: (Nh, K) of +-1.

    The header_reps copies of the scrambled bits come first, the known filler after them.
    """
    return _headers_bpsk(layout, [header])[0]


def _headers_bpsk(layout: OfatLayout, headers: Sequence[FrameHeader]) -> np.ndarray:
    """`header_symbols` of several headers at once: (F, Nh, K) of +-1 (one unpackbits for all)."""
    raw = np.frombuffer(b"".join(_header_bytes(h) for h in headers), np.uint8).reshape(len(headers), -1)
    bits = np.unpackbits(raw, axis=1) ^ layout.header_scrambler
    bpsk = np.empty((len(headers), layout.header_filler.size))
    bpsk[:] = layout.header_filler
    # The repetitions written through a (F, reps, HEADER_BITS) view: one broadcast, no np.tile.
    bpsk[:, : layout.header_reps * HEADER_BITS].reshape(len(headers), layout.header_reps, HEADER_BITS)[:] = \
        1.0 - 2.0 * bits[:, None, :]
    return bpsk.reshape(len(headers), layout.n_header_symbols, layout.n_data_carriers)


def combine_header_llrs(layout: OfatLayout, llr: np.ndarray) -> np.ndarray:
    """Per-element LLRs (Nh, K) (positive = bit 0) -> descrambled hard bits (HEADER_BITS,)."""
    reps = llr.reshape(-1)[: layout.header_reps * HEADER_BITS].reshape(layout.header_reps, HEADER_BITS)
    return (reps.sum(axis=0) < 0).astype(np.uint8) ^ layout.header_scrambler


# --------------------------------------------------------------------- OFDM (de)modulation
def ofdm_modulate(layout: OfatLayout, freq: np.ndarray) -> np.ndarray:
    """Frequency-domain symbols (..., n_sym, fft_len) -> time samples with CP (..., n_sym*symbol_len)."""
    body = np.fft.ifft(freq, axis=-1, norm="ortho")
    with_cp = np.concatenate([body[..., layout.fft_len - layout.cp_len:], body], axis=-1)
    return with_cp.reshape(*freq.shape[:-2], -1)


def ofdm_demodulate(layout: OfatLayout, time: np.ndarray, n_sym: int) -> np.ndarray:
    """Time samples starting at a symbol's CP (..., >= n_sym*symbol_len) -> (..., n_sym, fft_len)."""
    symbols = time[..., : n_sym * layout.symbol_len].reshape(*time.shape[:-1], n_sym, layout.symbol_len)
    return np.fft.fft(symbols[..., layout.cp_len:], axis=-1, norm="ortho")


@dataclass(frozen=True)
class _TxTemplate:
    """What every frame of one layout shares, built once (`_tx_template`).

    grid: (Nt, Nh + max_data_symbols, fft_len) header+data symbols with the pilots (with CDD) in
        place and zeros elsewhere; a frame copies its first Nh + S symbols and puts its header and
        values on the data bins.
    cdd_data: (Nt, K) the CDD phases on the data bins (the header is sent through them).
    sync_samples: (Nt, (1 + n_train) * symbol_len) complex128 time samples of preamble + training,
        which never change.
    """

    grid: np.ndarray
    cdd_data: np.ndarray
    sync_samples: np.ndarray


def _tx_template(layout: OfatLayout) -> _TxTemplate:
    """The layout's `_TxTemplate`, built on first use and kept on the (frozen) layout itself, so it
    lives as long as the layout and costs one attribute lookup per frame."""
    tpl = layout.__dict__.get("_tx_template")
    if tpl is None:
        n_var = layout.n_header_symbols + layout.max_data_symbols
        grid = np.zeros((layout.n_tx, n_var, layout.fft_len), complex)
        # The same products frame_grid_reference forms per frame, once.
        grid[:, :, layout.pilot_bins] = (layout.pilot_values(n_var)[None, :, :]
                                         * layout.cdd_phases(layout.pilot_bins)[:, None, :])
        sync = np.concatenate([layout.preamble_freq[:, None, :], layout.training_freq], axis=1)
        tpl = _TxTemplate(grid=grid, cdd_data=layout.cdd_phases(layout.data_bins),
                          sync_samples=ofdm_modulate(layout, sync))
        for arr in (tpl.grid, tpl.cdd_data, tpl.sync_samples):
            arr.flags.writeable = False  # shared by every frame: nobody may write into it
        layout.__dict__["_tx_template"] = tpl  # like cached_property (not a field: eq/hash unchanged)
    return tpl


def frame_header(layout: OfatLayout, values: np.ndarray, seq: int, shape: tuple[int, ...] | None = None,
                 flags: int = 0) -> FrameHeader:
    """The header a payload is sent with (its quantised power scale included), checked: raises
    FrameError for a payload no frame can carry (more values than `layout.capacity`, a shape or seq
    the header cannot hold, a power scale out of range, e.g. from NaN or Inf)."""
    values = np.asarray(values)
    shape = tuple(values.shape) if shape is None else tuple(shape)
    if math.prod(shape) != values.size:
        raise FrameError(f"shape {shape} does not match {values.size} values")
    if values.size > layout.capacity:
        raise FrameError(f"{values.size} values exceed the frame capacity of {layout.capacity} "
                         f"({layout.describe()})")
    header = FrameHeader(seq=seq, shape=shape, scale_code=encode_scale(payload_scale(layout, values)),
                         flags=flags)
    _header_bytes(header)  # seq, shape and flags fit the header
    return header


def _data_and_header(layout: OfatLayout, values: np.ndarray, seq: int, shape: tuple[int, ...] | None,
                     flags: int) -> tuple[np.ndarray, FrameHeader]:
    """The mapped data grid X (K, Nt, S) of a payload and the header describing it."""
    header = frame_header(layout, values, seq, shape, flags)
    x, _ = map_values(layout, np.asarray(values).ravel(), scale=header.scale)
    return x, header


def _variable_grid(layout: OfatLayout, payloads: Sequence[np.ndarray], headers: Sequence[FrameHeader],
                   n_data: int) -> np.ndarray:
    """Header + data symbols of F frames with `n_data` data symbols each, in the frequency domain:
    (Nt, F, Nh + n_data, fft_len) complex: a copy of the template's pilot grid with every frame's
    header and values on the data bins. The arithmetic per element is `map_values`' and
    `header_symbols`' (bit for bit)."""
    tpl = _tx_template(layout)
    n_frames, n_head, n_carriers = len(payloads), layout.n_header_symbols, layout.n_data_carriers
    # map_values for all frames: zero-padded rows, times each frame's quantised scale, then elements.
    padded = np.zeros((n_frames, n_data * layout.values_per_symbol))
    for row, values in zip(padded, payloads, strict=True):
        row[: values.size] = values.reshape(-1)
    # Finite: frame_header's scale exists only for a finite payload energy, which bounds every value.
    padded *= np.array([h.scale for h in headers])[:, None]
    elements = padded[:, 0::2] + 1j * padded[:, 1::2] if layout.mode == "complex" else padded.astype(complex)
    grid = np.empty((layout.n_tx, n_frames, n_head + n_data, layout.fft_len), complex)
    grid[:] = tpl.grid[:, None, : n_head + n_data]
    header = _headers_bpsk(layout, headers)[None] * tpl.cdd_data[:, None, None, :]
    grid[:, :, :n_head, layout.data_bins] = header
    grid[:, :, n_head:, layout.data_bins] = \
        elements.reshape(n_frames, n_data, n_carriers, layout.n_tx).transpose(3, 0, 1, 2)
    return grid


def frame_grid(layout: OfatLayout, values: np.ndarray, seq: int, shape: tuple[int, ...] | None = None,
               flags: int = 0) -> tuple[np.ndarray, FrameHeader]:
    """The whole frame in the frequency domain: (Nt, n_symbols, fft_len) complex, and its header.

    Built from the layout's cached template; equal bit for bit to `frame_grid_reference`.
    """
    header = frame_header(layout, values, seq, shape, flags)
    var = _variable_grid(layout, [np.asarray(values)], [header], layout.n_data_symbols(header.n_values))[:, 0]
    n_pre = layout.n_preamble_symbols + layout.n_train_symbols
    grid = np.empty((layout.n_tx, n_pre + var.shape[1], layout.fft_len), complex)
    grid[:, 0] = layout.preamble_freq
    grid[:, layout.n_preamble_symbols: n_pre] = layout.training_freq
    grid[:, n_pre:] = var
    return grid, header


def frame_grid_reference(layout: OfatLayout, values: np.ndarray, seq: int,
                         shape: tuple[int, ...] | None = None,
                         flags: int = 0) -> tuple[np.ndarray, FrameHeader]:
    """The straightforward per-frame construction of `frame_grid` (every constant rebuilt).

    The definition the cached fast path (`frame_grid`, `modulate_frame`) is tested and benchmarked
    against (benchmarks/run.py, tests/test_ofat_frame.py).
    """
    x, header = _data_and_header(layout, values, seq, shape, flags)
    n_data = x.shape[2]
    n_sym = layout.n_sync_symbols + n_data
    grid = np.zeros((layout.n_tx, n_sym, layout.fft_len), complex)
    grid[:, 0] = layout.preamble_freq
    t0 = layout.n_preamble_symbols
    grid[:, t0: t0 + layout.n_train_symbols] = layout.training_freq
    h0 = t0 + layout.n_train_symbols
    d0 = h0 + layout.n_header_symbols
    # Header and data symbols share the pilot pattern (indexed from the first header symbol).
    n_pilot_sym = layout.n_header_symbols + n_data
    pilots = layout.pilot_values(n_pilot_sym)
    cdd_pilot = layout.cdd_phases(layout.pilot_bins)  # (Nt, P)
    grid[:, h0:, layout.pilot_bins] = pilots[None, :, :] * cdd_pilot[:, None, :]
    cdd_data = layout.cdd_phases(layout.data_bins)  # (Nt, K)
    grid[:, h0:d0, layout.data_bins] = header_symbols(layout, header)[None] * cdd_data[:, None, :]
    grid[:, d0:, layout.data_bins] = x.transpose(1, 2, 0)  # (Nt, S, K)
    return grid, header


def modulate_frame(layout: OfatLayout, values: np.ndarray, seq: int, shape: tuple[int, ...] | None = None,
                   flags: int = 0, pad: int = 0) -> tuple[np.ndarray, FrameHeader]:
    """Payload -> time-domain frame for every transmit antenna: (Nt, frame_len + pad) complex64.

    `pad` zero samples follow the frame (ofat_tx's gap, written in place instead of copied again).
    One frame of `modulate_frames`: equal bit for bit to `ofdm_modulate(frame_grid_reference(...))`
    (tests/test_ofat_frame.py checks it).
    """
    header = frame_header(layout, values, seq, shape, flags)
    return modulate_frames(layout, [values], [header], pad), header


def modulate_frames(layout: OfatLayout, payloads: Sequence[np.ndarray], headers: Sequence[FrameHeader],
                    pad: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Many payloads -> their frames back to back, each followed by `pad` zeros:
    (Nt, sum_i frame_len(n_i) + pad) complex64, frame i starting at sum_{j<i} (frame_len(n_j) + pad).

    payloads[i]: any real array; headers[i]: `frame_header(layout, payloads[i], ...)` (its scale is
    applied, its seq and shape are sent). out: optional (Nt, >= that many samples) complex64 array to
    write into (a caller's reused buffer; the view written is returned).

    Frames with the same number of data symbols are built together, a few at a time (one pilot-grid
    copy, two fancy assignments and one IFFT over all their symbols and antennas, written with their
    cyclic prefix straight into the complex64 output): the per-frame Python work is the header's bytes,
    and each frame is bit for bit what `modulate_frame` gives it alone. The preamble and training
    samples come from the layout's cached template. With `layout.clip_ratio_db` set, the data symbols
    are clipped at that ratio above their known RMS (preamble, training and header are not, so the
    channel estimate stays clean); the receiver divides by the Bussgang gain
    (`semcom.ofat.equalize.reconstruct_payload`).
    """
    if pad < 0:
        raise FrameError(f"pad must be >= 0 samples, got {pad}")
    if len(payloads) != len(headers):
        raise FrameError(f"{len(payloads)} payloads but {len(headers)} headers")
    payloads = [np.asarray(v, np.float64) for v in payloads]
    n_data = [layout.n_data_symbols(v.size) for v in payloads]
    n_sync = layout.n_sync_symbols
    lengths = [(n_sync + n) * layout.symbol_len + pad for n in n_data]  # frame_len + pad
    total = sum(lengths)
    if out is None:
        out = np.empty((layout.n_tx, total), np.complex64)
    elif out.dtype != np.complex64 or out.ndim != 2 or out.shape[0] != layout.n_tx or out.shape[1] < total:
        raise FrameError(f"out must be complex64 ({layout.n_tx}, >= {total}), got {out.dtype} {out.shape}")
    out = out[:, :total]
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(n_data):
        groups.setdefault(n, []).append(i)
    if len(groups) > 1:
        out[:] = 0  # the gaps
        starts = np.cumsum(lengths) - lengths
    for n, members in groups.items():
        frame_len = (n_sync + n) * layout.symbol_len
        if len(groups) == 1:  # the usual case: all frames alike, written in place through a view
            frames = out.reshape(layout.n_tx, len(members), frame_len + pad)
            frames[:, :, frame_len:] = 0
            dest = frames[:, :, :frame_len]
        else:
            dest = np.empty((layout.n_tx, len(members), frame_len), np.complex64)
        if len(members) == 1:
            _modulate_chunk(layout, [payloads[members[0]]], [headers[members[0]]], n, dest)
        else:
            # A few frames at a time: numpy's temporaries stay below glibc's mmap threshold (128 KiB),
            # so they come from the heap instead of fresh pages that fault on every call (2-3x slower).
            step = max(1, _CHUNK_BYTES // (layout.n_tx * (layout.n_header_symbols + n) * layout.fft_len * 16))
            for first in range(0, len(members), step):
                chunk = members[first: first + step]
                _modulate_chunk(layout, [payloads[i] for i in chunk], [headers[i] for i in chunk], n,
                                dest[:, first: first + len(chunk)])
        if len(groups) > 1:
            out[:, starts[members][:, None] + np.arange(frame_len)] = dest
    return out


_CHUNK_BYTES = 96 * 1024


def _modulate_chunk(layout: OfatLayout, payloads: Sequence[np.ndarray], headers: Sequence[FrameHeader],
                    n_data: int, dest: np.ndarray) -> None:
    """F frames of `n_data` data symbols into dest (Nt, F, frame_len) complex64."""
    sync = _tx_template(layout).sync_samples  # preamble + training never change: IFFT'd once
    grid = _variable_grid(layout, payloads, headers, n_data)
    if layout.clip_ratio_db:
        body = ofdm_modulate(layout, grid)
        sync_all = np.broadcast_to(sync[:, None], (*body.shape[:2], sync.shape[1]))
        samples = np.concatenate([sync_all, body], axis=2)
        dest[:] = clip_frame(samples.transpose(1, 0, 2), layout, layout.clip_ratio_db,
                             symbols="data").transpose(1, 0, 2)
        return
    # ofdm_modulate's IFFT, its cyclic prefix copied straight into the complex64 output (the same
    # rounding as astype, no concatenated complex128 frame in between).
    body = np.fft.ifft(grid, axis=-1, norm="ortho")
    dest[:, :, : sync.shape[1]] = sync[:, None]
    symbols = dest[:, :, sync.shape[1]:].view()
    symbols.shape = (*grid.shape[:3], layout.symbol_len)  # a view (raises rather than copy)
    symbols[..., layout.cp_len:] = body
    symbols[..., : layout.cp_len] = body[..., layout.fft_len - layout.cp_len:]
