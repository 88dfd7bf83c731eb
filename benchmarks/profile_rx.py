#!/usr/bin/env python3
"""cProfile of the OFAT receive path per frame: FrameReceiver.process on back-to-back frames (2x4 unless
--mimo says otherwise) at 20 dB (multipath, CFO), chunks of 4096 samples, then the message each frame
becomes in ofat_rx and what tensor_sink makes of it.

    .venv/bin/python benchmarks/profile_rx.py [--frames 300] [--mimo 4x4] [--top 25]
        [--receiver compiled|numpy|reference]

Prints the top functions by own time (of the receiver ofat_rx runs, CompiledFrameReceiver where the
C++ is built, unless --receiver names another), the receivers' time per frame without the profiler
(compiled, numpy FrameReceiver, ReferenceFrameReceiver, interleaved), the compiled receiver's time per
frame by step (its Python search's kernel calls, the header CRC, the message, its Python) and by way
(that search, one receive() call, one receive_messages() call: ofat_rx_fast's), and the
FRAME message hop per frame both ways, timed in the same run: the PMT dict form (tensor_message in
ofat_rx, parse_tensor_message + wire encode in tensor_sink, as before) and the wire form
(wire_message, then wire_parts); and ofat_rx in a flowgraph publishing either form (samples per CPU
second, interleaved rounds), and ofat_rx's C++ core against the Python block it replaced and GR's
chain in run.py's harness (--mimo's layout). See benchmarks/PROFILE.md.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
from gnuradio import semcom
from gnuradio.semcom.compiled_receiver import CompiledFrameReceiver, compiled_receiver_available
from gnuradio.semcom.messages import parse_tensor_message, serialize, tensor_message, wire_message, wire_parts
from gnuradio.semcom.ofat_rx import frame_message, ofat_rx_python, receiver_class

from semcom.ofat.channel_model import ChannelSpec
from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, make_layout, modulate_frame
from semcom.ofat.receiver import FrameReceiver, ReceivedFrame, ReferenceFrameReceiver, RxCounters
from semcom.wire import Kind, encode


def recorded_burst(n_frames: int, n_tx: int = 2, n_rx: int = 4, snr_db: float = 20.0, seed: int = 0,
                   gap: int = DEFAULT_GAP_SAMPLES) -> tuple[np.ndarray, object]:
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
    y = real.apply(x)[:, : x.shape[1]]
    noise = (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)) / np.sqrt(2)
    return (y + 10 ** (-snr_db / 20) * noise).astype(np.complex64), layout


class _TimedKernels:
    """The compiled kernels with each call's time added to `spent[name]` (compiled_steps)."""

    def __init__(self, kernels, spent: dict[str, float]):
        self._kernels, self._spent = kernels, spent

    def __getattr__(self, name: str):
        method = getattr(self._kernels, name)

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._spent[name] = self._spent.get(name, 0.0) + time.perf_counter() - t0
        return timed


def compiled_steps(layout, y: np.ndarray, chunk: int, repeats: int = 5) -> dict[str, float]:
    """Microseconds per frame of each step of CompiledFrameReceiver.process plus ofat_rx's message, the
    best of `repeats` passes over y in chunks of `chunk` samples (a list of Nr rows per call, as
    ofat_rx passes its inputs): the kernels' calls, the header's CRC check (frame.decode_header), the
    message (meta + wire_message) and the rest (the receiver's Python)."""
    from gnuradio.semcom import compiled_receiver

    best: dict[str, float] = {}
    for _ in range(repeats):
        spent: dict[str, float] = {}
        rx = CompiledFrameReceiver(layout)
        rx._streaming = False  # the Python search calling the kernels step by step (receive_paths: others)
        rx._kernels = _TimedKernels(rx._kernels, spent)
        decode = compiled_receiver.decode_header

        def timed_decode(bits, decode=decode, spent=spent):
            t0 = time.perf_counter()
            header = decode(bits)
            spent["decode_header (CRC)"] = spent.get("decode_header (CRC)", 0.0) + time.perf_counter() - t0
            return header
        n, message = 0, 0.0
        with mock.patch.object(compiled_receiver, "decode_header", timed_decode):
            t_start = time.perf_counter()
            for i in range(0, y.shape[1], chunk):
                frames = rx.process([y[r, i: i + chunk] for r in range(layout.n_rx)])
                t0 = time.perf_counter()
                for frame in frames:  # what ofat_rx.work does with each frame
                    frame_message(frame, rx.counters)
                message += time.perf_counter() - t0
                n += len(frames)
            total = time.perf_counter() - t_start
        spent["message (meta + wire_message)"] = message
        spent["the receiver's Python (search, bookkeeping, frames)"] = total - sum(spent.values())
        spent["total"] = total
        for name, seconds in spent.items():
            best[name] = min(best.get(name, float("inf")), seconds / max(n, 1) * 1e6)
    return best


def receive_paths(layout, y: np.ndarray, chunk: int, repeats: int = 5) -> dict[str, float]:
    """Microseconds per frame of the compiled receiver's three ways through y (chunks of `chunk` samples,
    each frame made into its FRAME message), best of `repeats` interleaved passes: the Python search
    calling the kernels per step with frame_message in Python (ofat_rx until receive round 5); one
    receive() call per chunk with frame_message in Python; one receive_messages() call per chunk (the
    messages built in C++: what ofat_rx_fast does in its work())."""
    def python_search(rx, rows):
        return [frame_message(f, rx.counters) for f in FrameReceiver.process(rx, rows)]

    def receive(rx, rows):
        return [frame_message(f, rx.counters) for f in rx.process(rows)]

    paths = {"Python search + Python message (before)": python_search,
             "receive() + Python message": receive,
             "receive_messages() (ofat_rx_fast's call)": lambda rx, rows: rx.process_messages(rows)}
    best = dict.fromkeys(paths, float("inf"))
    for _ in range(repeats):
        for name, path in paths.items():
            rx, n = CompiledFrameReceiver(layout), 0
            t0 = time.perf_counter()
            for i in range(0, y.shape[1], chunk):
                n += len(path(rx, [y[r, i: i + chunk] for r in range(layout.n_rx)]))
            best[name] = min(best[name], (time.perf_counter() - t0) / max(n, 1) * 1e6)
    return best


def receive_all(layout, y: np.ndarray, chunk: int, publish: bool, receiver: type = FrameReceiver) -> int:
    rx = receiver(layout)
    n = 0
    for i in range(0, y.shape[1], chunk):
        for frame in rx.process(y[:, i: i + chunk]):
            n += 1
            if publish:  # what ofat_rx and tensor_sink do with it
                wire_parts(serialize(frame_message(frame, rx.counters)))
    return n


def hop_costs(frames: list[ReceivedFrame], counters: RxCounters, repeats: int = 5) -> dict[str, float]:
    """Microseconds per frame of each step of the FRAME hop, both forms, the best of `repeats` passes
    over `frames` (interleaved, so both see the same machine)."""
    metas = [{**f.meta(), "rx_counters": counters.as_dict()} for f in frames]
    tensors = [{"Y": f.y, "H": f.h} for f in frames]
    dict_msgs = [tensor_message(m, t) for m, t in zip(metas, tensors, strict=True)]
    wire_msgs = [wire_message(m["seq"], m, t) for m, t in zip(metas, tensors, strict=True)]
    steps = {
        "PMT dict form: ofat_rx builds (tensor_message)":
            lambda i: tensor_message(metas[i], tensors[i]),
        "PMT dict form: tensor_sink reads + encodes (parse_tensor_message, wire.encode)":
            lambda i: encode(Kind.FRAME, metas[i]["seq"], *reversed(parse_tensor_message(dict_msgs[i]))),
        "wire form: ofat_rx builds (wire_message)":
            lambda i: wire_message(metas[i]["seq"], metas[i], tensors[i]),
        "wire form: tensor_sink reads (serialize, wire_parts)": lambda i: wire_parts(serialize(wire_msgs[i])),
        "wire form: another block reads it (parse_tensor_message)":
            lambda i: parse_tensor_message(wire_msgs[i]),
        "rx_counters in ofat_rx: dataclasses.asdict (before)": lambda i: counters.as_dict(),
        "rx_counters in ofat_rx: vars(...).copy() (now)": lambda i: vars(counters).copy(),
    }
    best = dict.fromkeys(steps, float("inf"))
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            for i in range(len(frames)):
                step(i)
            best[name] = min(best[name], (time.perf_counter() - t0) / len(frames) * 1e6)
    return best


