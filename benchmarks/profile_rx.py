#!/usr/bin/env python3
"""cProfile of the OFAT receive path per frame: FrameReceiver.process on back-to-back 2x4 frames at
20 dB (multipath, CFO), chunks of 4096 samples, then the PMT message each frame becomes in ofat_rx.

    .venv/bin/python benchmarks/profile_rx.py [--frames 300] [--top 25]

Prints the top functions by own time and a per-step table (ms per frame). See benchmarks/PROFILE.md.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

import numpy as np
from gnuradio.semcom.messages import parse_tensor_message, tensor_message

from semcom.ofat.channel_model import ChannelSpec
from semcom.ofat.frame import make_layout, modulate_frame
from semcom.ofat.receiver import FrameReceiver, ReferenceFrameReceiver


def recorded_burst(n_frames: int, n_tx: int = 2, n_rx: int = 4, snr_db: float = 20.0, seed: int = 0,
                   gap: int = 160) -> tuple[np.ndarray, object]:
    """(Nr, n) complex64 samples of n_frames back-to-back 5x256 frames through one seeded multipath
    realisation with CFO and AWGN, and the layout."""
    layout = make_layout("wifi64", n_tx=n_tx, n_rx=n_rx)
    rng = np.random.default_rng(seed)
    parts = [np.zeros((n_tx, 500), np.complex64)]
    for seq in range(n_frames):
        x, _ = modulate_frame(layout, rng.standard_normal(1280), seq=seq, pad=gap)
        parts.append(x)
    x = np.concatenate(parts + [np.zeros((n_tx, 500), np.complex64)], axis=1)
    real = ChannelSpec(n_rx=n_rx, n_tx=n_tx, n_taps=3, cfo=0.003).draw(rng)
    taps = real.full_taps
    y = np.zeros((n_rx, x.shape[1]), np.complex64)
    for r in range(n_rx):
        for t in range(n_tx):
            y[r] += np.convolve(x[t], taps[r, t])[: x.shape[1]].astype(np.complex64)
    y *= np.exp(2j * np.pi * real.cfo * np.arange(y.shape[1])).astype(np.complex64)
    noise = (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)) / np.sqrt(2)
    return (y + 10 ** (-snr_db / 20) * noise).astype(np.complex64), layout


def receive_all(layout, y: np.ndarray, chunk: int, publish: bool, receiver: type = FrameReceiver) -> int:
    rx = receiver(layout)
    n = 0
    for i in range(0, y.shape[1], chunk):
        for frame in rx.process(y[:, i: i + chunk]):
            n += 1
            if publish:
                meta = frame.meta()
                meta["rx_counters"] = rx.counters.as_dict()
                parse_tensor_message(tensor_message(meta, {"Y": frame.y, "H": frame.h}))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--reference", action="store_true", help="profile ReferenceFrameReceiver instead")
    args = ap.parse_args()
    y, layout = recorded_burst(args.frames)
    profiled = ReferenceFrameReceiver if args.reference else FrameReceiver
    receive_all(layout, y[:, :20000], args.chunk, True, profiled)  # warm-up
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    n = receive_all(layout, y, args.chunk, True, profiled)
    prof.disable()
    dt = time.perf_counter() - t0
    print(f"{profiled.__name__}: {n} frames of {args.frames}, {dt / n * 1e3:.3f} ms per frame under "
          f"cProfile, {y.shape[1] / dt / 1e6:.2f} MS/s per stream")
    # Without the profiler: the fast and the reference receiver, interleaved, medians of 3.
    times: dict[str, list[float]] = {"FrameReceiver": [], "ReferenceFrameReceiver": []}
    for _ in range(3):
        for cls in (FrameReceiver, ReferenceFrameReceiver):
            t0 = time.perf_counter()
            receive_all(layout, y, args.chunk, False, cls)
            times[cls.__name__].append(time.perf_counter() - t0)
    for name, ts in times.items():
        dt = sorted(ts)[1]
        print(f"{name}: {dt / n * 1e3:.3f} ms per frame, {y.shape[1] / dt / 1e6:.2f} MS/s per stream "
              f"(process() only, no messages)")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
