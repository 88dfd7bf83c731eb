"""Where the receiver's channel estimate loses at fractional delays (issue 14): step 3 of
`semcom.ofat.receiver` (LS from the training, denoised on delay taps) against the frame's true
per-subcarrier H, with the integer delay grid (the estimator before) and the grid shifted by the
channel's fractional delay (`align_fraction`, now the default).

The training symbols are synthesised on the used subcarriers exactly as the receiver's FFT sees them
(Y = H X + noise of variance sigma^2 per element, 2x4 wifi64, T = 4 training symbols) through a
3-tap Rayleigh channel (mimo_channel's exponential profile, decay 1 sample) convolved with one of three
fractional-delay responses at delay f in [0, 1):

* `delay`: a pure delay (the 32-tap Kaiser sinc of `SfoResampler`: what mimo_channel's sampling-clock
  offset does to a frame, and what a path off the sample grid is);
* `gr_mmse`: GNU Radio's 8-tap MMSE interpolator inside `channels.channel_model` (read off the block
  with an impulse), which also attenuates the band edge between samples;
* `fd8`: mimo_channel's own 8-tap Kaiser fractional-delay filter (frac_delay=True), which is not a pure
  delay either (up to 1.3 dB of magnitude ripple in band).

Per point: the estimate's NMSE (all used subcarriers, the band edge |k| >= 20 and the centre |k| <= 6),
the taps kept, the ZF NMSE that estimate gives on the data subcarriers (expectation over data and
noise, exact given H and the estimate) against genie ZF with the true H, and what no estimator on the
candidate taps can represent (the least-squares floor of all 24 candidate taps, per window position).

    .venv/bin/python experiments/phy/channel_estimate.py        # 5 seeds x 30 channels per point
    .venv/bin/python experiments/phy/channel_estimate.py --quick --out /tmp/ce   # smoke run (tests)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from semcom.ofat.channel_model import (
    SfoResampler,
    channel_frequency_response,
    convolve_taps,
    draw_multipath,
    fd_bulk_delay,
    fractional_delay_fir,
    kaiser_sinc,
)
from semcom.ofat.frame import make_layout
from semcom.ofat.receiver import FrameReceiver
from semcom.progress import progress_bar
from semcom.results import save_figure, write_csv

LAYOUT = make_layout("wifi64", n_tx=2, n_rx=4)
KINDS = ("delay", "gr_mmse", "fd8")
ESTIMATORS = {"integer grid (before)": False, "fraction-aligned grid (now)": True}
WINDOW_OFFSET = 4
"""Samples between the FFT window's start and the channel's first tap (the S&C plateau's middle puts
the window a few samples into the cyclic prefix; the candidate taps reach 4 samples before it)."""
EDGE, CENTRE = 20, 6  # |k| >= EDGE: band edge; |k| <= CENTRE: centre


def response(kind: str, frac: float) -> tuple[np.ndarray, int]:
    """The fractional-delay FIR of `kind` at delay `frac` and its whole-sample bulk delay."""
    if kind == "delay":
        half = SfoResampler.HALF
        return kaiser_sinc(np.arange(2 * half)[None] - (half - 1) - frac, half)[0], half - 1
    if kind == "fd8":
        return fractional_delay_fir(frac), fd_bulk_delay()
    import importlib.util

    path = Path(__file__).with_name("impairments.py")
    spec = importlib.util.spec_from_file_location("phy_impairments", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.resampler_fir("gr_channel_model", frac), 3


def true_response(rng: np.random.Generator, fir: np.ndarray, bulk: int, offset: int) -> np.ndarray:
    """H (Nu, Nr, Nt) on the used subcarriers of a 3-tap Rayleigh draw through `fir`, its first tap
    `offset` samples into the FFT window (cyclically, as the receiver's window sees it)."""
    taps = convolve_taps(draw_multipath(rng, LAYOUT.n_rx, LAYOUT.n_tx, n_taps=3), fir)
    full = np.zeros((LAYOUT.n_rx, LAYOUT.n_tx, LAYOUT.fft_len), complex)
    idx = (np.arange(taps.shape[-1]) - bulk + offset) % LAYOUT.fft_len
    np.add.at(full, (slice(None), slice(None), idx), taps)
    return channel_frequency_response(full, LAYOUT.fft_len)[LAYOUT.used_bins]


def training_symbols(rng: np.random.Generator, h: np.ndarray, noise_var: float) -> np.ndarray:
    """The receiver's training symbols (Nr, T, Nu) after its FFT: H X + noise."""
    x = LAYOUT.training_freq[:, :, LAYOUT.used_bins]  # (Nt, T, Nu)
    y = np.einsum("ura,apu->rpu", h, x)
    noise = rng.standard_normal((*y.shape, 2)).view(complex)[..., 0] * np.sqrt(noise_var / 2)
    return (y + noise).astype(np.complex64)


def zf_nmse(h_true: np.ndarray, h_est: np.ndarray, noise_var: float) -> float:
    """Expected ZF NMSE on the data subcarriers with W from h_est on y = h_true x + n, x of energy
    1/Nt per stream: (||W H - I||^2 / Nt + sigma^2 ||W||^2) / (Nt / Nt) averaged over subcarriers."""
    d = LAYOUT.data_index_in_used
    ht, he = h_true[d], h_est[d]
    w = np.linalg.pinv(he)  # (K, Nt, Nr)
    bias = np.sum(np.abs(w @ ht - np.eye(LAYOUT.n_tx)) ** 2, axis=(1, 2)) / LAYOUT.n_tx
    return float(np.mean(bias + noise_var * np.sum(np.abs(w) ** 2, axis=(1, 2))))


def representable_floor(rx: FrameReceiver, fir: np.ndarray, bulk: int, offset: int) -> float:
    """Share of a single path's response (through `fir`) outside the span of all candidate delay taps
    on the used subcarriers (the integer grid's least-squares floor; the noise is not involved)."""
    full = np.zeros(LAYOUT.fft_len, complex)
    np.add.at(full, (np.arange(len(fir)) - bulk + offset) % LAYOUT.fft_len, fir)
    h = np.fft.fft(full)[LAYOUT.used_bins]
    coef, *_ = np.linalg.lstsq(rx._basis, h, rcond=None)
    return float(np.sum(np.abs(h - rx._basis @ coef) ** 2) / np.sum(np.abs(h) ** 2))


def _db(x: float) -> float:
    return float(10 * np.log10(x))


def run(seeds: list[int], channels: int, snrs: tuple[float, ...], fracs: np.ndarray) -> list[dict]:
    """One row per (kind, SNR, fraction, estimator, seed)."""
    used = np.array(sorted(LAYOUT.used_carriers))
    edge, centre = np.abs(used) >= EDGE, np.abs(used) <= CENTRE
    receivers = {}
    for name, align in ESTIMATORS.items():
        receivers[name] = FrameReceiver(LAYOUT)
        receivers[name].align_fraction = align
    rows = []
    points = [(k, snr, f, s) for k in KINDS for snr in snrs for f in fracs for s in seeds]
    firs = {(k, f): response(k, f) for k in KINDS for f in fracs}
    for kind, snr, frac, seed in progress_bar(points, desc="channel estimate"):
        fir, bulk = firs[(kind, frac)]
        noise_var = 10 ** (-snr / 10)
        rng = np.random.default_rng([seed, int(snr), int(round(frac * 1000)), KINDS.index(kind)])
        acc = {name: {"err": np.zeros(LAYOUT.n_used), "power": np.zeros(LAYOUT.n_used), "taps": 0.0,
                      "zf": 0.0, "genie": 0.0, "fraction_err": []} for name in ESTIMATORS}
        for _ in range(channels):
            h = true_response(rng, fir, bulk, WINDOW_OFFSET)
            yt = training_symbols(rng, h, noise_var)
            genie = zf_nmse(h, h, noise_var)
            for name, rx in receivers.items():
                est = rx._estimate_channel(yt)[0].transpose(2, 0, 1)  # (Nu, Nr, Nt)
                a = acc[name]
                a["err"] += np.sum(np.abs(est - h) ** 2, axis=(1, 2))
                a["power"] += np.sum(np.abs(h) ** 2, axis=(1, 2))
                a["taps"] += len(rx.last_taps)
                a["zf"] += zf_nmse(h, est, noise_var)
                a["genie"] += genie
                if rx.align_fraction and rx.last_fraction:
                    a["fraction_err"].append((rx.last_fraction - frac + 0.5) % 1.0 - 0.5)
        for name, a in acc.items():
            power = a["power"].mean()
            rows.append({
                "kind": kind, "snr_db": snr, "fraction": float(frac), "estimator": name, "seed": seed,
                "channels": channels,
                "nmse_est_db": _db(a["err"].mean() / power),
                "nmse_est_edge_db": _db(a["err"][edge].mean() / power),
                "nmse_est_centre_db": _db(a["err"][centre].mean() / power),
                "taps_kept": a["taps"] / channels,
                "zf_nmse_db": _db(a["zf"] / channels), "genie_zf_nmse_db": _db(a["genie"] / channels),
                "zf_loss_db": _db(a["zf"] / a["genie"]),
                "aligned_share": len(a["fraction_err"]) / channels,
                "fraction_error_rms": float(np.sqrt(np.mean(np.square(a["fraction_err"]))))
                if a["fraction_err"] else None})
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Mean and std over the seeds per (kind, SNR, fraction, estimator)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["kind"], r["snr_db"], r["fraction"], r["estimator"]), []).append(r)
    out = []
    for (kind, snr, frac, name), rs in groups.items():
        row = {"kind": kind, "snr_db": snr, "fraction": frac, "estimator": name, "seeds": len(rs)}
        for key in ("nmse_est_db", "nmse_est_edge_db", "nmse_est_centre_db", "taps_kept", "zf_loss_db"):
            v = [r[key] for r in rs]
            row |= {f"{key}_mean": float(np.mean(v)), f"{key}_std": float(np.std(v))}
        out.append(row)
    return out


