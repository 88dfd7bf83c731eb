"""The OFAT flowgraph as a channel module: the same codec runs over the torch channel and over GNU Radio.

`FlowgraphChannel` has the interface of the torch channels in `semcom.channels` (forward(z (B, *dims)
real, snr_db=None) -> (B, *dims)), but each sample travels as one OFAT frame through a running
flowgraph (the loopback flowgraph it starts itself, or any flowgraph at given ZeroMQ endpoints: the
split arrangement, a USRP bench) and comes back reconstructed by the host (MMSE by default). It is
not differentiable: use it to evaluate a trained codec unchanged, or train through it with a
straight-through gradient. A lost frame comes back as zeros and is counted in `lost`.

`last_side_info` keeps, per sample of the last call, what the receiver delivered with the frame besides
the values (None for a lost frame): the channel estimate ``H`` (K, Nr, Nt) complex64 on the data
subcarriers and the meta fields ``noise_var``, ``snr_db`` (the receiver's estimate), ``scale`` (the
header's payload scale), ``cfo`` and ``seq``: what a learned channel can be conditioned on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from semcom.link import LinkClient
from semcom.ofat.frame import make_layout
from semcom.transfer import start_loopback_flowgraph, transfer

SIDE_INFO_KEYS = ("noise_var", "snr_db", "scale", "cfo", "seq")


def side_info(entry: dict[str, Any]) -> dict[str, Any]:
    """A delivered frame of `transfer` -> {"H": (K, Nr, Nt) complex64 numpy, meta's SIDE_INFO_KEYS}."""
    info: dict[str, Any] = {k: entry["meta"][k] for k in SIDE_INFO_KEYS}
    info["H"] = entry["H"].numpy().astype(np.complex64)
    return info


class FlowgraphChannel(nn.Module):
    def __init__(self, snr_db: float = 20.0, *, n_tx: int = 2, n_rx: int = 4, preset: str = "wifi64",
                 mode: str = "complex", train_reps: int = 2, method: str = "mmse", seed: int = 0,
                 window: int = 8, timeout_s: float = 5.0, connect: tuple[str, str] | None = None,
                 progress: bool = False, **channel: Any):
        super().__init__()
        self.snr_db = float(snr_db)
        self.layout = make_layout(preset, n_tx=n_tx, n_rx=n_rx, mode=mode, train_reps=train_reps)
        self.method = method
        self.window = window
        self.timeout_s = timeout_s
        self.progress = progress
        self._flowgraph_args = dict(preset=preset, mode=mode, train_reps=train_reps, seed=seed, **channel)
        self._connect = connect
        self._tb: Any = None
        self._link: LinkClient | None = None
        self._tb_snr: float | None = None
        self.sent = 0
        self.lost = 0
        self.last_side_info: list[dict[str, Any] | None] = []

    def _ensure_running(self) -> LinkClient:
        if self._link is None:
            if self._connect is not None:
                tx, rx = self._connect
            else:
                self._tb, tx, rx = start_loopback_flowgraph(self.layout.n_tx, self.layout.n_rx,
                                                            snr_db=self.snr_db, **self._flowgraph_args)
                self._tb_snr = self.snr_db
            self._link = LinkClient(tx, rx, window=self.window, timeout_s=self.timeout_s)
        return self._link

    def forward(self, z: torch.Tensor, snr_db: float | None = None) -> torch.Tensor:
        link = self._ensure_running()
        snr = self.snr_db if snr_db is None else float(snr_db)
        if self._tb is not None and snr != self._tb_snr:
            self._tb.set_snr_db(snr)
            self._tb_snr = snr
        elif self._tb is None and snr != self.snr_db:
            raise ValueError("the SNR of an external flowgraph is set there, not here")
        flat = z.detach().cpu().numpy().astype(np.float32).reshape(z.shape[0], -1)
        received = transfer(link, self.layout, list(flat), window=self.window, timeout_s=self.timeout_s,
                            methods=(self.method,), progress=self.progress)
        out = np.zeros_like(flat)
        for i, entry in enumerate(received):
            if entry is not None:
                out[i] = entry[self.method].numpy().reshape(-1)
        self.last_side_info = [None if e is None else side_info(e) for e in received]
        self.sent += len(received)
        self.lost += sum(entry is None for entry in received)
        return torch.from_numpy(out).reshape(z.shape).to(device=z.device, dtype=z.dtype)

    def reseed(self, seed: int | None = None) -> None:
        """Part of the channel interface; the flowgraph's channel keeps its own seeded stream (the
        `seed` given at construction), so repeated evaluations see different draws."""

    def close(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None
        if self._tb is not None:
            self._tb.stop()
            self._tb.wait()
            self._tb = None

    def __enter__(self) -> FlowgraphChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
