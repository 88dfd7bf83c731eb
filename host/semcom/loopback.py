"""`semcom loopback`: tensors from PyTorch through the loopback flowgraph and back, NMSE vs theory.

The flowgraph (flowgraphs/loopback.grc: tensor_source -> ofat_tx -> mimo_channel -> ofat_rx ->
tensor_sink) runs in this process as a GNU Radio top block; the host side talks to it only over
ZeroMQ through `semcom.link.LinkClient`, exactly as it would to a flowgraph on another machine
(`--connect` skips starting a flowgraph and uses given endpoints instead). Reconstruction is the
batched torch ZF / MMSE of `semcom.ofat.equalize`.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.burst import (  # noqa: F401  (re-exported: the one-process burst lives in semcom.burst)
    burst_nmse,
    gr_channel_models,
    run_burst,
    seeded_payloads,
)
from semcom.errors import (
    UsageError,
    check_loss,
    finite_float,
    fraction,
    load_npy,
    nonnegative_int,
    output_dir,
    positive_float,
    positive_int,
)
from semcom.errors import shape as shape_arg
from semcom.link import LinkClient
from semcom.ofat.equalize import zf_nmse_bound
from semcom.ofat.frame import OfatLayout, make_layout
from semcom.results import plot_label, write_csv
from semcom.transfer import (  # noqa: F401  (re-exported: the launcher and transfer live in semcom.transfer)
    LOOPBACK_FLOWGRAPHS,
    loopback_flowgraph_name,
    reconstruct_frames,
    start_loopback_flowgraph,
    transfer,
)

log = logging.getLogger(__name__)


def free_tcp_port() -> int:
    """A local TCP port nothing listens on at this moment, e.g. for an endpoint that must not answer.

    Not for a port something binds later: another process may take it first (the review's race). The
    bridge blocks bind tcp://127.0.0.1:* and report their endpoint instead."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SnrResult:
    """Per-SNR outcome. NMSE lists hold one value per delivered frame."""

    snr_db: float
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    nmse: dict[str, list[float]] = field(default_factory=dict)  # method -> one value per frame
    snr_est_db: list[float] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self, layout: OfatLayout) -> dict[str, Any]:
        def db(values: list[float], agg=np.mean) -> float:
            return float(10 * np.log10(agg(values))) if values else float("nan")

        bound = zf_nmse_bound(self.snr_db, layout.n_tx, layout.n_rx, real=layout.mode == "real")
        row: dict[str, Any] = {
            "snr_db": self.snr_db,
            "sent": self.sent,
            "delivered": self.delivered,
            "lost": self.lost,
        }
        for method in ("zf", "mmse", "sparse"):
            values = self.nmse.get(method, [])
            row[f"nmse_{method}_db"] = db(values)
            row[f"nmse_{method}_median_db"] = db(values, np.median)
        row.update({
            "zf_bound_db": float(10 * np.log10(bound)) if math.isfinite(bound) else float("inf"),
            "snr_est_db": float(np.mean(self.snr_est_db)) if self.snr_est_db else float("nan"),
            "frames_per_s": self.delivered / self.seconds if self.seconds else float("nan"),
        })
        return row


def methods_for(layout: OfatLayout) -> tuple[str, ...]:
    """ZF and MMSE when the detector separates the streams: Nr >= Nt (complex), 2 Nr >= Nt (real mode,
    widely linear); otherwise MMSE and sparse recovery (compressed sensing)."""
    streams = 2 * layout.n_rx if layout.mode == "real" else layout.n_rx
    return ("zf", "mmse") if streams >= layout.n_tx else ("mmse", "sparse")


# Pairs scored per torch call in frame_nmse: 128 5x256 float64 frames (1.3 MB) stay in cache; all 1 500 of
# a run at once cost twice as much per frame (7.1 against 3.6-3.9 us with 64-256, one run here).
NMSE_CHUNK = 128


def frame_nmse(estimates: list[torch.Tensor], truths: list[np.ndarray]) -> list[float]:
    """NMSE sum((estimate - truth)^2) / sum(truth^2) of each (estimate, truth) pair, in the estimates'
    dtype. Why batched: the pairs of one shape are scored NMSE_CHUNK at a time, a few torch calls for
    all of them; one torch reduction per frame and method cost ~17 us on the 2x4 loopback's 5x256 frames
    (the same values: bit for bit on 1 500 such frames here)."""
    out = [0.0] * len(estimates)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, truth in enumerate(truths):
        groups.setdefault(tuple(truth.shape), []).append(i)
    for group in groups.values():
        for start in range(0, len(group), NMSE_CHUNK):
            members = group[start:start + NMSE_CHUNK]
            estimate = torch.stack([estimates[i] for i in members]).flatten(1)
            truth = torch.from_numpy(np.stack([truths[i] for i in members])).to(estimate.dtype).flatten(1)
            errors = (torch.sum((estimate - truth) ** 2, dim=1) / torch.sum(truth**2, dim=1)).tolist()
            for i, value in zip(members, errors, strict=True):
                out[i] = value
    return out


