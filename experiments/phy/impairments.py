"""Hardware impairments (issue 14) through the real GNU Radio chain, seeded (`run_burst`: ofat_tx ->
channel -> ofat_rx in one flowgraph, no sockets):

* SFO cross-check: a sampling-clock offset of 0 / 4 / 20 ppm at 20 and 30 dB, 2x4, three fixed
  symbol-spaced taps per antenna pair, CFO 0.3 subcarrier, AWGN, ZF from each FRAME's Y and H, with
  and without the receiver's SFO tracking, through GNU Radio's own `channels.channel_model` (epsilon)
  per antenna pair and through `mimo_channel(sfo_ppm=...)`; several channel/noise seeds.
* Each impairment alone and all together in `mimo_channel` at 20 dB against the genie ZF bound
  (phase noise of a stated linewidth, IQ imbalance 0.5 dB / 3 degrees, DC -20 dBc, 20 ppm), and frame
  delivery at 5 dB with all of them on.

    .venv/bin/python experiments/phy/impairments.py                # ~6 min here; experiments/phy/output/
    .venv/bin/python experiments/phy/impairments.py --quick --frames 10 --out /tmp/imp   # smoke (tests)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from semcom.loopback import burst_nmse, run_burst, seeded_payloads
from semcom.ofat.channel_model import ChannelSpec, image_rejection_db
from semcom.ofat.equalize import zf_nmse_bound
from semcom.ofat.frame import make_layout
from semcom.progress import progress_bar
from semcom.results import write_csv

LAYOUT = make_layout("wifi64", n_tx=2, n_rx=4)
CFO = 0.3 / 64  # 0.3 subcarrier
PHASE_NOISE_LINEWIDTH = 1e-5  # cycles/sample: 10 Hz at 1 MS/s, 200 Hz at 20 MS/s
IQ = {"rx_iq_gain_db": 0.5, "rx_iq_phase_deg": 3.0}
DC_DBC = -20.0
CASES = {
    "none": {},
    "phase noise": {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH},
    "RX IQ 0.5 dB / 3 deg": IQ,
    "TX + RX IQ 0.5 dB / 3 deg": {**IQ, "tx_iq_gain_db": 0.5, "tx_iq_phase_deg": 3.0},
    "DC -20 dBc": {"dc_offset_dbc": DC_DBC},
    "SFO 20 ppm": {"sfo_ppm": 20.0},
    "all (phase noise, RX IQ, DC, 20 ppm)": {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH, **IQ,
                                             "dc_offset_dbc": DC_DBC, "sfo_ppm": 20.0},
    # Phase noise against the receiver's linear common-phase fit instead of one phase per symbol.
    "phase noise, linear phase tracking": {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH,
                                           "rx": {"phase_tracking": "linear", "sfo_tracking": True,
                                                  "dc_removal": True, "iq_correction": True}},
    # The receiver's own cost: no impairment, and RX IQ alone, with its corrections off.
    "none, receiver corrections off": {"rx": {}},
    "RX IQ 0.5 dB / 3 deg, corrections off": {**IQ, "rx": {}},
}
RX_TRACKING = {"phase_tracking": "per_symbol", "sfo_tracking": True, "dc_removal": True,
               "iq_correction": True}


def _db(values: list[float]) -> float:
    return float(10 * np.log10(np.mean(values))) if values else float("nan")


def sfo_cross_check(n_frames: int, seeds: list[int], quick: bool) -> list[dict]:
    """NMSE (ZF) per (path, seed, SNR, ppm, tracking); the same payloads and noise seed for every ppm."""
    rows = []
    snrs, ppms = ((30.0,), (0.0, 20.0)) if quick else ((20.0, 30.0), (0.0, 4.0, 20.0))
    # gr_channel_model_frac: the same taps with a fractional delay folded in (ChannelSpec's 8-tap
    # Kaiser sinc), so that the 0-ppm run is not the best case of an on-grid, three-tap channel.
    paths = ("gr_channel_model",) if quick else ("gr_channel_model", "gr_channel_model_frac", "mimo_channel")
    points = [(p, s, snr, ppm, tr) for p in paths for s in seeds for snr in snrs for ppm in ppms
              for tr in ((True,) if quick else (False, True))]
    for path, seed, snr, ppm, tracking in progress_bar(points, desc="SFO cross-check"):
        sent = seeded_payloads(n_frames, 1280, seed=seed)
        rx = {"sfo_tracking": tracking}
        if path.startswith("gr_channel_model"):
            spec = ChannelSpec(n_rx=4, n_tx=2, n_taps=3, frac_delay=path.endswith("frac"))
            taps = spec.draw(np.random.default_rng(seed)).taps
            gr = {"taps": taps, "epsilon": 1 / (1 + ppm * 1e-6), "cfo": CFO, "noise_var": 10 ** (-snr / 10),
                  "seed": seed}
            frames = run_burst(LAYOUT, sent, rx_options=rx, gr_channel=gr)
        else:
            frames = run_burst(LAYOUT, sent, rx_options=rx, fading="held", n_taps=3, frac_delay=False,
                               cfo=CFO, snr_db=snr, seed=seed, sfo_ppm=ppm)
        ppm_est = [m["sfo_ppm"] for m, _ in frames if "sfo_ppm" in m]
        rows.append({"path": path, "seed": seed, "snr_db": snr, "sfo_ppm": ppm, "tracking": tracking,
                     "sent": n_frames, "delivered": len(frames),
                     "nmse_zf_db": _db(burst_nmse(LAYOUT, frames, sent, "zf")),
                     "sfo_estimate_median_ppm": float(np.median(ppm_est)) if ppm_est else None})
    return rows


def sfo_losses(rows: list[dict]) -> list[dict]:
    """Loss against the same seed's 0-ppm run, mean and spread over seeds, per (path, SNR, ppm, tracking)."""
    def run_of(r: dict) -> tuple:
        return r["path"], r["seed"], r["snr_db"], r["tracking"]

    base = {run_of(r): r["nmse_zf_db"] for r in rows if r["sfo_ppm"] == 0}
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        if r["sfo_ppm"]:
            key = (r["path"], r["snr_db"], r["sfo_ppm"], r["tracking"])
            groups.setdefault(key, []).append(r["nmse_zf_db"] - base[run_of(r)])
    return [{"path": p, "snr_db": snr, "sfo_ppm": ppm, "tracking": tr, "seeds": len(v),
             "loss_db_mean": float(np.mean(v)), "loss_db_std": float(np.std(v)),
             "loss_db_max": float(np.max(v))} for (p, snr, ppm, tr), v in sorted(groups.items())]


