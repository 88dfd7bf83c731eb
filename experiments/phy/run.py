"""PHY correctness figures (issue 16) through the real GNU Radio chain, deterministic (`run_burst`:
ofat_tx -> mimo_channel -> ofat_rx in one flowgraph, no sockets, seeded):

* real mode: NMSE of the widely linear MMSE / ZF against the stacked-real genie bounds, 2x4 / 2x2 / 4x2;
* CFO: frames delivered at 5 dB for CFOs across the stated range (integer search + fractional estimate);
* MMSE bias: regression gain sum(x_hat x) / sum(x^2) of `mmse` (biased) and `lmmse` (unbiased) at 10 dB.

    .venv/bin/python experiments/phy/run.py                 # ~2 min; writes experiments/phy/output/
    .venv/bin/python experiments/phy/run.py --quick --frames 10 --out /tmp/phy   # smoke run (tests)
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from semcom.burst import burst_nmse, run_burst, seeded_payloads
from semcom.ofat.equalize import mmse_nmse_bound, reconstruct_payload, zf_nmse_bound
from semcom.ofat.frame import make_layout
from semcom.progress import progress_bar
from semcom.results import plot_label, save_figure, write_csv

CHANNEL = dict(n_taps=3, max_int_delay=10)  # multipath + fractional and integer delay, as in the loopback
CFOS = (0.0, 0.19, 0.21, 0.95, 1.05, 2.5, -2.5, 2.95, -3.05, 4.9, -4.9)  # subcarriers


def real_mode(n_frames: int, quick: bool = False) -> list[dict]:
    rows = []
    cases = [(nt, nr, snr) for nt, nr in ((2, 4), (2, 2), (4, 2)) for snr in (10.0, 20.0, 30.0)]
    cases = cases[1:2] + cases[-1:] if quick else cases
    for nt, nr, snr in progress_bar(cases, desc="real mode"):
        lay = make_layout("wifi64", n_tx=nt, n_rx=nr, mode="real")
        sent = seeded_payloads(n_frames, lay.values_per_symbol * 8, seed=int(snr))
        frames = run_burst(lay, sent, snr_db=snr, seed=int(snr), **CHANNEL)
        mmse = burst_nmse(lay, frames, sent, "mmse")
        zf = burst_nmse(lay, frames, sent, "zf")
        bound = mmse_nmse_bound(snr, nt, nr, real=True)
        rows.append({"n_tx": nt, "n_rx": nr, "snr_db": snr, "sent": n_frames, "delivered": len(frames),
                     "nmse_mmse_db": 10 * np.log10(np.mean(mmse)), "mmse_bound_db": 10 * np.log10(bound),
                     "excess_db": 10 * np.log10(np.mean(mmse) / bound),
                     "nmse_zf_median_db": 10 * np.log10(np.median(zf)),
                     "zf_bound_db": 10 * np.log10(zf_nmse_bound(snr, nt, nr, real=True))})
    return rows


def cfo_range(n_frames: int, quick: bool = False) -> list[dict]:
    rows = []
    for preset in ("wifi64",) if quick else ("wifi64", "ofat128"):
        lay = make_layout(preset, n_tx=2, n_rx=4)
        for sub in progress_bar((2.5,) if quick else CFOS, desc=f"CFO {preset}"):
            sent = seeded_payloads(n_frames, 64, seed=1)
            frames = run_burst(lay, sent, snr_db=5.0, cfo=sub / lay.fft_len, seed=2, **CHANNEL)
            err = [m["cfo"] * lay.fft_len - sub for m, _ in frames]
            rows.append({"preset": preset, "cfo_subcarriers": sub, "sent": n_frames, "delivered": len(frames),
                         "delivered_share": len(frames) / n_frames,
                         "cfo_rms_error_subcarriers":
                             float(np.sqrt(np.mean(np.square(err)))) if err else None})
    return rows


def mmse_bias(n_frames: int, quick: bool = False) -> list[dict]:
    rows = []
    cases = (("complex", 2, 4), ("real", 2, 4), ("real", 4, 2))
    for mode, nt, nr in cases[:1] if quick else cases:
        lay = make_layout("wifi64", n_tx=nt, n_rx=nr, mode=mode)
        sent = seeded_payloads(n_frames, 256, seed=3)
        frames = run_burst(lay, sent, snr_db=10.0, seed=4, **CHANNEL)
        for method in ("mmse", "lmmse"):
            num = den = err = 0.0
            for meta, t in frames:
                x_hat = np.asarray(reconstruct_payload(
                    lay, t["H"], t["Y"], shape=meta["shape"], scale=meta["scale"],
                    noise_var=meta["noise_var"], method=method, err_var=meta["err_var"]), np.float64)
                v = sent[meta["seq"]].astype(np.float64)
                num, den = num + float(x_hat @ v), den + float(v @ v)
                err += float(np.sum((x_hat - v) ** 2))
            rows.append({"mode": mode, "n_tx": nt, "n_rx": nr, "method": method, "delivered": len(frames),
                         "gain": num / den, "nmse_db": 10 * np.log10(err / den)})
    return rows


def plot(out: Path, tables: dict[str, list[dict]]) -> Path:
    """phy.png: the same numbers as the CSVs (real-mode NMSE vs bound, CFO delivery, MMSE bias)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    for (nt, nr), color in zip(((2, 4), (2, 2), (4, 2)), ("C0", "C1", "C2"), strict=True):
        rows = [r for r in tables["real_mode"] if (int(r["n_tx"]), int(r["n_rx"])) == (nt, nr)]
        if not rows:
            continue
        snr = [float(r["snr_db"]) for r in rows]
        ax.plot(snr, [float(r["nmse_mmse_db"]) for r in rows], "o-", color=color, label=f"{nt}x{nr} measured")
        ax.plot(snr, [float(r["mmse_bound_db"]) for r in rows], "--", color=color,
                label=f"{nt}x{nr} genie bound")
    ax.set(xlabel="SNR (dB)", ylabel="NMSE (dB)", title="Real mode, widely linear MMSE")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[1]
    for preset in sorted({r["preset"] for r in tables["cfo"]}):
        rows = sorted((r for r in tables["cfo"] if r["preset"] == preset),
                      key=lambda r: float(r["cfo_subcarriers"]))
        ax.plot([float(r["cfo_subcarriers"]) for r in rows],
                [100 * float(r["delivered_share"]) for r in rows], "o-", label=preset)
    ax.axhline(99.5, color="k", ls=":", label="99.5 % goal")
    ax.set(xlabel="CFO (subcarriers)", ylabel="frames delivered (%)", title="CFO range at 5 dB, 2x4")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax = axes[2]
    labels = [f"{r['mode']} {r['n_tx']}x{r['n_rx']}" for r in tables["mmse_bias"] if r["method"] == "mmse"]
    x = np.arange(len(labels))
    for offset, method in ((-0.2, "mmse"), (0.2, "lmmse")):
        gains = [float(r["gain"]) for r in tables["mmse_bias"] if r["method"] == method]
        ax.bar(x + offset, gains, width=0.4, label=plot_label(method))
    ax.axhline(1.0, color="k", ls=":")
    ax.set(xticks=x, xticklabels=labels, ylabel="gain sum(x_hat x) / sum(x^2)", title="MMSE bias at 10 dB")
    ax.legend(fontsize=7)
    path = out / "phy.png"
    save_figure(fig, path)
    return path


