"""IQ recordings of all receive channels in SigMF, and their streamed offline replay through the receiver.

A recording is a SigMF pair `<name>.sigmf-meta` + `<name>.sigmf-data`: complex64 little-endian
(`cf32_le`) samples, channels interleaved (`core:num_channels` = Nr: sample 0 of channel 0, 1, ...,
then sample 1 ...), with the capture's sample rate, centre frequency, start time, hardware, and these
`semcom:` global fields:

    semcom:layout        the OFAT layout (OfatLayout.to_dict) the frames were sent with
    semcom:gains_db      receive gain per channel (list), semcom:antennas (list)
    semcom:n_samples_per_channel  what the data file must hold (a cut file is refused by size)
    semcom:payload       optional: how the transmitted tensors were generated, so replay can score
                         NMSE: {"generator": "numpy.default_rng(seed).standard_normal", "seed", "shape",
                         "first_seq"}
    semcom:live_results  optional: [{"seq", "nmse_db"}] as decoded live (MMSE), for regression checks:
                         `semcom replay` exits 1 when its decode differs (other seqs, or an NMSE more
                         than LIVE_TOLERANCE_DB away)

The metadata goes through the `sigmf` package (`SigMFFile`: schema validation on write and on read,
its chunked `core:sha512` check). Memory stays bounded at any recording size: `RecordingWriter` hashes
while it writes (no second pass), and replay maps one chunk of the data file at a time (`np.memmap`
window, unmapped after the copy, so the pages read do not pile up in the resident set) and feeds
`FrameReceiver.process` chunk by chunk; the receiver carries frames and plateaus across chunks, so the
frames are those of a whole-file replay. `core:datetime` of the capture is its START (the writer's
creation, i.e. the flowgraph's start), UTC in sigmf's ISO 8601 format.

Bad, missing, cut or mislabelled recordings raise `RecordingError`, a `UsageError`: one line and exit
status 2 from `semcom replay`. Metadata written by hand before this module used `sigmf` (SigMF 1.0.0,
`tests/fixtures/legacy_sigmf_1_0_0`) still loads; a `core:version` outside SigMF 1.x is refused naming
the version.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import sigmf
from sigmf import SigMFFile
from sigmf.error import SigMFError
from sigmf.utils import SIGMF_DATETIME_ISO8601_FMT

from semcom.errors import UsageError, finite_float, nonnegative_int, positive_int
from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import FrameError, OfatLayout
from semcom.ofat.receiver import FrameReceiver, ReceivedFrame

DATATYPE = "cf32_le"
SAMPLE_DTYPE = np.dtype("<c8")
# Samples per channel per replay chunk: 2 channels x 2^18 x 8 B = 4 MiB mapped at a time.
DEFAULT_CHUNK = 2**18
EXTENSION = {"name": "semcom", "version": "1.0.0", "optional": True}
# What `semcom:live_results` were decoded with (record_loopback), and how far a replay's NMSE may be from
# them: the replay feeds the receiver the very samples it decoded live (0.000 dB apart here); the margin
# is for another BLAS or CPU, not for another receiver.
LIVE_METHOD = "mmse"
LIVE_TOLERANCE_DB = 0.1


class RecordingError(UsageError):
    """A recording that cannot be replayed: missing, cut, corrupt or mislabelled (one line, exit 2)."""


def recording_paths(path: str | Path) -> tuple[Path, Path]:
    """(`.sigmf-meta`, `.sigmf-data`) of a recording named by its base name or either file."""
    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".sigmf-meta", ".sigmf-data") else p
    # Appended, not with_suffix: a base name may hold dots ("rx_2.45GHz" keeps its ".45GHz").
    return base.with_name(base.name + ".sigmf-meta"), base.with_name(base.name + ".sigmf-data")


def sigmf_now() -> str:
    """The current UTC time as SigMF writes `core:datetime`."""
    return datetime.now(UTC).strftime(SIGMF_DATETIME_ISO8601_FMT)


def _payload_stream(payload: dict[str, Any]) -> Iterator[tuple[int, np.ndarray]]:
    """(seq, tensor) of every frame a `semcom:payload` description stands for, in order, forever."""
    rng = np.random.default_rng(int(payload["seed"]))
    shape = tuple(payload["shape"])
    seq = int(payload.get("first_seq", 0))
    while True:
        yield seq, rng.standard_normal(shape).astype(np.float32)
        seq += 1


def payload_tensors(payload: dict[str, Any], n: int) -> dict[int, np.ndarray]:
    """The first `n` transmitted tensors a `semcom:payload` description stands for: seq -> tensor."""
    stream = _payload_stream(payload)
    return dict(next(stream) for _ in range(n))


class _PayloadTruths:
    """The transmitted tensor of any seq with one tensor in memory: generated forward from the seed,
    restarted when a frame arrives with a seq below the last one (a lost-then-repeated seq). Seqs past
    `max_frames` tensors get None: a header that passed its CRC by chance must not start billions of
    draws."""

    def __init__(self, payload: dict[str, Any], max_frames: int):
        self._payload = payload
        self._last = int(payload.get("first_seq", 0)) + max_frames - 1
        self._restart()

    def _restart(self) -> None:
        self._stream = _payload_stream(self._payload)
        self._seq, self._tensor = next(self._stream)

    def get(self, seq: int) -> np.ndarray | None:
        if seq < self._seq:
            self._restart()
        if seq < self._seq or seq > self._last:
            return None  # before first_seq or more frames than the recording can hold
        while self._seq < seq:
            self._seq, self._tensor = next(self._stream)
        return self._tensor


def _one_line(err: BaseException) -> str:
    """jsonschema's errors carry the schema over many lines; the first line says what is wrong."""
    text = err.message if isinstance(err, jsonschema.ValidationError) else str(err)
    return text.splitlines()[0] if text else type(err).__name__


