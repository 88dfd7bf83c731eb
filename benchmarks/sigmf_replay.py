"""SigMF at lab scale (issue 17 item 3): write a multi-GB synthetic 2-channel recording in chunks, replay
it streamed through the OFAT receiver, report peak resident memory and throughput of both phases.

Its own command, not a test (it writes GBs and takes minutes):

    nice -n 10 .venv/bin/python benchmarks/sigmf_replay.py --gb 1 4 --dir /var/tmp/sigmf_bench

The recording: complex Gaussian noise on 2 channels plus `--frames` real OFAT frames (wifi64, 2x2,
`modulate_frame` of the seeded payload the metadata describes, through a fixed flat 2x2 channel at
`--snr` dB) at known positions; half the frames straddle a replay chunk boundary inside the Schmidl &
Cox plateau, the other half inside the frame body. It is written through `semcom.capture.RecordingWriter`
(one write chunk in memory, hashed while written) and replayed through `load_recording` (sigmf's
chunked sha512 check) + `replay_rows` (one memmap window at a time into `FrameReceiver.process`).

Each phase runs in a fresh interpreter, so its peak RSS (`ru_maxrss`) is its own; a sampler thread
records RSS every 0.5 s (`psutil`) to show the trend over the file. The recording is deleted afterwards
unless `--keep`. Results: `benchmarks/results/sigmf_replay.{md,csv}`, the RSS traces
`sigmf_replay_rss.csv` and `.png`. The data file is read back through the page cache when it fits in
RAM (24 GiB here), so throughput is the CPU's, not the disk's.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from semcom.capture import (
    DEFAULT_CHUNK,
    Recording,
    RecordingWriter,
    load_recording,
    payload_tensors,
    recording_paths,
    replay_rows,
)
from semcom.ofat.frame import OfatLayout, make_layout, modulate_frame
from semcom.ofat.receiver import FrameReceiver
from semcom.results import save_figure, write_csv

RESULTS = Path(__file__).parent / "results"
BYTES_PER_SAMPLE = 8  # cf32
N_RX = 2
WRITE_CHUNK = 2**20  # samples per channel per write: 16 MiB of data
SHAPE = (4, 48)


def _layout() -> OfatLayout:
    return make_layout("wifi64", n_tx=2, n_rx=N_RX)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class RssSampler:
    """RSS of this process every `period` s in a background thread: [(seconds, MiB)]."""

    def __init__(self, period: float = 0.5):
        import psutil

        self._proc = psutil.Process()
        self._period = period
        self._stop = threading.Event()
        self.trace: list[tuple[float, float]] = []
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        self.trace.append((time.perf_counter() - self._t0, self._proc.memory_info().rss / 2**20))

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._sample()

    def __enter__(self) -> RssSampler:
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def frame_plan(layout: OfatLayout, n_samples: int, n_frames: int, chunk: int) -> list[int]:
    """Frame start positions: spread over the file, each placed so that a replay chunk boundary cuts it,
    inside the S&C plateau (even frames) or in the middle of the frame (odd frames)."""
    frame_len = layout.frame_len(int(np.prod(SHAPE)))
    plateau_cut = layout.fft_len + layout.cp_len // 2  # metric window ends half way along the CP
    positions = []
    for k in range(n_frames):
        boundary = max(1, round((k + 0.5) * n_samples / n_frames / chunk)) * chunk
        positions.append(boundary - (plateau_cut if k % 2 == 0 else frame_len // 2))
    if positions[-1] + frame_len > n_samples or positions[0] < 0:
        raise SystemExit(f"{n_frames} frames do not fit in {n_samples} samples with chunk {chunk}")
    return positions


def write_phase(args: argparse.Namespace) -> dict[str, Any]:
    layout = _layout()
    n = int(args.gb * 1e9) // (N_RX * BYTES_PER_SAMPLE)
    payload = {"generator": "numpy.random.default_rng(seed).standard_normal(shape).astype(float32)",
               "seed": args.seed, "shape": list(SHAPE), "first_seq": 0}
    tensors = payload_tensors(payload, args.frames)
    rng = np.random.default_rng(args.seed + 1)
    channel = (rng.standard_normal((N_RX, 2)) + 1j * rng.standard_normal((N_RX, 2))) / np.sqrt(2 * 2)
    positions = frame_plan(layout, n, args.frames, args.chunk)
    frames = [(pos, (channel @ modulate_frame(layout, tensors[seq], seq)[0]).astype(np.complex64))
              for seq, pos in enumerate(positions)]
    signal_power = float(np.mean([np.mean(np.abs(x) ** 2) for _, x in frames]))
    noise_std = np.sqrt(signal_power / 10 ** (args.snr / 10) / 2)  # per real component
    t0 = time.perf_counter()
    with RssSampler() as rss:
        writer = RecordingWriter(args.path, layout, sample_rate=1e6,
                                 description=f"sigmf_replay benchmark: noise + {args.frames} frames")
        for start in range(0, n, WRITE_CHUNK):
            m = min(WRITE_CHUNK, n - start)
            block = rng.standard_normal((N_RX, 2 * m), dtype=np.float32).view(np.complex64)
            block *= noise_std
            for pos, x in frames:  # the part of each frame that falls in this chunk
                a, b = max(pos, start), min(pos + x.shape[1], start + m)
                if a < b:
                    block[:, a - start: b - start] += x[:, a - pos: b - pos]
            writer.write(block)
        writer.close(**{"semcom:payload": payload})
    seconds = time.perf_counter() - t0
    return {"phase": "write", "gb": args.gb, "samples_per_channel": n, "bytes": n * N_RX * BYTES_PER_SAMPLE,
            "seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "positions": positions,
            "rss_trace": rss.trace}


@dataclasses.dataclass
class SigmfSliced(Recording):
    """The reference reader: sigmf's own `SigMFFile[a:b]`, slices of ONE memmap of the whole data file.
    Same samples, but every page read stays mapped, so the resident set grows with the file."""

    def __post_init__(self) -> None:
        from sigmf import SigMFFile

        handle = SigMFFile(metadata={"global": self.meta, "captures": self.captures, "annotations": []},
                           data_file=self.data_path, skip_checksum=True)
        self._handle = handle

    def read(self, start: int = 0, count: int | None = None) -> np.ndarray:
        stop = self.n_samples if count is None else min(start + count, self.n_samples)
        return np.ascontiguousarray(self._handle[start:stop].T, dtype=np.complex64)


def replay_phase(args: argparse.Namespace) -> dict[str, Any]:
    rss_before = _peak_rss_mb()
    with RssSampler() as rss:
        t0 = time.perf_counter()
        if args.phase == "replay":
            rec = load_recording(args.path)  # schema + size + sigmf's sha512 over the whole file
        else:  # the reference reader (hash not checked again: it does not change what is mapped)
            rec = load_recording(args.path, verify_hash=False)
            rec = SigmfSliced(*(getattr(rec, f.name) for f in dataclasses.fields(Recording)))
        t_hash = time.perf_counter() - t0
        rx = FrameReceiver(rec.layout)
        rows = list(replay_rows(rec, chunk_samples=args.chunk, receiver=rx))
        t_replay = time.perf_counter() - t0 - t_hash
    return {"phase": args.phase, "seconds_hash": t_hash, "seconds_replay": t_replay,
            "rss_after_imports_mb": rss_before, "peak_rss_mb": _peak_rss_mb(), "rows": rows,
            "counters": rx.counters.as_dict(), "start_time": rec.start_time, "rss_trace": rss.trace}


def run_phase(phase: str, args: argparse.Namespace, gb: float) -> dict[str, Any]:
    """One phase in a fresh interpreter, so that its peak RSS is its own."""
    cmd = [sys.executable, __file__, "--phase", phase, "--gb", str(gb), "--path", str(args.path),
           "--frames", str(args.frames), "--snr", str(args.snr), "--seed", str(args.seed),
           "--chunk", str(args.chunk)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{phase} phase at {gb:g} GB failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def summarise(gb: float, wrote: dict[str, Any], played: dict[str, Any], layout: OfatLayout,
              reference: dict[str, Any] | None) -> dict[str, Any]:
    positions = wrote["positions"]
    found = {r["seq"]: r for r in played["rows"]}
    timing_err = [abs(found[s]["timing"] - p) for s, p in enumerate(positions) if s in found]
    nmse = [r["nmse_db"] for r in played["rows"] if "nmse_db" in r]
    gib = wrote["bytes"] / 2**30
    return {
        "size_gb": gb, "size_gib": round(gib, 3), "samples_per_channel": wrote["samples_per_channel"],
        "frames_written": len(positions), "frames_found": len(played["rows"]),
        "same_seqs": sorted(found) == list(range(len(positions))),
        "max_timing_error": max(timing_err, default=-1), "cp_len": layout.cp_len,
        "nmse_db_mean": round(float(np.mean(nmse)), 2) if nmse else float("nan"),
        "header_crc_fail": played["counters"]["header_crc_fail"],
        "write_s": round(wrote["seconds"], 1),
        "write_mb_s": round(wrote["bytes"] / 1e6 / wrote["seconds"], 1),
        "write_peak_rss_mb": round(wrote["peak_rss_mb"], 1),
        "hash_s": round(played["seconds_hash"], 1),
        "replay_s": round(played["seconds_replay"], 1),
        "replay_msps_per_channel": round(wrote["samples_per_channel"] / 1e6 / played["seconds_replay"], 2),
        "replay_rss_after_imports_mb": round(played["rss_after_imports_mb"], 1),
        "replay_peak_rss_mb": round(played["peak_rss_mb"], 1),
        "sigmf_sliced_replay_s": round(reference["seconds_replay"], 1) if reference else "",
        "sigmf_sliced_peak_rss_mb": round(reference["peak_rss_mb"], 1) if reference else "",
        "sigmf_sliced_same_rows": reference["rows"] == played["rows"] if reference else "",
    }


def write_results(rows: list[dict[str, Any]], traces: list[dict[str, Any]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    write_csv(RESULTS / "sigmf_replay.csv", rows)
    write_csv(RESULTS / "sigmf_replay_rss.csv", traces)
    fig, ax = plt.subplots(figsize=(7, 4))
    for gb in sorted({t["size_gb"] for t in traces}):
        for phase, style in (("write", "--"), ("replay", "-"), ("replay-sigmf-sliced", ":")):
            pts = [(t["seconds"], t["rss_mb"]) for t in traces if t["size_gb"] == gb and t["phase"] == phase]
            if pts:
                ax.plot(*zip(*pts, strict=True), style, label=f"{gb:g} GB {phase}")
    ax.set_xlabel("seconds into the phase")
    ax.set_ylabel("resident set (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("SigMF 2-channel recording: RSS while writing and replaying")
    ax.grid(True, alpha=0.3)
    ax.legend()
    save_figure(fig, RESULTS / "sigmf_replay_rss.png")
    cols = ["size_gib", "frames_written", "frames_found", "same_seqs", "max_timing_error", "nmse_db_mean",
            "header_crc_fail", "write_s", "write_peak_rss_mb", "hash_s", "replay_s",
            "replay_msps_per_channel", "replay_rss_after_imports_mb", "replay_peak_rss_mb",
            "sigmf_sliced_replay_s", "sigmf_sliced_peak_rss_mb", "sigmf_sliced_same_rows"]
    sizes = " ".join(f"{g:g}" for g in args.gb)
    lines = [
        "# SigMF replay at lab scale (benchmarks/sigmf_replay.py)", "",
        f"Machine: {platform.machine()}, 2 cores shared with other jobs, no GPU; numpy {np.__version__}; "
        f"run under nice -n 10. Command:", "",
        f"    nice -n 10 .venv/bin/python benchmarks/sigmf_replay.py --gb {sizes}"
        f" --reference-gb {' '.join(f'{g:g}' for g in args.reference_gb)}"
        f" --frames {args.frames} --snr {args.snr:g} --chunk {args.chunk}", "",
        "Synthetic 2-channel cf32 recording (noise + wifi64 2x2 OFAT frames through a flat 2x2 channel at "
        f"{args.snr:g} dB), written in {WRITE_CHUNK}-sample chunks, replayed in {args.chunk}-sample chunks "
        "(every frame cut by a chunk boundary: in the S&C plateau or mid-frame). Peak RSS per phase in its "
        "own interpreter (ru_maxrss, MiB); `rss_after_imports` is the interpreter + numpy + semcom before "
        "the file is opened. `hash_s`: sigmf's sha512 check on load; throughput excludes it. "
        "`sigmf_sliced_*`: the reference reader, the same replay reading through sigmf's "
        "`SigMFFile[a:b]` (slices of one whole-file memmap) instead of one memmap window per chunk.", "",
        "| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |",
    ]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    lines += ["", "RSS over time: `sigmf_replay_rss.csv`, `sigmf_replay_rss.png`.", ""]
    (RESULTS / "sigmf_replay.md").write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--gb", type=float, nargs="+", default=[1.0, 4.0],
                   help="recording sizes in GB (1e9 bytes), one run each (default: %(default)s)")
    p.add_argument("--dir", type=Path, default=Path("/var/tmp/sigmf_bench"),
                   help="where the recording is written, then deleted (default: %(default)s)")
    p.add_argument("--frames", type=int, default=10,
                   help="OFAT frames in the recording (default: %(default)s)")
    p.add_argument("--snr", type=float, default=20.0, help="SNR per RX antenna in dB (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="payload, channel and noise seed (default: %(default)s)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK,
                   help="replay chunk, samples per channel (default: %(default)s)")
    p.add_argument("--reference-gb", type=float, nargs="*", default=[1.0],
                   help="sizes (of --gb) also replayed through the reference reader (default: %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the recording (default: delete it)")
    p.add_argument("--phase", choices=["write", "replay", "replay-sigmf-sliced"], help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.phase:  # child process: one phase, one JSON line on stdout
        args.gb = args.gb[0]
        result = write_phase(args) if args.phase == "write" else replay_phase(args)
        print(json.dumps(result))
        return
    args.dir.mkdir(parents=True, exist_ok=True)
    layout = _layout()
    rows, traces = [], []
    for gb in args.gb:
        args.path = args.dir / f"synthetic_{gb:g}gb"
        reference = None
        try:
            wrote = run_phase("write", args, gb)
            played = run_phase("replay", args, gb)
            if gb in args.reference_gb:
                reference = run_phase("replay-sigmf-sliced", args, gb)
        finally:
            if not args.keep:
                for file in recording_paths(args.path):
                    file.unlink(missing_ok=True)
        row = summarise(gb, wrote, played, layout, reference)
        rows.append(row)
        print(json.dumps(row), flush=True)
        for phase, result in (("write", wrote), ("replay", played), ("replay-sigmf-sliced", reference)):
            if result is None:
                continue
            traces += [{"size_gb": gb, "phase": phase, "seconds": round(t, 2), "rss_mb": round(m, 1)}
                       for t, m in result["rss_trace"]]
    write_results(rows, traces, args)


if __name__ == "__main__":
    main()
