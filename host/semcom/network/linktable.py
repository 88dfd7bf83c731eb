"""`semcom network linktable`: the OFAT link of the live network flowgraph characterised over a controlled
SINR sweep, as the link model of the environment (``NetworkConfig.link_table``).

The same flowgraph as ``semcom network live`` (``network_loopback_3``: ofat_tx -> interference_channel ->
ofat_rx, link k on sequence_id k, fit-residual receivers, full-buffer interferers with their own
oscillator offsets), but the channel is set by the sweep, not by policies: every slot, each of the three
receivers gets its own SINR, drawn uniformly inside a bin of ``BIN_EDGES``, and its own mix of
interference and noise (``MIXES``: the share of the interference in I + N, split at random between the
two other links' transmitters, each at a random phase); every frame carries the questions of a random
compression level (``TokenPool``). Per link-frame it records whether the frame came back, the receiver's
SNR estimate, the payload's SNR (the reconstructed values against the sent ones), the fraction of the
frame's questions answered right, the AWGN table's accuracy at the set SINR, and the fraction right
without any token (what a lost frame's questions get).

The link table (one row per SINR bin, pooled over seeds, from the first mix swept: the live scenarios are
interference-limited, I / (I + N) >= 0.995 in 95 % of their link-slots): delivery probability, the
delivered frames' accuracy over the table's (ratio of the means over frames), the receiver's SNR-estimate
bias and spread (sd over the delivered frames; the simulation's measurement model), and the accuracy of
a lost frame's questions answered without tokens; with the spread over seeds.
This is a PHY measurement independent of any live run: no policy, no scenario.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from semcom.progress import progress_bar
from semcom.results import plot_label, save_figure, write_csv

from .air import FRAME_VALUES, SharedAir, TokenPool, level_parts
from .curves import DEFAULT_TABLE
from .env import load_table

log = logging.getLogger(__name__)

# The link table shipped with the package (measured by `semcom network linktable`, command in its JSON)
DEFAULT_LINK_TABLE = Path(__file__).resolve().parent / "link_table.csv"
# SINR bins (dB): 1 dB where the header starts to survive, wider where every frame comes back
BIN_EDGES: tuple[float, ...] = (-8.0, -6.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0,
                                12.5, 15.0, 20.0, 25.0)
QUICK_EDGES: tuple[float, ...] = (-8.0, -6.0, 20.0, 25.0)
# each mix: the interference share I / (I + N) and how I splits between the two other transmitters
# ("random": uniformly, "one": all of it from one of them, as from a dominant neighbour cell)
MIXES: dict[str, tuple[float, str]] = {"interference": (0.99, "random"), "half": (0.5, "random"),
                                       "noise": (0.0, "random"), "one_interferer": (0.99, "one")}
DEFAULT_MIXES = ("interference", "half", "noise")  # the first one's rows make the env's link table
N_LINKS = 3
FLOAT_COLUMNS = ("interference_share", "sinr_db", "snr_measured_db", "payload_snr_db", "accuracy",
                 "accuracy_table", "accuracy_no_tokens")


def sweep_points(edges: tuple[float, ...], frames: int, reference_frames: int,
                 rng: np.random.Generator, mixes: tuple[str, ...] = DEFAULT_MIXES) -> list[tuple[int, str]]:
    """(bin, mix) of every link-frame, shuffled: ``frames`` per bin for the table's mix (the first),
    ``reference_frames`` per bin for each other mix; padded to a whole number of slots with the first."""
    pts = [(b, mix) for b in range(len(edges) - 1) for mix in mixes
           for _ in range(frames if mix == mixes[0] else reference_frames)]
    while len(pts) % N_LINKS:
        pts.append((int(rng.integers(len(edges) - 1)), mixes[0]))
    return [pts[i] for i in rng.permutation(len(pts))]


def channel_for(sinr_db: np.ndarray, share: np.ndarray, rng: np.random.Generator,
                one: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gains (N, N) [receiver, transmitter] and noise variances (N,) giving receiver k the SINR
    ``sinr_db[k]`` (own transmitter at unit gain) with interference share ``share[k]`` of I + N, split at
    random between the other transmitters (``one[k]``: all of it from one of them, drawn at random)."""
    n = len(sinr_db)
    total = 10.0 ** (-np.asarray(sinr_db) / 10.0)                    # I + N relative to the own signal
    split = rng.dirichlet(np.ones(n - 1), size=n)                     # (n, n-1)
    if one is not None and np.any(one):
        single = np.eye(n - 1)[rng.integers(n - 1, size=n)]
        split = np.where(np.asarray(one)[:, None], single, split)
    gains = np.eye(n, dtype=np.complex128)
    for k in range(n):
        others = [j for j in range(n) if j != k]
        amp = np.sqrt(share[k] * total[k] * split[k])
        gains[k, others] = amp * np.exp(2j * np.pi * rng.uniform(size=n - 1))
    return gains, (1.0 - np.asarray(share)) * total


