"""IQ recordings of all receive channels in SigMF, and their offline replay through the receiver.

A recording is a SigMF pair `<name>.sigmf-meta` + `<name>.sigmf-data`: complex64 little-endian
(`cf32_le`) samples, channels interleaved (`core:num_channels` = Nr), with the capture's sample rate,
centre frequency, time, hardware, and these `semcom:` global fields:

    semcom:layout        the OFAT layout (OfatLayout.to_dict) the frames were sent with
    semcom:gains_db      receive gain per channel (list), semcom:antennas (list)
    semcom:payload       optional: how the transmitted tensors were generated, so replay can score
                         NMSE: {"generator": "numpy.default_rng(seed).standard_normal", "seed", "shape",
                         "first_seq"}
    semcom:live_results  optional: [{"seq", "nmse_db"}] as decoded live, for regression checks

Replay feeds the samples through the GNU Radio `ofat_rx` block (the same code as live) and
reconstructs with `reconstruct_payload`. A truncated or mislabelled recording gets `RecordingError`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from semcom.errors import finite_float, positive_int
from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import FrameError, OfatLayout

DATATYPE = "cf32_le"
SIGMF_VERSION = "1.0.0"


class RecordingError(ValueError):
    """A recording that cannot be replayed: missing, truncated or mislabelled."""


def _paths(path: str | Path) -> tuple[Path, Path]:
    p = Path(path)
    base = p.with_suffix("") if p.suffix in (".sigmf-meta", ".sigmf-data") else p
    return base.with_suffix(".sigmf-meta"), base.with_suffix(".sigmf-data")


def payload_tensors(payload: dict[str, Any], n: int) -> dict[int, np.ndarray]:
    """The transmitted tensors a `semcom:payload` description stands for: seq -> tensor."""
    rng = np.random.default_rng(int(payload["seed"]))
    shape = tuple(payload["shape"])
    first = int(payload.get("first_seq", 0))
    return {first + i: rng.standard_normal(shape).astype(np.float32) for i in range(n)}


def write_meta(path: str | Path, *, layout: OfatLayout, sample_rate: float, n_samples: int,
               center_freq: float = 0.0, gains_db: list[float] | None = None,
               antennas: list[str] | None = None, hardware: str = "", description: str = "",
               payload: dict[str, Any] | None = None, live_results: list[dict[str, Any]] | None = None,
               datetime_utc: str | None = None) -> Path:
    """Write the .sigmf-meta for a data file already written (interleaved cf32_le, Nr channels)."""
    meta_path, data_path = _paths(path)
    sha512 = hashlib.sha512(data_path.read_bytes()).hexdigest()
    global_info: dict[str, Any] = {
        "core:datatype": DATATYPE,
        "core:sample_rate": float(sample_rate),
        "core:num_channels": layout.n_rx,
        "core:version": SIGMF_VERSION,
        "core:sha512": sha512,
        "core:recorder": "gr-semcom",
        "core:description": description,
        "core:extensions": [{"name": "semcom", "version": "1.0.0", "optional": True}],
        "semcom:layout": layout.to_dict(),
        "semcom:gains_db": list(gains_db or [0.0] * layout.n_rx),
        "semcom:antennas": list(antennas or [""] * layout.n_rx),
        "semcom:n_samples_per_channel": int(n_samples),
    }
    if hardware:
        global_info["core:hw"] = hardware
    if payload:
        global_info["semcom:payload"] = payload
    if live_results is not None:
        global_info["semcom:live_results"] = live_results
    stamp = datetime_utc or datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    capture = {"core:sample_start": 0, "core:frequency": float(center_freq), "core:datetime": stamp}
    doc = {"global": global_info, "captures": [capture], "annotations": []}
    meta_path.write_text(json.dumps(doc, indent=2) + "\n")
    return meta_path


def write_recording(path: str | Path, samples: np.ndarray, **meta: Any) -> Path:
    """samples (Nr, n) -> interleaved cf32_le data file + meta (see write_meta for the fields)."""
    _, data_path = _paths(path)
    np.ascontiguousarray(samples.T, dtype="<c8").tofile(data_path)
    return write_meta(path, n_samples=samples.shape[1], **meta)


@dataclass
class Recording:
    samples: np.ndarray  # (Nr, n) complex64
    layout: OfatLayout
    meta: dict[str, Any]  # the SigMF global object

    @property
    def sample_rate(self) -> float:
        return float(self.meta["core:sample_rate"])


def load_recording(path: str | Path, *, verify_hash: bool = True) -> Recording:
    """Read and validate a recording (with the `sigmf` package's schema check when it can)."""
    meta_path, data_path = _paths(path)
    if not meta_path.is_file():
        raise RecordingError(f"{meta_path}: no such SigMF metadata file")
    if not data_path.is_file():
        raise RecordingError(f"{data_path}: no such SigMF data file")
    try:
        doc = json.loads(meta_path.read_text())
        g = doc["global"]
    except (ValueError, KeyError) as err:
        raise RecordingError(f"{meta_path}: not SigMF metadata ({err})") from None
    try:
        from sigmf import SigMFFile  # validates against the SigMF schema

        SigMFFile(metadata=doc).validate()
    except ImportError:
        pass
    except Exception as err:  # sigmf raises its own error classes
        raise RecordingError(f"{meta_path}: SigMF validation failed: {err}") from None
    if g.get("core:datatype") != DATATYPE:
        raise RecordingError(f"{meta_path}: datatype {g.get('core:datatype')!r}, expected {DATATYPE!r}")
    if "semcom:layout" not in g:
        raise RecordingError(f"{meta_path}: no semcom:layout, not a gr-semcom recording")
    try:
        layout = OfatLayout.from_dict(g["semcom:layout"])
    except (FrameError, TypeError) as err:
        raise RecordingError(f"{meta_path}: bad semcom:layout: {err}") from None
    channels = int(g.get("core:num_channels", 1))
    if channels != layout.n_rx:
        raise RecordingError(f"{meta_path}: core:num_channels = {channels} but the layout has "
                             f"n_rx = {layout.n_rx} (mislabelled recording)")
    raw = data_path.read_bytes()
    if verify_hash and "core:sha512" in g and hashlib.sha512(raw).hexdigest() != g["core:sha512"]:
        raise RecordingError(f"{data_path}: sha512 does not match the metadata (truncated or altered)")
    item = 8 * channels
    expected = g.get("semcom:n_samples_per_channel")
    if len(raw) % item or (expected is not None and len(raw) // item != expected):
        raise RecordingError(f"{data_path}: {len(raw)} bytes is not {expected} samples x {channels} "
                             f"channels of cf32 (truncated recording)")
    samples = np.frombuffer(raw, dtype="<c8").reshape(-1, channels).T.astype(np.complex64)
    return Recording(samples=samples, layout=layout, meta=g)


def replay(recording: Recording, method: str = "mmse", chunk: int = 4096) -> list[dict[str, Any]]:
    """Run the samples through the GNU Radio ofat_rx block; one dict per decoded frame:
    seq, snr_db, timing, and nmse_db when the recording says how its payload was generated."""
    from gnuradio import blocks, gr, semcom
    from gnuradio.semcom.messages import parse_tensor_message

    layout = recording.layout
    tb = gr.top_block()
    rx = semcom.ofat_rx(layout)
    for r in range(layout.n_rx):
        tb.connect(blocks.vector_source_c(recording.samples[r].tolist()), (rx, r))
    dbg = blocks.message_debug()
    tb.msg_connect((rx, "frames"), (dbg, "store"))
    tb.run()
    payload = recording.meta.get("semcom:payload")
    frames = [parse_tensor_message(dbg.get_message(i)) for i in range(dbg.num_messages())]
    truths = payload_tensors(payload, max([m["seq"] for m, _ in frames], default=-1) + 1) if payload else {}
    results = []
    for meta, tensors in frames:
        row = {"seq": int(meta["seq"]), "snr_db": float(meta["snr_db"]), "timing": int(meta["timing"])}
        truth = truths.get(row["seq"])
        if truth is not None:
            got = reconstruct_payload(layout, tensors["H"], tensors["Y"], shape=meta["shape"],
                                      scale=meta["scale"], noise_var=meta["noise_var"], method=method)
            row["nmse_db"] = float(10 * np.log10(np.sum((got - truth) ** 2) / np.sum(truth**2)))
        results.append(row)
    return results


def record_loopback(path: str | Path, *, n_frames: int = 12, snr_db: float = 20.0, seed: int = 7,
                    shape: tuple[int, ...] = (4, 48), layout: OfatLayout | None = None,
                    channel_seed: int = 3) -> list[dict[str, Any]]:
    """Record a loopback run (ofat_tx -> mimo_channel -> sigmf_sink and ofat_rx) and store what the
    receiver decoded live in the recording, so that a replay can be checked against it."""
    from semcom.loopback import run_burst
    from semcom.ofat.frame import make_layout

    layout = layout or make_layout("wifi64", n_tx=2, n_rx=2)
    payload = {"generator": "numpy.random.default_rng(seed).standard_normal(shape).astype(float32)",
               "seed": seed, "shape": list(shape), "first_seq": 0}
    tensors = payload_tensors(payload, n_frames)
    *frames, (rec_info, _) = run_burst(
        layout, tensors, record_path=str(path),
        record_meta={"sample_rate": 1e6, "description": "gr-semcom loopback recording"},
        snr_db=snr_db, max_int_delay=20, cfo_jitter=0.2 / layout.fft_len, seed=channel_seed)
    live = []
    for meta, t in frames:
        got = reconstruct_payload(layout, t["H"], t["Y"], shape=meta["shape"], scale=meta["scale"],
                                  noise_var=meta["noise_var"], method="mmse")
        truth = tensors[int(meta["seq"])]
        live.append({"seq": int(meta["seq"]),
                     "nmse_db": float(10 * np.log10(np.sum((got - truth) ** 2) / np.sum(truth**2)))})
    write_meta(path, layout=layout, sample_rate=1e6, n_samples=rec_info["samples_written"],
               description=f"gr-semcom loopback recording: {n_frames} frames, {snr_db} dB, seed {seed}",
               payload=payload, live_results=live)
    return live


def _cmd_replay(args: Any) -> int:
    try:
        rec = load_recording(args.recording)
    except RecordingError as err:
        print(f"error: {err}")
        return 2
    rows = replay(rec, method=args.method)
    live = {r["seq"]: r["nmse_db"] for r in rec.meta.get("semcom:live_results", [])}
    print(f"{args.recording}: {rec.samples.shape[1]} samples x {rec.layout.n_rx} channels, "
          f"{len(rows)} frames decoded")
    worst = 0.0
    for row in rows:
        line = f"  seq {row['seq']:6d}  snr {row['snr_db']:6.2f} dB"
        if "nmse_db" in row:
            line += f"  nmse {row['nmse_db']:7.2f} dB"
        if row["seq"] in live and "nmse_db" in row:
            worst = max(worst, abs(row["nmse_db"] - live[row["seq"]]))
            line += f"  (live {live[row['seq']]:7.2f} dB)"
        print(line)
    if live:
        same = sorted(live) == [r["seq"] for r in rows]
        print(f"replay vs live: same sequence numbers: {same}; largest NMSE difference {worst:.3f} dB")
        return 0 if same and worst <= 0.1 else 1
    return 0


def _cmd_record(args: Any) -> int:
    live = record_loopback(args.path, n_frames=args.frames, snr_db=args.snr, seed=args.seed)
    print(f"recorded {len(live)} decoded frames to {args.path}.sigmf-meta/-data")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("replay", help="replay a SigMF recording through ofat_rx")
    p.add_argument("recording", help="path of the .sigmf-meta (or the base name)")
    p.add_argument("--method", default="mmse", choices=["zf", "mmse", "sparse"],
                   help="reconstruction (default: %(default)s)")
    p.set_defaults(func=_cmd_replay)
    p = subparsers.add_parser("record-loopback", help="record a loopback run as a SigMF regression fixture")
    p.add_argument("path", help="base name of the recording")
    p.add_argument("--frames", type=positive_int, default=12, help="frames to record (default: %(default)s)")
    p.add_argument("--snr", type=finite_float, default=20.0, help="channel SNR in dB (default: %(default)s)")
    p.add_argument("--seed", type=int, default=7, help="payload seed (default: %(default)s)")
    p.set_defaults(func=_cmd_record)
