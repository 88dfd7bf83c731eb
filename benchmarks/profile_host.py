#!/usr/bin/env python3
"""The host's CPU per frame in the loopback, without the flowgraph: recorded FRAMEs echoed back.

    .venv/bin/python benchmarks/profile_host.py [--frames 2000] [--windows 8 64] [--cprofile]
    .venv/bin/python benchmarks/profile_host.py --compare /tmp/host_old/host [--rounds 3]

The host's side of `semcom loopback` (semcom.loopback.stream: LinkClient send / receive_ready, the
batched `reconstruct_frames`, the NMSE of each frame) runs against an echo process that answers each
TENSOR at once with a recorded FRAME (the receiver's H, Y and meta of a 2x4 wifi64 frame at 20 dB,
recorded with `run_burst` from 32 seeded 5x256 payloads, renumbered to the TENSOR's seq). The echo is
another process, so this process's CPU is the host's alone: the main thread's (thread_time) and the
whole process's (with ZeroMQ's I/O thread), per delivered frame, over `--frames` frames after a
discarded warm-up; the split times the calls `benchmarks/profile_loopback.py` times.

--compare DIR: the same run in alternating processes with this tree's host package and with DIR's
(e.g. a `git worktree` of an older commit: DIR is its host/ folder), `--rounds` rounds, the least of
each kept. --cprofile: the main thread's top functions by own time. See benchmarks/PROFILE.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
N_RECORDED = 32
SNR_DB = 20.0


def record(path: Path) -> None:
    """32 frames of the loopback's 2x4 layout and channel through GNU Radio (run_burst), pickled with
    their payloads: [(meta, {"H", "Y"}, payload (5, 256) float32)]."""
    import numpy as np

    from semcom.burst import run_burst

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import LAYOUT  # the benchmarks' 2x4 wifi64 layout

    rng = np.random.default_rng(7)
    sent = {seq: rng.standard_normal((5, 256)).astype(np.float32) for seq in range(N_RECORDED)}
    frames = run_burst(LAYOUT, sent, fading="per_frame", snr_db=SNR_DB, seed=11, cfo_jitter=0.4 / 64,
                       max_int_delay=40, n_taps=3)
    recorded = [(meta, {k: np.asarray(v) for k, v in t.items()}, sent[int(meta["seq"])])
                for meta, t in frames]
    if len(recorded) != N_RECORDED:
        raise SystemExit(f"run_burst delivered {len(recorded)} of {N_RECORDED} frames")
    path.write_bytes(pickle.dumps(recorded))


def echo(path: Path) -> None:
    """Answer each TENSOR with the recorded FRAME seq % 32, renumbered; print the endpoints first."""
    import zmq

    from semcom.wire import HEADER, Kind, bind_random, encode

    recorded = pickle.loads(path.read_bytes())
    ctx = zmq.Context.instance()
    pull, tx = bind_random(ctx, zmq.PULL)
    push, rx = bind_random(ctx, zmq.PUSH, hwm=1000)
    print(tx, rx, flush=True)
    while True:
        parts = pull.recv_multipart()
        seq = HEADER.unpack(parts[0])[4]
        meta, tensors, _ = recorded[seq % len(recorded)]
        push.send_multipart(encode(Kind.FRAME, seq, tensors, {**meta, "seq": seq}))


def measure(path: Path, n_frames: int, windows: list[int], use_cprofile: bool) -> dict[str, dict[str, float]]:
    """{window: {figure: value}} of stream() against the echo."""
    import torch

    import semcom.transfer
    from semcom.link import LinkClient
    from semcom.loopback import stream

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from run import LAYOUT

    torch.set_num_threads(1)
    recorded = pickle.loads(path.read_bytes())
    child = subprocess.Popen([sys.executable, __file__, "--echo", str(path)], stdout=subprocess.PIPE,
                             text=True, env=os.environ)
    out: dict[str, dict[str, float]] = {}
    try:
        tx, rx = child.stdout.readline().split()
        with LinkClient(tx, rx, window=max(windows), timeout_s=5.0) as link:
            counts: dict[str, float] = collections.defaultdict(float)

            def timed(fn, key: str):  # the main thread's CPU in fn (us) and fn's calls
                def call(*args, **kwargs):
                    start = time.thread_time()
                    result = fn(*args, **kwargs)
                    counts[key] += (time.thread_time() - start) * 1e6
                    counts[key + " calls"] += 1
                    return result
                return call

            send, ready, reconstruct = link.send, link.receive_ready, semcom.transfer.reconstruct_frames
            link.send = timed(send, "LinkClient.send")
            link.receive_ready = timed(ready, "LinkClient.receive_ready")
            semcom.transfer.reconstruct_frames = timed(reconstruct, "reconstruct_frames")
            try:
                def payloads(n: int) -> list:  # the echo answers seq with recorded frame seq % 32
                    return [recorded[(link.next_seq + i) % len(recorded)][2] for i in range(n)]

                stream(link, LAYOUT, payloads(200), SNR_DB, windows[0], 5.0, progress=False)  # warm-up
                for window in windows:
                    counts.clear()
                    profiler = None
                    if use_cprofile:
                        import cProfile

                        profiler = cProfile.Profile()
                        profiler.enable()
                    tensors = payloads(n_frames)
                    t0, c0, p0 = time.perf_counter(), time.thread_time(), time.process_time()
                    res = stream(link, LAYOUT, tensors, SNR_DB, window, 5.0, progress=False)
                    t1, c1, p1 = time.perf_counter(), time.thread_time(), time.process_time()
                    if profiler is not None:
                        profiler.disable()
                        import pstats

                        print(f"\n### cProfile, window {window} (own time, top 25; it inflates small calls)")
                        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                    if res.delivered != res.sent:
                        raise SystemExit(f"{res.sent - res.delivered} frames lost")
                    n = res.delivered
                    row = {"main thread, us CPU per frame": (c1 - c0) / n * 1e6,
                           "process, us CPU per frame": (p1 - p0) / n * 1e6,
                           "frames/s (wall)": n / (t1 - t0),
                           "frames per reconstruct_frames call":
                               n / max(counts["reconstruct_frames calls"], 1)}
                    for key in ("LinkClient.send", "LinkClient.receive_ready", "reconstruct_frames"):
                        row[f"{key}, us per frame"] = counts[key] / n
                    row["the rest of stream (NMSE, transfer's loop), us per frame"] = (
                        row["main thread, us CPU per frame"] - sum(counts[k] for k in (
                            "LinkClient.send", "LinkClient.receive_ready", "reconstruct_frames")) / n)
                    row["mean NMSE zf (check)"] = sum(res.nmse["zf"]) / n
                    out[f"window {window}"] = row
            finally:
                semcom.transfer.reconstruct_frames = reconstruct
    finally:
        child.kill()
        child.wait()
    return out


def print_table(title: str, runs: dict[str, dict[str, float]]) -> None:
    print(f"\n{title}\n")
    print("| | " + " | ".join(runs) + " |\n| --- |" + " --- |" * len(runs))
    for key in next(iter(runs.values())):
        cells = [runs[name][key] for name in runs]
        fmt = "{:.6g}" if "NMSE" in key else "{:.2f}" if "per reconstruct" in key else "{:.0f}"
        print(f"| {key} | " + " | ".join(fmt.format(c) for c in cells) + " |")


def compare(path: Path, other: str, args: argparse.Namespace) -> int:
    """Alternating child processes, this tree's host package and `other`'s; least CPU of each kept."""
    trees = {"this tree": str(ROOT / "host"), f"{other}": other}
    best: dict[str, dict[str, dict[str, float]]] = {}
    for _ in range(args.rounds):
        for name, host in trees.items():
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([host, os.environ.get("PYTHONPATH", "")]))
            cmd = [sys.executable, __file__, "--replay", str(path), "--frames", str(args.frames), "--windows",
                   *map(str, args.windows)]
            runs = pickle.loads(subprocess.run(cmd, env=env, check=True, capture_output=True).stdout)
            for window, row in runs.items():
                key = f"{name}, {window}"
                if key not in best or row["main thread, us CPU per frame"] < \
                        best[key]["main thread, us CPU per frame"]:
                    best[key] = row
    print_table(f"Host CPU per frame against the echo, {args.frames} frames, least of {args.rounds} "
                f"alternating rounds (load average {os.getloadavg()[0]:.1f})", best)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000)
    parser.add_argument("--windows", type=int, nargs="+", default=[3, 8, 64], help="frames in flight")
    parser.add_argument("--cprofile", action="store_true", help="the main thread's top functions")
    parser.add_argument("--compare", metavar="HOST_DIR",
                        help="also run another tree's host package, alternating")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--echo", metavar="RECORDED", help=argparse.SUPPRESS)
    parser.add_argument("--replay", metavar="RECORDED", help=argparse.SUPPRESS)  # --compare's child
    args = parser.parse_args()
    if args.echo:
        echo(Path(args.echo))
        return 0
    if args.replay:
        sys.stdout.buffer.write(pickle.dumps(measure(Path(args.replay), args.frames, args.windows, False)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "frames.pickle"
        record(path)
        if args.compare:
            return compare(path, args.compare, args)
        print_table(f"Host CPU per frame against the echo, {args.frames} frames (load average "
                    f"{os.getloadavg()[0]:.1f})", measure(path, args.frames, args.windows, args.cprofile))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