def _read_tables(out: Path) -> dict[str, list[dict]]:
    tables = {}
    for name in ("real_mode", "cfo", "mmse_bias"):
        with (out / f"{name}.csv").open() as f:
            tables[name] = list(csv.DictReader(f))
    return tables


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100, help="frames per point (default 100)")
    p.add_argument("--out", default="experiments/phy/output", help="output folder (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="one point per table (the smoke run the tests use)")
    p.add_argument("--replot", action="store_true", help="only redraw phy.png from the CSVs in --out")
    args = p.parse_args(argv)
    if args.frames < 1:
        p.error("--frames must be >= 1")
    out = Path(args.out)
    if args.replot:
        print(plot(out, _read_tables(out)))
        return 0
    out.mkdir(parents=True, exist_ok=True)
    tables = {"real_mode": real_mode(args.frames, args.quick), "cfo": cfo_range(args.frames, args.quick),
              "mmse_bias": mmse_bias(args.frames, args.quick)}
    for name, rows in tables.items():
        write_csv(out / f"{name}.csv", rows)
    summary = {
        "frames_per_point": args.frames, "channel": CHANNEL,
        "real_mode_max_excess_db": max(abs(r["excess_db"]) for r in tables["real_mode"]),
        "cfo_min_delivered_share": min(r["delivered_share"] for r in tables["cfo"]),
        "lmmse_gain_range": [min(r["gain"] for r in tables["mmse_bias"] if r["method"] == "lmmse"),
                             max(r["gain"] for r in tables["mmse_bias"] if r["method"] == "lmmse")],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(out, tables)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
