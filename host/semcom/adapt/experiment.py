"""Online fine-tuning of DeepJSCC while the SNR steps 21 -> 18 -> 15 -> 12 -> 9 dB (seed 000, IV-A, Fig. 5).

The "real" channel is the GNU Radio loopback flowgraph (``FlowgraphChannel``: 2x4 OFAT, per-frame
Rayleigh multipath, CFO, timing offset, LS channel estimate, MMSE), one OFAT frame per image; a torch
``OfatChannel`` can stand in for it (``real="torch"``, the fast variant). The codec is the project's
DeepJSCC on 32x32 grey UCI digits with c = 8 filters: 512 reals = 256 complex channel symbols per image
(the reference's 256 symbols).

Per seed:

1. The cGAN channel is fitted on ``probe_frames`` captures of random unit-power values at 21 dB.
2. Initial training (shared by every arm): the codec trains from scratch at 21 dB through the cGAN,
   ``initial_epochs`` epochs, evaluated over the real channel after each epoch.
3. At each SNR drop, every arm gets ``step_epochs`` epochs of the same number of optimiser steps over the
   same training images; epoch 0 is the evaluation at the new SNR before any adaptation:

   * ``none``: the pre-trained codec, frozen;
   * ``real``: ``real_samples`` images sent through the real channel once at the step's start; the
     decoder fine-tunes on those received values (the encoder is frozen, so the pairs stay valid);
   * ``cgan``: the same number of real frames, sent with this arm's encoder, re-fit the cGAN (warm
     start); encoder and decoder then fine-tune through the cGAN (exact gradient through G);
   * ``scratch``: a freshly initialised codec trains through the same re-fitted cGAN.

4. Fidelity at each SNR: the pre-trained codec's PSNR through the cGAN vs through the real channel on
   the held-out test images, and the per-RE error statistics and MMD two-sample tests (cGAN and the
   AWGN-only control vs the held-out real captures).
5. After the schedule, every arm is evaluated over the real channel at the last SNR, with the frame counts.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from semcom.adapt.captures import Captures, capture
from semcom.adapt.cgan import CGANChannel, GanConfig
from semcom.adapt.fidelity import awgn_control, fidelity_rows, fisher_combined
from semcom.jscc.model import DeepJSCC, JSCCConfig
from semcom.jscc.train import TrainConfig, evaluate_psnr, psnr_per_image, train_step
from semcom.progress import progress_bar
from semcom.results import save_figure, write_csv
from semcom.training import fit

log = logging.getLogger(__name__)
Tensor = torch.Tensor
ARMS = ("none", "real", "cgan", "scratch")


@dataclass
class AdaptConfig:
    """Everything that defines a run (written to summary.json)."""

    snrs: tuple[float, ...] = (21.0, 18.0, 15.0, 12.0, 9.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    real: str = "flowgraph"          # or "torch" (OfatChannel, the fast variant)
    n_train: int = 1400               # UCI digits train split (1437 images)
    n_test: int = 192                 # per-epoch evaluation images (test split, 360 images)
    n_final: int = 360                # fidelity and final evaluation images
    size: int = 32
    c: int = 8                        # 8 x 8 x 8 = 512 reals = 256 complex symbols per image
    initial_epochs: int = 30
    step_epochs: int = 5
    batch_size: int = 32
    lr: float = 1e-3                  # training from scratch (initial phase and the scratch arm)
    lr_min: float = 1e-4
    ft_lr: float = 1e-4               # fine-tuning at each SNR step (the initial training's final lr)
    ft_lr_min: float = 1e-5
    real_samples: int = 256           # real frames per SNR step (arms real and cgan)
    probe_frames: int = 512
    # G's error scale by maximum likelihood first, then adversarial epochs at a low learning rate (at
    # 1e-3 the adversarial epochs tilted the error level between weak and strong subcarriers).
    gan: GanConfig = field(default_factory=lambda: GanConfig(epochs=6, mle_epochs=3, lr=2e-4, lr_min=2e-5))
    gan_step_epochs: int = 6          # adversarial re-fit epochs at each step (warm start, after the MLE)
    fidelity_samples: int = 800       # REs per sample in the two-sample test
    n_perm: int = 999
    alpha: float = 0.05               # family-wise over all (seed, SNR) tests (Bonferroni)
    recovery_db: float = 0.3
    channel_seed: int = 100           # + seed: the real channel's random stream

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


QUICK = dict(snrs=(21.0, 15.0, 9.0), seeds=(0,), n_train=96, n_test=16, n_final=32, initial_epochs=2,
             step_epochs=1, real_samples=16, probe_frames=24, gan=GanConfig(epochs=1, mle_epochs=1),
             gan_step_epochs=1, fidelity_samples=120, n_perm=99)


def quick_config(**overrides: Any) -> AdaptConfig:
    return replace(AdaptConfig(**QUICK), **overrides)


def load_digits(n: int, split: str, size: int, seed: int) -> Tensor:
    """(n, 1, size, size) grey UCI digits in [0, 1] (``semcom.data.images``, one of its 3 equal channels)."""
    from semcom.data.images import image_set

    return image_set("digits", size=size, n=n, seed=seed, split=split)[:, :1].contiguous()


def make_real_channel(cfg: AdaptConfig, seed: int) -> nn.Module:
    """The channel the codec is adapted to: the loopback flowgraph, or its torch model."""
    if cfg.real == "flowgraph":
        from semcom.flowgraph_channel import FlowgraphChannel

        return FlowgraphChannel(cfg.snrs[0], seed=cfg.channel_seed + seed)
    if cfg.real == "torch":
        from semcom.channels import OfatChannel

        return OfatChannel(cfg.snrs[0], equalizer="mmse", csi="denoised",
                           channel_kwargs=dict(n_taps=3, frac_delay=0.5), seed=cfg.channel_seed + seed)
    raise ValueError(f"real must be 'flowgraph' or 'torch', got {cfg.real!r}")


def new_codec(cfg: AdaptConfig, seed: int) -> DeepJSCC:
    torch.manual_seed(seed)
    return DeepJSCC(JSCCConfig(c=cfg.c, in_channels=1))


class RealLink:
    """The real channel with its frame counters and a per-call evaluation."""

    def __init__(self, channel: nn.Module) -> None:
        self.channel = channel

    def counts(self) -> tuple[int, int]:
        return int(getattr(self.channel, "sent", 0)), int(getattr(self.channel, "lost", 0))

    @torch.no_grad()
    def evaluate(self, codec: DeepJSCC, images: Tensor, snr: float) -> dict[str, float]:
        """Mean PSNR / MSE of ``images`` through the real channel, with the frames it cost."""
        sent0, lost0 = self.counts()
        psnr = evaluate_psnr(codec, images, self.channel, snr, seed=None)
        sent, lost = self.counts()
        return {"psnr_db": float(psnr.mean()), "mse": float(np.mean(10 ** (-psnr / 10))),
                "sent": sent - sent0, "lost": lost - lost0}

    @torch.no_grad()
    def capture(self, codec: DeepJSCC, images: Tensor, snr: float, note: str) -> Captures:
        codec.eval()
        return capture(self.channel, codec.encoder(images), snr, note=note)

    def close(self) -> None:
        if hasattr(self.channel, "close"):
            self.channel.close()


def _schedule(cfg: AdaptConfig, epochs: int, lr: float, lr_min: float, seed: int) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=cfg.batch_size, lr=lr, lr_min=lr_min, seed=seed,
                       snr_db=(0.0, 0.0), hflip=False)


def train_through(codec: DeepJSCC, images: Tensor, channel: nn.Module, snr: float, sched: TrainConfig,
                  evaluate: Any, opt_state: dict | None = None, desc: str = "train"
                  ) -> tuple[list[dict], dict]:
    """Encoder + decoder through ``channel`` at ``snr`` with ``semcom.training.fit``; returns the epoch
    records and the optimiser state. ``opt_state`` continues an earlier run's Adam moments (online
    fine-tuning goes on training the same codec; a fresh Adam's first steps would jolt every weight)."""
    opt = torch.optim.Adam(codec.parameters(), lr=sched.lr)
    if opt_state is not None:
        opt.load_state_dict(opt_state)
    snr_t = torch.full((sched.batch_size,), float(snr))

    def step(idx: Tensor, gen: torch.Generator) -> float:
        return train_step(codec, opt, images[idx], channel, snr_t[: len(idx)])

    hist = fit(opt, images.shape[0], sched, step, evaluate=evaluate, progress=False, desc=desc)
    return hist, opt.state_dict()


