"""Packet error rate of the digital link vs SNR, measured once through the flowgraph and cached as a table.

``measure`` sends ``n_packets`` random packets per (channel, SNR) through ``DigitalLink`` and counts them;
``PerTable`` reads the CSV back and lets an evaluation draw packet losses from the measured rates, one
independent draw per packet (per-packet fading is redrawn for every packet, so losses are independent
there too), with linear interpolation between the measured SNRs.

    python experiments/token_paper/fig6_per.py   # writes host/semcom/digital/per_table.csv (+ .json, .png)
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semcom.errors import finite_float, nonnegative_int, positive_int
from semcom.results import plot_label, save_figure, write_csv

from .ofdm import CHANNELS, DigitalConfig, DigitalLink, make_packets

PER_TABLE = Path(__file__).resolve().parent / "per_table.csv"
DEFAULT_SNRS = tuple(float(s) for s in range(0, 21))


def measure(link: DigitalLink, snrs: Sequence[float], channels: Sequence[str], n_packets: int,
            seed: int = 0) -> list[dict[str, Any]]:
    """One row per (channel, SNR): every count of ``RunResult`` and ``per = lost / sent``."""
    rng = np.random.default_rng(seed)
    rows = []
    for ch in channels:
        for i, snr in enumerate(snrs):
            payloads = rng.integers(0, 256, (n_packets, link.cfg.payload_bytes), dtype=np.uint8)
            packets = make_packets(np.arange(n_packets, dtype=np.uint32), payloads)
            t0 = time.perf_counter()
            res = link.run(packets, float(snr), ch, seed=seed + i)
            exact = sum(res.packets.get(k) == payloads[k].tobytes() for k in range(n_packets))
            if exact != res.crc_ok:  # a CRC-32 collision: would be a delivered, corrupted packet
                raise RuntimeError(f"{ch} {snr} dB: {res.crc_ok} packets passed the CRC, {exact} are exact")
            rows.append({"channel": ch, "snr_db": float(snr), **res.counts(), "per": res.lost / res.sent,
                         "seconds": time.perf_counter() - t0})
            print(f"{ch:9s} {snr:5.1f} dB  " + "  ".join(f"{k} {v}" for k, v in res.counts().items()),
                  flush=True)
    return rows


class PerTable:
    """The measured table: ``per(channel, snr_db)`` and per-message delivery draws."""

    def __init__(self, rows: list[dict[str, Any]], meta: dict[str, Any] | None = None) -> None:
        self.meta = meta or {}
        self.curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for ch in dict.fromkeys(r["channel"] for r in rows):
            pts = sorted((float(r["snr_db"]), float(r["lost"]) / float(r["sent"])) for r in rows
                         if r["channel"] == ch)
            self.curves[ch] = (np.array([p[0] for p in pts]), np.array([p[1] for p in pts]))

    @classmethod
    def load(cls, path: str | Path = PER_TABLE) -> PerTable:
        path = Path(path)
        with path.open() as f:
            rows = list(csv.DictReader(f))
        meta_path = path.with_suffix(".json")
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        return cls(rows, meta)

    def per(self, channel: str, snr_db: float) -> float:
        """Packet error rate at ``snr_db`` (linear interpolation; outside the table: an error)."""
        if channel not in self.curves:
            raise KeyError(f"no PER curve for channel {channel!r}; have {sorted(self.curves)}")
        snr, per = self.curves[channel]
        if not snr[0] <= snr_db <= snr[-1]:
            raise ValueError(f"{snr_db} dB is outside the measured {snr[0]}..{snr[-1]} dB")
        return float(np.interp(snr_db, snr, per))

    def delivered(self, n_packets: np.ndarray, channel: str, snr_db: float, rng: np.random.Generator
                  ) -> np.ndarray:
        """For messages of ``n_packets`` (Q,) packets each: whether all of a message's packets arrive
        (Q,) bool, every packet lost independently with the measured rate."""
        p = self.per(channel, snr_db)
        n_packets = np.asarray(n_packets, dtype=np.int64)
        lost = rng.random(int(n_packets.sum())) < p
        per_message = np.add.reduceat(lost, np.r_[0, np.cumsum(n_packets)[:-1]]) if lost.size else lost
        return per_message == 0


def plot(path: Path, rows: list[dict[str, Any]], cfg: DigitalConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for ch in dict.fromkeys(r["channel"] for r in rows):
        pts = [(r["snr_db"], max(r["per"], 0.5 / r["sent"])) for r in rows if r["channel"] == ch]
        ax.semilogy(*zip(*pts, strict=True), "-o", label=f"SISO {plot_label(ch)}")
    ax.set_xlabel("SNR (dB, per resource element)")
    ax.set_ylabel("packet error rate (0 drawn at 0.5/sent)")
    ax.set_title(f"gr-digital OFDM + gr-fec CC K=7 r={cfg.rate:.3f}, BPSK, {cfg.payload_bytes} B packets",
                 fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    d = " (default: %(default)s)"
    p = argparse.ArgumentParser(description="Measure the digital link's packet error rate vs SNR")
    p.add_argument("--snrs", type=finite_float, nargs="+", default=list(DEFAULT_SNRS), help="SNRs (dB)" + d)
    p.add_argument("--channels", nargs="+", default=list(CHANNELS), choices=list(CHANNELS),
                   help="channels" + d)
    p.add_argument("--packets", type=positive_int, default=300, help="packets per point" + d)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="payload and channel seed" + d)
    p.add_argument("--out", default=str(PER_TABLE), help="CSV path (.json and .png beside it)" + d)
    args = p.parse_args(argv)
    from gnuradio import gr

    gr.logging().set_default_level(gr.log_levels.warn)
    link = DigitalLink()
    t0 = time.perf_counter()
    rows = measure(link, args.snrs, args.channels, args.packets, args.seed)
    out = Path(args.out)
    write_csv(out, rows)
    plot(out.with_suffix(".png"), rows, link.cfg)
    args_text = shlex.join(argv if argv is not None else sys.argv[1:])
    cmd = "python experiments/token_paper/fig6_per.py " + args_text
    meta = {"command": cmd.strip(), "link": link.cfg.to_dict(), "seconds": time.perf_counter() - t0}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} in {meta['seconds']:.0f} s")
    return 0