class DictFormRx(ofat_rx_python):
    """ofat_rx's Python block publishing its frames in the PMT dict form, as it did before the wire form
    (the baseline of ofat_rx_forms)."""

    def __init__(self, layout, implementation: str = "auto"):
        super().__init__(receiver_class(implementation)(layout))

    def work(self, input_items, output_items):
        for frame in self.receiver.process(input_items):
            meta = {**frame.meta(), "rx_counters": self.receiver.counters.as_dict()}
            self.message_port_pub(self._port, tensor_message(meta, {"Y": frame.y, "H": frame.h}))
        return len(input_items[0])


def ofat_rx_forms(rounds: int = 3) -> dict[str, float]:
    """ofat_rx samples per CPU second per stream (2x4, frames back to back; benchmarks/run.py's
    ofat_rx_run and samples) publishing the wire form (now) and the PMT dict form (before), the best of
    `rounds` interleaved rounds."""
    sys.path.insert(0, str(Path(__file__).parent))
    import run  # benchmarks/run.py, beside this file

    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    samples = run.received_samples(16, layout=layout)
    n = 20 * samples.shape[1]
    now = "wire form (now; ofat_rx_fast, the C++ core, where built)"
    best = {now: 0.0, "PMT dict form (before)": 0.0}
    for _ in range(rounds + 1):  # the first round warms up
        for name, block in ((now, semcom.ofat_rx), ("PMT dict form (before)", DictFormRx)):
            with mock.patch.object(run.semcom, "ofat_rx", block):
                k, cpu = run.ofat_rx_run(n, layout, samples)
            best[name] = max(best[name], k / cpu)
    return best


class SearchInPythonRx(ofat_rx_python):
    """ofat_rx as it ran until receive round 5 (the baseline of ofat_rx_cores): the Python block, the
    compiled receiver's Python search calling the kernels step by step, each message made in Python."""

    def __init__(self, layout, implementation: str = "cxx"):
        receiver = CompiledFrameReceiver(layout)
        receiver._streaming = False
        super().__init__(receiver)
        self._receive = receiver.process


