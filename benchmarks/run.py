#!/usr/bin/env python3
"""gr-semcom benchmarks: throughput and latency against GNU Radio's own C++ chain and bare pyzmq.

    bash scripts/bench.sh            # full run (a few minutes on 2 cores)
    bash scripts/bench.sh --quick    # smoke run (under a minute)
    .venv/bin/python benchmarks/run.py --tx-only   # the transmit part alone (results/summary_tx.md)
    .venv/bin/python benchmarks/run.py --rx-only   # receive .. loopback parts (results/summary_rx.md)
    .venv/bin/python benchmarks/run.py --loopback-only  # loopback latency + frames/s (summary_loopback.md)
    .venv/bin/python benchmarks/run.py --soak 20000  # N frames through the loopback (results/soak.json)
    .venv/bin/python benchmarks/run.py --realtime  # throttled loopback, highest R (results/realtime.md)

Each comparison runs both sides in the same process, same machine, same sizes; medians of repeats.
Writes benchmarks/results/<name>.csv and benchmarks/results/summary.md (or --out DIR). Timing is not tested;
tests/test_benchmarks.py only runs --quick into a temporary folder, so the harness keeps working.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import numpy as np
import pmt
import torch
import zmq
from gnuradio import blocks, channels, digital, fft, gr, semcom
from gnuradio.semcom.messages import parse_tensor_message, tensor_message

from semcom.errors import fraction, positive_float, positive_int
from semcom.link import LinkClient
from semcom.loopback import stream
from semcom.ofat.channel_model import ChannelSpec
from semcom.ofat.clipping import clip_frame
from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import (
    DEFAULT_GAP_SAMPLES,
    FrameHeader,
    OfatLayout,
    frame_grid_reference,
    frame_header,
    make_layout,
    modulate_frame,
    modulate_frames,
    ofdm_modulate,
)
from semcom.progress import progress_bar
from semcom.transfer import start_loopback_flowgraph, transfer
from semcom.wire import Kind, decode, encode

RESULTS = Path(__file__).resolve().parent / "results"
LAYOUT = make_layout("wifi64", n_tx=2, n_rx=4)
GAP = DEFAULT_GAP_SAMPLES  # ofat_tx's gap after each frame (as in the loopback flowgraphs)


def median_of(fn: Callable[[], float], repeats: int) -> float:
    fn()  # warm-up
    return statistics.median(fn() for _ in range(repeats))


# ------------------------------------------------------------------------- 1. transmitter
def modulate_reference(layout: OfatLayout, values: np.ndarray, seq: int, shape: tuple[int, ...] | None = None,
                       flags: int = 0, pad: int = 0) -> tuple[np.ndarray, FrameHeader]:
    """The TX construction before the cached template: every constant rebuilt, whole grid IFFT'd,
    then the gap appended by a second copy (what ofat_tx did). Bit-identical output."""
    grid, header = frame_grid_reference(layout, values, seq, shape, flags)
    samples = ofdm_modulate(layout, grid)
    if layout.clip_ratio_db:
        samples = clip_frame(samples, layout, layout.clip_ratio_db, symbols="data")
    padded = np.zeros((layout.n_tx, samples.shape[1] + pad), np.complex64)
    padded[:, : samples.shape[1]] = samples
    return padded, header


def modulate_rates(layout: OfatLayout, n_frames: int, repeats: int) -> dict[str, float]:
    """Frames per CPU second of the TX construction: `modulate_frames` MAX_BATCH frames per call (what
    ofat_tx does), `modulate_frame` one frame per call, and `modulate_reference` (the definition);
    interleaved repeats, the median of each."""
    tensors = [np.random.default_rng(i).standard_normal((5, 256)) for i in range(8)]
    batch = semcom.ofat_tx.MAX_BATCH
    headers = [frame_header(layout, tensors[i % 8], seq=i) for i in range(batch)]
    payloads = [tensors[i % 8] for i in range(batch)]
    n_calls = max(1, n_frames // batch)
    chains: dict[str, tuple[Callable[[int], object], int]] = {
        f"modulate_frames, {batch} per call":
            (lambda i: modulate_frames(layout, payloads, headers, GAP), batch),
        "modulate_frame, one per call": (lambda i: modulate_frame(layout, tensors[i % 8], seq=i, pad=GAP), 1),
        "reference construction": (lambda i: modulate_reference(layout, tensors[i % 8], seq=i, pad=GAP), 1)}
    times: dict[str, list[float]] = {k: [] for k in chains}
    for _ in range(repeats + 1):  # the first round is a warm-up
        for name, (fn, per_call) in chains.items():
            calls = n_calls if per_call > 1 else n_calls * batch
            t0 = time.thread_time()
            for i in range(calls):
                fn(i)
            times[name].append(calls * per_call / (time.thread_time() - t0))
    return {k: statistics.median(v[1:]) for k, v in times.items()}


def tx_breakdown() -> list[tuple[str, float]]:
    """CPU microseconds per frame of each step ofat_tx takes for one 5x256 tensor (wifi64, Nt = 2)."""
    t = np.random.default_rng(0).standard_normal((5, 256)).astype(np.float32)
    v = t.astype(np.float64)
    msg = tensor_message({"seq": 1}, {"x": t})
    batch = semcom.ofat_tx.MAX_BATCH
    header = frame_header(LAYOUT, v, seq=1)

    def us(fn: Callable[[], object], n: int = 1000, per_call: int = 1) -> float:
        def once() -> float:
            t0 = time.thread_time()
            for _ in range(n):
                fn()
            return (time.thread_time() - t0) / (n * per_call) * 1e6
        return median_of(once, 5)

    return [("tensor_message (sender side, not in ofat_tx's timing)",
             us(lambda: tensor_message({"seq": 1}, {"x": t}))),
            ("parse_tensor_message (ofat_tx's handler)", us(lambda: parse_tensor_message(msg))),
            ("frame_header: checks, power scale, header (ofat_tx's handler)",
             us(lambda: frame_header(LAYOUT, v, seq=1))),
            (f"modulate_frames, {batch} frames per call (ofat_tx's work), per frame",
             us(lambda: modulate_frames(LAYOUT, [v] * batch, [header] * batch, GAP), n=20, per_call=batch)),
            ("modulate_frame, one frame per call", us(lambda: modulate_frame(LAYOUT, v, seq=1, pad=GAP))),
            ("modulate_reference (the definition: frame_grid_reference + IFFT)",
             us(lambda: modulate_reference(LAYOUT, v, seq=1, pad=GAP)))]


def ofat_tx_run(n_frames: int, layout: OfatLayout = LAYOUT, batch: int | None = None, compiled: bool = False,
                clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """(samples per antenna stream, seconds) of ofat_tx, modulation included (queue pre-filled, no ZeroMQ).

    batch: frames modulated per call (the block's MAX_BATCH by default; 1 = one frame at a time, the
    block before batching). compiled: the C++ core (semcom.ofat_tx_fast) instead of the Python block.
    The messages are built and posted before the clock starts: that is the sender's work (posting from
    Python into a C++ block costs ~100 us a call in GNU Radio's bindings, a test-harness cost that a
    flowgraph's msg_connect does not have).
    """
    tensors = [np.random.default_rng(i).standard_normal((5, 256)).astype(np.float32) for i in range(8)]
    tb = gr.top_block()
    make = semcom.ofat_tx_fast if compiled else semcom.ofat_tx
    tx = make(layout, max_queue=n_frames + 1, idle_sleep_s=0.0)
    if batch is not None:
        tx.MAX_BATCH = batch
    n_samples = n_frames * (layout.frame_len(1280) + GAP)
    for a in range(layout.n_tx):
        sink = blocks.null_sink(gr.sizeof_gr_complex)
        tb.connect((tx, a), blocks.head(gr.sizeof_gr_complex, n_samples), sink)
    port = pmt.intern("tensors")
    for i in range(n_frames):
        tx._post(port, tensor_message({"seq": i}, {"x": tensors[i % 8]}))
    t0 = clock()
    tb.run()
    return n_samples, clock() - t0


def gr_ofdm_tx_hier_run(n_samples: int, clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """GNU Radio's own packet OFDM transmitter `digital.ofdm_tx` (CRC, header, BPSK payload, allocator,
    IFFT, CP; its defaults are the wifi64 numerology), 96-byte packets, output samples/s."""
    lay = LAYOUT
    per_packet = 96
    payload = np.random.default_rng(5).integers(0, 256, per_packet * 16).astype(np.uint8)
    tb = gr.top_block()
    src = blocks.vector_source_b(payload.tolist(), True)
    tagger = blocks.stream_to_tagged_stream(gr.sizeof_char, 1, per_packet, "packet_len")
    tx = digital.ofdm_tx(fft_len=lay.fft_len, cp_len=lay.cp_len, packet_length_tag_key="packet_len")
    tb.connect(src, tagger, tx, blocks.head(gr.sizeof_gr_complex, n_samples),
               blocks.null_sink(gr.sizeof_gr_complex))
    t0 = clock()
    tb.run()
    return n_samples, clock() - t0


def gr_ofdm_tx_run(n_symbols: int, clock: Callable[[], float] = time.perf_counter) -> tuple[int, float]:
    """GNU Radio's C++ OFDM TX chain with the same numerology: allocator + IFFT + cyclic prefixer."""
    lay = LAYOUT
    data = tuple(k for k in lay.data_carriers)
    pilots = tuple(sorted(lay.pilot_carriers))
    per_packet = 20 * len(data)  # 20 OFDM symbols per tagged packet
    n_packets = max(1, n_symbols // 20)
    symbols = (np.exp(2j * np.pi * np.random.default_rng(0).random(per_packet))).astype(np.complex64)
    tb = gr.top_block()
    src = blocks.vector_source_c(symbols.tolist(), True)
    tagger = blocks.stream_to_tagged_stream(gr.sizeof_gr_complex, 1, per_packet, "packet_len")
    alloc = digital.ofdm_carrier_allocator_cvc(lay.fft_len, (data,), (pilots,), ((1, 1, -1, 1),), (),
                                               "packet_len")
    ifft = fft.fft_vcc(lay.fft_len, False, (), True)
    cp = digital.ofdm_cyclic_prefixer(lay.fft_len, lay.fft_len + lay.cp_len, 0, "packet_len")
    n_samples = n_packets * 20 * lay.symbol_len
    head = blocks.head(gr.sizeof_gr_complex, n_samples)
    tb.connect(src, blocks.head(gr.sizeof_gr_complex, n_packets * per_packet), tagger, alloc, ifft, cp, head,
               blocks.null_sink(gr.sizeof_gr_complex))
    t0 = clock()
    tb.run()
    return n_samples, clock() - t0


def cpu_steady_rates(runs: dict[str, tuple[Callable[..., tuple[int, float]], int]],
                     rounds: int = 3) -> dict[str, float]:
    """Samples per CPU second (the process's, every flowgraph thread) of each run at steady state:
    extra samples / extra CPU seconds between a run of size n and one of 3n, so start-up cancels. Each
    size's CPU time is its least over `rounds` rounds that interleave the runs (this machine is shared:
    CPU time per sample moves far less than wall time, and the least disturbed run is the closest to
    the code's own cost; the least of each size, not the best of the differences, which an outlier in
    one run would make absurd). NaN if the larger run did not take longer. runs: name -> (run(n,
    clock=...), n)."""
    least: dict[tuple[str, int], tuple[int, float]] = {}
    for run, n in runs.values():  # warm-up
        run(n, clock=time.process_time)
    for _ in range(rounds):
        for name, (run, n) in runs.items():
            for size in (n, 3 * n):
                samples, cpu = run(size, clock=time.process_time)
                if (name, size) not in least or cpu < least[name, size][1]:
                    least[name, size] = (samples, cpu)
    rates = {}
    for name, (_, n) in runs.items():
        (small_n, small_t), (large_n, large_t) = least[name, n], least[name, 3 * n]
        rates[name] = (large_n - small_n) / (large_t - small_t) if large_t > small_t else float("nan")
    return rates


# ------------------------------------------------------------------------- 1b. channel
def mimo_channel_run(n: int, n_tx: int, n_rx: int, implementation: str = "auto",
                     clock: Callable[[], float] = time.perf_counter, make: Callable = semcom.mimo_channel
                     ) -> tuple[int, float]:
    """(samples per stream, seconds) of mimo_channel (3 paths + fractional delay, 20 dB, held); `make`:
    semcom.mimo_channel, or mimo_channel_python for the Python block with the compiled kernels."""
    x = (np.random.default_rng(6).standard_normal(4096) * (1 + 1j)).astype(np.complex64)
    tb = gr.top_block()
    chan = make(n_tx, n_rx, snr_db=20.0, fading="held", seed=1, implementation=implementation)
    for a in range(n_tx):
        tb.connect(blocks.vector_source_c(x.tolist(), True), blocks.head(gr.sizeof_gr_complex, n), (chan, a))
    for r in range(n_rx):
        tb.connect((chan, r), blocks.null_sink(gr.sizeof_gr_complex))
    t0 = clock()
    tb.run()
    return n, clock() - t0


def gr_channel_model_run(n: int, n_taps: int, clock: Callable[[], float] = time.perf_counter
                         ) -> tuple[int, float]:
    """(samples, seconds) of GNU Radio's C++ channels.channel_model: one antenna pair, n_taps FIR + AWGN."""
    taps = (np.random.default_rng(7).standard_normal(n_taps) * (1 + 1j) / np.sqrt(2 * n_taps)).tolist()
    x = (np.random.default_rng(6).standard_normal(4096) * (1 + 1j)).astype(np.complex64)
    tb = gr.top_block()
    model = channels.channel_model(noise_voltage=0.1, frequency_offset=0.0, epsilon=1.0, taps=taps,
                                   noise_seed=1)
    tb.connect(blocks.vector_source_c(x.tolist(), True), blocks.head(gr.sizeof_gr_complex, n), model,
               blocks.null_sink(gr.sizeof_gr_complex))
    t0 = clock()
    tb.run()
    return n, clock() - t0


def _whole(rate: float) -> int | float:
    """A rate for a CSV: rounded, or NaN where cpu_steady_rates could not measure it."""
    return round(rate) if np.isfinite(rate) else rate


def channel_part(n: int) -> list[str]:
    """mimo_channel as the compiled block, as the Python block with the compiled kernels, and numpy, and
    channels.channel_model, samples per CPU second at steady state, interleaved rounds (cpu_steady_rates)."""
    from gnuradio.semcom.mimo_channel import mimo_channel_python

    n_taps = semcom.mimo_channel(1, 1).fir_len  # the FIR length mimo_channel runs (paths + FD filter)
    mimos = ((1, 1), (2, 2), (2, 4), (4, 4))
    probe = semcom.mimo_channel(1, 1)
    variants = {"numpy": dict(implementation="numpy", make=mimo_channel_python)}
    if probe.implementation == "cxx":
        variants["kernels"] = dict(implementation="cxx", make=mimo_channel_python)
    if probe.implementation == "cxx" and probe.block == "compiled":
        variants["cxx"] = dict(implementation="cxx")
    runs: dict[str, tuple[Callable[..., tuple[int, float]], int]] = {
        "gr": (partial(gr_channel_model_run, n_taps=n_taps), n)}
    for n_tx, n_rx in mimos:
        for name, options in variants.items():
            runs[f"{name} {n_tx}x{n_rx}"] = (partial(mimo_channel_run, n_tx=n_tx, n_rx=n_rx, **options), n)
    rates = cpu_steady_rates(runs)
    gr_rate = rates["gr"]
    rows, table = [], []
    for n_tx, n_rx in mimos:
        cxx, kernels, ref = (rates.get(f"{name} {n_tx}x{n_rx}", float("nan"))
                             for name in ("cxx", "kernels", "numpy"))
        pairs = n_tx * n_rx
        rows.append({"nt_x_nr": f"{n_tx}x{n_rx}", "cxx_samples_per_cpu_s": _whole(cxx),
                     "kernels_samples_per_cpu_s": _whole(kernels), "numpy_samples_per_cpu_s": _whole(ref),
                     "gr_channel_model_samples_per_cpu_s": _whole(gr_rate)})
        table.append(f"| {n_tx}x{n_rx} | {cxx / 1e6:.2f} M | {kernels / 1e6:.2f} M | {ref / 1e6:.2f} M | "
                     f"{cxx / kernels:.2f} | **{cxx * pairs / gr_rate:.2f}** | {ref * pairs / gr_rate:.2f} |")
    write_csv("channel_throughput", rows)
    return ["## MIMO channel, samples per CPU second per stream", "",
            f"FIR of {n_taps} taps per antenna pair, AWGN, held fading; steady state (runs of n and 3n "
            "samples, the least CPU time of each over 3 interleaved rounds). `mimo_channel` as the compiled "
            "block (`cxx`: gr-semcom/lib/mimo_channel_fast_impl.cc around mimo_channel_kernels.cc, no Python "
            "per work() call), as the Python block with the compiled kernels (`kernels`: "
            "`mimo_channel_python(implementation='cxx')`, Python per call) and the numpy definition "
            "(`numpy`). GR C++ `channels.channel_model` "
            f"(one pair, same taps, AWGN): {gr_rate / 1e6:.2f} M samples per CPU s. Per antenna pair: a "
            "stream's rate times Nt x Nr (each sample goes through every pair; the noise is per receive "
            "antenna).", "",
            "| Nt x Nr | mimo_channel cxx | kernels | numpy | cxx / kernels | "
            "**cxx per antenna pair vs channel_model** | numpy per antenna pair vs channel_model |",
            "| --- | --- | --- | --- | --- | --- | --- |", *table, ""]


# ------------------------------------------------------------------------- 2. receiver
def received_samples(n_frames: int, snr_db: float = 20.0, layout: OfatLayout = LAYOUT, gap: int = GAP
                     ) -> np.ndarray:
    """(Nr, n) complex64: 5x256 frames, each followed by `gap` idle samples, through random multipath
    MIMO channels (one realisation per frame) and AWGN."""
    rng = np.random.default_rng(1)
    spec = ChannelSpec(n_rx=layout.n_rx, n_tx=layout.n_tx, max_int_delay=20)
    parts = []
    for seq in range(n_frames):
        x, _ = modulate_frame(layout, rng.standard_normal(1280), seq=seq, pad=gap)
        parts.append(spec.draw(rng).apply(x)[:, : x.shape[1]])
    y = np.concatenate(parts, axis=1)
    noise = (rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)) / np.sqrt(2)
    y += 10 ** (-snr_db / 20) * noise
    return y.astype(np.complex64)


