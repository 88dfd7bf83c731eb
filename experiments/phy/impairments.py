"""Hardware impairments (issue 14) through the real GNU Radio chain, seeded (`run_burst`: ofat_tx ->
channel -> ofat_rx in one flowgraph, no sockets):

* SFO cross-check: a sampling-clock offset of 0 / 4 / 20 ppm at 20 and 30 dB, 2x4, three fixed
  symbol-spaced taps per antenna pair, CFO 0.3 subcarrier, AWGN, ZF from each FRAME's Y and H, with
  and without the receiver's SFO tracking, through GNU Radio's own `channels.channel_model` (epsilon)
  per antenna pair and through `mimo_channel(sfo_ppm=...)`; several channel/noise seeds. The loss is
  given against the 0-ppm run (every frame on the sample grid) and against 0-ppm runs at the same
  fractional timings as the offset run's frames (the path's own resampler FIR folded into the taps),
  with the per-symbol loss along the frame and the genie ZF cost of those timings.
* Each impairment alone and all together in `mimo_channel` at 20 dB against the genie ZF bound
  (phase noise of a stated linewidth, IQ imbalance 0.5 dB / 3 degrees, DC -20 dBc, 20 ppm), a transmit
  IQ imbalance against its theory at 20-40 dB, and frame delivery at 5 dB with all of them on.
* GNU Radio's own impairment blocks (phase_noise_gen, iqbal_gen's TX and RX models) between ofat_tx
  and ofat_rx against the same impairments in mimo_channel, over the seeds.

    .venv/bin/python experiments/phy/impairments.py                # ~7 min here; experiments/phy/output/
    .venv/bin/python experiments/phy/impairments.py --quick --frames 10 --out /tmp/imp   # smoke (tests)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from semcom.burst import burst_nmse, run_burst, seeded_payloads
from semcom.ofat.channel_model import (
    ChannelSpec,
    SfoResampler,
    channel_frequency_response,
    convolve_taps,
    image_rejection_db,
    kaiser_sinc,
    phase_noise_gen_magnitude,
)
from semcom.ofat.equalize import zf, zf_nmse_bound
from semcom.ofat.frame import make_layout, map_values
from semcom.progress import progress_bar
from semcom.results import plot_label, read_csv, save_figure, write_csv

LAYOUT = make_layout("wifi64", n_tx=2, n_rx=4)
CFO = 0.3 / 64  # 0.3 subcarrier
PHASE_NOISE_LINEWIDTH = 1e-5  # cycles/sample: 10 Hz at 1 MS/s, 200 Hz at 20 MS/s
IQ = {"rx_iq_gain_db": 0.5, "rx_iq_phase_deg": 3.0}
TX_IQ = {"tx_iq_gain_db": 0.5, "tx_iq_phase_deg": 3.0}
DC_DBC = -20.0
ALL = "all (phase noise, RX IQ, DC, 20 ppm)"
CASES_ALL = {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH, **IQ, "dc_offset_dbc": DC_DBC, "sfo_ppm": 20.0}
CASES = {
    "none": {},
    "phase noise": {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH},
    "RX IQ 0.5 dB / 3 deg": IQ,
    "TX + RX IQ 0.5 dB / 3 deg": {**IQ, **TX_IQ},
    "DC -20 dBc": {"dc_offset_dbc": DC_DBC},
    "SFO 20 ppm": {"sfo_ppm": 20.0},
    ALL: CASES_ALL,
    # Phase noise against the receiver's linear common-phase fit instead of one phase per symbol.
    "phase noise, linear phase tracking": {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH,
                                           "rx": {"phase_tracking": "linear", "sfo_tracking": True,
                                                  "dc_removal": True, "iq_correction": True}},
    # The same without the RX IQ imbalance and without the blind correction (a radio calibrated by UHD).
    "all but RX IQ, iq_correction off": {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH,
                                         "dc_offset_dbc": DC_DBC, "sfo_ppm": 20.0,
                                         "rx": {"phase_tracking": "per_symbol", "sfo_tracking": True,
                                                "dc_removal": True}},
    # With a carrier offset, as between two radios (and the loopback flowgraphs, +-0.4 subcarrier): the
    # non-circular preamble and training then rotate and bias the blind IQ correction less.
    "none, CFO 0.3 subcarrier": {"cfo": CFO},
    f"{ALL}, CFO 0.3 subcarrier": {**CASES_ALL, "cfo": CFO},
    f"{ALL}, TX IQ, CFO 0.3 subcarrier": {**CASES_ALL, **TX_IQ, "cfo": CFO},
    # A transmit IQ imbalance alone, with the receiver's corrections (its blind IQ correction included)
    # and without: what iq_correction does with an image that the channel has mixed.
    "TX IQ 0.5 dB / 3 deg": TX_IQ,
    "TX IQ 0.5 dB / 3 deg, corrections off": {**TX_IQ, "rx": {}},
    # What each correction costs on its own with no impairment (the blind IQ correction with and without
    # a carrier offset).
    "none, per_symbol phase only": {"rx": {"phase_tracking": "per_symbol"}},
    "none, iq_correction only": {"rx": {"iq_correction": True}},
    "none, iq_correction only, CFO 0.3 subcarrier": {"cfo": CFO, "rx": {"iq_correction": True}},
    # The receiver's own cost: no impairment, and RX IQ alone, with its corrections off.
    "none, receiver corrections off": {"rx": {}},
    "RX IQ 0.5 dB / 3 deg, corrections off": {**IQ, "rx": {}},
}
RX_TRACKING = {"phase_tracking": "per_symbol", "sfo_tracking": True, "dc_removal": True,
               "iq_correction": True}


SFO_PATHS = ("gr_channel_model", "mimo_channel")
TIMING_BINS = 8  # fractional-timing bins of the same-timing reference (one 0-ppm run per bin)


def path_taps(path: str, seed: int) -> np.ndarray:
    """The three fixed symbol-spaced taps (4, 2, 3) of an SFO run: drawn from `seed` for GNU Radio's
    blocks; for mimo_channel its own first draw, reproduced from its seed (its channel stream is the
    first child of SeedSequence(seed))."""
    stream = seed if path == "gr_channel_model" else np.random.SeedSequence(seed).spawn(3)[0]
    rng = np.random.default_rng(stream)
    return ChannelSpec(n_rx=4, n_tx=2, n_taps=3, frac_delay=False).draw(rng).taps


def resampler_fir(path: str, delay: float) -> np.ndarray:
    """The FIR by which `path`'s sampling-clock resampler delays a frame it reads `delay` samples (in
    [0, 1)) off the transmit grid, up to whole samples: GNU Radio's 8-tap MMSE interpolator (the
    `mmse_resampler_cc` inside `channels.channel_model`, read off the block itself with an impulse) or
    mimo_channel's 32-tap Kaiser sinc (`SfoResampler`)."""
    if path == "mimo_channel":
        half = SfoResampler.HALF
        return kaiser_sinc(np.arange(2 * half)[None] - (half - 1) - delay, half)[0]
    from gnuradio import blocks, filter, gr

    impulse = np.zeros(32, np.complex64)
    impulse[16] = 1
    tb = gr.top_block()
    sink = blocks.vector_sink_c()
    # Output n = sum_k w_k(mu) in[n + k] interpolates in[n + 3 + mu]: a delay f is mu = 1 - f.
    tb.connect(blocks.vector_source_c(impulse.tolist()), filter.mmse_resampler_cc((1.0 - delay) % 1.0, 1.0),
               sink)
    tb.run()
    return np.array(sink.data())[9:17]