def stream(link: LinkClient, layout: OfatLayout, tensors: list[np.ndarray], snr_db: float,
           window: int, timeout_s: float, progress: bool = True) -> SnrResult:
    """Send tensors through the link; NMSE of every delivered frame for each method of the layout."""
    start = time.monotonic()
    methods = methods_for(layout)
    received = transfer(link, layout, tensors, window=window, timeout_s=timeout_s, methods=methods,
                        desc=f"SNR {snr_db:5.1f} dB", progress=progress)
    result = SnrResult(snr_db=snr_db, sent=len(tensors))
    delivered = [(truth, entry) for truth, entry in zip(tensors, received, strict=True) if entry is not None]
    truths = [truth for truth, _ in delivered]
    for method in methods:
        result.nmse[method] = frame_nmse([entry[method] for _, entry in delivered], truths)
    result.snr_est_db = [float(entry["meta"]["snr_db"]) for _, entry in delivered]
    result.seconds = time.monotonic() - start
    result.delivered = len(result.snr_est_db)
    result.lost = result.sent - result.delivered
    return result


def write_outputs(out_dir: Path, layout: OfatLayout, rows: list[dict[str, Any]]) -> tuple[Path, Path]:
    """nmse_vs_snr.csv and .png (measured ZF/MMSE against the genie-CSI ZF bound)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    csv_path = write_csv(out_dir / "nmse_vs_snr.csv", rows)
    snr = np.array([r["snr_db"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4))
    dense = np.linspace(snr.min(), snr.max(), 100)
    real = layout.mode == "real"
    if math.isfinite(zf_nmse_bound(float(snr.max()), layout.n_tx, layout.n_rx, real=real)):
        theory = [10 * np.log10(zf_nmse_bound(s, layout.n_tx, layout.n_rx, real=real)) for s in dense]
        label = (r"genie ZF bound $N_t/(\mathrm{SNR}(2N_r-N_t-1))$ (stacked real)" if real
                 else r"genie ZF bound $N_t/(\mathrm{SNR}(N_r-N_t))$")
        ax.plot(dense, theory, "k--", label=label)
    elif layout.n_rx < layout.n_tx and not real:
        floor = 10 * np.log10(1 - layout.n_rx / layout.n_tx)
        ax.axhline(floor, color="k", ls=":", label=r"LMMSE floor $1-N_r/N_t$")
    for method in methods_for(layout):
        ax.plot(snr, [r[f"nmse_{method}_db"] for r in rows], "o-",
                label=f"{plot_label(method)} (estimated CSI)")
        if method == "zf" and layout.n_rx == layout.n_tx:
            ax.plot(snr, [r["nmse_zf_median_db"] for r in rows], "x--", label="ZF median (Nr = Nt)")
    ax.set_xlabel("SNR (dB): total TX power / noise power per RX antenna, per subcarrier")
    ax.set_ylabel("NMSE (dB)")
    ax.set_title(f"OFAT loopback {layout.n_tx}x{layout.n_rx}, fft {layout.fft_len}, {layout.mode}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    png_path = out_dir / "nmse_vs_snr.png"
    fig.tight_layout()
    fig.savefig(png_path, dpi=120)
    plt.close(fig)
    return csv_path, png_path


def load_tensors(args: argparse.Namespace, rng: np.random.Generator) -> list[np.ndarray]:
    if args.npy:
        data = load_npy(args.npy)  # UsageError (exit 2) for a missing, pickled, complex, NaN... file
        if args.npy_batched and data.ndim < 2:
            raise UsageError(f"{args.npy}: shape {data.shape}; --npy-batched needs 2+ axes (tensors, ...)")
        items = [data[i] for i in range(data.shape[0])] if args.npy_batched else [data]
        return [np.asarray(items[i % len(items)], np.float32) for i in range(args.frames)]
    return [rng.standard_normal(args.shape).astype(np.float32) for _ in range(args.frames)]


def check_fits(tensors: list[np.ndarray], layout: OfatLayout, source: str) -> None:
    """UsageError (exit 2) before any flowgraph starts when a tensor exceeds one frame's capacity: the
    transmitter would reject every one of them and the run would only time out frame by frame."""
    biggest = max(t.size for t in tensors)
    if biggest > layout.capacity:
        raise UsageError(f"{source}: a tensor of {biggest} values; one frame carries at most "
                         f"{layout.capacity} ({layout.describe()})")


def check_delivery(rows: list[dict[str, Any]], max_loss: float) -> None:
    """IncompleteRun (exit 1) when an SNR point delivered nothing or lost more than `max_loss` of it."""
    for row in rows:
        check_loss(f"loopback at {row['snr_db']:g} dB", row["sent"], row["lost"], max_loss)


def run(args: argparse.Namespace) -> int:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    layout = make_layout(args.preset, n_tx=args.n_tx, n_rx=args.n_rx, mode=args.mode,
                         train_reps=args.train_reps)
    tensors = load_tensors(args, rng)
    check_fits(tensors, layout, args.npy or f"--shape {'x'.join(map(str, args.shape))}")
    tb = None
    if args.connect:
        tx, rx = args.connect
    else:
        tb, tx, rx = start_loopback_flowgraph(
            args.n_tx, args.n_rx, preset=args.preset, mode=args.mode, train_reps=args.train_reps,
            snr_db=args.snr[0], seed=args.seed, cfo=args.cfo, max_int_delay=args.max_int_delay,
            n_taps=args.n_taps)
    print(f"[loopback] {layout.describe()}")
    print(f"[loopback] flowgraph endpoints: tensors -> {tx}, frames <- {rx}")
    rows = []
    try:
        with LinkClient(tx, rx, window=args.window, timeout_s=args.timeout) as link:
            for snr in args.snr:
                if tb is not None:
                    tb.set_snr_db(snr)
                res = stream(link, layout, tensors, snr, args.window, args.timeout,
                             progress=not args.no_progress)
                row = res.summary(layout)
                rows.append(row)
                figures = ", ".join(
                    f"{m.upper()} {row[f'nmse_{m}_db']:6.2f} (median {row[f'nmse_{m}_median_db']:6.2f})"
                    for m in methods_for(layout))
                print(f"[loopback] SNR {snr:5.1f} dB: NMSE dB {figures}, "
                      f"ZF bound {row['zf_bound_db']:6.2f} | "
                      f"sent {res.sent} delivered {res.delivered} lost {res.lost} | "
                      f"{row['frames_per_s']:.0f} frames/s")
            acct = link.accounting
            print(f"[loopback] total: sent {acct.sent} delivered {acct.delivered} lost {acct.lost}")
    finally:
        if tb is not None:
            counters = {name: getattr(tb, name).counters() for name in dir(tb)
                        if name.startswith("semcom_") and hasattr(getattr(tb, name), "counters")}
            tb.stop()
            tb.wait()
            for name, c in sorted(counters.items()):
                print(f"[loopback] {name}: {c}")
    csv_path, png_path = write_outputs(Path(args.out), layout, rows)
    print(f"[loopback] wrote {csv_path} and {png_path}")
    check_delivery(rows, args.max_loss)
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--snr", type=finite_float, nargs="+", default=[10.0, 20.0, 30.0],
                   help="SNR points (dB) (default: %(default)s)")
    p.add_argument("--frames", type=positive_int, default=200,
                   help="tensors per SNR point (default: %(default)s)")
    p.add_argument("--shape", type=shape_arg, default=(5, 256),
                   help="random tensor shape, e.g. 5x256 (K tokens x m) (default: 5x256)")
    p.add_argument("--npy", help="send this .npy array (real, finite, numeric) instead of random tensors "
                   "(default: %(default)s)")
    p.add_argument("--npy-batched", action="store_true", help="the .npy's first axis indexes tensors")
    p.add_argument("--preset", default="wifi64", choices=["wifi64", "ofat128"],
                   help="OFAT layout preset (default: %(default)s)")
    p.add_argument("--n-tx", type=positive_int, default=2, help="transmit antennas (default: %(default)s)")
    p.add_argument("--n-rx", type=positive_int, default=4, help="receive antennas (default: %(default)s)")
    p.add_argument("--mode", default="complex", choices=["complex", "real"],
                   help="complex or real-valued symbols (default: %(default)s)")
    p.add_argument("--train-reps", type=positive_int, default=2,
                   help="training symbol repetitions (default: %(default)s)")
    p.add_argument("--cfo", type=finite_float, default=0.4,
                   help="max |CFO| in subcarrier spacings (random/frame) (default: %(default)s)")
    p.add_argument("--max-int-delay", type=nonnegative_int, default=40,
                   help="max random timing offset (samples) (default: %(default)s)")
    p.add_argument("--n-taps", type=positive_int, default=3,
                   help="multipath taps (exponential PDP) (default: %(default)s)")
    p.add_argument("--window", type=positive_int, default=8, help="frames in flight (default: %(default)s)")
    p.add_argument("--timeout", type=positive_float, default=5.0,
                   help="seconds before a frame counts as lost (default: %(default)s)")
    p.add_argument("--max-loss", type=fraction, default=0.05,
                   help="exit 1 when an SNR point loses more than this share of its frames or delivers "
                   "none (default: %(default)s)")
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help="numpy/torch/channel seed (default: %(default)s)")
    p.add_argument("--connect", nargs=2, metavar=("TX_ENDPOINT", "RX_ENDPOINT"),
                   help="use a running flowgraph (e.g. the split arrangement or a USRP) instead "
                   "(default: start the loopback flowgraph)")
    p.add_argument("--out", type=output_dir, default="results/loopback",
                   help="directory for the CSV and PNG (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("loopback", help="stream tensors through the loopback flowgraph",
                              description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)