# Items of the head blocks' output buffers in both receive chains (ofat_rx's and GR's, the same): GR's
# default (~8k complex) hands a Python block 5-8k items per work() call, and the gateway's cost per call
# is a large part of ofat_rx's floor; 32k items give it 10-14k per call (a 4-input Python sink that does
# nothing: 17.5-19.5 -> 21.8-22.8 M samples/s per stream; ofat_rx at 2x4: 4.5-5.2 -> 6.1-6.6, one run).
RX_BUFFER_ITEMS = 32768
# Interleaved rounds of each receive chain (best_rates): GR's chain is a dozen blocks in as many threads
# and its rate in one --rx-only run swung 10.3-18.5 M samples per CPU s under load 1.3-5.4 with 3 rounds.
RX_ROUNDS = 5


def rx_head(n: int) -> gr.basic_block:
    """blocks.head of n complex samples with RX_BUFFER_ITEMS of output buffer (set as a GRC user sets a
    block's "Min Output Buffer"), the upstream block of both receive chains."""
    head = blocks.head(gr.sizeof_gr_complex, n)
    head.set_min_output_buffer(RX_BUFFER_ITEMS)
    return head


def ofat_rx_run(n: int, layout: OfatLayout, samples: np.ndarray, implementation: str = "auto"
                ) -> tuple[int, float]:
    """(samples per stream, CPU seconds of this process, all threads) of ofat_rx on Nr looping vector
    sources (a head of n samples); implementation "numpy" runs the numpy FrameReceiver in place of the
    compiled one (ofat_rx's receiver_class)."""
    tb = gr.top_block()
    rx = semcom.ofat_rx(layout, implementation=implementation)
    for r in range(layout.n_rx):
        tb.connect(blocks.vector_source_c(samples[r].tolist(), True), rx_head(n), (rx, r))
    t0 = time.process_time()
    tb.run()
    return n, time.process_time() - t0


def gr_sync_fft_run(n: int, samples: np.ndarray) -> tuple[int, float]:
    """GNU Radio's C++ receive front end on ONE stream (a head of n samples): S&C sync + FFT;
    (samples, CPU seconds of this process, all threads)."""
    lay = LAYOUT
    tb = gr.top_block()
    src = blocks.vector_source_c(samples[0].tolist(), True)
    head = rx_head(n)
    sync = digital.ofdm_sync_sc_cfb(lay.fft_len, lay.cp_len)
    s2v = blocks.stream_to_vector(gr.sizeof_gr_complex, lay.fft_len)
    fwd = fft.fft_vcc(lay.fft_len, True, (), True)
    tb.connect(src, head, sync)
    tb.connect((sync, 0), blocks.null_sink(gr.sizeof_float))
    tb.connect((sync, 1), blocks.null_sink(gr.sizeof_char))
    tb.connect(head, s2v, fwd, blocks.null_sink(gr.sizeof_gr_complex * lay.fft_len))
    t0 = time.process_time()
    tb.run()
    return n, time.process_time() - t0


def best_rates(runs: dict[str, Callable[[], tuple[int, float]]], repeats: int = 3) -> dict[str, float]:
    """Samples per CPU second of each run, the best of `repeats` rounds that interleave the runs (after
    one warm-up round). CPU time of this process (every flowgraph thread) rather than wall time,
    because this machine is shared: other work stretches wall time but not the CPU time a chain
    needs; interleaving exposes every chain to the same conditions."""
    best = dict.fromkeys(runs, 0.0)
    for i in range(repeats + 1):
        for name, run in runs.items():
            k, t = run()
            if i:
                best[name] = max(best[name], k / max(t, 1e-9))
    return best