def measure(seed: int, edges: tuple[float, ...], frames: int, reference_frames: int,
            pool: TokenPool | None, progress: bool = True, mixes: tuple[str, ...] = DEFAULT_MIXES
            ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One seed of the sweep (its own flowgraph: noise, oscillator offsets, draws) -> link-frame rows and
    the books (every frame delivered or counted lost). ``pool`` None: PHY only (no questions)."""
    table = load_table(str(DEFAULT_TABLE))
    rng = np.random.default_rng(seed)
    pts = sweep_points(edges, frames, reference_frames, rng, mixes)
    rows: list[dict[str, Any]] = []
    with SharedAir(N_LINKS, seed) as air:
        slots = range(len(pts) // N_LINKS)
        for s in progress_bar(slots, progress=progress, desc=f"linktable seed {seed}"):
            now = pts[N_LINKS * s: N_LINKS * (s + 1)]
            lo = np.array([edges[b] for b, _ in now])
            hi = np.array([edges[b + 1] for b, _ in now])
            sinr = rng.uniform(lo, hi)
            share = np.array([MIXES[m][0] for _, m in now])
            gains, noise = channel_for(sinr, share, rng, np.array([MIXES[m][1] == "one" for _, m in now]))
            level = rng.integers(table.n_levels, size=N_LINKS)
            air.set_channel(s, gains, noise, level=level.tolist())
            sent, frames_out = [], []
            for k in range(N_LINKS):
                link, kk = level_parts(table.names[level[k]])
                q = FRAME_VALUES // int(table.values[level[k]])
                idx = pool.take(q) if pool is not None else np.arange(q)
                x = (pool.frame(link, kk, idx, rng, FRAME_VALUES) if pool is not None
                     else (rng.standard_normal(FRAME_VALUES) * np.sqrt(0.5)).astype(np.float32))
                sent.append((link, kk, idx, x))
                frames_out.append(x)
            back = air.exchange(frames_out, {"slot": s})
            acc_table = table.accuracy(level, sinr)
            for k, got in enumerate(back):
                link, kk, idx, x = sent[k]
                row = {"seed": seed, "slot": s, "link": k, "bin": now[k][0], "mix": now[k][1],
                       "interference_share": share[k], "sinr_db": float(sinr[k]),
                       "level": table.names[level[k]], "questions": len(idx), "delivered": got is not None,
                       "snr_measured_db": got.snr_db if got is not None else float("nan"),
                       "payload_snr_db": float("nan"), "accuracy": float("nan"),
                       "accuracy_table": float(acc_table[k]), "accuracy_no_tokens": float("nan")}
                if got is not None:
                    err = float(np.mean((got.values - x) ** 2))
                    row["payload_snr_db"] = float(10 * np.log10(np.mean(x ** 2) / max(err, 1e-12)))
                if pool is not None:
                    row["accuracy_no_tokens"] = float(pool.no_frame_correct(link, idx).mean())
                    if got is not None:
                        row["accuracy"] = float(pool.answers(link, kk, idx, got.values).mean())
                rows.append(row)
    return rows, air.counters


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")


def summarise(rows: list[dict[str, Any]], edges: tuple[float, ...], mix: str | None, link: int | None = None
              ) -> list[dict[str, Any]]:
    """Link-frame rows -> one row per SINR bin (pooled over seeds; ``mix`` None: every mix): the link
    table's columns plus counts, the seeds' spread and the SNR-estimate bias."""
    sel = [r for r in rows if (mix is None or r["mix"] == mix) and (link is None or int(r["link"]) == link)]
    keys = ("bin", "seed", "delivered", "accuracy", "accuracy_table", "snr_measured_db", "sinr_db",
            "payload_snr_db", "accuracy_no_tokens")
    col = {k: np.array([r[k] for r in sel]) for k in keys}
    deliv = col["delivered"].astype(bool)
    acc_lost = _mean(col["accuracy_no_tokens"][~np.isnan(col["accuracy_no_tokens"])])
    err = col["snr_measured_db"] - col["sinr_db"]   # the receiver's SNR estimate above the set SINR
    out = []
    for b in range(len(edges) - 1):
        m = col["bin"] == b
        d = m & deliv
        with np.errstate(invalid="ignore"):
            ratio = _mean(col["accuracy"][d]) / _mean(col["accuracy_table"][d])
            per_seed = {s: (float(deliv[m & (col["seed"] == s)].mean()),
                            _mean(col["accuracy"][d & (col["seed"] == s)])
                            / _mean(col["accuracy_table"][d & (col["seed"] == s)]))
                        for s in np.unique(col["seed"][m])}
        dl = np.array([v[0] for v in per_seed.values()])
        rt = np.array([v[1] for v in per_seed.values()])
        rt = rt[np.isfinite(rt)]
        out.append({"sinr_lo_db": edges[b], "sinr_hi_db": edges[b + 1], "link_frames": int(m.sum()),
                    "delivered": _mean(deliv[m].astype(float)) if m.any() else 1.0,
                    "delivered_sd_seeds": float(np.std(dl)) if dl.size > 1 else float("nan"),
                    # no delivered frame: the ratio is never used (delivery 0), 1 keeps the table finite
                    "accuracy_ratio": ratio if np.isfinite(ratio) else 1.0,
                    "accuracy_ratio_sd_seeds": float(np.std(rt)) if rt.size > 1 else float("nan"),
                    "accuracy_delivered": _mean(col["accuracy"][d]),
                    "accuracy_table_at_sinr": _mean(col["accuracy_table"][d]),
                    "snr_estimate_bias_db": _mean(err[d]),
                    # the spread of the receiver's estimate around the set SINR: with the bias, the
                    # simulation's model of what a BS observes (LinkTable.measured_snr_db)
                    "snr_estimate_sd_db": (float(np.std(err[d], ddof=1)) if d.sum() > 1 else float("nan")),
                    "payload_snr_minus_sinr_db": _mean(col["payload_snr_db"][d] - col["sinr_db"][d]),
                    "accuracy_lost": acc_lost})
    return out


def plot_link_table(path: Path, rows: list[dict[str, Any]], edges: tuple[float, ...],
                    mixes: tuple[str, ...] = DEFAULT_MIXES) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    mids = 0.5 * (np.array(edges[:-1]) + np.array(edges[1:]))
    for mix in mixes:
        t = summarise(rows, edges, mix)
        err = {k: np.nan_to_num([r[k] for r in t]) for k in ("delivered_sd_seeds", "accuracy_ratio_sd_seeds")}
        style = "-o" if mix == mixes[0] else "--."
        lab = f"{plot_label(mix)} (I/(I+N) = {MIXES[mix][0]:g}, {MIXES[mix][1]})"
        axes[0].errorbar(mids, [r["delivered"] for r in t], err["delivered_sd_seeds"], fmt=style, ms=3,
                         label=lab)
        axes[1].errorbar(mids, [r["accuracy_ratio"] if r["delivered"] > 0 else np.nan for r in t],
                         err["accuracy_ratio_sd_seeds"], fmt=style, ms=3, label=lab)
        axes[2].plot(mids, [r["snr_estimate_bias_db"] for r in t], style, ms=3,
                     label=f"{plot_label(mix)}: receiver estimate")
        axes[2].plot(mids, [r["payload_snr_minus_sinr_db"] for r in t], ":", ms=3,
                     label=f"{plot_label(mix)}: payload")
    for ax, y in zip(axes, ("frames delivered", "accuracy delivered / AWGN table", "dB above the set SINR"),
                     strict=True):
        ax.set_xlabel("SINR set on the interference channel (dB)")
        ax.set_ylabel(y)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=6)
    fig.suptitle("OFAT link of network_loopback_3 under a controlled SINR sweep (mean over seeds, bars: "
                 "sd of the seeds)", fontsize=9)
    save_figure(fig, path)


def run_link_table(out_dir: str | Path, table_path: str | Path, seeds: tuple[int, ...], frames: int,
                   reference_frames: int, edges: tuple[float, ...] = BIN_EDGES, answers: bool = True,
                   command: str = "", progress: bool = True, mixes: tuple[str, ...] = DEFAULT_MIXES
                   ) -> dict[str, Any]:
    """The sweep over ``seeds`` -> frames_seed_N.csv (one row per link-frame), books_seed_N.json,
    link_table_by_mix.csv, link_table.png, link_table.json in ``out_dir`` and the env's link table (from
    ``mixes[0]``) at ``table_path``."""
    t0 = time.perf_counter()
    pool = TokenPool(progress=progress) if answers else None
    out = Path(out_dir)
    for seed in seeds:  # each seed's frames and books kept as soon as it is done
        r, c = measure(seed, edges, frames, reference_frames, pool, progress, mixes)
        write_csv(out / f"frames_seed_{seed}.csv", r)
        (out / f"books_seed_{seed}.json").write_text(json.dumps(c, default=float) + "\n")
        log.info("seed %d: %d link-frames, %d delivered", seed, len(r), sum(x["delivered"] for x in r))
    return aggregate(out, table_path, seeds, frames, reference_frames, edges, command,
                     time.perf_counter() - t0, mixes)


def aggregate(out_dir: str | Path, table_path: str | Path, seeds: tuple[int, ...], frames: int,
              reference_frames: int, edges: tuple[float, ...] = BIN_EDGES, command: str = "",
              seconds: float = float("nan"), mixes: tuple[str, ...] = DEFAULT_MIXES,
              per_link: bool = False) -> dict[str, Any]:
    """The seeds' frames_seed_N.csv / books_seed_N.json in ``out_dir`` -> link_table_by_mix.csv,
    link_table.png, link_table.json and the env's link table at ``table_path`` (``per_link``: also one
    table per link beside it, ``<table>_per_link.csv``)."""
    out = Path(out_dir)
    rows: list[dict[str, Any]] = []
    books = {}
    for seed in seeds:
        with (out / f"frames_seed_{seed}.csv").open() as f:
            for r in csv.DictReader(f):
                rows.append({**r, **{k: float(r[k]) for k in FLOAT_COLUMNS}, "bin": int(r["bin"]),
                             "seed": int(r["seed"]), "delivered": r["delivered"] == "True"})
        books[seed] = json.loads((out / f"books_seed_{seed}.json").read_text())
    tab = summarise(rows, edges, mixes[0])
    write_csv(table_path, tab)
    if per_link:  # one table per link: its own transmitter and its interferers' oscillator offsets
        links = sorted({int(r["link"]) for r in rows})
        write_csv(Path(table_path).with_name(Path(table_path).stem + "_per_link.csv"),
                  [{"link": k, **r} for k in links for r in summarise(rows, edges, mixes[0], k)])
    write_csv(out / "link_table_by_mix.csv",
              [{"mix": m, **r} for m in mixes for r in summarise(rows, edges, m)])
    plot_link_table(out / "link_table.png", rows, edges, mixes)
    sent = sum(b["sent"] for c in books.values() for b in c["links"])
    delivered = sum(b["delivered"] for c in books.values() for b in c["links"])
    lost = sum(b["lost"] for c in books.values() for b in c["links"])
    summary = {"command": command, "table": str(table_path), "seeds": list(seeds),
               "bin_edges_db": list(edges), "mixes": {m: MIXES[m] for m in mixes}, "table_mix": mixes[0],
               "frames_per_bin_table_mix": frames,
               "frames_per_bin_other_mixes": reference_frames, "frame_values": FRAME_VALUES,
               "frames_sent": sent, "frames_delivered": delivered, "frames_lost": lost,
               "foreign_frames_delivered": sum(b["unexpected"] for c in books.values() for b in c["links"]),
               "late_frames": sum(b["late"] for c in books.values() for b in c["links"]),
               "accuracy_lost": tab[0]["accuracy_lost"], "table_rows": tab, "books": books,
               "seconds": seconds}
    (out / "link_table.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary
