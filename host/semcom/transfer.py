"""Tensors through a running flowgraph and back, with the host's reconstruction: the loopback flowgraph's
launcher (`start_loopback_flowgraph`), the windowed `transfer` over a `LinkClient` and the batched
`reconstruct_frames` it uses.

The library part of `semcom loopback`, kept out of the command module so that `FlowgraphChannel` (and
the benchmarks) use it without importing a CLI; `semcom.loopback` re-exports these names. GNU Radio is
imported only when a flowgraph is started.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from semcom.errors import UsageError
from semcom.link import LinkClient
from semcom.ofat.equalize import reconstruct_payloads
from semcom.ofat.frame import OfatLayout
from semcom.progress import progress_bar

LOOPBACK_FLOWGRAPHS = {(2, 4): "loopback", (2, 2): "loopback_2x2", (4, 2): "loopback_4x2"}


def loopback_flowgraph_name(n_tx: int, n_rx: int) -> str:
    """A .grc fixes its wiring, so each antenna count has its own loopback flowgraph."""
    try:
        return LOOPBACK_FLOWGRAPHS[(n_tx, n_rx)]
    except KeyError:
        have = ", ".join(f"{t}x{r}" for t, r in LOOPBACK_FLOWGRAPHS)
        raise UsageError(f"no loopback flowgraph wired for {n_tx}x{n_rx} (have {have}); copy "
                         f"flowgraphs/loopback.grc and rewire it in GNU Radio Companion") from None


def start_loopback_flowgraph(n_tx: int, n_rx: int, **params: Any) -> tuple[Any, str, str]:
    """Compile and start the loopback flowgraph on free 127.0.0.1 ports; returns (tb, tx, rx).

    params: the flowgraph's parameters (preset, mode, train_reps, snr_db, seed, cfo,
    max_int_delay, n_taps).
    """
    from semcom.flowgraphs import top_block_class

    cls = top_block_class(loopback_flowgraph_name(n_tx, n_rx))
    # The bridge blocks bind port 0 ("*") themselves and report the port they got: a port probed free
    # here first (free_tcp_port) could be taken by another process before the flowgraph binds it.
    tb = cls(tx_address="tcp://127.0.0.1:*", rx_address="tcp://127.0.0.1:*", **params)
    tx, rx = tb.semcom_tensor_source_0.endpoint(), tb.semcom_tensor_sink_0.endpoint()
    tb.start()
    return tb, tx, rx


def reconstruct_frames(layout: OfatLayout, frames: list[Any], methods: tuple[str, ...]
                       ) -> list[dict[str, Any]]:
    """`transfer`'s entry for each received frame (a `WireMessage` with tensors H, Y and the receiver's
    meta): {method: payload (torch float64, the frame's shape), "meta", "H" (torch (K, Nr, Nt) complex128)}.

    The frames whose grids and payloads have one shape are reconstructed together: one
    `reconstruct_payloads` over a leading frame axis for all methods (each frame's scale, noise_var and
    err_var its own; ZF and MMSE share their normal equations and one solve), a fraction of the torch
    calls of one call per frame and method."""
    entries: list[dict[str, Any]] = [{"meta": msg.meta} for msg in frames]
    groups: dict[tuple[tuple[int, ...], ...], list[int]] = {}
    for i, msg in enumerate(frames):
        key = (msg.tensors["H"].shape, msg.tensors["Y"].shape, tuple(msg.meta["shape"]))
        groups.setdefault(key, []).append(i)
    for (_, _, shape), members in groups.items():
        h = torch.from_numpy(np.array([frames[i].tensors["H"] for i in members], np.complex128))
        y = torch.from_numpy(np.array([frames[i].tensors["Y"] for i in members], np.complex128))
        metas = [frames[i].meta for i in members]
        per_frame = {"scale": [float(m["scale"]) for m in metas],
                     "noise_var": [float(m["noise_var"]) for m in metas],
                     "err_var": [float(m.get("err_var", 0.0)) for m in metas]}
        # unbind: every frame's view in one call, not one indexing call each
        for i, h_frame in zip(members, h.unbind(0), strict=True):
            entries[i]["H"] = h_frame
        if not methods:
            continue
        payloads = reconstruct_payloads(layout, h, y, shape=shape, methods=methods, **per_frame)
        for method, per_method in zip(methods, payloads.unbind(0), strict=True):
            for i, payload in zip(members, per_method.unbind(0), strict=True):
                entries[i][method] = payload
    return entries


def transfer(link: LinkClient, layout: OfatLayout, tensors: list[np.ndarray], *, window: int,
             timeout_s: float, methods: tuple[str, ...], desc: str = "frames", progress: bool = True
             ) -> list[dict[str, Any] | None]:
    """Send tensors with at most `window` in flight and reconstruct each frame that comes back.

    Returns, in the order of `tensors`, {method: reconstructed tensor (torch, float64), "meta": the
    frame's meta, "H": the receiver's channel estimate on the data subcarriers (torch (K, Nr, Nt)
    complex128)} for a delivered frame and None for a lost one (the link counted it). The frames that
    arrive together are reconstructed together (`reconstruct_frames`), after the window is refilled, so
    that the flowgraph has tensors to work on meanwhile.
    """
    out: list[dict[str, Any] | None] = [None] * len(tensors)
    index_of: dict[int, int] = {}
    next_item = 0
    bar = progress_bar(total=len(tensors), desc=desc, unit="frame", progress=progress, leave=False)
    done = 0

    def refill() -> None:
        nonlocal next_item
        while next_item < len(tensors) and link.in_flight() < window:
            index_of[link.send(tensors[next_item])] = next_item
            next_item += 1

    while next_item < len(tensors) or link.in_flight():
        refill()
        lost_before = link.accounting.lost
        frames = link.receive_ready(timeout_s=min(timeout_s, 0.5))
        done += link.accounting.lost - lost_before
        refill()
        for msg, entry in zip(frames, reconstruct_frames(layout, frames, methods), strict=True):
            out[index_of[msg.seq]] = entry
        done += len(frames)
        bar.n = done
        bar.refresh()
    bar.close()
    return out