def receive_part(n_frames: int) -> list[str]:
    """ofat_rx (compiled and numpy receiver) for 1x1 ... 4x4, frames back to back and at 10 % duty
    cycle, against GR's C++ S&C sync + FFT per stream, in samples per CPU second (see best_rates; GR's
    chain runs 10x the samples so its start-up is as small a part)."""
    rows, table = [], []
    frame = LAYOUT.frame_len(1280)
    for duty, gap in (("back to back", GAP), ("10 % duty", 9 * frame)):
        for n_tx, n_rx in ((1, 1), (2, 2), (2, 4), (4, 4)):
            layout = make_layout("wifi64", n_tx=n_tx, n_rx=n_rx)
            samples = received_samples(16, layout=layout, gap=gap)
            n = max(n_frames // 16, 1) * samples.shape[1]
            rates = best_rates({"compiled": partial(ofat_rx_run, n, layout, samples, "cxx"),
                                "numpy": partial(ofat_rx_run, n, layout, samples, "numpy"),
                                "gr": partial(gr_sync_fft_run, 10 * n, samples)}, RX_ROUNDS)
            fast, ref, gr_rate = rates["compiled"], rates["numpy"], rates["gr"]
            fps = fast * 16 / samples.shape[1]
            rows.append({"duty": duty, "nt_x_nr": f"{n_tx}x{n_rx}",
                         "ofat_rx_samples_per_s_per_stream": round(fast),
                         "numpy_receiver_samples_per_s_per_stream": round(ref),
                         "gr_sync_fft_samples_per_s_per_stream": round(gr_rate), "frames_per_s": round(fps)})
            table.append(f"| {duty} | {n_tx}x{n_rx} | {fast / 1e6:.2f} M | {ref / 1e6:.2f} M | "
                         f"{fast / ref:.2f} | {gr_rate / 1e6:.2f} M | **{fast / gr_rate:.3f}** | {fps:,.0f} |"
                         )
    write_csv("rx_throughput", rows)
    return ["## Receive chain, samples per CPU second per antenna stream", "",
            "`ofat_rx` (all DSP: sync, CFO, channel estimation, header, phase tracking, message) with the "
            "compiled receiver (`CompiledFrameReceiver`, its default where built) and with the numpy "
            "`FrameReceiver` (implementation=\"numpy\"); GR C++ `ofdm_sync_sc_cfb` + "
            "`fft_vcc` on one stream (sync and FFT only, no channel estimation). 5x256 frames "
            f"({frame} samples) through one multipath realisation each at 20 dB; at 10 % duty a frame is "
            "followed by 9 frame lengths of noise. CPU time of the process (all flowgraph threads), best of "
            f"{RX_ROUNDS} interleaved rounds: the machine is shared, so wall-clock rates are not repeatable.",
            "",
            "| load | Nt x Nr | ofat_rx (compiled) | numpy receiver | compiled / numpy | GR S&C + FFT | "
            "ofat_rx / GR per stream | frames/s |", "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *table, ""]


# ------------------------------------------------------------------------- 3. reconstruction
def reconstruction_rates(n_frames: int) -> dict[str, float]:
    rng = np.random.default_rng(2)
    k, n_rx, n_tx, s = LAYOUT.n_data_carriers, LAYOUT.n_rx, LAYOUT.n_tx, 7
    h = (rng.standard_normal((n_frames, k, n_rx, n_tx)) + 1j * rng.standard_normal((n_frames, k, n_rx, n_tx)))
    y = (rng.standard_normal((n_frames, k, n_rx, s)) + 1j * rng.standard_normal((n_frames, k, n_rx, s)))
    ht, yt = torch.from_numpy(h), torch.from_numpy(y)
    shape = (5, 256)
    rates = {}

    def per_frame_torch(method: str) -> float:
        t0 = time.perf_counter()
        for i in range(n_frames):
            reconstruct_payload(LAYOUT, ht[i], yt[i], shape=shape, scale=1.0, noise_var=0.01, method=method)
        return n_frames / (time.perf_counter() - t0)

    def batched_torch() -> float:
        from semcom.ofat.equalize import zf

        t0 = time.perf_counter()
        zf(ht, yt)  # all frames, all subcarriers, all symbols in one call
        return n_frames / (time.perf_counter() - t0)

    def numpy_loop() -> float:
        t0 = time.perf_counter()
        for i in range(n_frames):
            out = np.empty((k, n_tx, s), complex)
            for sc in range(k):  # the per-subcarrier loop a naive implementation would write
                out[sc] = np.linalg.pinv(h[i, sc]) @ y[i, sc]
        return n_frames / (time.perf_counter() - t0)

    rates["torch_zf_per_frame"] = median_of(lambda: per_frame_torch("zf"), 3)
    rates["torch_mmse_per_frame"] = median_of(lambda: per_frame_torch("mmse"), 3)
    rates["torch_zf_batched_all_frames"] = median_of(batched_torch, 3)
    rates["numpy_per_subcarrier_loop"] = median_of(numpy_loop, 3)
    return rates


# ------------------------------------------------------------------------- 4. latency
@contextmanager
def bridge_peer(implementation: str = "auto") -> Iterator[tuple[str, str]]:
    """A running flowgraph tensor_source -> tensor_sink (the compiled blocks where built, "auto", or
    "python" / "cxx"); yields (tensor endpoint, frame endpoint)."""
    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", implementation=implementation)
    snk = semcom.tensor_sink("tcp://127.0.0.1:*", send_timeout_ms=1000, implementation=implementation)
    tb.msg_connect((src, "tensors"), (snk, "frames"))
    tb.start()
    try:
        yield src.endpoint(), snk.endpoint()
    finally:
        tb.stop()
        tb.wait()


@contextmanager
def echo_peer() -> Iterator[tuple[str, str]]:
    """A bare pyzmq PULL -> PUSH echo thread; yields (its PULL endpoint, its PUSH endpoint)."""
    ctx = zmq.Context.instance()
    b_in, b_out = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    endpoints = (f"tcp://127.0.0.1:{b_in.bind_to_random_port('tcp://127.0.0.1')}",
                 f"tcp://127.0.0.1:{b_out.bind_to_random_port('tcp://127.0.0.1')}")
    stop = threading.Event()

    def echo() -> None:
        while not stop.is_set():
            if b_in.poll(50):
                b_out.send_multipart(b_in.recv_multipart())

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        yield endpoints
    finally:
        stop.set()
        thread.join()
        b_in.close(linger=0)
        b_out.close(linger=0)


PEERS = {"bridge": bridge_peer, "bridge_python": partial(bridge_peer, "python"),
         "bridge_cxx": partial(bridge_peer, "cxx"), "echo": echo_peer}
# The bridge implementations the benchmark compares, by the PEERS entry that runs each.
BRIDGES = {"compiled blocks": "bridge_cxx", "Python blocks": "bridge_python"}


def serve_peer(name: str) -> None:
    """Run one peer in this process (a separate interpreter), print its endpoints, stop on stdin."""
    with PEERS[name]() as endpoints:
        print(*endpoints, flush=True)
        sys.stdin.readline()


@contextmanager
def peer(name: str, separate: bool) -> Iterator[tuple[str, str]]:
    """PEERS[name] in this process, or in its own interpreter (as deployed: the host is another
    process than the flowgraph, so the two do not share one GIL)."""
    if not separate:
        with PEERS[name]() as endpoints:
            yield endpoints
        return
    here = str(Path(__file__).parent)
    code = f"import sys; sys.path.insert(0, {here!r}); import run; run.serve_peer({name!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    try:
        tx_endpoint, rx_endpoint = proc.stdout.readline().split()
        yield tx_endpoint, rx_endpoint
    finally:
        proc.stdin.write("\n")
        proc.stdin.flush()
        proc.wait(timeout=30)


def bridge_and_bare_round_trips(n: int, block: int = 50, separate: bool = False,
                                bridge_peer_name: str = "bridge") -> tuple[list[float], list[float]]:
    """Seconds per round trip of a 5x256 float32 tensor, (bridge, bare), interleaved in blocks of
    `block` so that both see the same machine load (this box is shared; a separate run of each moved
    the ratio by 2x):

    bridge: LinkClient -> tensor_source -> (GNU Radio message) -> tensor_sink -> LinkClient;
    bare: the same encode/decode through a bare pyzmq PUSH/PULL echo thread (tcp).
    separate: each peer (the flowgraph, the echo) in its own interpreter instead of this one;
    bridge_peer_name: the PEERS entry of the flowgraph (the bridge blocks' implementation)."""
    x = np.random.default_rng(3).standard_normal((5, 256)).astype(np.float32)
    bridge: list[float] = []
    bare: list[float] = []
    ctx = zmq.Context.instance()
    a_out, a_in = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    with peer(bridge_peer_name, separate) as bridge_endpoints, peer("echo", separate) as echo_endpoints:
        a_out.connect(echo_endpoints[0])
        a_in.connect(echo_endpoints[1])
        try:
            with LinkClient(*bridge_endpoints, timeout_s=5.0) as link:
                for round_ in range(-(-n // block) + 1):  # round 0 warms both up
                    for _ in range(block):
                        t0 = time.perf_counter()
                        link.send(x)
                        assert link.receive(timeout_s=5.0) is not None
                        if round_:
                            bridge.append(time.perf_counter() - t0)
                    for i in range(block):
                        t0 = time.perf_counter()
                        a_out.send_multipart(encode(Kind.TENSOR, i, {"x": x}))
                        decode(a_in.recv_multipart())
                        if round_:
                            bare.append(time.perf_counter() - t0)
        finally:
            a_out.close(linger=0)
            a_in.close(linger=0)
    return bridge, bare


def pct(v: list[float], q: float) -> float:
    """The q-th percentile of seconds `v`, in microseconds."""
    return float(np.percentile(v, q) * 1e6)


def bridge_part(n_rt: int) -> list[str]:
    """The bridge section: round trips of each bridge implementation against the bare echo beside it,
    in one process and in separate processes (results/latency.csv)."""
    compiled = getattr(semcom.semcom_python, "tensor_source_fast", None) is not None
    bridges = {label: name for label, name in BRIDGES.items() if compiled or name != "bridge_cxx"}
    trips = {(separate, label): bridge_and_bare_round_trips(n_rt, separate=separate, bridge_peer_name=name)
             for separate in (False, True) for label, name in bridges.items()}

    where = {False: "one process (host, flowgraph, echo)", True: "separate processes (as deployed)"}
    rows, table = [], []
    for (separate, label), (bridge, bare) in trips.items():
        for path, times in ((f"bridge, {label} (LinkClient->tensor_source->tensor_sink->host)", bridge),
                            (f"bare pyzmq PUSH/PULL echo (beside the {label})", bare)):
            rows.append({"arrangement": where[separate], "path": path, "median_us": round(pct(times, 50)),
                         "p99_us": round(pct(times, 99))})
        ratio = pct(bridge, 50) / pct(bare, 50)
        table.append(f"| {where[separate]} | {label} | {pct(bridge, 50):.0f} | {pct(bridge, 99):.0f} | "
                     f"{pct(bare, 50):.0f} | {pct(bare, 99):.0f} | **{ratio:.2f}** |")
    write_csv("latency", rows)
    return ["## ZeroMQ round trip of a 5x256 float32 tensor, microseconds", "",
            "The bridge (host -> tensor_source -> GNU Radio message -> tensor_sink -> host) and a bare "
            "pyzmq echo thread (same encode/decode on the host), interleaved in blocks of 50; each bridge "
            "implementation with its own echo run beside it.", "",
            "| arrangement | bridge blocks | bridge median | bridge p99 | bare median | bare p99 "
            "| bridge / bare |",
            "| --- | --- | --- | --- | --- | --- | --- |", *table, ""]


# ------------------------------------------------------------------------- 5. end to end
@contextmanager
def bench_loopback(window: int, n_tensors: int, warm_up: int = 0
                   ) -> Iterator[tuple[gr.top_block, LinkClient, list[np.ndarray]]]:
    """The end-to-end benchmarks' setup (here and in profile_loopback.py): the 2x4 loopback flowgraph at
    20 dB (channel seed 1) running, a LinkClient on it with `window` frames in flight, `n_tensors` seeded
    5x256 tensors (seed 4), the first `warm_up` of them streamed through first. Stops the flowgraph."""
    tb, tx, rx = start_loopback_flowgraph(2, 4, preset="wifi64", snr_db=20.0, seed=1)
    rng = np.random.default_rng(4)
    tensors = [rng.standard_normal((5, 256)).astype(np.float32) for _ in range(n_tensors)]
    try:
        with LinkClient(tx, rx, window=window, timeout_s=5.0) as link:
            if warm_up:
                stream(link, LAYOUT, tensors[:warm_up], 20.0, window, 5.0, progress=False)
            yield tb, link, tensors
    finally:
        tb.stop()
        tb.wait()


def loopback_rate(n_frames: int, window: int) -> tuple[float, float]:
    with bench_loopback(window, n_frames, warm_up=20) as (_, link, tensors):
        res = stream(link, LAYOUT, tensors, 20.0, window, 5.0, progress=False)
    return res.delivered / res.seconds, res.delivered / res.sent


def loopback_latencies(n_frames: int) -> list[float]:
    """Seconds from a 5x256 tensor sent to its frame back at the host, one in flight (2x4, 20 dB)."""
    times = []
    with bench_loopback(1, 1) as (_, link, (x,)):
        for i in range(n_frames + 20):
            t0 = time.perf_counter()
            link.send(x)
            msg = link.receive(timeout_s=5.0)
            if msg is not None and i >= 20:  # the first 20 warm up
                times.append(time.perf_counter() - t0)
    return times


def loopback_part(n_frames: int) -> list[str]:
    """Part 5: the loopback's latency with one frame in flight and its frames/s at windows 8, 16, 32
    (results/loopback_end_to_end.csv)."""
    lat = loopback_latencies(max(50, n_frames))
    e2e = []
    for window in (8, 16, 32):
        fps, frac = loopback_rate(max(50, n_frames), window)
        e2e.append({"window": window, "frames_per_s": round(fps, 1), "delivered_fraction": round(frac, 4)})
    write_csv("loopback_end_to_end", e2e)
    probe = semcom.mimo_channel(1, 1)
    channel = f"{probe.implementation}, {probe.block} block"
    return ["## Loopback latency, tensor sent -> frame back at the host (2x4, 20 dB, 5x256, one in flight)",
            "", "| median | p99 |", "| --- | --- |",
            f"| {pct(lat, 50) / 1e3:.2f} ms | {pct(lat, 99) / 1e3:.2f} ms |", "",
            f"## End to end in loopback (2x4, 20 dB, 5x256 tensors; mimo_channel {channel})", "",
            "| window | frames/s | delivered |", "| --- | --- | --- |",
            *[f"| {r['window']} | {r['frames_per_s']} | {r['delivered_fraction']:.2%} |" for r in e2e], ""]


def rss_bytes() -> int:
    """Resident set size of this process (the flowgraph runs in it)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def soak(n_frames: int, batch: int, n_tx: int = 2, n_rx: int = 4) -> int:
    """n_frames 5x256 tensors through the Nt x Nr loopback flowgraph at 20 dB, window 16, no host
    reconstruction: frames lost, resident memory after each batch, every block's counters at the end
    and whether they agree with each other and with the host, and the sample rate per stream the whole
    chain sustained (the loopback runs unthrottled: that rate is the real-time limit of this machine).
    Writes results/soak.json and soak.csv (2x4) or soak_<Nt>x<Nr>.json / .csv."""
    import json

    tb, tx, rx = start_loopback_flowgraph(n_tx, n_rx, preset="wifi64", snr_db=20.0, seed=1)
    rng = np.random.default_rng(9)
    pool = [rng.standard_normal((5, 256)).astype(np.float32) for _ in range(64)]
    rows, delivered, sent = [], 0, 0
    t_start = time.perf_counter()
    try:
        with LinkClient(tx, rx, window=16, timeout_s=5.0) as link:
            transfer(link, LAYOUT, pool * 4, window=16, timeout_s=5.0, methods=(), progress=False)  # warm-up
            warm_sent = link.accounting.summary()
            rss0 = rss_bytes()
            bar = progress_bar(total=n_frames, desc="soak", unit="frame")
            while sent < n_frames:
                k = min(batch, n_frames - sent)
                got = transfer(link, LAYOUT, [pool[i % 64] for i in range(k)], window=16, timeout_s=5.0,
                               methods=(), progress=False)
                sent += k
                delivered += sum(g is not None for g in got)
                # The harness's own copy of the batch's tensors (k x 5 KB) is not the chain's memory: freed
                # before RSS is read, or two batches of them would count as growth.
                del got
                rows.append({"frames_sent": sent, "frames_delivered": delivered,
                             "rss_mb": round(rss_bytes() / 2**20, 2),
                             "seconds": round(time.perf_counter() - t_start, 1)})
                bar.update(k)
            bar.close()
            accounting = link.accounting.summary()
    finally:
        time.sleep(0.5)
        counters = {name: getattr(tb, f"semcom_{name}_0").counters()
                    for name in ("tensor_source", "ofat_tx", "ofat_rx", "tensor_sink")}
        tb.stop()
        tb.wait()
    seconds = time.perf_counter() - t_start
    total_sent = n_frames + len(pool) * 4
    src, txc, rxc, snk = (counters[k] for k in ("tensor_source", "ofat_tx", "ofat_rx", "tensor_sink"))
    checks = {
        "tensor_source posted every tensor the host sent": src.get("posted") == total_sent,
        "ofat_tx sent every frame it was posted": txc.get("frames_sent") == src.get("posted"),
        "ofat_rx decoded every frame ofat_tx sent": rxc.get("frames") == txc.get("frames_sent"),
        "ofat_rx counted every detection (frame, CRC failure or invalid header)": rxc.get("detections")
        == rxc.get("frames") + rxc.get("header_crc_fail", 0) + rxc.get("header_invalid", 0),
        "tensor_sink sent every decoded frame": snk.get("sent") == rxc.get("frames"),
        "the host received every frame tensor_sink sent": delivered + (total_sent - n_frames)
        - warm_sent.get("lost", 0) == snk.get("sent"),
    }
    result = {"mimo": f"{n_tx}x{n_rx}", "frames": n_frames, "delivered": delivered,
              "false_detections": rxc.get("header_crc_fail", 0) + rxc.get("header_invalid", 0),
              "lost": n_frames - delivered, "seconds": round(seconds, 1),
              "frames_per_s": round(n_frames / seconds, 1),
              "samples_per_s_per_stream": round(rxc.get("samples", 0) / seconds),
              "rss_first_batch_mb": rows[0]["rss_mb"], "rss_last_batch_mb": rows[-1]["rss_mb"],
              "rss_growth_mb_after_warmup": round(rows[-1]["rss_mb"] - rss0 / 2**20, 2),
              "rss_growth_mb_first_to_last_batch": round(rows[-1]["rss_mb"] - rows[0]["rss_mb"], 2),
              "host_accounting": accounting, "block_counters": counters, "checks": checks}
    name = "soak" if (n_tx, n_rx) == (2, 4) else f"soak_{n_tx}x{n_rx}"
    write_csv(name, rows)
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0 if result["lost"] == 0 and all(checks.values()) else 1


# ------------------------------------------------------------------------- 6. real-time check
def realtime_flowgraph(layout: OfatLayout, rate: float, arrangement: str, seed: int = 1,
                       idle_chunk: int = GAP, channel: str = "auto") -> tuple[gr.top_block, dict]:
    """The loopback (tensor_source -> ofat_tx -> mimo_channel -> ofat_rx -> tensor_sink, the blocks
    and parameters of flowgraphs/loopback*.grc: `make_ofat_tx`, the compiled core where built, as GRC
    makes it) with one `blocks.throttle` at `rate` per transmit antenna between ofat_tx and the
    channel: the throttle stands in for a radio that takes R samples/s per channel, so the channel and
    receiver must keep up with R. arrangement "split" puts the ZeroMQ stream cables of
    flowgraphs/split_*.grc (push_sink -> pull_source, vectors of all antennas) between TX and channel
    and between channel and RX, in this one process. ofat_tx fills idle air with zeros in chunks of
    `idle_chunk` samples; `channel`: mimo_channel's implementation. Returns (tb, blocks)."""
    from gnuradio import zeromq

    from semcom.loopback import free_tcp_port

    tb = gr.top_block()
    src = semcom.tensor_source("tcp://127.0.0.1:*", hwm=16)
    # idle zeros in small chunks and no sleep: the throttle paces the stream, and an idle gap then
    # costs at most one chunk of air time; a small output buffer keeps queued zeros (latency) short.
    tx = semcom.make_ofat_tx(layout, gap_samples=GAP, idle_chunk=idle_chunk, idle_sleep_s=0.0, max_queue=64)
    tx.set_max_output_buffer(max(2048, 2 * idle_chunk))
    chan = semcom.mimo_channel(layout.n_tx, layout.n_rx, snr_db=20.0, fading="per_frame", n_taps=3,
                               cfo_jitter=0.4 / layout.fft_len, max_int_delay=40, seed=seed,
                               implementation=channel)
    rx = semcom.ofat_rx(layout, threshold=0.2, phase_tracking="linear")
    sink = semcom.tensor_sink("tcp://127.0.0.1:*", hwm=64, send_timeout_ms=100)
    tb.msg_connect((src, "tensors"), (tx, "tensors"))
    tb.msg_connect((rx, "frames"), (sink, "frames"))
    throttles = [blocks.throttle(gr.sizeof_gr_complex, rate, True) for _ in range(layout.n_tx)]
    for a in range(layout.n_tx):
        tb.connect((tx, a), throttles[a])
    if arrangement == "loopback":
        for a in range(layout.n_tx):
            tb.connect(throttles[a], (chan, a))
        for r in range(layout.n_rx):
            tb.connect((chan, r), (rx, r))
    else:
        def cable(outputs: list, inputs: list) -> None:
            n, address = len(outputs), f"tcp://127.0.0.1:{free_tcp_port()}"
            to_vec = blocks.streams_to_vector(gr.sizeof_gr_complex, n)
            push = zeromq.push_sink(gr.sizeof_gr_complex, n, address, 100, True, -1)
            pull = zeromq.pull_source(gr.sizeof_gr_complex, n, address, 100, True, -1)
            to_streams = blocks.vector_to_streams(gr.sizeof_gr_complex, n)
            for i, (o, j) in enumerate(zip(outputs, inputs, strict=True)):
                tb.connect(o, (to_vec, i))
                tb.connect((to_streams, i), j)
            tb.connect(to_vec, push)
            tb.connect(pull, to_streams)

        cable(throttles, [(chan, a) for a in range(layout.n_tx)])
        cable([(chan, r) for r in range(layout.n_rx)], [(rx, r) for r in range(layout.n_rx)])
    # Every Python block stays referenced here: GNU Radio does not keep their Python objects alive.
    return tb, {"tensor_source": src, "ofat_tx": tx, "mimo_channel": chan, "ofat_rx": rx, "tensor_sink": sink}


IDLE_CHUNK_S = 1e-3  # at a fixed frame rate: ofat_tx's idle zeros in chunks of 1 ms of air (at least a gap)


def realtime_run(arrangement: str, n_tx: int, n_rx: int, rate: float, duration: float,
                 load: float = 0.95, frame_rate: float = 0.0, channel: str = "auto") -> dict:
    """Tensors (5x256 float32) sent open loop for `duration` seconds, on one of two schedules:

    * frame_rate 0: frames back to back at the rate the air carries them at `rate` samples/s per
      channel (one frame + gap every (frame + gap) / (rate * load) seconds): capped by the chain's
      frames/s (R = frames/s x (frame + gap)).
    * frame_rate > 0: a fixed frame rate (a lab's host sending at its own pace) while the radio clock
      R rises: ofat_tx fills the air between frames with zeros (chunks of IDLE_CHUNK_S of air), so the
      channel and receiver still take R samples/s per stream, most of them noise: capped by the
      chain's samples/s.

    Passes when every frame is delivered (nothing lost or dropped by any block), the receiver saw
    >= 97 % of R samples/s per stream (else the chain held the throttle back: a radio would have
    overflowed), and latency stays bounded: the median of the last window (duration / 6, at most
    10 s) is at most 1.5x that of the first window plus two frame periods. Stops early (fails) when
    more than 1 s of frames (at least 32) are in flight (latency then grew by >= 1 s)."""
    layout = make_layout("wifi64", n_tx=n_tx, n_rx=n_rx)
    air = layout.frame_len(1280) + GAP
    if frame_rate > 0:
        period = 1.0 / frame_rate
        if frame_rate * air > rate * load:
            raise ValueError(f"{frame_rate} frames/s do not fit the air at R = {rate / 1e6} MS/s")
        idle_chunk = max(GAP, round(rate * IDLE_CHUNK_S))
    else:
        period, idle_chunk = air / (rate * load), GAP
    tb, nodes = realtime_flowgraph(layout, rate, arrangement, idle_chunk=idle_chunk, channel=channel)
    backlog_limit = max(32, int(1.0 / period))
    pool = [np.random.default_rng(i).standard_normal((5, 256)).astype(np.float32) for i in range(16)]
    sent_at: dict[int, float] = {}
    latencies: list[tuple[float, float]] = []  # (send time since start, seconds to the frame back)
    max_queue = max_in_flight = 0
    stopped = ""
    tb.start()
    try:
        time.sleep(0.5)  # sockets connected, threads running
        with LinkClient(nodes["tensor_source"].endpoint(), nodes["tensor_sink"].endpoint(),
                        window=1 << 30, timeout_s=5.0) as link:
            samples0 = nodes["ofat_rx"].counters()["samples"]
            t0 = time.monotonic()
            while (now := time.monotonic() - t0) < duration:
                while len(sent_at) < int(now / period) + 1:  # every frame due by now, on the schedule
                    sent_at[link.send(pool[len(sent_at) % len(pool)])] = time.monotonic() - t0
                # ofat_tx's queue (frames accepted, not yet started) and the host backlog
                max_queue = max(max_queue, nodes["ofat_tx"].queued())
                max_in_flight = max(max_in_flight, link.in_flight())
                if max_in_flight > backlog_limit:
                    stopped = f"{max_in_flight} frames in flight after {now:.1f} s"
                    break
                wait = max(0.0, len(sent_at) * period - (time.monotonic() - t0))
                if not link.in_flight():  # receive() returns at once with nothing in flight
                    time.sleep(wait)
                    continue
                msg = link.receive(timeout_s=wait)
                if msg is not None:
                    latencies.append((sent_at[msg.seq], time.monotonic() - t0 - sent_at[msg.seq]))
            seconds = time.monotonic() - t0
            samples = nodes["ofat_rx"].counters()["samples"] - samples0
            end = time.monotonic() + 5.0  # drain, then whatever is missing is lost
            while link.in_flight() and time.monotonic() < end:
                msg = link.receive(timeout_s=end - time.monotonic())
                if msg is not None:
                    latencies.append((sent_at[msg.seq], time.monotonic() - t0 - sent_at[msg.seq]))
            accounting = link.finish()
    finally:
        counters = {k: b.counters() for k, b in nodes.items() if hasattr(b, "counters")}
        tb.stop()
        tb.wait()
    window = min(10.0, duration / 6)
    first = [v for t, v in latencies if t < window]
    last = [v for t, v in latencies if t >= seconds - window]
    lat = [v for _, v in latencies]

    def ms(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)) * 1e3, 1) if values else float("nan")

    drops = sum(v for c in counters.values() for k, v in c.items() if k.startswith(("dropped", "error")))
    air_rate = samples / seconds
    bounded = bool(first and last) and ms(last, 50) <= 1.5 * ms(first, 50) + 2e3 * period
    lost = accounting["sent"] - accounting["delivered"]
    ok = not stopped and lost == 0 and drops == 0 and air_rate >= 0.97 * rate and bounded
    return {"arrangement": arrangement, "mimo": f"{n_tx}x{n_rx}", "schedule": schedule_name(frame_rate, load),
            "channel": f"{nodes['mimo_channel'].implementation} {nodes['mimo_channel'].block}",
            "rate_msps": rate / 1e6,
            "seconds": round(seconds, 1), "frames_per_s": round(1 / period, 1),
            "sent": accounting["sent"], "delivered": accounting["delivered"], "lost": lost,
            "block_drops": drops, "rx_msps_per_stream": round(air_rate / 1e6, 4),
            "latency_median_ms": ms(lat, 50), "latency_p99_ms": ms(lat, 99),
            "latency_first_window_median_ms": ms(first, 50), "latency_last_window_median_ms": ms(last, 50),
            "max_ofat_tx_queue": max_queue, "max_in_flight": max_in_flight, "bounded": bounded,
            # calls in which the compiled channel waited for realisations (its refill ran late)
            "channel_waits": counters.get("mimo_channel", {}).get("waits", 0),
            "load_avg": round(os.getloadavg()[0], 1), "stopped": stopped, "pass": ok}


def schedule_name(frame_rate: float, load: float) -> str:
    return f"{frame_rate:g} frames/s" if frame_rate > 0 else f"back to back at {load:.0%}"


def realtime_search(arrangement: str, n_tx: int, n_rx: int, duration: float, points: int,
                    load: float = 0.95, start: float = 1e5, frame_rate: float = 0.0, channel: str = "auto"
                    ) -> list[dict]:
    """R from `start`: doubled after a pass, halved after a fail, and once a pass and a fail bracket
    the limit, their geometric mean; `points` runs in all."""
    rows: list[dict] = []
    rate = start
    for _ in range(points):
        row = realtime_run(arrangement, n_tx, n_rx, rate, duration, load, frame_rate, channel)
        rows.append(row)
        print(f"[realtime] {arrangement} {n_tx}x{n_rx} {row['schedule']} R = {rate / 1e6:.4f} MS/s: "
              f"{'pass' if row['pass'] else 'FAIL'} {row}", flush=True)
        passed = [r["rate_msps"] * 1e6 for r in rows if r["pass"]]
        failed = [r["rate_msps"] * 1e6 for r in rows if not r["pass"]]
        if passed and failed and min(failed) > max(passed):
            rate = float(np.sqrt(max(passed) * min(failed)))
        else:
            rate = rate * 2 if row["pass"] else rate / 2
    return rows


def verdict(row: dict) -> str:
    if row["pass"]:
        return "yes"
    return f"no (stopped: {row['stopped']})" if row["stopped"] else "no"


def realtime_part(duration: float, points: int, load: float, configs: list[tuple[str, int, int, float]],
                  command: str, name: str = "realtime", frame_rates: tuple[float, ...] = (0.0,),
                  channel: str = "auto") -> int:
    """The real-time check: a search over R per configuration (arrangement, Nt, Nr, first R) and
    schedule (frame_rates: 0 = back to back at `load`, else that many frames/s);
    results/<name>.md + <name>.csv."""
    load_before, t_search = os.getloadavg()[0], time.monotonic()
    searches = [(arrangement, n_tx, n_rx, start, fps) for arrangement, n_tx, n_rx, start in configs
                for fps in frame_rates]
    rows = [r for arrangement, n_tx, n_rx, start, fps in searches
            for r in realtime_search(arrangement, n_tx, n_rx, duration, points, load, start, fps, channel)]
    minutes, load_after = (time.monotonic() - t_search) / 60, os.getloadavg()[0]
    write_csv(name, rows)
    best = []
    for arrangement, n_tx, n_rx, _, fps in searches:
        schedule = schedule_name(fps, load)
        ok = [r["rate_msps"] for r in rows if r["pass"] and (r["arrangement"], r["mimo"], r["schedule"]) ==
              (arrangement, f"{n_tx}x{n_rx}", schedule)]
        best.append(f"| {arrangement} | {n_tx}x{n_rx} | {schedule} | "
                    f"{f'**{max(ok):.4f} MS/s**' if ok else 'none of the rates tried'} |")
    lines = ["# Real-time check (`benchmarks/run.py --realtime`)", "",
             f"Command: `{command}`", "",
             f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, no GPU; GNU Radio "
             f"{gr.version()}; shared while measured: 1-minute load average {load_before:.1f} before and "
             f"{load_after:.1f} after the search ({minutes:.1f} min; column `load` per run). "
             f"`mimo_channel` implementation: {rows[0]['channel'] if rows else channel}.", "",
             "Each run: the loopback's blocks (tensor_source -> ofat_tx -> mimo_channel -> ofat_rx -> "
             "tensor_sink, parameters of flowgraphs/loopback*.grc; `split`: with the ZeroMQ stream cables "
             "of flowgraphs/split_*.grc between TX, channel and RX) in one process, one `blocks.throttle` "
             "at R per TX antenna in front of the channel (the radio's sample clock), the host sending "
             "tensors open loop on a fixed schedule and timing each one until its frame is back. Two "
             "schedules: **back to back** (frames sent at the given share of the air's frame rate at R: "
             "R is then capped by the chain's end-to-end frames/s) and a **fixed frame rate** (the host "
             "at its own pace, as in a lab, while R rises: ofat_tx fills the air between frames with "
             f"zeros in chunks of {IDLE_CHUNK_S * 1e3:g} ms, so the channel and receiver take R samples/s "
             "per stream, mostly noise: R is then capped by the chain's samples/s). A rate "
             "passes when every frame sent is delivered and no block dropped anything, the receiver saw "
             ">= 97 % of R samples/s per stream (else the chain held the throttle back: a radio would have "
             "overflowed), and latency is bounded: the median of the last window (duration / 6, at most "
             "10 s) is at most 1.5x that of the first window plus two frame periods. A run stops early "
             "(fails) once more than 1 s of frames is in flight. The search starts at "
             f"{', '.join(f'{c[3] / 1e6:.4g}' for c in configs)} MS/s (in the order of the configurations), "
             "doubles after a pass, halves after a fail, then bisects "
             "(geometric mean) between the highest pass and the lowest fail.", "",
             "Highest R per channel that delivered every frame with bounded latency (both schedules "
             "reported; neither stands for the other):", "",
             "| arrangement | Nt x Nr | schedule | highest R passed |", "| --- | --- | --- | --- |", *best,
             "",
             "Every run (5x256 float32 tensors at 20 dB, per-frame multipath, sent open loop):", "",
             "| arrangement | Nt x Nr | schedule | R (MS/s) | s | frames/s | sent | delivered | lost | "
             "block drops | RX MS/s per stream | latency median / p99 (ms) | first / last window median (ms) "
             "| max ofat_tx queue | max in flight | load | pass |",
             "|" + " --- |" * 17,
             *[f"| {r['arrangement']} | {r['mimo']} | {r['schedule']} | {r['rate_msps']:.4f} | "
               f"{r['seconds']} | {r['frames_per_s']} | {r['sent']} | {r['delivered']} | {r['lost']} | "
               f"{r['block_drops']} | "
               f"{r['rx_msps_per_stream']:.4f} | {r['latency_median_ms']} / {r['latency_p99_ms']} | "
               f"{r['latency_first_window_median_ms']} / {r['latency_last_window_median_ms']} | "
               f"{r['max_ofat_tx_queue']} | {r['max_in_flight']} | {r['load_avg']} | {verdict(r)} |"
               for r in rows], ""]
    (RESULTS / f"{name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------------- driver
def write_csv(name: str, rows: list[dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    global RESULTS  # --out: every writer below reads the module's folder
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--out", type=Path, default=RESULTS,
                        help="folder the results go to (default benchmarks/results, the committed ones; "
                             "give another for a smoke run)")
    parser.add_argument("--tx-only", action="store_true",
                        help="only the transmit and channel parts (results/summary_tx.md, not summary.md)")
    parser.add_argument("--rx-only", action="store_true",
                        help="all but the transmit and channel parts: receive, reconstruction, bridge, "
                             "loopback (results/summary_rx.md, not summary.md)")
    parser.add_argument("--bridge-only", action="store_true",
                        help="only the ZeroMQ bridge part (results/summary_bridge.md, latency.csv)")
    parser.add_argument("--loopback-only", action="store_true",
                        help="only the loopback's latency and frames/s (results/summary_loopback.md, "
                             "loopback_end_to_end.csv)")
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="soak instead: N frames through the 2x4 loopback at 20 dB (results/soak.json)")
    parser.add_argument("--soak-batch", type=int, default=2000, help="frames between RSS samples in --soak")
    parser.add_argument("--soak-mimo", default="2x4", choices=("2x4", "2x2", "4x2"),
                        help="loopback flowgraph of --soak (default 2x4)")
    parser.add_argument("--realtime", action="store_true",
                        help="real-time check instead: the loopback throttled to R samples/s per channel, a "
                             "search over R (results/realtime.md)")
    parser.add_argument("--duration", type=positive_float, default=60.0,
                        help="seconds per rate in --realtime (default %(default)s; 5 with --quick)")
    parser.add_argument("--rt-load", type=fraction, default=0.95,
                        help="share (0, 1] of the air's frame rate at R the tensors are sent at "
                             "(default %(default)s)")
    parser.add_argument("--rt-start", type=positive_float, default=0.1,
                        help="first R of the --realtime search, MS/s per channel (default %(default)s)")
    parser.add_argument("--rt-points", type=positive_int, default=3,
                        help="rates tried per configuration in --realtime (default %(default)s)")
    parser.add_argument("--rt-configs", nargs="+", default=["loopback:2x2", "loopback:2x4", "split:2x2"],
                        help="arrangement:NtxNr[:first R in MS/s] of --realtime (default %(default)s)")
    parser.add_argument("--rt-frame-rates", nargs="+", type=float, default=[0.0, 100.0], metavar="FPS",
                        help="schedules of --realtime: 0 = frames back to back at --rt-load of the air's "
                             "frame rate at R, F > 0 = F frames/s while R rises (ofat_tx fills the idle "
                             "air); each configuration is searched under each (default %(default)s)")
    parser.add_argument("--rt-channel", default="auto", choices=("auto", "cxx", "numpy"),
                        help="mimo_channel's implementation in --realtime (default %(default)s)")
    parser.add_argument("--rt-name", default="realtime",
                        help="--realtime writes results/<name>.md and .csv (default %(default)s)")
    args = parser.parse_args()
    RESULTS = args.out
    RESULTS.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    if args.realtime:
        if args.rt_load <= 0:
            parser.error("--rt-load must be > 0")
        configs = []
        for item in args.rt_configs:
            arrangement, mimo, *first = item.split(":") + [""]
            try:
                start = float(first[0]) * 1e6 if first[0] else args.rt_start * 1e6
            except ValueError:
                start = -1.0
            if arrangement not in ("loopback", "split") or mimo not in ("2x2", "2x4", "4x2") \
                    or not (np.isfinite(start) and start > 0) or len(first) > 2:
                parser.error(f"--rt-configs: {item!r} is not loopback|split:2x2|2x4|4x2[:R > 0 in MS/s]")
            n_tx, n_rx = (int(v) for v in mimo.split("x"))
            configs.append((arrangement, n_tx, n_rx, start))
        command = " ".join([".venv/bin/python benchmarks/run.py", *sys.argv[1:]])
        if args.quick:
            args.duration, args.rt_points = min(args.duration, 5.0), 1
        if any(not (np.isfinite(f) and f >= 0) for f in args.rt_frame_rates):
            parser.error("--rt-frame-rates: frames/s must be >= 0 (0 = back to back)")
        return realtime_part(args.duration, args.rt_points, args.rt_load, configs, command, args.rt_name,
                             tuple(args.rt_frame_rates), args.rt_channel)
    scale = 0.2 if args.quick else 1.0
    n_frames = max(20, int(300 * scale))
    lines = [f"# gr-semcom benchmarks ({'quick' if args.quick else 'full'} run)", "",
             f"Machine: {platform.machine()}, {len(os.sched_getaffinity(0))} cores, no GPU; "
             f"GNU Radio {gr.version()}, torch {torch.__version__}, numpy {np.__version__}.", ""]
    steps = progress_bar(total=5, desc="benchmarks", unit="part")

    if args.soak:
        n_tx, n_rx = (int(v) for v in args.soak_mimo.split("x"))
        return soak(args.soak, args.soak_batch, n_tx, n_rx)
    if args.bridge_only:
        lines += bridge_part(max(100, int(500 * scale)))
        return finish(lines, steps, "summary_bridge.md")
    if args.loopback_only:
        lines += loopback_part(n_frames)
        return finish(lines, steps, "summary_loopback.md")
    if not args.rx_only:
        lines += transmit_part(n_frames)
        lines += channel_part(int(1_000_000 * scale))
    steps.update()
    if args.tx_only:
        return finish(lines, steps, "summary_tx.md")

    lines += receive_part(n_frames)
    steps.update()

    rec = reconstruction_rates(max(16, int(64 * scale)))
    write_csv("reconstruction", [{"method": k, "frames_per_s": round(v, 1)} for k, v in rec.items()])
    lines += ["## Host reconstruction, frames/s (K = 48, Nr = 4, Nt = 2, S = 7)", "",
              "| method | frames/s |", "| --- | --- |",
              *[f"| {k} | {v:,.0f} |" for k, v in rec.items()],
              f"| batched torch ZF vs numpy per-subcarrier loop | "
              f"{rec['torch_zf_batched_all_frames'] / rec['numpy_per_subcarrier_loop']:.0f}x |",
              ""]
    steps.update()

    lines += bridge_part(max(100, int(500 * scale)))
    steps.update()

    lines += loopback_part(n_frames)
    steps.update()
    return finish(lines, steps, "summary_rx.md" if args.rx_only else "summary.md")


def finish(lines: list[str], steps, name: str) -> int:
    steps.close()
    summary = "\n".join(lines)
    (RESULTS / name).write_text(summary + "\n")
    print(summary)
    return 0


def transmit_part(n_frames: int) -> list[str]:
    """Part 1: TX construction (batched, one per call, reference), ofat_tx for Nt = 1, 2, 4 (compiled,
    Python batched and one frame per call), GR's C++ TX chains; CPU time, interleaved rounds."""
    mod = modulate_rates(LAYOUT, n_frames, 5)
    layouts = {nt: make_layout("wifi64", n_tx=nt) for nt in (1, 2, 4)}
    runs: dict[str, tuple[Callable[..., tuple[int, float]], int]] = {
        "gr": (gr_ofdm_tx_run, n_frames * 20), "gr_hier": (gr_ofdm_tx_hier_run, n_frames * 1760)}
    for nt, lay in layouts.items():
        runs[f"batched {nt}"] = (partial(ofat_tx_run, layout=lay), n_frames)
        runs[f"single {nt}"] = (partial(ofat_tx_run, layout=lay, batch=1), n_frames)
        if semcom.semcom_python is not None:
            runs[f"compiled {nt}"] = (partial(ofat_tx_run, layout=lay, compiled=True), n_frames)
    rates = cpu_steady_rates(runs, rounds=5)  # GR's multi-threaded chain moves most between rounds
    tx_gr, tx_hier = rates["gr"], rates["gr_hier"]
    ours = {nt: rates[f"batched {nt}"] * nt for nt in layouts}  # per stream: Nt streams per CPU second
    single = {nt: rates[f"single {nt}"] * nt for nt in layouts}
    compiled = {nt: rates.get(f"compiled {nt}", float("nan")) * nt for nt in layouts}
    batch = semcom.ofat_tx.MAX_BATCH
    rows = [*[{"chain": f"{k}, frames per CPU s", "rate": _whole(v)} for k, v in mod.items()],
            *[{"chain": f"ofat_tx Nt={nt} (batched, up to {batch} frames per call), samples per CPU s "
                        "per stream", "rate": _whole(ours[nt])} for nt in ours],
            *[{"chain": f"ofat_tx Nt={nt} (one frame per call), samples per CPU s per stream",
               "rate": _whole(single[nt])} for nt in single],
            *[{"chain": f"ofat_tx_fast Nt={nt} (compiled), samples per CPU s per stream",
               "rate": _whole(compiled[nt])} for nt in compiled],
            {"chain": "GR C++ allocator+FFT+CP, samples per CPU s", "rate": _whole(tx_gr)},
            {"chain": "GR digital.ofdm_tx (hier, 96-byte BPSK packets), samples per CPU s",
             "rate": _whole(tx_hier)}]
    write_csv("tx_throughput", rows)
    names = list(mod)
    return ["## Transmit chain", "",
            "Samples (or frames) per CPU second of the process, every flowgraph thread counted, at steady "
            "state (runs of n and 3n frames, the least CPU time of each over 5 rounds that interleave the "
            "chains).", "",
            f"TX construction (wifi64, Nt = 2, 5x256 payload, {GAP}-sample gap): {mod[names[0]]:,.0f} frames "
            f"per CPU s with `{names[0]}` vs {mod[names[1]]:,.0f} with `{names[1]}` "
            f"(**{mod[names[0]] / mod[names[1]]:.2f}x**) and {mod[names[2]]:,.0f} with the reference "
            "construction.", "",
            "Samples per CPU second per antenna stream (message parse + checks + modulation + streaming "
            "and tags; messages built and posted before the clock starts; Nt streams per CPU second "
            "count Nt times) of `ofat_tx_fast` (the compiled core, C++) and `ofat_tx` (Python, batched "
            "and one frame per call):", "",
            "| Nt | ofat_tx_fast (C++) | **C++ vs GR C++ allocator+FFT+CP** | ofat_tx batched | "
            "one frame per call | batched vs GR C++ | C++ / Python batched | C++ vs GR `digital.ofdm_tx` |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |",
            *[f"| {nt} | {compiled[nt] / 1e6:.2f} M | **{compiled[nt] / tx_gr:.2f}** | "
              f"{ours[nt] / 1e6:.2f} M | {single[nt] / 1e6:.2f} M | {ours[nt] / tx_gr:.2f} | "
              f"{compiled[nt] / ours[nt]:.2f} | {compiled[nt] / tx_hier:.2f} |" for nt in ours], "",
            f"GR C++ allocator+FFT+CP: {tx_gr / 1e6:.2f} M samples per CPU s; GR `digital.ofdm_tx`: "
            f"{tx_hier / 1e6:.2f} M (one stream each).", "",
            f"Where a frame's CPU time goes (microseconds per frame, wifi64, Nt = 2, 5x256 tensor; one frame "
            f"is {LAYOUT.frame_len(1280) + GAP} samples per antenna):", "",
            "| step | us |", "| --- | --- |", *[f"| {k} | {us:.1f} |" for k, us in tx_breakdown()], ""]


if __name__ == "__main__":
    raise SystemExit(main())