def frame_delay(h: np.ndarray) -> float:
    """Mean delay (samples) of a frame's channel estimate h (K data subcarriers, Nr, Nt): the phase step
    between adjacent data subcarriers, summed over every antenna pair."""
    carriers = np.array(LAYOUT.data_carriers)
    pairs = np.flatnonzero(np.diff(carriers) == 1)
    step = np.sum(np.asarray(h)[pairs + 1] * np.conj(np.asarray(h)[pairs]))
    return float(-np.angle(step) * LAYOUT.fft_len / (2 * np.pi))


def genie_zf_nmse(taps: np.ndarray, snr_db: float) -> float:
    """ZF NMSE with the true channel: sigma^2 mean_k tr((H_k^H H_k)^-1) over the data subcarriers (the
    transmitter puts unit total energy per subcarrier)."""
    h = channel_frequency_response(taps, LAYOUT.fft_len)[LAYOUT.data_bins]
    gram_inv = np.linalg.inv(np.conj(np.swapaxes(h, 1, 2)) @ h)
    return float(10 ** (-snr_db / 10) * np.mean(np.trace(gram_inv, axis1=1, axis2=2).real))


def per_symbol_nmse(frames: list, sent: dict[int, np.ndarray]) -> np.ndarray:
    """(frames, data symbols) ZF NMSE of each data symbol of each frame, from its Y and H."""
    out = []
    for meta, t in frames:
        x, _ = map_values(LAYOUT, sent[meta["seq"]], meta["scale"])  # (K, Nt, S)
        x_hat = zf(np.asarray(t["H"], complex), np.asarray(t["Y"], complex))
        out.append(np.sum(np.abs(x_hat - x) ** 2, axis=(0, 1)) / np.sum(np.abs(x) ** 2, axis=(0, 1)))
    return np.array(out)


