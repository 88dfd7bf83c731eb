#
# Copyright 2026 gr-semcom authors.
#
# SPDX-License-Identifier: GPL-3.0-or-later
#
"""interference_channel: N transmitters share the air; every receiver hears all of them through its gains."""

from __future__ import annotations

import threading

import numpy as np
import pmt
from gnuradio import gr

from .arrived_block import arrived_block
from .messages import parse_tensor_message


class interference_channel(arrived_block):
    """N complex streams in (one per single-antenna transmitter) -> N out (one per receiver)::

        y_k[n] = G[k, k] x_k[n] + sum_{j != k} G[k, j] exp(j 2 pi f_kj n) x~_j[n] + w_k[n],
        w_k ~ CN(0, noise_var[k])

    ``G`` (N, N) complex: receiver k hears its own transmitter through ``G[k, k]`` and transmitter j != k
    through ``G[k, j]`` (the beamformed channel times the amplitude of the power the BS applied). It is
    set per frame by a tensor message on port ``control`` (``messages.tensor_message``): tensors ``gains``
    (N, N) complex and ``noise_var`` (N,) real, meta ``slot`` (int) and optionally ``power_dbm`` (N,)
    and ``level`` (N,) lists (the power and compression the policies applied, kept for the counters).
    A new setting takes effect at the first sample of the next ``process()`` call (one per arrival of
    input); the host changes it only while no frame is in the air. Before the first message: identity
    gains and ``noise_var`` per receiver.

    Full-buffer interferers (``fill_power`` > 0): x~_j is x_j where transmitter j is on the air and, where
    it is idle (exact zeros: gaps, the start-up delay), CN(0, ``fill_power``) samples, i.e. the other
    cells keep serving traffic at the same power while their own link waits; pass the mean sample power
    of an OFAT frame (n_used / fft_len). A receiver's own transmitter is never filled. ``fill_power`` = 0:
    x~ = x.

    Foreign oscillators (``interferer_cfo`` > 0, cycles/sample): receiver k locks to its own transmitter
    only, so transmitter j != k arrives with a fixed offset f_kj ~ U(-cfo, cfo) (drawn once from the seed;
    phase continuous across calls). Its repeated training symbols then differ, so the
    receiver's noise estimate counts the interference even when every link's frame is time-aligned.

    ``counters()``: ``updates``, ``slot``, ``samples``, ``power_dbm``, ``level`` (the last applied), and the
    measured ``rx_power`` (N,) (mean |y_k|^2 over the samples since the last update, noise included).
    Noise is seeded (``numpy.random.default_rng(seed)``), drawn time-major per receiver.
    """

    def __init__(self, n_links: int = 3, noise_var: float = 1e-3, fill_power: float = 0.0,
                 interferer_cfo: float = 0.0, seed: int = 0) -> None:
        if n_links < 1:
            raise ValueError(f"n_links must be >= 1, got {n_links}")
        if noise_var < 0:
            raise ValueError(f"noise_var must be >= 0, got {noise_var}")
        if fill_power < 0:
            raise ValueError(f"fill_power must be >= 0, got {fill_power}")
        self.fill_std = float(np.sqrt(fill_power / 2.0))
        arrived_block.__init__(self, name="semcom_interference_channel",
                               in_sig=[np.complex64] * n_links, out_sig=[np.complex64] * n_links)
        self.n = int(n_links)
        self._lock = threading.Lock()
        self._gains = np.eye(self.n, dtype=np.complex64)
        self._noise_std = np.full(self.n, np.sqrt(noise_var / 2.0), np.float32)
        self._rng = np.random.default_rng(seed)
        cfo = self._rng.uniform(-interferer_cfo, interferer_cfo, (self.n, self.n))
        np.fill_diagonal(cfo, 0.0)
        self._cfo = cfo
        self._n0 = 0  # absolute sample index of the next process() call
        self._counters = {"updates": 0, "slot": -1, "samples": 0, "rejected": 0,
                          "power_dbm": [float("nan")] * self.n, "level": [-1] * self.n}
        self._energy = np.zeros(self.n)
        self._energy_n = 0
        self.message_port_register_in(pmt.intern("control"))
        self.set_msg_handler(pmt.intern("control"), self._on_control)

    def set_gains(self, gains: np.ndarray, noise_var: np.ndarray | float, slot: int = -1,
                  power_dbm: list[float] | None = None, level: list[int] | None = None) -> None:
        """Thread-safe setter (the message handler calls it); a bad shape is a ValueError."""
        g = np.asarray(gains, dtype=np.complex64)
        nv = np.broadcast_to(np.asarray(noise_var, dtype=np.float64), (self.n,))
        if g.shape != (self.n, self.n):
            raise ValueError(f"gains must be ({self.n}, {self.n}), got {g.shape}")
        if not np.all(np.isfinite(g)) or np.any(nv < 0) or not np.all(np.isfinite(nv)):
            raise ValueError("gains must be finite and noise_var finite and >= 0")
        with self._lock:
            self._gains = g.copy()
            self._noise_std = np.sqrt(nv / 2.0).astype(np.float32)
            c = self._counters
            c["updates"] += 1
            c["slot"] = int(slot)
            if power_dbm is not None:
                c["power_dbm"] = [float(p) for p in power_dbm]
            if level is not None:
                c["level"] = [int(v) for v in level]
            self._energy[:] = 0.0
            self._energy_n = 0

    def _on_control(self, msg: pmt.pmt_t) -> None:
        try:
            meta, tensors = parse_tensor_message(msg)
            self.set_gains(tensors["gains"], tensors["noise_var"], int(meta.get("slot", -1)),
                           meta.get("power_dbm"), meta.get("level"))
        except (KeyError, ValueError, TypeError) as e:
            with self._lock:
                self._counters["rejected"] += 1
            gr.log.warn(f"interference_channel: control message rejected: {e}")

    def counters(self) -> dict:
        with self._lock:
            c = dict(self._counters)
            c["rx_power"] = (self._energy / max(self._energy_n, 1)).tolist()
        return c

    def process(self, input_items, output_items, n: int) -> None:
        """y = G x~ + w over the n samples that arrived on every input (`arrived_block`)."""
        with self._lock:
            g, std = self._gains, self._noise_std
        x = np.stack([np.asarray(a[:n]) for a in input_items])                     # (N, n)
        noise = self._rng.standard_normal((n, self.n, 4), dtype=np.float32)         # time-major
        w = (noise[..., 0] + 1j * noise[..., 1]).T * std[:, None]
        own = np.diag(g)[:, None] * x
        if self.fill_std > 0:  # interferers idle -> other traffic at the same power
            fill = (noise[..., 2] + 1j * noise[..., 3]).T * self.fill_std
            x = np.where(x == 0, fill, x)
        g_off = g - np.diag(np.diag(g))
        if np.any(self._cfo):
            t = self._n0 + np.arange(n)
            rot = np.exp(2j * np.pi * self._cfo[:, :, None] * t)                # (N, N, n)
            y = np.einsum("kj,kjn,jn->kn", g_off, rot, x) + own + w
        else:
            y = g_off @ x + own + w
        y = y.astype(np.complex64)
        self._n0 += n
        for k in range(self.n):  # one copy per output port, not per sample
            output_items[k][:n] = y[k]
        with self._lock:
            self._energy += (np.abs(y) ** 2).sum(axis=1)
            self._energy_n += n
            self._counters["samples"] += n