def _write_meta(meta_path: Path, handle: SigMFFile) -> None:
    """Validate against the SigMF schema and write (replacing) the metadata file."""
    try:
        handle.tofile(meta_path, overwrite=True)
    except (SigMFError, jsonschema.ValidationError) as err:
        raise RecordingError(f"{meta_path}: SigMF validation failed: {_one_line(err)}") from None


class RecordingWriter:
    """Streams (Nr, n) sample chunks into `<path>.sigmf-data` (interleaved cf32_le), hashing them as
    they go, and writes `<path>.sigmf-meta` on `close()`. Memory: one chunk, whatever the length.

    `start_time` (SigMF's UTC ISO 8601 string) defaults to now: the capture starts when the writer is
    created. Use as a context manager or call `close()`; `close()` after `close()` does nothing.
    """

    def __init__(self, path: str | Path, layout: OfatLayout, *, sample_rate: float, center_freq: float = 0.0,
                 gains_db: list[float] | None = None, antennas: list[str] | None = None,
                 hardware: str = "", description: str = "", start_time: str | None = None):
        self.meta_path, self.data_path = recording_paths(path)
        self.layout = layout
        self.start_time = start_time or sigmf_now()
        self.samples_written = 0  # per channel
        self._hash = hashlib.sha512()
        self._global: dict[str, Any] = {
            "core:datatype": DATATYPE,
            "core:sample_rate": float(sample_rate),
            "core:num_channels": layout.n_rx,
            "core:recorder": "gr-semcom",
            "core:description": description,
            "core:extensions": [EXTENSION],
            "semcom:layout": layout.to_dict(),
            "semcom:gains_db": [float(g) for g in (gains_db or [0.0] * layout.n_rx)],
            "semcom:antennas": list(antennas or [""] * layout.n_rx),
        }
        if hardware:
            self._global["core:hw"] = hardware
        self._center_freq = float(center_freq)
        self._file = open(self.data_path, "wb")  # noqa: SIM115 (closed in close())

    def write(self, samples: np.ndarray) -> None:
        """Append (Nr, n) samples (any complex dtype; stored as complex64)."""
        if samples.ndim != 2 or samples.shape[0] != self.layout.n_rx:
            raise ValueError(f"expected ({self.layout.n_rx}, n) samples, got {samples.shape}")
        raw = np.ascontiguousarray(samples.T, dtype=SAMPLE_DTYPE)
        self._hash.update(raw.data)
        self._file.write(raw.data)
        self.samples_written += samples.shape[1]

    def close(self, **extra_global: Any) -> Path:
        """Close the data file and write the metadata (plus `extra_global` fields, e.g. semcom:payload)."""
        if self._file is None:
            return self.meta_path
        self._file.close()
        self._file = None
        handle = SigMFFile(global_info={**self._global,
                                        "core:sha512": self._hash.hexdigest(),
                                        "semcom:n_samples_per_channel": self.samples_written,
                                        **extra_global})
        capture = {"core:frequency": self._center_freq, "core:datetime": self.start_time}
        handle.add_capture(0, metadata=capture)
        _write_meta(self.meta_path, handle)
        return self.meta_path

    def abort(self) -> None:
        """Close the data file without metadata (a write failed: the recording is not complete)."""
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError:
                pass  # the failure that brought us here is reported by the caller

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_recording(path: str | Path, samples: np.ndarray, **meta: Any) -> Path:
    """samples (Nr, n) -> a recording in one go (keywords: those of RecordingWriter)."""
    with RecordingWriter(path, **meta) as writer:
        writer.write(samples)
    return writer.meta_path


