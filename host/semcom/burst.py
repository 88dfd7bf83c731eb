"""Frames through GNU Radio in one process, without ZeroMQ: `run_burst` sends tensors through ofat_tx ->
mimo_channel (or GNU Radio's own channel blocks, `gr_channel_models`) -> ofat_rx in one top block and
returns the receiver's frames; `seeded_payloads` and `burst_nmse` make the payloads and score the frames.
For experiments, fixtures and tests (`semcom loopback` instead streams over ZeroMQ, `semcom.transfer`).
GNU Radio is imported when a burst runs, not with this module.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, OfatLayout


def gr_channel_models(tb: Any, taps: np.ndarray, *, epsilon: float = 1.0, cfo: float = 0.0,
                      noise_var: float = 0.0, seed: int = 0, rx_iq: tuple[float, float] | None = None,
                      tx_iq: tuple[float, float] | None = None,
                      phase_noise: tuple[float, float] | None = None) -> tuple[list[Any], list[Any]]:
    """Nt x Nr MIMO channel out of GNU Radio's own `channels.channel_model` blocks (cross-checks):
    one per antenna pair with that pair's FIR `taps[r, t]` ((Nr, Nt, L)), the same sampling-clock
    ratio `epsilon` (GR's fractional resampler: input rate over output rate, 1.0 = none) and CFO
    (cycles/sample) on every pair, summed per receive antenna by `blocks.add_cc`; AWGN of variance
    noise_var added once per receive antenna. GNU Radio's impairment blocks, each on every antenna:
    tx_iq = (gain dB, phase degrees): `channels.iqbal_gen`'s transmit model before the channel;
    phase_noise = (noise_mag, alpha): `channels.phase_noise_gen` after the sum (its noise source has
    the fixed seed 42, so every receive antenna gets the same phase: one oscillator, as mimo_channel);
    rx_iq: `iqbal_gen`'s receive model last. Returns (input blocks per TX antenna, output blocks per RX
    antenna) to connect in `tb`."""
    from gnuradio import blocks, channels

    n_rx, n_tx, _ = taps.shape
    inputs = [blocks.copy(8) for _ in range(n_tx)]  # sizeof(gr_complex): one fan-out point per input
    fan_out = inputs
    if tx_iq is not None:
        fan_out = [channels.iqbal_gen(float(tx_iq[0]), float(tx_iq[1]), 0) for _ in range(n_tx)]  # mode 0: TX
        for block, iq in zip(inputs, fan_out, strict=True):
            tb.connect(block, iq)
    outputs = []
    for r in range(n_rx):
        add = blocks.add_cc() if n_tx > 1 else blocks.copy(8)
        for t in range(n_tx):
            model = channels.channel_model(noise_voltage=math.sqrt(noise_var) if t == 0 else 0.0,
                                           frequency_offset=cfo, epsilon=epsilon,
                                           taps=[complex(v) for v in taps[r, t]],
                                           noise_seed=seed + r + 1, block_tags=False)
            tb.connect(fan_out[t], model, (add, t))
        if phase_noise is not None:
            pn = channels.phase_noise_gen(float(phase_noise[0]), float(phase_noise[1]))
            tb.connect(add, pn)
            add = pn
        if rx_iq is not None:
            iq = channels.iqbal_gen(float(rx_iq[0]), float(rx_iq[1]), 1)  # mode 1: the receiver model
            tb.connect(add, iq)
            add = iq
        outputs.append(add)
    return inputs, outputs


def run_burst(layout: OfatLayout, tensors: dict[int, np.ndarray], *, gap: int = DEFAULT_GAP_SAMPLES,
              record_path: str | None = None, record_meta: dict[str, Any] | None = None,
              rx_options: dict[str, Any] | None = None, gr_channel: dict[str, Any] | None = None,
              **channel: Any) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Send `tensors` (seq -> array) through ofat_tx -> mimo_channel(**channel) -> ofat_rx(**rx_options)
    in one flowgraph without ZeroMQ (experiments, fixtures); with `gr_channel` (the arguments of
    `gr_channel_models`) GNU Radio's own channel blocks replace mimo_channel. Optionally records the
    channel output as SigMF. Returns the receiver's frames as (meta, tensors)."""
    import pmt
    from gnuradio import blocks, gr, semcom
    from gnuradio.semcom.messages import parse_tensor_message, tensor_message

    n_values = max(int(np.prod(t.shape)) for t in tensors.values())
    total = len(tensors) * (layout.frame_len(n_values) + gap) + 1000
    tb = gr.top_block()
    # The OFAT Transmitter as GRC makes it: the compiled core where built (the same samples, tested).
    tx = semcom.make_ofat_tx(layout, gap_samples=gap, max_queue=len(tensors), idle_sleep_s=0.0)
    if gr_channel is not None:
        ch_in, ch_out = gr_channel_models(tb, **gr_channel)
    else:
        ch = semcom.mimo_channel(layout.n_tx, layout.n_rx, **channel)
        ch_in, ch_out = [(ch, a) for a in range(layout.n_tx)], [(ch, r) for r in range(layout.n_rx)]
    rx = semcom.ofat_rx(layout, **(rx_options or {}))
    for a in range(layout.n_tx):
        tb.connect((tx, a), blocks.head(gr.sizeof_gr_complex, total), ch_in[a])
    recorder = semcom.sigmf_sink(record_path, layout, **(record_meta or {})) if record_path else None
    for r in range(layout.n_rx):
        tb.connect(ch_out[r], (rx, r))
        if recorder is not None:
            tb.connect(ch_out[r], (recorder, r))
    dbg = blocks.message_debug()
    tb.msg_connect((rx, "frames"), (dbg, "store"))
    for seq, t in tensors.items():
        tx._post(pmt.intern("tensors"), tensor_message({"seq": seq}, {"x": t}))
    tb.run()
    frames = [parse_tensor_message(dbg.get_message(i)) for i in range(dbg.num_messages())]
    if recorder is not None:
        frames.append(({"samples_written": recorder.samples_written}, {}))
    return frames


def seeded_payloads(n_frames: int, n_values: int, seed: int) -> dict[int, np.ndarray]:
    """seq -> float32 standard normal payload of n_values, for run_burst experiments."""
    rng = np.random.default_rng(seed)
    return {s: rng.standard_normal(n_values).astype(np.float32) for s in range(n_frames)}


def burst_nmse(layout: OfatLayout, frames: list[tuple[dict[str, Any], dict[str, np.ndarray]]],
               sent: dict[int, np.ndarray], method: str) -> list[float]:
    """NMSE of each frame run_burst returned, reconstructed with `method` (the frame's err_var used)."""
    out = []
    for meta, t in frames:
        x_hat = reconstruct_payload(layout, t["H"], t["Y"], shape=meta["shape"], scale=meta["scale"],
                                    noise_var=meta["noise_var"], method=method, err_var=meta["err_var"])
        v = sent[meta["seq"]].astype(np.float64)
        out.append(float(np.sum((np.asarray(x_hat) - v) ** 2) / np.sum(v**2)))
    return out
