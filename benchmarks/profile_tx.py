#!/usr/bin/env python3
"""Where the transmit side's CPU time goes: ofat_tx per frame (message handler, batched modulation,
the rest of work()) against the floor of any Python block (one that ignores the messages and writes
zeros), and the ZeroMQ bridge per round trip (each stage's wall time). See PROFILE.md.

    .venv/bin/python benchmarks/profile_tx.py [--frames 600] [--round-trips 1000]

ofat_tx: `--frames` and 3x as many 5x256 float32 tensors posted before the flowgraph starts (as
benchmarks/run.py does), streamed into null sinks; each step's CPU time is the thread CPU time
(time.thread_time) inside the block's own methods, so other processes on this shared machine do not
count, per frame from the difference of the two runs (the flowgraph's start and stop cancel).
Bridge: one tensor in flight, timestamps (time.perf_counter, one process) where each stage starts and ends.
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np
import pmt
from gnuradio import blocks, gr, semcom
from gnuradio.semcom.messages import tensor_message
from profile_bridge import stages as bridge_stages  # benchmarks/, the script's own directory

from semcom.errors import positive_int
from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, make_layout


class TimedTx(semcom.ofat_tx):
    """ofat_tx with the thread CPU time of its handler, its batched modulation and its work() summed."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.cpu: collections.Counter[str] = collections.Counter()

    def _on_tensor(self, msg) -> None:
        t0 = time.thread_time()
        super()._on_tensor(msg)
        self.cpu["handler (parse, checks, frame_header)"] += time.thread_time() - t0

    def _modulate_pending(self) -> None:
        t0 = time.thread_time()
        super()._modulate_pending()
        self.cpu["modulate_frames (in work)"] += time.thread_time() - t0

    def work(self, input_items, output_items):
        t0 = time.thread_time()
        n = super().work(input_items, output_items)
        self.cpu["work"] += time.thread_time() - t0
        return n


def tx_cpu(n_tx: int, n_frames: int, batch: int | None) -> dict[str, float]:
    """CPU seconds of one ofat_tx run of n_frames: its handler, modulation, rest of work(), the process."""
    layout = make_layout("wifi64", n_tx=n_tx)
    tensors = [np.random.default_rng(i).standard_normal((5, 256)).astype(np.float32) for i in range(8)]
    tb = gr.top_block()
    tx = TimedTx(layout, max_queue=n_frames + 1, idle_sleep_s=0.0)
    if batch is not None:
        tx.MAX_BATCH = batch
    n_samples = n_frames * (layout.frame_len(1280) + DEFAULT_GAP_SAMPLES)
    for port in range(n_tx):
        tb.connect((tx, port), blocks.head(gr.sizeof_gr_complex, n_samples),
                   blocks.null_sink(gr.sizeof_gr_complex))
    messages = [tensor_message({"seq": i}, {"x": tensors[i % 8]}) for i in range(n_frames)]
    c0 = time.process_time()
    for msg in messages:
        tx._post(pmt.intern("tensors"), msg)
    tb.run()
    cpu = dict(tx.cpu)
    cpu["work"] -= cpu.get("modulate_frames (in work)", 0.0)
    cpu["work: copies, tags, bookkeeping"] = cpu.pop("work")
    cpu["process"] = time.process_time() - c0
    return cpu


def profile_tx(n_tx: int, n_frames: int, batch: int | None) -> list[str]:
    """Per frame at steady state: the CPU of a run of 3n frames less that of n (start/stop cancels)."""
    tx_cpu(n_tx, n_frames, batch)  # warm-up
    small, large = tx_cpu(n_tx, n_frames, batch), tx_cpu(n_tx, 3 * n_frames, batch)
    per_frame = {k: (large[k] - small[k]) / (2 * n_frames) for k in large}
    process = per_frame.pop("process")
    outside = "outside the block's Python (scheduler, message queue, head, sinks)"
    per_frame[outside] = process - sum(per_frame.values())
    frames = f"up to {semcom.ofat_tx.MAX_BATCH}" if batch is None else str(batch)
    label = f"Nt = {n_tx}, {frames} per modulation"
    samples = make_layout("wifi64", n_tx=n_tx).frame_len(1280) + DEFAULT_GAP_SAMPLES
    return [f"| {label}: {k} | {v * 1e6:.1f} |" for k, v in per_frame.items()] + \
        [f"| {label}: **all, per frame** ({samples} samples per stream) | **{process * 1e6:.1f}** |"]


class NullTx(gr.sync_block):
    """The floor of any Python TX block: takes the same messages and ignores them, writes zeros."""

    def __init__(self, n_tx: int):
        gr.sync_block.__init__(self, name="null_tx", in_sig=None, out_sig=[np.complex64] * n_tx)
        self.message_port_register_in(pmt.intern("tensors"))
        self.set_msg_handler(pmt.intern("tensors"), self._on_tensor)

    def _on_tensor(self, msg) -> None:
        pass

    def work(self, input_items, output_items):
        for out in output_items:
            out[:] = 0
        return len(output_items[0])


def null_cpu(n_tx: int, n_frames: int) -> float:
    """CPU seconds of NullTx over the samples and messages of n_frames 5x256 frames."""
    tb = gr.top_block()
    tx = NullTx(n_tx)
    n_samples = n_frames * (make_layout("wifi64", n_tx=n_tx).frame_len(1280) + DEFAULT_GAP_SAMPLES)
    for port in range(n_tx):
        tb.connect((tx, port), blocks.head(gr.sizeof_gr_complex, n_samples),
                   blocks.null_sink(gr.sizeof_gr_complex))
    msg = tensor_message({"seq": 0}, {"x": np.zeros((5, 256), np.float32)})
    c0 = time.process_time()
    for _ in range(n_frames):
        tx._post(pmt.intern("tensors"), msg)
    tb.run()
    return time.process_time() - c0


def profile_null(n_tx: int, n_frames: int) -> str:
    null_cpu(n_tx, n_frames)  # warm-up
    per_frame = (null_cpu(n_tx, 3 * n_frames) - null_cpu(n_tx, n_frames)) / (2 * n_frames)
    return (f"| Nt = {n_tx}, floor: a Python block that ignores the messages and writes zeros, **all, per "
            f"frame** | **{per_frame * 1e6:.1f}** |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=positive_int, default=600)
    parser.add_argument("--round-trips", type=positive_int, default=1000)
    args = parser.parse_args()
    lines = ["| ofat_tx step (wifi64, 5x256 tensors) | CPU us per frame |", "| --- | --- |"]
    for n_tx, batch in ((1, None), (2, None), (2, 1)):
        lines += profile_tx(n_tx, args.frames, batch)
    lines += [profile_null(n_tx, args.frames) for n_tx in (1, 2)]
    lines += ["", "| bridge stage (5x256 float32, one in flight) | median us |", "| --- | --- |"]
    # The stages come from profile_bridge.py (one definition); a hop may read < 0 when the sink's thread
    # already runs as the source's handler returns.
    lines += [f"| {name} | {us:.0f} |" for name, us in bridge_stages(args.round_trips).items()]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