def annotate(path: str | Path, **global_fields: Any) -> Path:
    """Add or replace global fields of an existing recording's metadata (validated; data untouched)."""
    meta_path, _ = recording_paths(path)
    handle = _read_meta(meta_path)
    for key, value in global_fields.items():
        handle.set_global_field(key, value)
    _write_meta(meta_path, handle)
    return meta_path


def _read_meta(meta_path: Path) -> SigMFFile:
    if not meta_path.is_file():
        raise RecordingError(f"{meta_path}: no such SigMF metadata file")
    try:
        doc = json.loads(meta_path.read_text())
        version = str(doc["global"].get("core:version", ""))
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise RecordingError(f"{meta_path}: not SigMF metadata ({type(err).__name__}: {err})") from None
    if version.split(".")[0] != "1":
        raise RecordingError(f"{meta_path}: core:version {version!r} is not SigMF 1.x (this reader: sigmf "
                             f"{sigmf.__version__}, SigMF {sigmf.__specification__})")
    try:
        handle = SigMFFile(metadata=doc)  # reports the library's spec version, accepts 1.0.0 .. 1.2.x
        handle.validate()
    except (SigMFError, jsonschema.ValidationError) as err:
        raise RecordingError(f"{meta_path}: SigMF validation failed: {_one_line(err)}") from None
    return handle


@dataclass
class Recording:
    """An opened recording: validated metadata, the data file checked for size (and hash)."""

    meta_path: Path
    data_path: Path
    layout: OfatLayout
    meta: dict[str, Any]  # the SigMF global object
    captures: list[dict[str, Any]]
    n_samples: int  # per channel

    @property
    def sample_rate(self) -> float:
        return float(self.meta["core:sample_rate"])

    @property
    def start_time(self) -> str | None:
        """`core:datetime` of the first capture: when the recording started."""
        return self.captures[0].get("core:datetime") if self.captures else None

    def read(self, start: int = 0, count: int | None = None) -> np.ndarray:
        """Samples [start, start + count) of every channel: (Nr, count) complex64, a copy. Only those
        bytes are mapped, and unmapped on return."""
        count = self.n_samples - start if count is None else min(count, self.n_samples - start)
        n_rx = self.layout.n_rx
        if count <= 0:
            return np.zeros((n_rx, 0), np.complex64)
        window = np.memmap(self.data_path, dtype=SAMPLE_DTYPE, mode="r",
                           offset=start * n_rx * SAMPLE_DTYPE.itemsize, shape=(count * n_rx,))
        out = np.ascontiguousarray(window.reshape(count, n_rx).T, dtype=np.complex64)
        del window  # unmaps: the chunk's pages leave the resident set
        return out

    def chunks(self, chunk_samples: int = DEFAULT_CHUNK) -> Iterator[np.ndarray]:
        """The whole recording as consecutive (Nr, <= chunk_samples) arrays, one in memory at a time."""
        if chunk_samples < 1:
            raise ValueError(f"chunk_samples must be >= 1, got {chunk_samples}")
        for start in range(0, self.n_samples, chunk_samples):
            yield self.read(start, chunk_samples)


