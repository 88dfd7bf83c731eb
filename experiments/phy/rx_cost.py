"""What the shifted delay grid (receiver step 3, `align_fraction`) costs per frame: FrameReceiver.process
on benchmarks/profile_rx.py's burst (300 back-to-back 2x4 frames, 20 dB, one 3-tap channel through
mimo_channel's fractional-delay filter, 4096-sample chunks), with the integer grid only (the receiver
before) and with the shifted grid (now), interleaved in one process, median of 5 (a ratio of one run).

    .venv/bin/python experiments/phy/rx_cost.py [--frames 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from semcom.ofat.receiver import FrameReceiver

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from profile_rx import receive_all, recorded_burst  # noqa: E402  (the benchmark's own burst)


class IntegerGridReceiver(FrameReceiver):
    """The receiver before: step 3's delay taps on the integer grid only."""

    align_fraction = False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=300)
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error("--frames must be >= 1")
    y, layout = recorded_burst(args.frames)
    times: dict[str, list[float]] = {"integer grid (before)": [], "shifted grid (now)": []}
    frames = {}
    for _ in range(5):
        for name, cls in zip(times, (IntegerGridReceiver, FrameReceiver), strict=True):
            t0 = time.perf_counter()
            frames[name] = receive_all(layout, y, 4096, False, cls)
            times[name].append(time.perf_counter() - t0)
    medians = {name: float(np.median(ts)) for name, ts in times.items()}
    for name, dt in medians.items():
        print(f"{name}: {frames[name]} frames, {dt / frames[name] * 1e3:.3f} ms per frame, "
              f"{y.shape[1] / dt / 1e6:.2f} MS/s per stream")
    print(f"ratio now / before: {medians['shifted grid (now)'] / medians['integer grid (before)']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