def impairment_cases(n_frames: int, seeds: list[int], quick: bool) -> list[dict]:
    """Each impairment alone and all of them in mimo_channel, 2x4 at 20 dB (3-tap Rayleigh + fractional
    delay, new draw per frame), receiver with per-symbol phase and SFO tracking; NMSE vs the ZF bound."""
    rows = []
    cases = {k: CASES[k] for k in ("none", "all (phase noise, RX IQ, DC, 20 ppm)")} if quick else CASES
    bound = 10 * np.log10(zf_nmse_bound(20.0, 2, 4))
    for (name, imp), seed in progress_bar([(c, s) for c in cases.items() for s in seeds], desc="impairments"):
        sent = seeded_payloads(n_frames, 1280, seed=100 + seed)
        imp = dict(imp)
        rx = imp.pop("rx", RX_TRACKING)
        frames = run_burst(LAYOUT, sent, rx_options=rx, snr_db=20.0, seed=seed, n_taps=3, **imp)
        zf = _db(burst_nmse(LAYOUT, frames, sent, "zf"))
        rows.append({"case": name, "seed": seed, "snr_db": 20.0, "sent": n_frames, "delivered": len(frames),
                     "nmse_zf_db": zf, "zf_bound_db": bound, "excess_db": zf - bound,
                     "nmse_lmmse_db": _db(burst_nmse(LAYOUT, frames, sent, "lmmse"))})
    return rows


