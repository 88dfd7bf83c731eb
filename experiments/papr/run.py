#!/usr/bin/env python3
"""PAPR of OFAT frames vs the Gaussian theory, and the NMSE cost of envelope clipping in loopback.

1. CCDF: per-symbol PAPR of OFAT frames (wifi64, 2 TX, complex mode, Gaussian payloads filling every
   frame) at the native rate and 4x interpolated, over the data symbols (the acceptance: within 0.5 dB
   of 1 - (1 - e^-z)^(alpha Nu) at 1e-3, Nu = 52 used subcarriers, alpha = 1 native / 2.8 interpolated)
   and over all symbols (preamble, training, header included; for information).
2. Clipping: the transmitted frames (all symbols) are clipped at ratio_db above the layout's nominal
   RMS (`papr.clip`), sent through a 2x4 multipath channel (3 exponential taps, fractional and integer
   delay, same realisation and noise for every ratio) with AWGN, received by `FrameReceiver` and
   reconstructed with ZF (`reconstruct_payload`). Reported per ratio: PAPR at 1e-3 after clipping,
   Bussgang gain (theory, measured on the data subcarriers, and of the fixed training symbols), the
   clipping-only NMSE without a channel, the receiver's NMSE at each SNR, and the Bussgang prediction
   (unclipped NMSE / alpha^2 + distortion * occupied_fraction / alpha^2).

Writes ccdf.csv, clipping.csv, summary.json and papr.png to --out:

    .venv/bin/python experiments/papr/run.py            # full run, results in experiments/papr/output
    .venv/bin/python experiments/papr/run.py --quick    # a smoke run (seconds), to a temp directory
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from semcom.ofat import papr
from semcom.ofat.channel_model import ChannelSpec, Realisation
from semcom.ofat.equalize import reconstruct_payload
from semcom.ofat.frame import OfatLayout, make_layout, modulate_frame, ofdm_demodulate
from semcom.ofat.receiver import FrameReceiver
from semcom.progress import progress_bar
from semcom.results import save_figure

ROOT = Path(__file__).resolve().parents[2]
RATIOS_DB = [math.inf, 12.0, 10.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0]
PROB = 1e-3
LEAD, TAIL = 100, 200  # idle samples around each burst


def through_channel(x: np.ndarray, real: Realisation, noise: np.ndarray, lead: int = LEAD) -> np.ndarray:
    """(Nt, n) burst -> (Nr, lead + n + tail) received samples: FIR per antenna pair plus given noise.

    noise: (Nr, lead + n + tail) complex, already scaled (variance 10^(-SNR/10) per sample).
    """
    y = noise.copy()
    y[:, lead: lead + x.shape[1] + real.extra_samples] += real.apply(x)
    return y


def make_frames(layout: OfatLayout, n_frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Full frames with N(0, 1) payloads: (F, Nt, frame_len) complex64 and the payloads (F, capacity)."""
    payloads = np.random.default_rng(seed).standard_normal((n_frames, layout.capacity))
    return np.stack([modulate_frame(layout, v, seq=s)[0] for s, v in enumerate(payloads)]), payloads


def ccdf_part(layout: OfatLayout, n_frames: int, seed: int, thresholds: np.ndarray) -> tuple[dict, dict]:
    frames, _ = make_frames(layout, n_frames, seed)
    cols: dict[str, np.ndarray] = {"threshold_db": thresholds}
    summary: dict = {"layout": layout.describe(), "n_used": layout.n_used, "frames": n_frames}
    for os_ in (1, 4):
        tag = "native" if os_ == 1 else f"os{os_}"
        data = papr.papr_db(frames, layout, symbols="data", oversampling=os_)
        every = papr.papr_db(frames, layout, symbols="all", oversampling=os_)
        cols[f"data_{tag}"] = papr.ccdf(data, thresholds)
        cols[f"all_{tag}"] = papr.ccdf(every, thresholds)
        cols[f"theory_{tag}"] = papr.gaussian_ccdf(thresholds, layout.n_used, os_)
        theory = papr.gaussian_papr_db(PROB, layout.n_used, os_)
        measured = papr.papr_quantile_db(data, PROB)
        summary[tag] = {
            "alpha": papr.ALPHA_NYQUIST if os_ == 1 else papr.ALPHA_OVERSAMPLED,
            "data_symbols": int(data.size),
            "data_papr_at_1e-3_db": measured,
            "theory_papr_at_1e-3_db": theory,
            "deviation_db": measured - theory,
            "data_ccdf_at_theory_point": float(papr.ccdf(data, [theory])[0]),
            "all_symbols_papr_at_1e-3_db": papr.papr_quantile_db(every, PROB),
            "data_papr_at_1e-2_db": papr.papr_quantile_db(data, 1e-2),
            "theory_papr_at_1e-2_db": papr.gaussian_papr_db(1e-2, layout.n_used, os_),
        }
    summary["sync_peak_papr_db"] = {"native": papr.sync_papr_db(layout, 1),
                                    "os4": papr.sync_papr_db(layout, 4)}
    return cols, summary


def training_gain(layout: OfatLayout, ratio_db: float) -> tuple[float, float]:
    """Bussgang gain of the fixed training symbols and their residual distortion per bin (rel. power).

    Every antenna's training symbol is the same waveform up to a unit-modulus factor, so clipping keeps
    the cover orthogonal and the LS estimate becomes H_k * C_k / S_k with C the clipped spectrum.
    """
    s = np.fft.ifft(layout.training_freq[:, :1], axis=-1, norm="ortho")  # (Nt, 1, fft_len), bodies
    c = papr.clip(s, ratio_db, papr.layout_rms(layout))
    s_k = np.fft.fft(s, axis=-1, norm="ortho")[..., layout.used_bins]
    c_k = np.fft.fft(c, axis=-1, norm="ortho")[..., layout.used_bins]
    ratio = c_k / s_k
    alpha_t = float(np.mean(ratio.real))
    return alpha_t, float(np.mean(np.abs(ratio - alpha_t) ** 2) / alpha_t**2)


def receive(layout: OfatLayout, frames: np.ndarray, realisations: list[Realisation], noise: list[np.ndarray],
            payloads: np.ndarray, gain: float) -> tuple[float, int]:
    """Each frame through its channel and noise, a fresh receiver, ZF; mean NMSE of payload / gain."""
    nmse, lost = [], 0
    for f in range(len(frames)):
        got = FrameReceiver(layout).process(through_channel(frames[f], realisations[f], noise[f]))
        if len(got) != 1 or got[0].header.seq != f:
            lost += 1
            continue
        fr = got[0]
        v = reconstruct_payload(layout, fr.h, fr.y, shape=fr.header.shape, scale=fr.header.scale,
                                noise_var=fr.noise_var) / gain
        nmse.append(float(np.sum((v - payloads[f]) ** 2) / np.sum(payloads[f] ** 2)))
    return (float(np.mean(nmse)) if nmse else math.nan), lost