def ofat_rx_cores(layout, rounds: int = 3) -> dict[str, float]:
    """Samples per CPU second per stream, frames back to back in benchmarks/run.py's harness (its samples,
    heads and buffers), best of `rounds` interleaved rounds: ofat_rx now (ofat_rx_fast, its C++ core,
    where built), ofat_rx as it ran until receive round 5 (SearchInPythonRx) and GR's C++ S&C + FFT."""
    sys.path.insert(0, str(Path(__file__).parent))
    import run  # benchmarks/run.py, beside this file

    samples = run.received_samples(16, layout=layout)
    n = 100 * samples.shape[1]

    def before() -> tuple[int, float]:
        with mock.patch.object(run.semcom, "ofat_rx", SearchInPythonRx):
            return run.ofat_rx_run(n, layout, samples)
    return run.best_rates({"ofat_rx now": lambda: run.ofat_rx_run(n, layout, samples),
                           "ofat_rx until receive round 5 (Python block and search)": before,
                           "GR S&C + FFT (one stream)": lambda: run.gr_sync_fft_run(10 * n, samples)}, rounds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--mimo", default="2x4", help="Nt x Nr of the recorded burst (default %(default)s)")
    ap.add_argument("--chunk", type=int, default=4096)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--receiver", choices=("compiled", "numpy", "reference"),
                    default="compiled" if compiled_receiver_available() else "numpy",
                    help="the receiver profiled (default: the compiled one where built)")
    ap.add_argument("--reference", action="store_true", help="the same as --receiver reference")
    args = ap.parse_args()
    try:
        n_tx, n_rx = (int(v) for v in args.mimo.lower().split("x"))
    except ValueError:
        ap.error(f"--mimo takes NTxNR, e.g. 2x4, got {args.mimo!r}")
    y, layout = recorded_burst(args.frames, n_tx=n_tx, n_rx=n_rx)
    receivers = {"compiled": CompiledFrameReceiver, "numpy": FrameReceiver,
                 "reference": ReferenceFrameReceiver}
    profiled = receivers["reference" if args.reference else args.receiver]
    receive_all(layout, y[:, :20000], args.chunk, True, profiled)  # warm-up
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    n = receive_all(layout, y, args.chunk, True, profiled)
    prof.disable()
    dt = time.perf_counter() - t0
    print(f"{profiled.__name__}: {n} frames of {args.frames}, {dt / n * 1e3:.3f} ms per frame under "
          f"cProfile, {y.shape[1] / dt / 1e6:.2f} MS/s per stream")
    # Without the profiler: every receiver built here, interleaved, medians of 3.
    timed = [cls for name, cls in receivers.items() if name != "compiled" or compiled_receiver_available()]
    times: dict[str, list[float]] = {cls.__name__: [] for cls in timed}
    for _ in range(3):
        for cls in timed:
            t0 = time.perf_counter()
            receive_all(layout, y, args.chunk, False, cls)
            times[cls.__name__].append(time.perf_counter() - t0)
    for name, ts in times.items():
        dt = sorted(ts)[1]
        print(f"{name}: {dt / n * 1e3:.3f} ms per frame, {y.shape[1] / dt / 1e6:.2f} MS/s per stream "
              f"(process() only, no messages)")
    if compiled_receiver_available():
        print(f"\nCompiledFrameReceiver per frame by step, its Python search calling the kernels "
              f"({n_tx}x{n_rx}, chunks of 12 000 samples as ofat_rx gets them with run.py's 32k buffers, "
              "best of 5):")
        print("| step | us per frame |\n| --- | --- |")
        for name, us in compiled_steps(layout, y, 12000).items():
            print(f"| {name} | {us:.1f} |")
        print(f"\nThe compiled receiver's ways through the burst with each frame's message ({n_tx}x{n_rx}, "
              "12 000-sample chunks, best of 5 interleaved):")
        print("| path | us per frame |\n| --- | --- |")
        for name, us in receive_paths(layout, y, 12000).items():
            print(f"| {name} | {us:.1f} |")
    rx = FrameReceiver(layout)
    frames = rx.process(y)
    print(f"\nThe FRAME message hop, us per frame ({n_tx}x{n_rx}, Y {frames[0].y.shape}, "
          f"H {frames[0].h.shape}; {len(frames)} frames, best of 5 interleaved passes):")
    print("| step | us per frame |\n| --- | --- |")
    for name, us in hop_costs(frames, rx.counters).items():
        print(f"| {name} | {us:.1f} |")
    print("\nofat_rx in a flowgraph (2x4, back to back, message port unconnected), samples per CPU second "
          "per stream, best of 3 interleaved rounds:")
    print("| ofat_rx publishing | M samples per CPU s per stream |\n| --- | --- |")
    for name, rate in ofat_rx_forms().items():
        print(f"| {name} | {rate / 1e6:.3f} |")
    if compiled_receiver_available():
        print(f"\nofat_rx's cores in a flowgraph ({n_tx}x{n_rx}, back to back, run.py's harness), samples"
              " per CPU second per stream, best of 3 interleaved rounds:")
        print("| chain | M samples per CPU s per stream | / GR |\n| --- | --- | --- |")
        rates = ofat_rx_cores(layout)
        for name, rate in rates.items():
            print(f"| {name} | {rate / 1e6:.2f} | {rate / rates['GR S&C + FFT (one stream)']:.3f} |")
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