def train_decoder_on(codec: DeepJSCC, images: Tensor, received: Tensor, n_items: int, sched: TrainConfig,
                     evaluate: Any) -> list[dict]:
    """Decoder-side fine-tuning on real (received values, image) pairs, ``n_items`` steps' worth/epoch."""
    opt = torch.optim.Adam(codec.decoder.parameters(), lr=sched.lr)
    m = images.shape[0]

    def step(idx: Tensor, gen: torch.Generator) -> float:
        j = idx % m  # the few real samples, cycled to give every arm the same optimiser steps per epoch
        codec.train()
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(codec.decoder(received[j]), images[j])
        loss.backward()
        opt.step()
        return float(loss.detach())

    return fit(opt, n_items, sched, step, evaluate=evaluate, progress=False, desc="real")


def _record(rows: list[dict], seed: int, arm: str, snr: float, epoch: int, in_step: int,
            ev: dict[str, float], loss: float = float("nan")) -> None:
    rows.append({"seed": seed, "arm": arm, "snr_db": snr, "epoch": epoch, "epoch_in_step": in_step,
                 "psnr_db": ev["psnr_db"], "mse": ev["mse"], "train_loss": loss, "sent": ev["sent"],
                 "lost": ev["lost"]})


def run_seed(cfg: AdaptConfig, seed: int, bar: Any = None) -> dict[str, Any]:
    """One seed of the schedule; returns its epoch rows, fidelity rows and final evaluation."""
    train = load_digits(cfg.n_train, "train", cfg.size, seed)
    test_all = load_digits(cfg.n_final, "test", cfg.size, seed)
    test = test_all[: cfg.n_test]
    rng = torch.Generator().manual_seed(seed)
    link = RealLink(make_real_channel(cfg, seed))
    rows: list[dict] = []
    fid_rows: list[dict] = []
    timing: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        n_values = cfg.c * (cfg.size // 4) ** 2
        probe = torch.randn(cfg.probe_frames, n_values, generator=rng)
        probe = probe / probe.pow(2).mean(1, keepdim=True).sqrt() / math.sqrt(2)  # unit complex power
        cap0 = capture(link.channel, probe, cfg.snrs[0], seed=seed, note="probe")
        cgan = CGANChannel(link.channel.layout, "mmse", snr_db=cfg.snrs[0], seed=seed)
        cgan.fit(cap0, replace(cfg.gan, seed=seed))
        awgn_fit = {cfg.snrs[0]: cap0}
        timing["cgan_fit0_s"] = time.perf_counter() - t0

        # Initial training at the first SNR through the cGAN, shared by every arm.
        codec = new_codec(cfg, seed)
        epoch = 0
        _record(rows, seed, "initial", cfg.snrs[0], 0, 0, link.evaluate(codec, test, cfg.snrs[0]))

        def eval_first() -> dict[str, float]:
            return link.evaluate(codec, test, cfg.snrs[0])

        hist, opt_state = train_through(codec, train, cgan, cfg.snrs[0],
                             _schedule(cfg, cfg.initial_epochs, cfg.lr, cfg.lr_min, seed), eval_first,
                             desc="initial")
        for h in hist:
            epoch += 1
            _record(rows, seed, "initial", cfg.snrs[0], epoch, epoch, h, h["loss"])
        timing["initial_s"] = time.perf_counter() - t0 - timing["cgan_fit0_s"]
        pretrained = copy.deepcopy(codec).eval()
        arms = {"none": pretrained, "real": copy.deepcopy(pretrained), "cgan": copy.deepcopy(pretrained)}
        fid_rows.append(_fidelity(cfg, seed, cfg.snrs[0], pretrained, cgan, link, test_all,
                                  awgn_fit[cfg.snrs[0]]))

        for j, snr in enumerate(cfg.snrs[1:], start=1):
            ts = time.perf_counter()
            arms["scratch"] = new_codec(cfg, 1000 * seed + j)
            start = epoch
            for arm, model in arms.items():
                _record(rows, seed, arm, snr, start, 0, link.evaluate(model, test, snr))
            pick = torch.randperm(cfg.n_train, generator=rng)[: cfg.real_samples]
            # (b) a few real samples: the frozen encoder's symbols of those images, received once.
            cap_b = link.capture(arms["real"], train[pick], snr, note=f"arm real, step {j}")
            keep = torch.as_tensor(cap_b.delivered)
            z_shape = (-1, cfg.c, cfg.size // 4, cfg.size // 4)
            rec_b = torch.as_tensor(cap_b.y).reshape(z_shape)[keep]
            # (c) the same number of real frames re-fit the cGAN from this arm's own symbols.
            cap_c = link.capture(arms["cgan"], train[pick], snr, note=f"arm cgan, step {j}")
            cgan.fit(cap_c, replace(cfg.gan, epochs=cfg.gan_step_epochs, seed=seed + j))
            awgn_fit[snr] = cap_c
            ft = _schedule(cfg, cfg.step_epochs, cfg.ft_lr, cfg.ft_lr_min, seed + j)
            for arm in ("none", "real", "cgan", "scratch"):
                model = arms[arm]

                def ev(model: DeepJSCC = model, snr: float = snr) -> dict[str, float]:
                    return link.evaluate(model, test, snr)

                if arm == "none":
                    hist = [{**ev(), "loss": float("nan")} for _ in range(cfg.step_epochs)]
                elif arm == "real":
                    hist = train_decoder_on(model, train[pick][keep], rec_b, cfg.n_train, ft, ev)
                elif arm == "cgan":
                    hist, opt_state = train_through(model, train, cgan, snr, ft, ev, opt_state, desc="cgan")
                else:
                    hist, _ = train_through(model, train, cgan, snr,
                                         _schedule(cfg, cfg.step_epochs, cfg.lr, cfg.lr_min, seed + j), ev,
                                         desc="scratch")
                for e, h in enumerate(hist, start=1):
                    _record(rows, seed, arm, snr, start + e, e, h, h["loss"])
                model.eval()
            epoch = start + cfg.step_epochs
            fid_rows.append(_fidelity(cfg, seed, snr, pretrained, cgan, link, test_all, awgn_fit[snr]))
            timing[f"step_{snr:g}dB_s"] = time.perf_counter() - ts
            if bar is not None:
                bar.update(1)
        final = []
        for arm, model in arms.items():
            ev = link.evaluate(model, test_all, cfg.snrs[-1])
            final.append({"seed": seed, "arm": arm, "snr_db": cfg.snrs[-1], "psnr_db": ev["psnr_db"],
                          "mse": ev["mse"], "sent": ev["sent"], "delivered": ev["sent"] - ev["lost"],
                          "lost": ev["lost"]})
        sent, lost = link.counts()
    finally:
        link.close()
    timing["total_s"] = time.perf_counter() - t0
    return {"rows": rows, "fidelity": fid_rows, "final": final, "timing": timing,
            "frames": {"sent": sent, "lost": lost}, "cgan": cgan, "codecs": arms}


@torch.no_grad()
def _fidelity(cfg: AdaptConfig, seed: int, snr: float, codec: DeepJSCC, cgan: CGANChannel, link: RealLink,
              images: Tensor, fit_caps: Captures) -> dict[str, Any]:
    """The fixed (pre-trained) codec's PSNR through the real channel, the cGAN and the AWGN control on
    held-out images, and the two-sample tests on those held-out captures."""
    held = link.capture(codec, images, snr, note="held-out fidelity")
    keep = torch.as_tensor(held.delivered)
    z_shape = (-1, cfg.c, cfg.size // 4, cfg.size // 4)
    psnr_real = psnr_per_image(images[keep], codec.decoder(torch.as_tensor(held.y).reshape(z_shape)[keep]))
    awgn = awgn_control(fit_caps, seed=seed)
    psnr_cgan = evaluate_psnr(codec, images, cgan, snr, seed=seed)
    psnr_awgn = evaluate_psnr(codec, images, awgn, awgn.snr_db, seed=seed)
    row = {"seed": seed, "snr_db": snr, "psnr_real_db": float(psnr_real.mean()),
           "psnr_cgan_db": float(psnr_cgan.mean()), "psnr_awgn_db": float(psnr_awgn.mean()),
           "delivered": int(keep.sum()), "sent": held.n_frames}
    row["cgan_minus_real_db"] = row["psnr_cgan_db"] - row["psnr_real_db"]
    row.update(fidelity_rows(cgan, held, awgn, n_samples=cfg.fidelity_samples, n_perm=cfg.n_perm, seed=seed))
    return row


def recovery_rows(cfg: AdaptConfig, rows: list[dict]) -> list[dict]:
    """Per seed, arm and SNR step: the dip, the settled PSNR (mean of the step's last two epochs) and the
    first epoch of the step within ``recovery_db`` of it (0: the drop cost less than that)."""
    out = []
    keys = dict.fromkeys((r["seed"], r["arm"], r["snr_db"]) for r in rows if r["arm"] != "initial")
    for seed, arm, snr in keys:
        curve = sorted((r for r in rows if (r["seed"], r["arm"], r["snr_db"]) == (seed, arm, snr)),
                       key=lambda r: r["epoch_in_step"])
        psnr = np.array([r["psnr_db"] for r in curve])
        settled = float(np.mean(psnr[-2:])) if len(psnr) > 2 else float(psnr[-1])
        ok = np.flatnonzero(psnr >= settled - cfg.recovery_db)
        out.append({"seed": seed, "arm": arm, "snr_db": snr, "psnr_at_drop_db": float(psnr[0]),
                    "settled_psnr_db": settled, "recovery_epochs": int(ok[0]) if ok.size else -1})
    return out


def _mean_std(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, float)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0, "n": int(a.size)}


def summarize(cfg: AdaptConfig, rows: list[dict], rec: list[dict], fid: list[dict], final: list[dict]
              ) -> dict[str, Any]:
    """Aggregates over seeds and the issue's acceptance checks, measured."""
    steps = list(cfg.snrs[1:])
    agg: dict[str, Any] = {"recovery": {}, "settled": {}, "fidelity": {}, "final": {}}
    for arm in ARMS:
        for snr in steps:
            rr = [r for r in rec if r["arm"] == arm and r["snr_db"] == snr]
            agg["recovery"][f"{arm}@{snr:g}"] = _mean_std([r["recovery_epochs"] for r in rr])
            agg["settled"][f"{arm}@{snr:g}"] = _mean_std([r["settled_psnr_db"] for r in rr])
        agg["final"][arm] = _mean_std([r["psnr_db"] for r in final if r["arm"] == arm])
    for snr in cfg.snrs:
        ff = [f for f in fid if f["snr_db"] == snr]
        agg["fidelity"][f"{snr:g}"] = {k: _mean_std([f[k] for f in ff]) for k in
                                       ("psnr_real_db", "psnr_cgan_db", "psnr_awgn_db", "cgan_minus_real_db",
                                        "cgan_mmd_p", "awgn_mmd_p")}
    initial = [r for r in rows if r["arm"] == "initial"]
    by_seed_initial = {s: [r["psnr_db"] for r in initial if r["seed"] == s] for s in cfg.seeds}
    settled_initial = {s: float(np.mean(v[-2:])) for s, v in by_seed_initial.items()}
    cg = {(r["seed"], r["snr_db"]): r for r in rec if r["arm"] == "cgan"}
    re = {(r["seed"], r["snr_db"]): r for r in rec if r["arm"] == "real"}
    prev = {s: settled_initial[s] for s in cfg.seeds}
    drop_costs = []
    for snr in steps:
        for s in cfg.seeds:
            drop_costs.append(prev[s] - cg[(s, snr)]["psnr_at_drop_db"])
            prev[s] = cg[(s, snr)]["settled_psnr_db"]
    fin = {(r["seed"], r["arm"]): r for r in final}
    margins = [fin[(s, "cgan")]["psnr_db"] - fin[(s, "none")]["psnr_db"] for s in cfg.seeds]
    gap = [cg[k]["settled_psnr_db"] - re[k]["settled_psnr_db"] for k in cg]
    per_test = cfg.alpha / len(fid)  # family-wise level alpha over every (seed, SNR) test
    acc = {
        "cgan_psnr_within_0.5dB_of_flowgraph_every_step": bool(all(abs(f["cgan_minus_real_db"]) <= 0.5
                                                                   for f in fid)),
        "max_abs_cgan_minus_real_db": float(max(abs(f["cgan_minus_real_db"]) for f in fid)),
        "mmd_tests": len(fid),
        "mmd_per_test_level_bonferroni": per_test,
        "mmd_does_not_separate_real_from_cgan": bool(all(f["cgan_mmd_p"] > per_test for f in fid)),
        "mmd_separates_real_from_awgn": bool(all(f["awgn_mmd_p"] <= per_test for f in fid)),
        "mmd_cgan_rejections_at_0.05_per_test": int(sum(f["cgan_mmd_p"] <= 0.05 for f in fid)),
        "mmd_awgn_rejections_at_0.05_per_test": int(sum(f["awgn_mmd_p"] <= 0.05 for f in fid)),
        "mmd_cgan_p_min": float(min(f["cgan_mmd_p"] for f in fid)),
        "mmd_cgan_fisher_combined_p": fisher_combined([f["cgan_mmd_p"] for f in fid]),
        "mmd_awgn_fisher_combined_p": fisher_combined([f["awgn_mmd_p"] for f in fid]),
        "mmd_awgn_p_max": float(max(f["awgn_mmd_p"] for f in fid)),
        "initial_training_psnr_rises": bool(all(v[-1] > v[0] for v in by_seed_initial.values())),
        "each_drop_costs_psnr_db_min": float(min(drop_costs)),
        "each_drop_costs_psnr": bool(min(drop_costs) > 0),
        "cgan_recovers_within_1_epoch_all_steps_seeds": bool(all(0 <= cg[k]["recovery_epochs"] <= 1
                                                                 for k in cg)),
        "cgan_recovery_epochs_max": int(max(cg[k]["recovery_epochs"] for k in cg)),
        "cgan_settled_minus_real_settled_db_min": float(min(gap)),
        "cgan_never_worse_than_real_samples_settled": bool(min(gap) >= 0),
        "final_margin_cgan_over_none_db": _mean_std(margins),
    }
    return {"aggregates": agg, "acceptance": acc}


def plot_fig5(cfg: AdaptConfig, rows: list[dict], path: Path) -> Path:
    """PSNR and MSE per epoch across the SNR steps (mean +- std over seeds), the Fig. 5 layout."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.4))
    colours = {"none": "tab:gray", "real": "tab:orange", "cgan": "tab:blue", "scratch": "tab:green"}
    labels = {"none": "(a) no adaptation", "real": f"(b) {cfg.real_samples} real samples/step (decoder)",
              "cgan": "(c) cGAN fine-tuning", "scratch": "(d) retrain from scratch"}
    segments = [("initial", cfg.snrs[0])] + [(arm, snr) for arm in ARMS for snr in cfg.snrs[1:]]
    zoom_from = cfg.initial_epochs - 3
    for panel, (ax, key) in enumerate(zip(axes, ("psnr_db", "mse", "psnr_db"), strict=True)):
        for arm, snr in segments:
            if panel == 2 and arm == "scratch":
                continue  # the zoom on the SNR steps: the fine-tuned arms only
            seg = [r for r in rows if r["arm"] == arm and r["snr_db"] == snr
                   and (panel < 2 or r["epoch"] >= zoom_from)]
            ep = sorted({r["epoch"] for r in seg})
            vals = np.array([[r[key] for r in seg if r["epoch"] == e] for e in ep])
            m, s = vals.mean(1), vals.std(1)
            c = colours.get(arm, "k")
            first = snr == (cfg.snrs[0] if arm == "initial" else cfg.snrs[1])
            ax.plot(ep, m, "-", color=c, lw=1.4,
                    label=(labels.get(arm, f"initial training ({cfg.snrs[0]:g} dB)") if first else None))
            ax.fill_between(ep, m - s, m + s, color=c, alpha=0.2)
        for j, snr in enumerate(cfg.snrs):
            start = zoom_from if panel == 2 else 0
            x0 = start if j == 0 else cfg.initial_epochs + (j - 1) * cfg.step_epochs
            if j:
                ax.axvline(x0, color="k", ls=":", lw=0.8)
            ax.annotate(f"{snr:g} dB", (x0 + 0.3, 0.02), xycoords=("data", "axes fraction"), fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("PSNR (dB)" if key == "psnr_db" else "MSE")
        if key == "mse":
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="lower right")
    axes[2].set_title("zoom: the SNR steps (arms a-c)", fontsize=9)
    fig.suptitle(f"DeepJSCC fine-tuning over the {cfg.real} channel while the SNR drops "
                 f"(mean ± std over {len(cfg.seeds)} seeds; evaluated over the real channel)", fontsize=10)
    return save_figure(fig, path)


def replot(out_dir: str | Path) -> Path:
    """Redraw ``fig5.png`` from an earlier run's ``epochs.csv`` and ``summary.json`` (no training)."""
    import csv

    out = Path(out_dir)
    doc = json.loads((out / "summary.json").read_text())["config"]
    cfg = AdaptConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in doc.items() if k != "gan"})
    with (out / "epochs.csv").open() as f:
        rows = [{k: v if k == "arm" else float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    return plot_fig5(cfg, rows, out / "fig5.png")


def run(cfg: AdaptConfig, out_dir: str | Path, progress: bool = True, command: str = "") -> dict[str, Any]:
    """All seeds; writes epochs.csv, recovery.csv, fidelity.csv, final.csv, fig5.png, summary.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows, fid, final, timing, frames = [], [], [], {}, {}
    bar = progress_bar(total=len(cfg.seeds) * (len(cfg.snrs) - 1), desc="seeds x SNR steps", unit="step",
                       progress=progress)
    results = {}
    for seed in cfg.seeds:
        r = run_seed(cfg, seed, bar)
        rows += r["rows"]
        fid += r["fidelity"]
        final += r["final"]
        timing[str(seed)] = r["timing"]
        frames[str(seed)] = r["frames"]
        results[seed] = r
        log.info("seed %d done in %.0f s", seed, r["timing"]["total_s"])
    bar.close()
    rec = recovery_rows(cfg, rows)
    write_csv(out / "epochs.csv", rows)
    write_csv(out / "recovery.csv", rec)
    write_csv(out / "fidelity.csv", fid)
    write_csv(out / "final.csv", final)
    plot_fig5(cfg, rows, out / "fig5.png")
    summary = {"command": command, "config": cfg.to_dict(), "wall_s": time.perf_counter() - t0,
               "timing": timing, "frames": frames, **summarize(cfg, rows, rec, fid, final)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    summary["results"] = results
    return summary
