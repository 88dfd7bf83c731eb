#!/usr/bin/env python3
"""Where the 2x4 loopback's CPU and latency go: CPU per delivered frame of each thread (GNU Radio names
a block's thread after the block), and the one-in-flight latency split at the blocks.

    .venv/bin/python benchmarks/profile_loopback.py [--frames 300] [--windows 8 64]

1. CPU per frame of each thread while `--frames` 5x256 tensors go through the loopback flowgraph at
   20 dB with the host reconstructing (as benchmarks/run.py's end-to-end part), at each window (frames
   in flight); a discarded warm-up run first (a process's first run costs up to 2x: allocations, page
   faults), then two rounds alternating the windows, the run with less process CPU per frame kept for
   each. Thread CPU times come from /proc (10 ms ticks: read figures below ~30 us a frame as noise).
   Per delivered frame also: the samples mimo_channel processed (a frame and its gap, the rest
   ofat_tx's idle fill), mimo_channel's general_work() calls and ofat_rx's receiver calls, and the host
   thread's CPU in the batched reconstruction (`semcom.transfer.reconstruct_frames`; its calls per frame:
   1 / the frames solved together) and in LinkClient's send and receive (encode, ZeroMQ, decode, books).
2. Latency of one tensor in flight, split at time stamps taken in tensor_source, in ofat_rx around the
   receiver call that completes the frame, and in tensor_sink.

    .venv/bin/python benchmarks/profile_loopback.py --channel-only [--frames 2000]

3. mimo_channel alone as the loopback runs it (per-frame redraw at a tx_sob tag on every frame of
   FRAME_SAMPLES, 3 paths + fractional delay, CFO jitter, 20 dB), one work() call per frame: process CPU
   per frame of the compiled block (cxx), the Python block with the compiled kernels (kernels) and numpy,
   2x2 and 2x4, three rounds alternating them (the least of each kept).
See benchmarks/PROFILE.md.
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

import semcom.transfer
from semcom.loopback import stream

sys.path.insert(0, str(Path(__file__).parent))
from run import GAP, LAYOUT, bench_loopback  # noqa: E402  (the benchmarks' 2x4 wifi64 layout, loopback setup)

FRAME_SAMPLES = LAYOUT.frame_len(5 * 256) + GAP  # a 5x256 frame and ofat_tx's gap (loopback.grc)

TICK = os.sysconf("SC_CLK_TCK")


def block_thread_names(tb) -> dict[str, str]:
    """The first 13 characters of each block's scheduler thread name -> "<blocks> (GNU Radio thread)".
    GNU Radio names the thread after the block and a number, cut to Linux's 15 characters, so only the
    start is sure and two blocks may share it: both are given (tensor_source's own thread is idle)."""
    names: dict[str, list[str]] = {}
    for attr in sorted(dir(tb)):
        block = getattr(tb, attr)
        if attr.startswith("semcom_") and hasattr(block, "unique_id"):
            names.setdefault(block.name()[:13], []).append(attr)
    return {k: " / ".join(v) + " (GNU Radio thread)" for k, v in names.items()}


def thread_cpu(block_names: dict[str, str]) -> dict[tuple[str, str], float]:
    """CPU seconds so far of each thread of this process, keyed by (tid, label)."""
    names = {str(t.native_id): f"{t.name} (Python thread)" for t in threading.enumerate()}
    names[str(os.getpid())] = "host (main thread)"
    out = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # the thread ended meanwhile
            continue
        label = names.get(tid) or block_names.get(comm[:13]) or (
            "python (other: BLAS, torch, ...)" if comm == "python" else comm)
        out[(tid, label)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def cpu_per_frame(n_frames: int, window: int) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """(frames/s, CPU ms per frame of the process, {thread: CPU us per frame}, {count: per frame}) of one
    loopback run; the counts: samples through mimo_channel, its general_work() calls, ofat_rx's receiver
    calls, and the host thread's CPU us in reconstruction and in LinkClient's send / receive."""
    counts: dict[str, float] = collections.defaultdict(float)

    def counted(fn, key: str):
        def call(*args, **kwargs):
            counts[key] += 1
            return fn(*args, **kwargs)
        return call

    def timed(fn, key: str):  # CPU of the calling thread (the host's) inside fn, us
        def call(*args, **kwargs):
            t0 = time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                counts[key] += (time.thread_time() - t0) * 1e6
        return call

    with bench_loopback(window, n_frames, warm_up=20) as (tb, link, tensors):
        blocks = block_thread_names(tb)
        chan, receiver = tb.semcom_mimo_channel_0, tb.semcom_ofat_rx_0.receiver
        compiled_channel = getattr(chan, "block", "python") == "compiled"
        if not compiled_channel:  # the compiled block counts its own calls
            chan.general_work = counted(chan.general_work, "mimo_channel work calls")
        calls0 = chan.counters()["calls"] if compiled_channel else 0
        receiver.process = counted(receiver.process, "ofat_rx receiver calls")
        link.send = timed(link.send, "host: LinkClient send + receive, us CPU")
        link.receive_ready = timed(link.receive_ready, "host: LinkClient send + receive, us CPU")
        reconstruct = semcom.transfer.reconstruct_frames
        semcom.transfer.reconstruct_frames = counted(timed(reconstruct, "host: reconstruct_frames, us CPU"),
                                                     "host: reconstruct_frames calls")
        samples0 = chan.nitems_written(0)
        before, cpu0, t0 = thread_cpu(blocks), time.process_time(), time.perf_counter()
        try:
            res = stream(link, LAYOUT, tensors, 20.0, window, 5.0, progress=False)
        finally:
            semcom.transfer.reconstruct_frames = reconstruct
        after, cpu1, t1 = thread_cpu(blocks), time.process_time(), time.perf_counter()
        counts["mimo_channel samples"] = chan.nitems_written(0) - samples0
        if compiled_channel:
            counts["mimo_channel work calls"] = chan.counters()["calls"] - calls0
    assert res.delivered == res.sent, f"{res.sent - res.delivered} frames lost"
    per_thread: dict[str, float] = {}
    for key, cpu in after.items():
        label = key[1]
        per_thread[label] = per_thread.get(label, 0.0) + (cpu - before.get(key, 0.0)) / res.delivered * 1e6
    per_count = {k: v / res.delivered for k, v in counts.items()}
    return res.delivered / (t1 - t0), (cpu1 - cpu0) / res.delivered * 1e3, per_thread, per_count


def latency_split(n_frames: int) -> dict[str, float]:
    """Median milliseconds of each leg of a one-in-flight round trip through the loopback."""
    stamps: dict[str, float] = {}
    legs: dict[str, list[float]] = {}
    with bench_loopback(1, 1) as (tb, link, (x,)):
        source, sink = tb.semcom_tensor_source_0, tb.semcom_tensor_sink_0
        rx_block = tb.semcom_ofat_rx_0
        # The legs are stamped inside the Python blocks' steps; the compiled bridge blocks and ofat_rx_fast
        # have none, so with them only the whole round trip is timed.
        python_steps = hasattr(source, "_handle") and hasattr(sink, "_on_frame")
        if not (python_steps and hasattr(rx_block.core, "receiver")):
            return {"**round trip** (compiled blocks: no Python step to stamp the legs in)":
                    statistics.median(round_trips(link, x, n_frames))}
        core = rx_block.core  # ofat_rx_python: its _receive is the receiver call work() makes
        handle, process, on_frame = source._handle, core._receive, sink._on_frame

        def timed_handle(parts):
            stamps["source"] = time.perf_counter()
            handle(parts)

        def timed_process(samples):
            start = time.perf_counter()
            frames = process(samples)
            if frames:
                stamps.update(rx_call=start, rx_done=time.perf_counter(), rx_chunk=len(samples[0]))
            return frames

        def timed_on_frame(msg):
            stamps["sink"] = time.perf_counter()
            on_frame(msg)

        source._handle, core._receive, sink._on_frame = timed_handle, timed_process, timed_on_frame
        for i in range(n_frames + 20):
            t0 = time.perf_counter()
            link.send(x)
            msg = link.receive(timeout_s=5.0)
            t1 = time.perf_counter()
            if msg is None or i < 20:  # the first 20 warm up
                continue
            s = stamps
            for name, ms in (("host -> tensor_source", s["source"] - t0),
                             ("tensor_source -> the ofat_rx call that completes the frame "
                              "(ofat_tx, mimo_channel, buffers)", s["rx_call"] - s["source"]),
                             ("that receiver call (ofat_rx_python._receive)", s["rx_done"] - s["rx_call"]),
                             ("ofat_rx -> tensor_sink", s["sink"] - s["rx_done"]),
                             ("tensor_sink -> host (send, receive, decode)", t1 - s["sink"]),
                             ("**round trip**", t1 - t0)):
                legs.setdefault(name, []).append(ms * 1e3)
            legs.setdefault("samples per stream in that receiver call", []).append(s["rx_chunk"])
    return {k: statistics.median(v) for k, v in legs.items()}


def round_trips(link, x, n_frames: int) -> list[float]:
    """Milliseconds of each one-in-flight round trip after 20 warm-up ones."""
    times = []
    for i in range(n_frames + 20):
        t0 = time.perf_counter()
        link.send(x)
        msg = link.receive(timeout_s=5.0)
        if msg is not None and i >= 20:
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def channel_cpu_per_frame(n_frames: int, n_tx: int, n_rx: int, implementation: str) -> float:
    """Process CPU (us) per frame of mimo_channel alone, one work() call per tagged frame (section 3).
    implementation: "cxx" (the compiled block), "kernels" (the Python block with the compiled kernels)
    or "numpy"."""
    import numpy as np
    import pmt
    from gnuradio import blocks, gr, semcom
    from gnuradio.semcom.mimo_channel import mimo_channel_python

    rng = np.random.default_rng(3)
    x = ((rng.standard_normal((n_tx, FRAME_SAMPLES * n_frames)) + 1j * rng.standard_normal(
        (n_tx, FRAME_SAMPLES * n_frames))) / 2).astype(np.complex64)
    sob = [gr.tag_utils.python_to_tag((i * FRAME_SAMPLES, pmt.intern("tx_sob"), pmt.PMT_T))
           for i in range(n_frames)]
    tb = gr.top_block()
    make = semcom.mimo_channel if implementation == "cxx" else mimo_channel_python
    chan = make(n_tx, n_rx, snr_db=20.0, fading="per_frame", n_taps=3, cfo_jitter=0.4 / 64, max_int_delay=40,
                seed=1, implementation="numpy" if implementation == "numpy" else "cxx")
    chan.set_max_noutput_items(FRAME_SAMPLES)  # one call per frame, as frames arrive in the loopback
    for a in range(n_tx):
        tb.connect(blocks.vector_source_c(x[a].tolist(), False, 1, sob if a == 0 else []), (chan, a))
    for r in range(n_rx):
        tb.connect((chan, r), blocks.null_sink(gr.sizeof_gr_complex))
    t0 = time.process_time()
    tb.run()
    return (time.process_time() - t0) / n_frames * 1e6


def kernel_ns_per_sample(n_tx: int, n_rx: int, n: int = 1 << 16, repeats: int = 20) -> dict[str, float]:
    """The compiled kernel's three calls alone on n samples (the loopback's 10-tap FIR, a CFO): least
    wall ns per sample over `repeats` (one thread, no GNU Radio around it)."""
    import numpy as np
    from gnuradio.semcom.ofat_tx import semcom_python

    rng = np.random.default_rng(5)
    kernel = semcom_python.mimo_channel_kernels(n_tx, n_rx, 60, 7)
    shape = (n_rx, n_tx, 10)
    taps = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)
    kernel.set_realisation(taps, 20, 0.4 / 64)
    inputs = [np.ones(n, np.complex64) for _ in range(n_tx)]
    outputs = [np.empty(n, np.complex64) for _ in range(n_rx)]
    best = {"begin (history + input copy)": np.inf, "filter (FIR + CFO rotation)": np.inf,
            "finish (AWGN)": np.inf}
    for _ in range(repeats):
        t = [time.perf_counter()]
        kernel.begin(inputs, outputs, n)
        t.append(time.perf_counter())
        kernel.filter(0, n, 0.0, 0)
        t.append(time.perf_counter())
        kernel.finish(0.01)
        t.append(time.perf_counter())
        for key, a, b in zip(best, t, t[1:], strict=False):
            best[key] = min(best[key], (b - a) / n * 1e9)
    return best


def channel_only(n_frames: int) -> int:
    from gnuradio.semcom.mimo_channel import compiled_block_available, compiled_channel_available

    implementations = (("cxx",) if compiled_block_available() else ()) + (
        ("kernels", "numpy") if compiled_channel_available() else ("numpy",))
    mimos = ((2, 2), (2, 4))
    for mimo in mimos:  # warm-up, discarded
        channel_cpu_per_frame(50, *mimo, implementations[0])
    least: dict[tuple[tuple[int, int], str], float] = {}
    for _ in range(3):
        for mimo in mimos:
            for implementation in implementations:
                us = channel_cpu_per_frame(n_frames, *mimo, implementation)
                least[mimo, implementation] = min(us, least.get((mimo, implementation), float("inf")))
    print(f"mimo_channel alone, process CPU per frame of {FRAME_SAMPLES} samples (one call per frame, a "
          f"redraw per frame), least of 3 rounds of {n_frames} frames "
          f"(load average {os.getloadavg()[0]:.1f})\n")
    print("| Nt x Nr | " + " | ".join(f"{i}, us per frame" for i in implementations) + " | numpy / first |")
    print("| --- |" + " --- |" * (len(implementations) + 1))
    for mimo in mimos:
        cells = [least[mimo, i] for i in implementations]
        ratio = f"{cells[-1] / cells[0]:.2f}" if len(cells) > 1 else "-"
        print(f"| {mimo[0]}x{mimo[1]} | " + " | ".join(f"{c:.0f}" for c in cells) + f" | {ratio} |")
    if "kernels" in implementations:
        kernels = {mimo: kernel_ns_per_sample(*mimo) for mimo in (*mimos, (4, 4))}
        steps = list(next(iter(kernels.values())))
        print("\nThe compiled kernel's calls alone, ns per sample (65 536 samples a call, least of 20):\n")
        print("| Nt x Nr | " + " | ".join(steps) + " |\n| --- |" + " --- |" * len(steps))
        for mimo, ns in kernels.items():
            print(f"| {mimo[0]}x{mimo[1]} | " + " | ".join(f"{ns[k]:.1f}" for k in steps) + " |")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--windows", type=int, nargs="+", default=[8, 64], help="frames in flight")
    parser.add_argument("--channel-only", action="store_true",
                        help="mimo_channel alone, compiled vs numpy, CPU per frame (section 3)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.channel_only:
        return channel_only(args.frames)
    cpu_per_frame(50, args.windows[0])  # warm-up, discarded
    runs: dict[str, tuple[float, float, dict[str, float], dict[str, float]]] = {}
    for _ in range(2):  # two rounds, alternating, so each window sees the same machine; the leaner run kept
        for window in args.windows:
            run = cpu_per_frame(args.frames, window)
            name = f"window {window}"
            if name not in runs or run[1] < runs[name][1]:
                runs[name] = run
    first = next(iter(runs.values()))[2]
    labels = sorted({k for _, _, t, _ in runs.values() for k in t}, key=lambda k: -first.get(k, 0.0))
    print(f"CPU per delivered frame, 2x4 loopback, {args.frames} frames "
          f"(load average {os.getloadavg()[0]:.1f})\n")
    print("| thread | " + " | ".join(f"{name}: us per frame" for name in runs) + " |")
    print("| --- |" + " --- |" * len(runs))
    for label in labels:
        cells = [f"{t.get(label, 0.0):.0f}" for _, _, t, _ in runs.values()]
        if any(c != "0" for c in cells):
            print(f"| {label} | " + " | ".join(cells) + " |")
    print("| **process, ms per frame** | " + " | ".join(f"**{c:.2f}**" for _, c, _, _ in runs.values())
          + " |")
    print("| frames/s | " + " | ".join(f"{f:.0f}" for f, _, _, _ in runs.values()) + " |")
    print(f"\n| per delivered frame (a frame + gap is {FRAME_SAMPLES} samples) | "
          + " | ".join(runs) + " |\n| --- |" + " --- |" * len(runs))
    for key in ("mimo_channel samples", "mimo_channel work calls", "ofat_rx receiver calls",
                "host: reconstruct_frames calls", "host: reconstruct_frames, us CPU",
                "host: LinkClient send + receive, us CPU"):
        print(f"| {key} | " + " | ".join(f"{c.get(key, 0.0):.2f}" if c.get(key, 0.0) < 100 else
                                         f"{c[key]:.0f}" for _, _, _, c in runs.values()) + " |")
    print("\n| one tensor in flight (2x4, 20 dB) | median ms |\n| --- | --- |")
    for name, ms in latency_split(max(50, args.frames // 3)).items():
        print(f"| {name} | {ms:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