def sfo_run(path: str, seed: int, snr: float, ppm: float, tracking: bool, n_frames: int,
            taps: np.ndarray | None = None) -> tuple[list, dict[int, np.ndarray]]:
    """One run_burst through `path` (GNU Radio's channel_model blocks or mimo_channel); `taps` replaces
    the path's own taps (GNU Radio's blocks then carry them, at epsilon 1: the same-timing reference)."""
    sent = seeded_payloads(n_frames, 1280, seed=seed)
    rx = {"sfo_tracking": tracking}
    if path == "gr_channel_model" or taps is not None:
        gr = {"taps": path_taps(path, seed) if taps is None else taps, "epsilon": 1 / (1 + ppm * 1e-6),
              "cfo": CFO, "noise_var": 10 ** (-snr / 10), "seed": seed}
        return run_burst(LAYOUT, sent, rx_options=rx, gr_channel=gr), sent
    return run_burst(LAYOUT, sent, rx_options=rx, fading="held", n_taps=3, frac_delay=False, cfo=CFO,
                     snr_db=snr, seed=seed, sfo_ppm=ppm), sent


def same_timing_reference(path: str, seed: int, snr: float, n_frames: int, bins: int) -> list[dict]:
    """Per fractional-timing bin: a 0-ppm run whose taps carry the path's own resampler FIR at the bin's
    centre (what an SFO does to a frame that lands there, without the drift inside the frame), its ZF
    NMSE and the genie ZF NMSE of those taps."""
    taps = path_taps(path, seed)
    out = []
    for b in range(bins):
        delay = (b + 0.5) / bins
        shifted = convolve_taps(taps, resampler_fir(path, delay))
        frames, sent = sfo_run(path, seed, snr, 0.0, True, n_frames, taps=shifted)
        out.append({"delay": delay, "nmse": float(np.mean(burst_nmse(LAYOUT, frames, sent, "zf"))),
                    "genie": genie_zf_nmse(shifted, snr), "delivered": len(frames), "sent": n_frames})
    return out


def _db(values: float | list[float] | np.ndarray) -> float:
    """10 log10 of the mean (NaN for no values)."""
    return float(10 * np.log10(np.mean(values))) if np.size(values) else float("nan")