def plot(out: Path, table: list[dict], snrs: tuple[float, ...]) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(KINDS), figsize=(4.2 * len(KINDS), 6.4), sharex=True)
    for col, kind in enumerate(KINDS):
        for name, style in zip(ESTIMATORS, ("--", "-"), strict=True):
            for snr in snrs:
                rs = sorted((r for r in table if r["kind"] == kind and r["estimator"] == name
                             and r["snr_db"] == snr), key=lambda r: r["fraction"])
                f = [r["fraction"] for r in rs]
                label = f"{name}, {snr:.0f} dB"
                axes[0, col].errorbar(f, [r["nmse_est_db_mean"] for r in rs],
                                      [r["nmse_est_db_std"] for r in rs], ls=style, label=label, capsize=2)
                axes[1, col].errorbar(f, [r["zf_loss_db_mean"] for r in rs],
                                      [r["zf_loss_db_std"] for r in rs], ls=style, label=label, capsize=2)
        axes[0, col].set(title=kind, ylabel="estimate NMSE (dB)")
        axes[1, col].set(xlabel="fractional delay (samples)", ylabel="ZF loss vs genie (dB)")
        for ax in axes[:, col]:
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=6)
    return save_figure(fig, out / "channel_estimate.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5, help="seeds per point (default 5)")
    p.add_argument("--channels", type=int, default=30, help="channel draws per seed and point (default 30)")
    p.add_argument("--out", default="experiments/phy/output", help="output folder (default %(default)s)")
    p.add_argument("--quick", action="store_true", help="a few points (the smoke run the tests use)")
    args = p.parse_args(argv)
    if args.seeds < 1 or args.channels < 1:
        p.error("--seeds and --channels must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    snrs = (30.0,) if args.quick else (10.0, 20.0, 30.0)
    fracs = np.array([0.0, 0.5]) if args.quick else np.arange(8) / 8
    seeds = list(range(1, (1 if args.quick else args.seeds) + 1))
    rows = run(seeds, 10 if args.quick else args.channels, snrs, fracs)
    table = summarise(rows)
    rx = FrameReceiver(LAYOUT)
    floor = [{"kind": k, "fraction": float(f), "window_offset": o,
              "floor_db": _db(max(representable_floor(rx, *response(k, f), o), 1e-30))}
             for k in KINDS for f in (0.0, 0.25, 0.5) for o in (0, 1, 2, 4, 8)]
    write_csv(out / "channel_estimate_runs.csv", rows)
    write_csv(out / "channel_estimate.csv", table)
    write_csv(out / "channel_estimate_floor.csv", floor)
    plot(out, table, snrs)

    def pick(kind: str, snr: float, frac: float, name: str, key: str) -> float:
        return round(next(r[f"{key}_mean"] for r in table if (r["kind"], r["snr_db"], r["fraction"],
                                                              r["estimator"]) == (kind, snr, frac, name)), 3)

    summary = {"seeds": seeds, "channels_per_seed": 10 if args.quick else args.channels,
               "window_offset": WINDOW_OFFSET, "points": {}}
    for kind in KINDS:
        for snr in snrs:
            for name in ESTIMATORS:
                summary["points"][f"{kind} {snr:.0f} dB {name}"] = {
                    f"f={f:g}": {"nmse_est_db": pick(kind, snr, f, name, "nmse_est_db"),
                                 "zf_loss_db": pick(kind, snr, f, name, "zf_loss_db"),
                                 "taps": pick(kind, snr, f, name, "taps_kept")} for f in (0.0, 0.5)}
    (out / "channel_estimate_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