def load_recording(path: str | Path, *, verify_hash: bool = True) -> Recording:
    """Open and check a recording: SigMF schema (the `sigmf` package), gr-semcom fields, data size, and
    `core:sha512` (sigmf's chunked hash, a pass over the file) unless `verify_hash` is False."""
    meta_path, data_path = recording_paths(path)
    handle = _read_meta(meta_path)
    if not data_path.is_file():
        raise RecordingError(f"{data_path}: no such SigMF data file")
    g = handle.get_global_info()
    if g.get("core:datatype") != DATATYPE:
        raise RecordingError(f"{meta_path}: datatype {g.get('core:datatype')!r}, expected {DATATYPE!r}")
    if "semcom:layout" not in g:
        raise RecordingError(f"{meta_path}: no semcom:layout, not a gr-semcom recording")
    try:
        layout = OfatLayout.from_dict(g["semcom:layout"])
    except (FrameError, TypeError, KeyError, ValueError) as err:
        raise RecordingError(f"{meta_path}: bad semcom:layout: {err}") from None
    captures = handle.get_captures()
    if g.get("core:trailing_bytes") or any(c.get("core:header_bytes") for c in captures):
        # A non-conforming dataset (samples inside another file format): the reader maps raw samples.
        raise RecordingError(f"{meta_path}: core:header_bytes / core:trailing_bytes are not supported "
                             f"(non-conforming dataset); this reader needs plain cf32_le samples")
    channels = int(g.get("core:num_channels", 1))
    if channels != layout.n_rx:
        raise RecordingError(f"{meta_path}: core:num_channels = {channels} but the layout has "
                             f"n_rx = {layout.n_rx} (mislabelled recording)")
    size = data_path.stat().st_size
    item = SAMPLE_DTYPE.itemsize * channels
    expected = g.get("semcom:n_samples_per_channel")
    if size % item or (expected is not None and size // item != expected):
        raise RecordingError(f"{data_path}: {size} bytes is not {expected} samples x {channels} "
                             f"channels of cf32 (truncated recording)")
    if verify_hash and "core:sha512" in g:
        try:  # maps the file (nothing read into memory) and hashes it in 4 KiB reads
            handle.set_data_file(data_path, skip_checksum=False)
        except SigMFError as err:
            raise RecordingError(f"{data_path}: sha512 does not match the metadata (altered or corrupt "
                                 f"recording: {_one_line(err)})") from None
    return Recording(meta_path=meta_path, data_path=data_path, layout=layout, meta=g, captures=captures,
                     n_samples=size // item)


def _nmse_db(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(10 * np.log10(np.sum((estimate - truth) ** 2) / np.sum(truth**2)))


def decoded_frames(recording: Recording, chunk_samples: int = DEFAULT_CHUNK,
                   receiver: FrameReceiver | None = None, progress: bool = False) -> Iterator[ReceivedFrame]:
    """Every frame the receiver decodes, streamed chunk by chunk (pass `receiver` to read its counters;
    `progress`: a bar over the chunks on a terminal)."""
    rx = receiver or FrameReceiver(recording.layout)
    chunks: Iterable[np.ndarray] = recording.chunks(chunk_samples)
    if progress and importlib.util.find_spec("tqdm") is not None:  # tqdm: the [host] extra; the base
        from semcom.progress import progress_bar  # install (the blocks' own) replays without a bar

        chunks = progress_bar(chunks, total=-(-recording.n_samples // chunk_samples), unit="chunk",
                              desc="replay", leave=False)
    for chunk in chunks:
        yield from rx.process(chunk)


def replay_rows(recording: Recording, method: str = "mmse", chunk_samples: int = DEFAULT_CHUNK,
                receiver: FrameReceiver | None = None, progress: bool = False) -> Iterator[dict[str, Any]]:
    """One dict per decoded frame, streamed: seq, snr_db, timing (absolute sample index of the frame
    start), and nmse_db when the recording says how its payload was generated."""
    layout = recording.layout
    payload = recording.meta.get("semcom:payload")
    # No recording holds more frames than it has room for: the bound on the seqs worth scoring.
    room = recording.n_samples // layout.frame_len(math.prod(payload["shape"])) + 1 if payload else 0
    truths = _PayloadTruths(payload, room) if payload else None
    for frame in decoded_frames(recording, chunk_samples, receiver, progress):
        header = frame.header
        row: dict[str, Any] = {"seq": header.seq, "snr_db": frame.snr_db, "timing": frame.start}
        truth = truths.get(header.seq) if truths else None
        if truth is not None and truth.size == header.n_values:
            got = reconstruct_payload(layout, frame.h, frame.y, shape=header.shape, scale=header.scale,
                                      noise_var=frame.noise_var, method=method)
            row["nmse_db"] = _nmse_db(got, truth)
        yield row


def replay(recording: Recording, method: str = "mmse",
           chunk_samples: int = DEFAULT_CHUNK) -> list[dict[str, Any]]:
    """`replay_rows` as a list (a few rows per frame: fine for any recording length)."""
    return list(replay_rows(recording, method, chunk_samples))


def record_loopback(path: str | Path, *, n_frames: int = 12, snr_db: float = 20.0, seed: int = 7,
                    shape: tuple[int, ...] = (4, 48), layout: OfatLayout | None = None,
                    channel_seed: int = 3) -> list[dict[str, Any]]:
    """Record a loopback run (ofat_tx -> mimo_channel -> sigmf_sink and ofat_rx) and store what the
    receiver decoded live in the recording, so that a replay can be checked against it."""
    from semcom.burst import run_burst
    from semcom.ofat.frame import make_layout

    layout = layout or make_layout("wifi64", n_tx=2, n_rx=2)
    payload = {"generator": "numpy.random.default_rng(seed).standard_normal(shape).astype(float32)",
               "seed": seed, "shape": list(shape), "first_seq": 0}
    tensors = payload_tensors(payload, n_frames)
    description = f"gr-semcom loopback recording: {n_frames} frames, {snr_db} dB, seed {seed}"
    *frames, _ = run_burst(
        layout, tensors, record_path=str(path), record_meta={"sample_rate": 1e6, "description": description},
        snr_db=snr_db, max_int_delay=20, cfo_jitter=0.2 / layout.fft_len, seed=channel_seed)
    live = []
    for meta, t in frames:
        got = reconstruct_payload(layout, t["H"], t["Y"], shape=meta["shape"], scale=meta["scale"],
                                  noise_var=meta["noise_var"], method=LIVE_METHOD)
        truth = tensors[int(meta["seq"])]
        live.append({"seq": int(meta["seq"]), "nmse_db": _nmse_db(got, truth)})
    annotate(path, **{"semcom:payload": payload, "semcom:live_results": live})
    return live


def _cmd_replay(args: Any) -> int:
    rec = load_recording(args.recording, verify_hash=not args.skip_hash)
    live = {r["seq"]: r["nmse_db"] for r in rec.meta.get("semcom:live_results", [])}
    print(f"{args.recording}: {rec.n_samples} samples x {rec.layout.n_rx} channels, started "
          f"{rec.start_time}")
    compare_nmse = args.method == LIVE_METHOD  # a ZF or sparse decode is not the live MMSE one
    worst = 0.0
    seqs = []
    for row in replay_rows(rec, method=args.method, chunk_samples=args.chunk, progress=not args.no_progress):
        seqs.append(row["seq"])
        line = f"  seq {row['seq']:6d}  snr {row['snr_db']:6.2f} dB"
        if "nmse_db" in row:
            line += f"  nmse {row['nmse_db']:7.2f} dB"
        if compare_nmse and row["seq"] in live and "nmse_db" in row:
            worst = max(worst, abs(row["nmse_db"] - live[row["seq"]]))
            line += f"  (live {live[row['seq']]:7.2f} dB)"
        print(line)
    print(f"{len(seqs)} frames decoded")
    if not seqs:  # nothing to regress against and nothing received: a failed replay, not a pass
        print("no frame decoded: wrong layout, wrong sample format, or no OFAT frame in the recording")
        return 1
    if not live:
        return 0
    same = sorted(live) == seqs
    if not compare_nmse:
        print(f"replay vs live: same sequence numbers: {same}; NMSE not compared (live was decoded with "
              f"{LIVE_METHOD}, this replay with {args.method})")
        return 0 if same else 1
    print(f"replay vs live: same sequence numbers: {same}; largest NMSE difference {worst:.3f} dB "
          f"(tolerance {LIVE_TOLERANCE_DB} dB)")
    return 0 if same and worst <= LIVE_TOLERANCE_DB else 1


def _cmd_record(args: Any) -> int:
    if importlib.util.find_spec("torch") is None:  # record_loopback runs semcom.loopback's flowgraph
        raise UsageError("`semcom record-loopback` needs the Python package 'torch', which is not "
                         "installed: pip install 'gr-semcom[host]'")
    live = record_loopback(args.path, n_frames=args.frames, snr_db=args.snr, seed=args.seed)
    print(f"recorded {len(live)} decoded frames to {args.path}.sigmf-meta/-data")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "replay", help="replay a SigMF recording through the OFAT receiver, streamed",
        description="Replay a SigMF recording through the OFAT receiver, chunk by chunk, and print each "
                    "decoded frame (seq, SNR estimate, NMSE when the recording has semcom:payload). A "
                    "recording with semcom:live_results (semcom record-loopback) is compared with them.",
        epilog=f"Exit status: 0 at least one frame decoded (and, with live results, the same sequence "
               f"numbers as live and each frame's NMSE within {LIVE_TOLERANCE_DB} dB of live; NMSE is "
               f"compared only with --method {LIVE_METHOD}, the live decode's); 1 no frame decoded, or the "
               f"replay differs from live; 2 a missing, cut, altered or mislabelled recording (one line).")
    p.add_argument("recording", help="path of the .sigmf-meta (or the base name)")
    p.add_argument("--method", default="mmse", choices=["zf", "mmse", "sparse"],
                   help="reconstruction (default: %(default)s)")
    p.add_argument("--chunk", type=positive_int, default=DEFAULT_CHUNK,
                   help="samples per channel read at a time (default: %(default)s)")
    p.add_argument("--skip-hash", action="store_true",
                   help="do not check core:sha512 (a full pass over the data file; default: check)")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (default: a bar on a terminal)")
    p.set_defaults(func=_cmd_replay)
    p = subparsers.add_parser("record-loopback", help="record a loopback run as a SigMF regression fixture")
    p.add_argument("path", help="base name of the recording")
    p.add_argument("--frames", type=positive_int, default=12, help="frames to record (default: %(default)s)")
    p.add_argument("--snr", type=finite_float, default=20.0, help="channel SNR in dB (default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=7, help="payload seed (default: %(default)s)")
    p.set_defaults(func=_cmd_record)