def sfo_cross_check(n_frames: int, seeds: list[int], quick: bool
                    ) -> tuple[list[dict], list[dict], list[dict]]:
    """The SFO runs (rows per path, seed, SNR, ppm, tracking), the same-timing reference per
    fractional-timing bin, and the per-symbol ZF NMSE of each run (for the loss along the frame)."""
    snrs, ppms = ((30.0,), (0.0, 20.0)) if quick else ((20.0, 30.0), (0.0, 4.0, 20.0))
    paths = SFO_PATHS[:1] if quick else SFO_PATHS
    bins = 4 if quick else TIMING_BINS
    rows, timing, symbols = [], [], []
    groups = [(p, s, snr) for p in paths for s in seeds for snr in snrs]
    for path, seed, snr in progress_bar(groups, desc="SFO cross-check"):
        ref = same_timing_reference(path, seed, snr, max(5, n_frames // 4), bins)
        on_grid_genie = genie_zf_nmse(path_taps(path, seed), snr)
        timing += [{"path": path, "seed": seed, "snr_db": snr, "delay_bin_centre": r["delay"],
                    "nmse_zf_db": _db(r["nmse"]), "genie_zf_db": _db(r["genie"]),
                    "genie_on_grid_db": _db(on_grid_genie), "sent": r["sent"], "delivered": r["delivered"]}
                   for r in ref]
        on_grid_delay = None
        for ppm in ppms:
            for tracking in ((True,) if quick else (False, True)):
                frames, sent = sfo_run(path, seed, snr, ppm, tracking, n_frames)
                nmse = np.array(burst_nmse(LAYOUT, frames, sent, "zf"))
                delays = np.array([frame_delay(t["H"]) for _, t in frames])
                if ppm == 0:
                    on_grid_delay = float(np.median(delays))
                # Each frame's fractional timing against the 0-ppm run, and the reference at that timing.
                b = (np.mod(delays - on_grid_delay, 1.0) * bins).astype(int) % bins
                ppm_est = np.array([m["sfo_ppm"] for m, _ in frames if "sfo_ppm" in m])
                rows.append({
                    "path": path, "seed": seed, "snr_db": snr, "sfo_ppm": ppm, "tracking": tracking,
                    "sent": n_frames, "delivered": len(frames), "nmse_zf_db": _db(nmse),
                    "same_timing_ref_db": _db(np.mean([ref[i]["nmse"] for i in b])),
                    "same_timing_genie_db": _db(np.mean([ref[i]["genie"] for i in b])),
                    "genie_on_grid_db": _db(on_grid_genie),
                    "sfo_estimate_median_ppm": float(np.median(ppm_est)) if ppm_est.size else None,
                    "sfo_estimate_std_ppm": float(np.std(ppm_est)) if ppm_est.size else None})
                per_sym = per_symbol_nmse(frames, sent).mean(axis=0)
                symbols += [{"path": path, "seed": seed, "snr_db": snr, "sfo_ppm": ppm, "tracking": tracking,
                             "data_symbol": i, "nmse_zf_db": _db(v)} for i, v in enumerate(per_sym)]
    return rows, timing, symbols


def _spread(prefix: str, values: list[float]) -> dict[str, float]:
    return {f"{prefix}_mean": float(np.mean(values)), f"{prefix}_std": float(np.std(values)),
            f"{prefix}_max": float(np.max(values))}


def sfo_losses(rows: list[dict]) -> list[dict]:
    """Per (path, SNR, ppm, tracking), mean / std / max over seeds of: `loss_db`, against the same seed's
    0-ppm run (the issue's comparison: every frame on the sample grid); `loss_same_timing_db`, against
    the 0-ppm runs at the same fractional timings (the SFO's own cost); `timing_cost_db`, what those
    timings cost at 0 ppm; `genie_timing_cost_db`, the part of it the true channel already has (GNU
    Radio's interpolator attenuates the band edge)."""
    def run_of(r: dict) -> tuple:
        return r["path"], r["seed"], r["snr_db"], r["tracking"]

    base = {run_of(r): r["nmse_zf_db"] for r in rows if r["sfo_ppm"] == 0}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r["sfo_ppm"]:
            groups.setdefault((r["path"], r["snr_db"], r["sfo_ppm"], r["tracking"]), []).append(r)
    out = []
    for (path, snr, ppm, tracking), runs in sorted(groups.items()):
        out.append({"path": path, "snr_db": snr, "sfo_ppm": ppm, "tracking": tracking, "seeds": len(runs),
                    **_spread("loss_db", [r["nmse_zf_db"] - base[run_of(r)] for r in runs]),
                    **_spread("loss_same_timing_db",
                              [r["nmse_zf_db"] - r["same_timing_ref_db"] for r in runs]),
                    **_spread("timing_cost_db", [r["same_timing_ref_db"] - base[run_of(r)] for r in runs]),
                    **_spread("genie_timing_cost_db",
                              [r["same_timing_genie_db"] - r["genie_on_grid_db"] for r in runs])})
    return out


def timing_losses(timing: list[dict], rows: list[dict]) -> list[dict]:
    """Per (path, SNR, fractional-timing bin), mean / std over seeds: the 0-ppm run at that timing against
    the same seed's on-grid 0-ppm run (receiver and channel), and the genie part (channel only)."""
    base = {(r["path"], r["seed"], r["snr_db"]): r["nmse_zf_db"] for r in rows
            if r["sfo_ppm"] == 0 and r["tracking"]}
    groups: dict[tuple, list[dict]] = {}
    for t in timing:
        groups.setdefault((t["path"], t["snr_db"], t["delay_bin_centre"]), []).append(t)
    return [{"path": path, "snr_db": snr, "delay_bin_centre": delay, "seeds": len(ts),
             **_spread("timing_cost_db", [t["nmse_zf_db"] - base[(path, t["seed"], snr)] for t in ts]),
             **_spread("genie_timing_cost_db", [t["genie_zf_db"] - t["genie_on_grid_db"] for t in ts])}
            for (path, snr, delay), ts in sorted(groups.items())]


def symbol_losses(symbols: list[dict]) -> list[dict]:
    """Per (path, SNR, ppm, tracking, data symbol): the ZF NMSE of that symbol against the same symbol of
    the same seed's 0-ppm run, mean over seeds (flat: a per-frame error; growing: a drift left in)."""
    base = {(s["path"], s["seed"], s["snr_db"], s["tracking"], s["data_symbol"]): s["nmse_zf_db"]
            for s in symbols if s["sfo_ppm"] == 0}
    groups: dict[tuple, list[float]] = {}
    for s in symbols:
        if s["sfo_ppm"]:
            key = (s["path"], s["snr_db"], s["sfo_ppm"], s["tracking"], s["data_symbol"])
            ref = base[(s["path"], s["seed"], s["snr_db"], s["tracking"], s["data_symbol"])]
            groups.setdefault(key, []).append(s["nmse_zf_db"] - ref)
    return [{"path": p, "snr_db": snr, "sfo_ppm": ppm, "tracking": tr, "data_symbol": i, "seeds": len(v),
             "loss_db_mean": float(np.mean(v))} for (p, snr, ppm, tr, i), v in sorted(groups.items())]


def impairment_cases(n_frames: int, seeds: list[int], quick: bool) -> list[dict]:
    """Each impairment alone and all of them in mimo_channel, 2x4 at 20 dB (3-tap Rayleigh + fractional
    delay, new draw per frame), receiver with per-symbol phase and SFO tracking; NMSE vs the ZF bound."""
    rows = []
    cases = {k: CASES[k] for k in ("none", ALL)} if quick else CASES
    bound = 10 * np.log10(zf_nmse_bound(20.0, 2, 4))
    for (name, imp), seed in progress_bar([(c, s) for c in cases.items() for s in seeds], desc="impairments"):
        sent = seeded_payloads(n_frames, 1280, seed=100 + seed)
        imp = dict(imp)
        rx = imp.pop("rx", RX_TRACKING)
        frames = run_burst(LAYOUT, sent, rx_options=rx, snr_db=20.0, seed=seed, n_taps=3, **imp)
        zf_db = _db(burst_nmse(LAYOUT, frames, sent, "zf"))
        rows.append({"case": name, "seed": seed, "snr_db": 20.0, "sent": n_frames, "delivered": len(frames),
                     "nmse_zf_db": zf_db, "zf_bound_db": bound, "excess_db": zf_db - bound,
                     "nmse_lmmse_db": _db(burst_nmse(LAYOUT, frames, sent, "lmmse"))})
    return rows


def tx_iq_against_theory(n_frames: int, seeds: list[int], quick: bool) -> list[dict]:
    """A transmit IQ imbalance (0.5 dB / 3 degrees) against its theory, 2x4, mimo_channel (new channel per
    frame), receiver corrections off and with iq_correction: the image of X[-k] reaches subcarrier k
    through the same H[k] as X[k], so ZF leaves it at |k2/k1|^2 (the image rejection) of the signal; the
    training symbols carry their image into the channel estimate too. NMSE without the imbalance, with
    it, and the data image alone added to the former (NMSE_0 + 10^(-IRR/10))."""
    image = 10 ** (-image_rejection_db(TX_IQ["tx_iq_gain_db"], TX_IQ["tx_iq_phase_deg"]) / 10)
    rows = []
    points = [(snr, iq, seed) for snr in ((40.0,) if quick else (20.0, 30.0, 40.0)) for iq in (False, True)
              for seed in seeds]
    for snr, iq_correction, seed in progress_bar(points, desc="TX IQ"):
        sent = seeded_payloads(n_frames, 1280, seed=300 + seed)
        nmse = {}
        for name, imp in (("without", {}), ("with", TX_IQ)):
            frames = run_burst(LAYOUT, sent, rx_options={"iq_correction": iq_correction}, snr_db=snr,
                               seed=seed, n_taps=3, **imp)
            nmse[name] = float(np.mean(burst_nmse(LAYOUT, frames, sent, "zf")))
        rows.append({"snr_db": snr, "iq_correction": iq_correction, "seed": seed,
                     "nmse_without_db": _db(nmse["without"]), "nmse_with_tx_iq_db": _db(nmse["with"]),
                     "data_image_theory_db": _db(nmse["without"] + image),
                     "two_images_theory_db": _db(nmse["without"] + 2 * image),
                     "loss_db": _db(nmse["with"]) - _db(nmse["without"])})
    return rows


DELIVERY_CASES = {ALL: CASES_ALL, f"{ALL}, TX IQ, CFO 0.3 subcarrier": {**CASES_ALL, **TX_IQ, "cfo": CFO}}


PN_ALPHA = 1e-4  # phase_noise_gen's IIR pole: 1 / alpha = 10 000 samples, six frames walk like Wiener
GR_CROSS_CHECKS = {  # name: (gr_channel_models arguments, the same in mimo_channel, receiver options)
    "phase noise 1e-5, phase_noise_gen": (
        {"phase_noise": (phase_noise_gen_magnitude(PHASE_NOISE_LINEWIDTH, PN_ALPHA), PN_ALPHA)},
        {"phase_noise_linewidth": PHASE_NOISE_LINEWIDTH}, {"phase_tracking": "per_symbol"}),
    "TX IQ 0.5 dB / 3 deg, iqbal_gen mode 0": ({"tx_iq": (0.5, 3.0)}, TX_IQ, None),
    "RX IQ 0.5 dB / 3 deg, iqbal_gen mode 1": ({"rx_iq": (0.5, 3.0)}, IQ, None),
}


def gr_block_loss(seed: int, n_frames: int, gr_impairment: dict, mimo_impairment: dict,
                  rx: dict | None = None) -> dict[str, float]:
    """NMSE cost (dB, ZF, 2x4 at 20 dB) of an impairment through GNU Radio's own blocks (channel_model
    holding mimo_channel's first draw, reproduced from its seed, then the impairment block: see
    `semcom.burst.gr_channel_models`) and of the same impairment in mimo_channel, each against its
    own run without it."""
    sent = seeded_payloads(n_frames, 1280, seed=seed)
    spec = ChannelSpec(n_rx=4, n_tx=2, n_taps=3)  # mimo_channel's defaults: 3 taps + fractional delay
    taps = spec.draw(np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[0])).full_taps

    def nmse_db(path: str, on: bool) -> float:
        if path == "gr":
            frames = run_burst(LAYOUT, sent, rx_options=rx, gr_channel=dict(
                taps=taps, noise_var=0.01, seed=seed, **(gr_impairment if on else {})))
        else:
            frames = run_burst(LAYOUT, sent, rx_options=rx, fading="held", snr_db=20.0, seed=seed,
                               **(mimo_impairment if on else {}))
        if len(frames) != n_frames:
            raise RuntimeError(f"{path}: {len(frames)} of {n_frames} frames delivered at 20 dB")
        return _db(burst_nmse(LAYOUT, frames, sent, "zf"))

    return {path: nmse_db(path, True) - nmse_db(path, False) for path in ("gr", "mimo_channel")}


def gr_cross_checks(n_frames: int, seeds: list[int], quick: bool) -> list[dict]:
    """GR_CROSS_CHECKS over the seeds: each impairment's cost through GNU Radio's block and mimo_channel."""
    checks = dict(list(GR_CROSS_CHECKS.items())[:1]) if quick else GR_CROSS_CHECKS
    rows = []
    for (name, (gr_imp, mimo_imp, rx)), seed in progress_bar(
            [(c, s) for c in checks.items() for s in seeds], desc="GNU Radio blocks"):
        loss = gr_block_loss(seed, n_frames, gr_imp, mimo_imp, rx)
        rows.append({"impairment": name, "seed": seed, "snr_db": 20.0, "frames": n_frames,
                     "loss_gnuradio_db": loss["gr"], "loss_mimo_channel_db": loss["mimo_channel"],
                     "difference_db": loss["gr"] - loss["mimo_channel"]})
    return rows


def delivery_at_5db(n_frames: int, seeds: list[int]) -> list[dict]:
    """Frames delivered at 5 dB with the "all" impairments, and with a TX IQ imbalance and a CFO on top."""
    rows = []
    for (case, imp), seed in progress_bar([(c, s) for c in DELIVERY_CASES.items() for s in seeds],
                                          desc="delivery at 5 dB"):
        sent = seeded_payloads(n_frames, 1280, seed=200 + seed)
        frames = run_burst(LAYOUT, sent, rx_options=RX_TRACKING, snr_db=5.0, seed=seed, n_taps=3, **imp)
        rows.append({"case": case, "seed": seed, "snr_db": 5.0, "sent": n_frames, "delivered": len(frames),
                     "delivered_share": len(frames) / n_frames})
    return rows


def plot(out: Path, losses: list[dict], timing: list[dict], cases: list[dict]) -> Path:
    """The panels of the parts that ran: SFO loss vs ppm (against the 0-ppm run on the sample grid and
    against the same fractional timing), the cost of a fractional timing at 0 ppm, each impairment."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p, rows in (("sfo", losses), ("timing", timing), ("cases", cases)) if rows]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel == "sfo":
            for path, marker in (("gr_channel_model", "o"), ("mimo_channel", "s")):
                for snr, color in ((20.0, "C0"), (30.0, "C1")):
                    rows = [r for r in losses if (r["path"], r["snr_db"], r["tracking"]) == (path, snr, True)]
                    if not rows:
                        continue
                    ppm = [r["sfo_ppm"] for r in rows]
                    ax.errorbar(ppm, [r["loss_db_mean"] for r in rows], yerr=[r["loss_db_std"] for r in rows],
                                marker=marker, ls=":", color=color,
                                label=f"{plot_label(path)}, {snr:.0f} dB, vs 0 ppm on grid")
                    ax.errorbar(ppm, [r["loss_same_timing_db_mean"] for r in rows],
                                yerr=[r["loss_same_timing_db_std"] for r in rows], marker=marker, ls="-",
                                color=color,
                                label=f"{plot_label(path)}, {snr:.0f} dB, vs 0 ppm at the same timing")
            ax.axhline(0.5, color="k", lw=0.8, ls="--")
            ax.axhline(0.3, color="k", lw=0.8, ls="-.")
            ax.set(xlabel="sampling-clock offset (ppm)", ylabel="NMSE loss (dB)",
                   title="SFO, 2x4 ZF, sfo_tracking on (mean +- std over seeds)")
        elif panel == "timing":
            for path, marker in (("gr_channel_model", "o"), ("mimo_channel", "s")):
                for snr, color in ((20.0, "C0"), (30.0, "C1")):
                    rows = [r for r in timing if (r["path"], r["snr_db"]) == (path, snr)]
                    if not rows:
                        continue
                    x = [r["delay_bin_centre"] for r in rows]
                    ax.errorbar(x, [r["timing_cost_db_mean"] for r in rows],
                                yerr=[r["timing_cost_db_std"] for r in rows], marker=marker, color=color,
                                label=f"{plot_label(path)}, {snr:.0f} dB, receiver")
                    ax.plot(x, [r["genie_timing_cost_db_mean"] for r in rows], marker=marker, ls=":",
                            color=color, label=f"{plot_label(path)}, {snr:.0f} dB, genie ZF (channel only)")
            ax.set(xlabel="fractional timing of the frame (samples)", ylabel="NMSE vs on-grid 0 ppm (dB)",
                   title="0 ppm, the SFO's resampler at a fixed fractional timing")
        else:
            names = list(dict.fromkeys(r["case"] for r in cases))
            means = [np.mean([r["excess_db"] for r in cases if r["case"] == n]) for n in names]
            stds = [np.std([r["excess_db"] for r in cases if r["case"] == n]) for n in names]
            ax.barh(np.arange(len(names)), means, xerr=stds, color="C2")
            ax.axvline(1.0, color="k", lw=0.8, ls="--")
            ax.set(yticks=np.arange(len(names)), yticklabels=names,
                   xlabel="ZF NMSE above the genie ZF bound (dB)", title="mimo_channel impairments at 20 dB")
            ax.invert_yaxis()
        if panel != "cases":
            ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    path = out / "impairments.png"
    save_figure(fig, path)
    return path


PARTS = ("sfo", "impairments", "crosscheck", "delivery")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=100, help="frames per point (default 100)")
    p.add_argument("--seeds", type=int, default=5, help="channel/noise seeds per point (default 5)")
    p.add_argument("--out", default="experiments/phy/output", help="output folder (default %(default)s)")
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS),
                   help="which parts to run (default: all); the others' CSVs and summary entries are kept, "
                   "the PNG shows the parts that ran")
    p.add_argument("--quick", action="store_true", help="a few points (the smoke run the tests use)")
    p.add_argument("--replot", action="store_true",
                   help="measure nothing: redraw impairments.png from the CSVs in --out")
    args = p.parse_args(argv)
    if args.replot:
        paths = {name: Path(args.out) / f"impairments_{name}.csv" for name in ("sfo_loss", "sfo_timing",
                                                                               "impairments")}
        tables = {name: read_csv(path) if path.is_file() else [] for name, path in paths.items()}
        if not any(tables.values()):
            p.error(f"--replot: no impairments_*.csv in {args.out}")
        print(plot(Path(args.out), tables["sfo_loss"], tables["sfo_timing"], tables["impairments"]))
        return 0
    if args.frames < 1 or args.seeds < 1:
        p.error("--frames and --seeds must be >= 1")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(1, (1 if args.quick else args.seeds) + 1))
    tables: dict[str, list[dict]] = {}
    summary: dict = {"frames_per_point": args.frames, "seeds": seeds, "cfo_subcarriers": CFO * 64}
    if "sfo" in args.parts:
        sfo, timing, symbols = sfo_cross_check(args.frames, seeds, args.quick)
        tables |= {"sfo": sfo, "sfo_loss": sfo_losses(sfo), "sfo_timing": timing_losses(timing, sfo),
                   "sfo_per_symbol": symbol_losses(symbols)}
        summary["sfo_loss_db"] = {
            f"{r['path']} {r['snr_db']:.0f} dB {r['sfo_ppm']:.0f} ppm tracking {('off', 'on')[r['tracking']]}"
            :
                {name: [round(r[f"{key}_mean"], 3), round(r[f"{key}_std"], 3)]
                 for name, key in (("vs_0ppm_on_grid", "loss_db"), ("vs_same_timing", "loss_same_timing_db"))}
            for r in tables["sfo_loss"]}
    if "impairments" in args.parts:
        tables["impairments"] = cases = impairment_cases(args.frames, seeds, args.quick)
        tables["tx_iq"] = tx_iq = tx_iq_against_theory(args.frames, seeds, args.quick)
        groups: dict[tuple, list[dict]] = {}
        for r in tx_iq:
            groups.setdefault((r["snr_db"], r["iq_correction"]), []).append(r)
        summary["tx_iq_db"] = {
            f"{snr:.0f} dB iq_correction {('off', 'on')[iq]}": {
                key: round(float(np.mean([r[key] for r in runs])), 3)
                for key in ("loss_db", "nmse_with_tx_iq_db", "data_image_theory_db", "two_images_theory_db")}
            for (snr, iq), runs in groups.items()}
        all_case = [r["excess_db"] for r in cases if r["case"] == ALL]
        all_cfo = [r["excess_db"] for r in cases if r["case"] == f"{ALL}, CFO 0.3 subcarrier"]
        summary |= {"phase_noise_linewidth_cycles_per_sample": PHASE_NOISE_LINEWIDTH,
                    "iq_image_rejection_db": image_rejection_db(IQ["rx_iq_gain_db"], IQ["rx_iq_phase_deg"]),
                    "all_impairments_excess_over_zf_bound_db": [float(np.mean(all_case)),
                                                                float(np.std(all_case))],
                    "all_impairments_cfo_0.3_excess_over_zf_bound_db":
                        [float(np.mean(all_cfo)), float(np.std(all_cfo))] if all_cfo else None}
    if "crosscheck" in args.parts:
        tables["gnuradio_blocks"] = cross = gr_cross_checks(args.frames, seeds, args.quick)
        summary["gnuradio_blocks_loss_db"] = {}
        for name in dict.fromkeys(r["impairment"] for r in cross):
            runs = [r for r in cross if r["impairment"] == name]
            values = {key: [r[key] for r in runs] for key in ("loss_gnuradio_db", "loss_mimo_channel_db",
                                                               "difference_db")}
            summary["gnuradio_blocks_loss_db"][name] = {
                key: [round(float(np.mean(v)), 3), round(float(np.std(v)), 3)] for key, v in values.items()}
    if "delivery" in args.parts:
        tables["delivery_5db"] = delivery = delivery_at_5db(2 * args.frames, seeds)
        summary["delivery_5db_all_impairments"] = (sum(r["delivered"] for r in delivery)
                                                   / sum(r["sent"] for r in delivery))
    for name, rows in tables.items():
        write_csv(out / f"impairments_{name}.csv", rows)
    summary_path = out / "impairments_summary.json"
    if summary_path.exists() and set(args.parts) != set(PARTS):  # keep the parts that did not run
        summary = json.loads(summary_path.read_text()) | summary
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    plot(out, tables.get("sfo_loss", []), tables.get("sfo_timing", []), tables.get("impairments", []))
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