def delivery_at_5db(n_frames: int, seeds: list[int]) -> list[dict]:
    rows = []
    for seed in progress_bar(seeds, desc="delivery at 5 dB"):
        sent = seeded_payloads(n_frames, 1280, seed=200 + seed)
        frames = run_burst(LAYOUT, sent, rx_options=RX_TRACKING, snr_db=5.0, seed=seed, n_taps=3,
                           **CASES["all (phase noise, RX IQ, DC, 20 ppm)"])
        rows.append({"seed": seed, "snr_db": 5.0, "sent": n_frames, "delivered": len(frames),
                     "delivered_share": len(frames) / n_frames})
    return rows


def plot(out: Path, losses: list[dict], cases: list[dict]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5))
    ax = axes[0]
    for (path, marker) in (("gr_channel_model", "o"), ("gr_channel_model_frac", "^"), ("mimo_channel", "s")):
        for snr, color in ((20.0, "C0"), (30.0, "C1")):
            for tracking, ls in ((False, ":"), (True, "-")):
                rows = [r for r in losses if (r["path"], r["snr_db"], r["tracking"]) == (path, snr, tracking)]
                if rows:
                    ax.errorbar([r["sfo_ppm"] for r in rows], [r["loss_db_mean"] for r in rows],
                                yerr=[r["loss_db_std"] for r in rows], marker=marker, ls=ls, color=color,
                                label=f"{path}, {snr:.0f} dB, tracking {'on' if tracking else 'off'}")
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set(xlabel="sampling-clock offset (ppm)", ylabel="NMSE loss vs 0 ppm (dB)", title="SFO, 2x4 ZF")
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)
    ax = axes[1]
    names = list(dict.fromkeys(r["case"] for r in cases))
    means = [np.mean([r["excess_db"] for r in cases if r["case"] == n]) for n in names]
    stds = [np.std([r["excess_db"] for r in cases if r["case"] == n]) for n in names]
    ax.barh(np.arange(len(names)), means, xerr=stds, color="C2")
    ax.axvline(1.0, color="k", lw=0.8, ls="--")
    ax.set(yticks=np.arange(len(names)), yticklabels=names, xlabel="ZF NMSE above the genie ZF bound (dB)",
           title="mimo_channel impairments at 20 dB")
    ax.invert_yaxis()
    fig.tight_layout()
    path = out / "impairments.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100, help="frames per point (default 100)")
    p.add_argument("--seeds", type=int, default=3, help="channel/noise seeds per point (default 3)")
    p.add_argument("--out", default="experiments/phy/output", help="output folder (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="a few points (the smoke run the tests use)")
    args = p.parse_args(argv)
    if args.frames < 1 or args.seeds < 1:
        p.error("--frames and --seeds must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(1, (1 if args.quick else args.seeds) + 1))
    sfo = sfo_cross_check(args.frames, seeds, args.quick)
    losses = sfo_losses(sfo)
    cases = impairment_cases(args.frames, seeds, args.quick)
    delivery = delivery_at_5db(2 * args.frames, seeds)
    tables = {"sfo": sfo, "sfo_loss": losses, "impairments": cases, "delivery_5db": delivery}
    for name, rows in tables.items():
        write_csv(out / f"impairments_{name}.csv", rows)
    all_case = [r["excess_db"] for r in cases if r["case"].startswith("all")]
    summary = {
        "frames_per_point": args.frames, "seeds": seeds, "cfo_subcarriers": CFO * 64,
        "phase_noise_linewidth_cycles_per_sample": PHASE_NOISE_LINEWIDTH,
        "iq_image_rejection_db": image_rejection_db(IQ["rx_iq_gain_db"], IQ["rx_iq_phase_deg"]),
        "sfo_loss_db": {f"{r['path']} {r['snr_db']:.0f} dB {r['sfo_ppm']:.0f} ppm tracking "
                        f"{'on' if r['tracking'] else 'off'}": [round(r["loss_db_mean"], 3),
                                                               round(r["loss_db_std"], 3)] for r in losses},
        "all_impairments_excess_over_zf_bound_db": [float(np.mean(all_case)), float(np.std(all_case))],
        "delivery_5db_all_impairments":
            sum(r["delivered"] for r in delivery) / sum(r["sent"] for r in delivery),
    }
    (out / "impairments_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(out, losses, cases)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