def clipping_part(layout: OfatLayout, spec: ChannelSpec, n_frames: int, snrs: list[float], seed: int,
                  progress: bool, papr_frames: np.ndarray, thresholds: np.ndarray
                  ) -> tuple[list[dict], dict, dict]:
    """Receiver runs on n_frames new frames; PAPR statistics after clipping on papr_frames (more of them)."""
    frames, payloads = make_frames(layout, n_frames, seed + 1)
    rng = np.random.default_rng(seed + 2)
    realisations = [spec.draw(rng) for _ in range(n_frames)]
    n_samples = LEAD + frames.shape[-1] + TAIL
    shape = (spec.n_rx, n_samples)
    noise_unit = [(rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
                  for _ in range(n_frames)]
    rms = papr.layout_rms(layout)
    n_sym = frames.shape[-1] // layout.symbol_len
    sel = (Ellipsis, slice(layout.n_sync_symbols, None), layout.data_bins)
    x_data = ofdm_demodulate(layout, frames, n_sym)[sel]
    sync_native = papr.sync_papr_db(layout, 1)
    rows = []
    clip_ccdfs: dict[float, np.ndarray] = {}
    nmse_ref: dict[float, float] = {}
    for ratio_db in progress_bar(RATIOS_DB, desc="clip ratios", progress=progress):
        clipped = papr.clip(frames, ratio_db, rms)
        th = papr.clipping_noise_theory(ratio_db)
        alpha = float(th.alpha)
        y_data = ofdm_demodulate(layout, clipped, n_sym)[sel]
        alpha_meas = float(np.real(np.vdot(x_data, y_data)) / np.vdot(x_data, x_data).real)
        clip_only = float(np.mean(np.abs(y_data / alpha_meas - x_data) ** 2) / np.mean(np.abs(x_data) ** 2))
        pred_clip = float(papr.predicted_clipping_nmse(ratio_db, layout))
        alpha_t, train_dist = training_gain(layout, ratio_db)
        clipped_many = papr.clip(papr_frames, ratio_db, rms)
        data_native = papr.papr_db(clipped_many, layout, symbols="data")
        data_os4 = papr.papr_db(clipped_many, layout, symbols="data", oversampling=4)
        clip_ccdfs[ratio_db] = papr.ccdf(data_os4, thresholds)
        row = {
            "ratio_db": ratio_db,
            "papr_native_1e-3_db": papr.papr_quantile_db(data_native, PROB),
            "papr_os4_1e-3_db": papr.papr_quantile_db(data_os4, PROB),
            "papr_os4_all_1e-3_db": papr.papr_quantile_db(
                papr.papr_db(clipped_many, layout, oversampling=4), PROB),
            "tx_power_db": 10 * math.log10(float(np.mean(np.abs(clipped) ** 2)) / papr.layout_power(layout)),
            "tx_power_theory_db": 10 * math.log10(float(th.output_power)),
            "clipped_fraction": float(np.mean(np.abs(frames) > rms * 10 ** (ratio_db / 20))),
            "alpha_theory": alpha,
            "alpha_data": alpha_meas,
            "training_clipped": bool(ratio_db < sync_native),
            "alpha_training": alpha_t,
            "training_distortion_db": 10 * math.log10(train_dist) if train_dist > 0 else -math.inf,
            "nmse_clip_only_db": 10 * math.log10(clip_only) if clip_only > 0 else -math.inf,
            "bussgang_clip_nmse_db": 10 * math.log10(pred_clip) if pred_clip > 0 else -math.inf,
        }
        data_only = papr.clip_frame(frames, layout, ratio_db, symbols="data")
        for snr in snrs:
            noise = [n * 10 ** (-snr / 20) for n in noise_unit]
            mean_nmse, lost = receive(layout, clipped, realisations, noise, payloads, 1.0)
            # Data-only clipping: clean estimate, the receiver divides by the known Bussgang gain.
            mean_do, lost_do = receive(layout, data_only, realisations, noise, payloads, alpha)
            if ratio_db == math.inf:
                nmse_ref[snr] = mean_nmse
            # Bussgang, alpha absorbed: (noise term measured unclipped) / alpha^2 + clipping term.
            pred = nmse_ref[snr] / alpha**2 + pred_clip
            # Upper bound with the clipped training: its gain alpha_t instead of alpha, plus its fixed
            # per-subcarrier distortion undiminished by the estimator's delay-domain denoising.
            bound = (nmse_ref[snr] / alpha_t**2 + (alpha / alpha_t - 1) ** 2
                     + pred_clip * alpha**2 / alpha_t**2 + train_dist)
            row[f"nmse_rx_{snr:g}db_db"] = 10 * math.log10(mean_nmse)
            row[f"nmse_pred_{snr:g}db_db"] = 10 * math.log10(pred)
            row[f"nmse_bound_{snr:g}db_db"] = 10 * math.log10(bound)
            row[f"nmse_rx_dataonly_{snr:g}db_db"] = 10 * math.log10(mean_do)
            row[f"lost_{snr:g}db"] = lost + lost_do
        rows.append(row)
    info = {"channel": {k: getattr(spec, k) for k in ("n_rx", "n_tx", "n_taps", "decay", "frac_delay",
                                                      "max_int_delay")},
            "frames_per_ratio": n_frames, "papr_frames": len(papr_frames), "snrs_db": snrs,
            "training_papr_native_db": sync_native,
            "reconstruction": "ZF (reconstruct_payload default)", "receiver": "FrameReceiver (numpy)"}
    return rows, info, clip_ccdfs


def write_csv(path: Path, cols: dict[str, list | np.ndarray]) -> None:
    names = list(cols)
    n = len(cols[names[0]])
    with path.open("w") as fh:
        fh.write(",".join(names) + "\n")
        for i in range(n):
            fh.write(",".join(_fmt(cols[k][i]) for k in names) + "\n")


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(int(v))
    if isinstance(v, (int, np.integer)):
        return str(v)
    return f"{float(v):.6g}"


def _finite(obj):
    """JSON has no inf: non-finite floats become the strings "inf" / "-inf" / "nan"."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(obj):
        return str(float(obj))
    return obj


def plot(path: Path, ccdf_cols: dict, rows: list[dict], snrs: list[float], clip_ccdfs: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(17, 5))
    t = ccdf_cols["threshold_db"]
    for tag, colour in (("native", "C0"), ("os4", "C1")):
        label = "native" if tag == "native" else "4x interpolated"
        ax[0].semilogy(t, ccdf_cols[f"data_{tag}"], color=colour, lw=2, label=f"data symbols, {label}")
        ax[0].semilogy(t, ccdf_cols[f"all_{tag}"], color=colour, ls=":", label=f"all symbols, {label}")
        alpha = "1" if tag == "native" else "2.8"
        ax[0].semilogy(t, ccdf_cols[f"theory_{tag}"], color=colour, ls="--",
                       label=f"theory 1-(1-e^-z)^({alpha} Nu)")
    ax[0].axhline(PROB, color="grey", lw=0.5)
    ax[0].set(xlabel="PAPR z (dB)", ylabel="P(PAPR > z)", ylim=(1e-4, 1), xlim=(4, 12.5),
              title="PAPR CCDF, OFAT wifi64 (Nu = 52), per symbol and antenna")
    ax[0].legend(fontsize=7)
    for ratio_db, curve in clip_ccdfs.items():
        ax[1].semilogy(t, curve, label="no clipping" if ratio_db == math.inf else f"clip {ratio_db:g} dB")
    ax[1].axhline(PROB, color="grey", lw=0.5)
    ax[1].set(xlabel="PAPR z (dB), 4x interpolated", ylabel="P(PAPR > z)", ylim=(1e-4, 1), xlim=(2, 12.5),
              title="after clipping (data symbols): peak regrowth")
    ax[1].legend(fontsize=7)
    x_of = [14.0 if r["ratio_db"] == math.inf else r["ratio_db"] for r in rows]
    ax[2].plot(x_of, [r["nmse_clip_only_db"] for r in rows], "ko", label="clipping only, measured")
    ax[2].plot(x_of, [r["bussgang_clip_nmse_db"] for r in rows], "k--", label="Bussgang: d occ / alpha^2")
    for i, snr in enumerate(snrs):
        c = f"C{i + 2}"
        ax[2].plot(x_of, [r[f"nmse_rx_{snr:g}db_db"] for r in rows], "s-", color=c,
                   label=f"receiver {snr:g} dB, all symbols clipped")
        ax[2].plot(x_of, [r[f"nmse_rx_dataonly_{snr:g}db_db"] for r in rows], "^-", color=c, mfc="none",
                   label=f"receiver {snr:g} dB, data clipped, / alpha")
        ax[2].plot(x_of, [r[f"nmse_pred_{snr:g}db_db"] for r in rows], ":", color=c,
                   label=f"Bussgang prediction {snr:g} dB")
        ax[2].plot(x_of, [r[f"nmse_bound_{snr:g}db_db"] for r in rows], "-.", color=c, lw=0.8,
                   label=f"+ clipped-training error (bound) {snr:g} dB")
    ax[2].set_xticks(x_of, ["off" if r["ratio_db"] == math.inf else f"{r['ratio_db']:g}" for r in rows])
    ax[2].set(xlabel="clipping ratio (dB above RMS)", ylabel="payload NMSE (dB)", ylim=(-75, -10),
              title="NMSE cost of clipping")
    ax[2].invert_xaxis()
    ax[2].legend(fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="few frames, one SNR (a smoke run)")
    p.add_argument("--ccdf-frames", type=int, default=None, help="frames for the CCDF (128 symbols each)")
    p.add_argument("--clip-frames", type=int, default=None, help="frames per clipping ratio and SNR")
    p.add_argument("--snrs", type=float, nargs="+", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    ccdf_frames = args.ccdf_frames or (60 if args.quick else 600)
    clip_frames = args.clip_frames or (6 if args.quick else 50)
    snrs = args.snrs or ([30.0] if args.quick else [30.0, 50.0])
    default_out = Path(tempfile.gettempdir()) / "semcom_papr_quick" if args.quick else \
        ROOT / "experiments/papr/output"
    out = Path(args.out) if args.out else default_out
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    layout = make_layout("wifi64", n_tx=2, n_rx=4)
    thresholds = np.round(np.arange(2.0, 13.01, 0.05), 2)
    ccdf_cols, ccdf_summary = ccdf_part(layout, ccdf_frames, args.seed, thresholds)
    extra = {}
    for name, lay in (("ofat128 complex", make_layout("ofat128", n_tx=2, n_rx=4)),
                      ("wifi64 real mode", make_layout("wifi64", n_tx=2, n_rx=4, mode="real"))):
        frames, _ = make_frames(lay, max(ccdf_frames // 4, 40), args.seed + 7)
        extra[name] = {f"{tag}": {"data_papr_at_1e-3_db": papr.papr_quantile_db(
            papr.papr_db(frames, lay, symbols="data", oversampling=os_), PROB),
            "theory_papr_at_1e-3_db": papr.gaussian_papr_db(PROB, lay.n_used, os_)}
            for tag, os_ in (("native", 1), ("os4", 4))}
    write_csv(out / "ccdf.csv", ccdf_cols)

    spec = ChannelSpec(n_rx=4, n_tx=2, n_taps=3, decay=1.0, frac_delay=True, max_int_delay=4)
    papr_frames, _ = make_frames(layout, max(ccdf_frames // 2, 40), args.seed + 3)
    rows, clip_info, clip_ccdfs = clipping_part(layout, spec, clip_frames, snrs, args.seed,
                                                not args.no_progress, papr_frames, thresholds)
    write_csv(out / "clipping.csv", {k: [r[k] for r in rows] for k in rows[0]})
    plot(out / "papr.png", ccdf_cols, rows, snrs,
         {r: clip_ccdfs[r] for r in (math.inf, 8.0, 6.0, 4.0, 3.0)})

    backoff = {f"{t:g}": papr.backoff_recommendation(layout, t).__dict__ for t in (1e-2, 1e-3, 1e-4)}
    command = "python experiments/papr/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    summary = {"command": command,
               "ccdf": ccdf_summary, "ccdf_other_layouts": extra, "clipping": clip_info,
               "clipping_rows": rows, "backoff": backoff, "wall_s": round(time.time() - t0, 1)}
    (out / "summary.json").write_text(json.dumps(_finite(summary), indent=2, default=str))

    for tag in ("native", "os4"):
        s = ccdf_summary[tag]
        print(f"CCDF {tag:6s} data symbols ({s['data_symbols']}): "
              f"PAPR at 1e-3 = {s['data_papr_at_1e-3_db']:.2f} dB, "
              f"theory (alpha={s['alpha']}) {s['theory_papr_at_1e-3_db']:.2f} dB, "
              f"deviation {s['deviation_db']:+.2f} dB; all symbols {s['all_symbols_papr_at_1e-3_db']:.2f} dB")
    for name, d in extra.items():
        print(f"  {name}: " + ", ".join(
            f"{tag} {v['data_papr_at_1e-3_db']:.2f} (theory {v['theory_papr_at_1e-3_db']:.2f})"
            for tag, v in d.items()))
    hdr = ["ratio", "PAPRn", "PAPR4x", "alpha", "a_data", "a_train", "clip-only", "Bussgang"]
    hdr += [f"rx{s:g}/data/pred/bnd" for s in snrs]
    print(" ".join(f"{h:>13s}" for h in hdr[:-len(snrs)]), " ".join(f"{h:>23s}" for h in hdr[-len(snrs):]))
    for r in rows:
        vals = [f"{r['ratio_db']:g}", f"{r['papr_native_1e-3_db']:.2f}", f"{r['papr_os4_1e-3_db']:.2f}",
                f"{r['alpha_theory']:.4f}", f"{r['alpha_data']:.4f}", f"{r['alpha_training']:.4f}",
                f"{r['nmse_clip_only_db']:.2f}", f"{r['bussgang_clip_nmse_db']:.2f}"]
        vals += ["/".join(f"{r[f'nmse_{k}_{s:g}db_db']:.1f}" for k in ("rx", "rx_dataonly", "pred", "bound"))
                 for s in snrs]
        n = len(snrs)
        print(" ".join(f"{v:>13s}" for v in vals[:-n]), " ".join(f"{v:>23s}" for v in vals[-n:]))
    print(f"outputs in {out} ({summary['wall_s']} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
