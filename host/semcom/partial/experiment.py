"""The partial-sampling experiment (the second paper's case study IV-B, Fig. 6) on the testbed.

For every seed: train (or load) one edge-encoder + receiver pair per sampling size (4 x 4, 8 x 8) and
one whole-image JSCC baseline, then measure classification accuracy on test scenes of every source
size after each round 1..R, with receiver-guided places (feedback) and with random places, over AWGN
at ``snr_db``; the whole-image baseline at the same total channel uses. Then one setting (4 x 4
patches, guided and random) over the OFAT 2x4 link: the torch ``OfatChannel`` and the GNU Radio
loopback flowgraph (``FlowgraphChannel``), the feedback travelling over a real ZeroMQ socket.

Outputs in ``out_dir``: ``results.csv`` (one row per seed, channel, sampling size, source size, mode,
round), ``summary.csv`` (mean and std over seeds), ``fig6_accuracy_vs_source_size.png``,
``ofat_loopback.png``, ``summary.json`` (configuration, bits, wall times, acceptance checks).
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.channels import AWGNChannel
from semcom.checkpoint import CheckpointError
from semcom.data.mnist import mnist_digits
from semcom.errors import UsageError
from semcom.progress import progress_bar
from semcom.results import plot_label, read_csv, save_figure, write_csv

from .episode import run_episode
from .feedback import MAX_AGENTS, MAX_ROUND, FeedbackLink, message_bytes
from .model import (
    PartialConfig,
    PartialSampler,
    WholeImageJSCC,
    channel_uses_per_patch,
    coarse_side,
    grid_side,
)
from .scenes import make_scenes
from .train import TrainConfig, load_jscc, load_partial, save_jscc, save_partial, train_jscc, train_partial

log = logging.getLogger(__name__)
EVAL_BATCH = 250


@dataclass
class PartialExperiment:
    """Everything that defines a run (written to summary.json and the checkpoints' metadata)."""

    patches: tuple[int, ...] = (4, 8)
    sizes: tuple[int, ...] = (28, 56, 84, 112)
    rounds: int = 4
    agents: int = 4
    seeds: tuple[int, ...] = (0, 1, 2)
    snr_db: float = 10.0
    n_test: int = 500                 # test scenes per source size and seed
    n_ofat: int = 100                 # test scenes per source size over the OFAT channels (seed 0)
    ofat_patch: int = 4
    ofat: bool = True                 # run the OFAT part (torch channel and flowgraph)
    jscc: bool = True                 # train and evaluate the whole-image baseline
    train: TrainConfig = field(default_factory=TrainConfig)
    jscc_steps_per_epoch: int = 100

    def budget(self, patch: int, size: int, rounds: int) -> int:
        """Complex channel uses of a guided episode after ``rounds`` rounds: the coarse view + the patches."""
        return coarse_side(size) ** 2 // 2 + rounds * self.agents * channel_uses_per_patch(patch)

    def budgets(self) -> tuple[int, ...]:
        """Every budget the whole-image baseline is compared at (all sampling sizes, sizes, rounds)."""
        return tuple(sorted({self.budget(p, s, r) for p in self.patches for s in self.sizes
                             for r in range(1, self.rounds + 1)}))

    def validate(self) -> None:
        """Raise ValueError for settings the sampling grid, the coarse view or the feedback cannot carry."""
        if not 1 <= self.agents <= MAX_AGENTS or not 1 <= self.rounds <= MAX_ROUND + 1:
            raise ValueError(f"need 1..{MAX_AGENTS} agents and 1..{MAX_ROUND + 1} rounds (the feedback "
                             f"message's fields), got {self.agents} and {self.rounds}")
        for p in self.patches:
            for s in self.sizes:
                coarse_side(s)
                g = grid_side(s, p)
                if self.agents * self.rounds > g * g:
                    raise ValueError(f"{self.agents} agents x {self.rounds} rounds need more than the "
                                     f"{g * g} places of {p}x{p} patches on {s} px")
        if self.ofat and self.ofat_patch not in self.patches:
            raise ValueError(f"the OFAT setting's patch {self.ofat_patch} is not among {self.patches}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["budgets"] = list(self.budgets())
        return d


def _train_cfg(exp: PartialExperiment, seed: int, **over: Any) -> TrainConfig:
    d = asdict(exp.train) | {"seed": seed, "sizes": tuple(exp.sizes), "rounds": exp.rounds,
                             "agents": exp.agents} | over
    return TrainConfig(**d)


def load_or_train(exp: PartialExperiment, patch: int, seed: int, ckpt_dir: Path, retrain: bool,
                  progress: bool) -> tuple[PartialSampler, dict]:
    path = ckpt_dir / f"partial_p{patch}_seed{seed}"
    cfg = PartialConfig(patch=patch)
    tcfg = _train_cfg(exp, seed)
    if not retrain:
        try:
            model, doc = load_partial(path, expect=cfg)
            if doc["meta"].get("train") == json.loads(json.dumps(tcfg.to_dict())):
                return model, doc["meta"]
            log.info("%s was trained with other settings: retraining", path)
        except CheckpointError as e:
            log.info("no usable checkpoint (%s): training", e)
    t0 = time.perf_counter()
    model, history = train_partial(cfg, tcfg, AWGNChannel(exp.snr_db, seed=seed), progress=progress)
    meta = {"train": tcfg.to_dict(), "history": history, "train_seconds": time.perf_counter() - t0}
    save_partial(path, model, meta)
    return model, meta


def load_or_train_jscc(exp: PartialExperiment, seed: int, ckpt_dir: Path, retrain: bool,
                       progress: bool) -> tuple[WholeImageJSCC, dict]:
    path = ckpt_dir / f"whole_jscc_seed{seed}"
    tcfg = _train_cfg(exp, seed, steps_per_epoch=exp.jscc_steps_per_epoch)
    k_max = max(exp.budgets())
    if not retrain:
        try:
            model, doc = load_jscc(path)
            if model.k_max == k_max and doc["meta"].get("train") == json.loads(json.dumps(tcfg.to_dict())):
                return model, doc["meta"]
        except CheckpointError as e:
            log.info("no usable baseline checkpoint (%s): training", e)
    t0 = time.perf_counter()
    model, history = train_jscc(k_max, tcfg, AWGNChannel(exp.snr_db, seed=seed), exp.budgets(),
                                progress=progress)
    meta = {"train": tcfg.to_dict(), "history": history, "train_seconds": time.perf_counter() - t0,
            "budgets": list(exp.budgets())}
    save_jscc(path, model, meta)
    return model, meta


def test_scenes(size: int, n: int, seed: int, clutter: float):
    """The test scenes of one seed and source size (digits and clutter from the test split)."""
    digits, labels = mnist_digits("test")
    return make_scenes(digits, labels, size, n, torch.Generator().manual_seed(10_000 * (seed + 1) + size),
                       clutter=clutter)


@torch.no_grad()
def evaluate_sampling(model: PartialSampler, scenes, *, rounds: int, agents: int, mode: str, channel,
                      seed: int, link: FeedbackLink | None = None) -> dict[str, Any]:
    """Accuracy after every round (list of R), and the bits and channel uses per scene."""
    correct = np.zeros(rounds)
    uses_after = np.zeros(rounds)
    fb = pos = uses = 0
    n = scenes.image.shape[0]
    gen = torch.Generator().manual_seed(seed)
    for i in range(0, n, EVAL_BATCH):
        part = type(scenes)(*(t[i:i + EVAL_BATCH] for t in (scenes.image, scenes.digit, scenes.label,
                                                            scenes.top_left)))
        ep = run_episode(model.edge, model.receiver, part, rounds=rounds, agents=agents, mode=mode,
                         channel=channel, generator=gen, link=link)
        correct += [float((lg.argmax(1) == part.label).sum()) for lg in ep.logits]
        uses_after += ep.uses_after
        fb, pos, uses = fb + ep.feedback_bits, pos + ep.position_bits, uses + ep.channel_uses
    return {"accuracy": list(correct / n), "feedback_bits": fb / n, "position_bits": pos / n,
            "channel_uses": uses / n, "channel_uses_after": list(uses_after / n)}


@torch.no_grad()
def evaluate_jscc(model: WholeImageJSCC, scenes, k: int, channel) -> float:
    correct = 0
    for i in range(0, scenes.image.shape[0], EVAL_BATCH):
        logits = model(scenes.image[i:i + EVAL_BATCH], k, channel)
        correct += int((logits.argmax(1) == scenes.label[i:i + EVAL_BATCH]).sum())
    return correct / scenes.image.shape[0]


def _sampling_rows(res: dict, base: dict, rounds: int) -> list[dict]:
    return [base | {"round": r + 1, "accuracy": res["accuracy"][r],
                    "channel_uses": res["channel_uses_after"][r],
                    "feedback_bits": res["feedback_bits"] / rounds * (r + 1),
                    "position_bits": res["position_bits"] / rounds * (r + 1)} for r in range(rounds)]


def _ofat_rows(exp: PartialExperiment, model: PartialSampler, seed: int,
               progress: bool) -> tuple[list[dict], dict]:
    """4 x 4 (``exp.ofat_patch``) guided and random over the torch OFAT channel and the flowgraph."""
    from semcom.channels import OfatChannel
    from semcom.flowgraph_channel import FlowgraphChannel
    from semcom.ofat.frame import make_layout

    rows: list[dict] = []
    info: dict[str, Any] = {}
    torch_ch = OfatChannel(exp.snr_db, layout=make_layout("wifi64", n_tx=2, n_rx=4), equalizer="zf",
                           channel_kwargs=dict(n_taps=3, frac_delay=0.5), seed=seed)
    with FlowgraphChannel(exp.snr_db, seed=seed, method="zf") as fg, FeedbackLink() as link:
        for name, ch in (("ofat_torch_2x4_zf", torch_ch), ("ofat_flowgraph_2x4_zf", fg)):
            bar = progress_bar([(s, m) for s in exp.sizes for m in ("guided", "random")], progress=progress,
                               desc=f"OFAT {name}")
            for size, mode in bar:
                scenes = test_scenes(size, exp.n_ofat, seed, exp.train.clutter)
                if hasattr(ch, "reseed"):
                    ch.reseed(seed)
                res = evaluate_sampling(model, scenes, rounds=exp.rounds, agents=exp.agents, mode=mode,
                                        channel=ch, seed=seed, link=link if ch is fg else None)
                rows += _sampling_rows(res, {"seed": seed, "channel": name, "patch": exp.ofat_patch,
                                             "source_size": size, "mode": mode, "method": f"{mode} sampling"},
                                       exp.rounds)
        info = {"frames_sent": fg.sent, "frames_lost": fg.lost, "feedback_messages": link.messages,
                "feedback_bits_over_zmq": link.bits, "feedback_endpoint": link.endpoint}
    return rows, info


def run_experiment(exp: PartialExperiment, out_dir: str | Path, *, retrain: bool = False,
                   progress: bool = True, command: str = "") -> dict[str, Any]:
    """Train/load, evaluate, write every output; returns the summary dict."""
    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    t_start = time.perf_counter()
    rows: list[dict] = []
    train_info: dict[str, Any] = {}
    ofat_info: dict[str, Any] = {}
    for seed in exp.seeds:
        for patch in exp.patches:
            model, meta = load_or_train(exp, patch, seed, ckpt_dir, retrain, progress)
            train_info[f"partial_p{patch}_seed{seed}"] = round(float(meta.get("train_seconds", 0.0)), 1)
            for size in progress_bar(exp.sizes, progress=progress, desc=f"eval {patch}x{patch} seed {seed}"):
                scenes = test_scenes(size, exp.n_test, seed, exp.train.clutter)
                for mode in ("guided", "random"):
                    res = evaluate_sampling(model, scenes, rounds=exp.rounds, agents=exp.agents, mode=mode,
                                            channel=AWGNChannel(exp.snr_db, seed=seed), seed=seed)
                    rows += _sampling_rows(res, {"seed": seed, "channel": "awgn", "patch": patch,
                                                 "source_size": size, "mode": mode,
                                                 "method": f"{mode} sampling"}, exp.rounds)
            if exp.ofat and patch == exp.ofat_patch and seed == exp.seeds[0]:
                ofat_rows, ofat_info = _ofat_rows(exp, model, seed, progress)
                rows += ofat_rows
        if exp.jscc:
            jscc, meta = load_or_train_jscc(exp, seed, ckpt_dir, retrain, progress)
            train_info[f"whole_jscc_seed{seed}"] = round(float(meta.get("train_seconds", 0.0)), 1)
            for size in exp.sizes:
                scenes = test_scenes(size, exp.n_test, seed, exp.train.clutter)
                for patch in exp.patches:
                    for r in range(1, exp.rounds + 1):
                        k = exp.budget(patch, size, r)
                        acc = evaluate_jscc(jscc, scenes, k, AWGNChannel(exp.snr_db, seed=seed))
                        rows.append({"seed": seed, "channel": "awgn", "patch": patch, "source_size": size,
                                     "mode": "whole", "method": "whole-image JSCC", "round": r,
                                     "accuracy": acc, "channel_uses": k, "feedback_bits": 0,
                                     "position_bits": 0})
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", rows)
    summary_rows = aggregate(rows)
    write_csv(out / "summary.csv", summary_rows)
    checks = acceptance(summary_rows, exp)
    plot(summary_rows, exp, out)
    (out / "tables.md").write_text(tables(summary_rows, exp))
    summary = {"experiment": exp.to_dict(), "command": command, "checks": checks, "ofat": ofat_info,
               "train_seconds": train_info, "wall_seconds": round(time.perf_counter() - t_start, 1),
               "feedback_bytes_per_message": {f"{p}x{p} @ {s}px": message_bytes(grid_side(s, p), exp.agents)
                                              for p in exp.patches for s in exp.sizes}}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def aggregate(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds of every (channel, patch, source size, mode, round)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["channel"], r["patch"], r["source_size"], r["mode"], r["round"])].append(r)
    out = []
    for (channel, patch, size, mode, rnd), rs in groups.items():
        acc = np.array([r["accuracy"] for r in rs])
        out.append({"channel": channel, "patch": patch, "source_size": size, "mode": mode, "round": rnd,
                    "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std(ddof=1)) if acc.size > 1
                    else 0.0, "seeds": int(acc.size), "channel_uses": rs[0]["channel_uses"],
                    "feedback_bits": float(np.mean([r["feedback_bits"] for r in rs])),
                    "position_bits": float(np.mean([r["position_bits"] for r in rs]))})
    return out


def _acc(summary: list[dict], channel: str, patch: int, size: int, mode: str,
         rnd: int) -> tuple[float, float]:
    for r in summary:
        key = (r["channel"], r["patch"], r["source_size"], r["mode"], r["round"])
        if key == (channel, patch, size, mode, rnd):
            return r["accuracy_mean"], r["accuracy_std"]
    raise KeyError((channel, patch, size, mode, rnd))


def acceptance(summary: list[dict], exp: PartialExperiment) -> dict[str, Any]:
    """The issue's acceptance lines, as measured (AWGN, guided sampling unless stated)."""
    R, sizes = exp.rounds, list(exp.sizes)

    def a(p: int, s: int, mode: str, r: int) -> float:
        return _acc(summary, "awgn", p, s, mode, r)[0]

    checks: dict[str, Any] = {}
    if len(exp.patches) > 1:
        p_lo, p_hi = min(exp.patches), max(exp.patches)
        gaps = {s: round(a(p_hi, s, "guided", r) - a(p_lo, s, "guided", r), 4) for s in sizes for r in [R]}
        checks["rises_with_sampling_size"] = {"ok": all(v > 0 for v in gaps.values()),
                                              f"acc_{p_hi}x{p_hi}_minus_{p_lo}x{p_lo}_at_R": gaps}
    steps = {f"{p}x{p}@{s}": [round(a(p, s, "guided", r + 1) - a(p, s, "guided", r), 4) for r in range(1, R)]
             for p in exp.patches for s in sizes}
    checks["rises_with_rounds"] = {"ok": all(v >= 0 for vs in steps.values() for v in vs),
                                   "acc_r_plus_1_minus_acc_r": steps}
    falls = {f"{p}x{p}": [round(a(p, sizes[i + 1], "guided", R) - a(p, sizes[i], "guided", R), 4)
                          for i in range(len(sizes) - 1)] for p in exp.patches}
    checks["falls_with_source_size"] = {"ok": all(v < 0 for vs in falls.values() for v in vs),
                                        "acc_next_size_minus_acc": falls}
    p_lo = min(exp.patches)
    margins = {}
    for s in sizes:
        if s > 28:
            g, gs = _acc(summary, "awgn", p_lo, s, "guided", R)
            rd, rs = _acc(summary, "awgn", p_lo, s, "random", R)
            margins[s] = {"guided": round(g, 4), "guided_std": round(gs, 4), "random": round(rd, 4),
                          "random_std": round(rs, 4), "margin": round(g - rd, 4)}
    min_margin = min((m["margin"] for m in margins.values()), default=float("nan"))
    checks["guided_beats_random_4x4"] = {"ok": bool(margins) and min_margin > 0,
                                         "min_margin": round(min_margin, 4),
                                         "per_source_size": margins}
    if len(exp.patches) > 1:
        effect = {}
        for p in exp.patches:
            big = [s for s in sizes if s > 28]
            effect[f"{p}x{p}"] = {
                "rounds_gain_R_minus_1": round(float(np.mean([a(p, s, "guided", R) - a(p, s, "guided", 1)
                                                              for s in big])), 4),
                "guided_minus_random_at_R": round(float(np.mean([a(p, s, "guided", R) - a(p, s, "random", R)
                                                                 for s in big])), 4)}
        lo, hi = f"{min(exp.patches)}x{min(exp.patches)}", f"{max(exp.patches)}x{max(exp.patches)}"
        checks["feedback_effect_larger_for_small_patches"] = {
            "ok": effect[lo]["guided_minus_random_at_R"] > effect[hi]["guided_minus_random_at_R"],
            "mean_over_sizes_above_28": effect}
    return checks


def tables(summary: list[dict], exp: PartialExperiment) -> str:
    """Markdown tables of the accuracy (mean ± std over seeds), one per channel and sampling size."""
    def cell(c: str, p: int, s: int, mode: str, r: int) -> str:
        try:
            m, sd = _acc(summary, c, p, s, mode, r)
        except KeyError:
            return "–"
        return f"{100 * m:.1f} ± {100 * sd:.1f}"

    lines: list[str] = []
    for c in dict.fromkeys(r["channel"] for r in summary):
        for p in [q for q in exp.patches if any(r["channel"] == c and r["patch"] == q for r in summary)]:
            head = " | ".join(f"{s} px" for s in exp.sizes)
            lines += [f"\n**{c}, {p}x{p} patches, {exp.agents} agents, {exp.snr_db:g} dB** "
                      "(accuracy %, mean ± std over seeds)\n", f"| method | {head} |",
                      "|---|" + "---|" * len(exp.sizes)]
            for mode, label in (("guided", "guided"), ("random", "random places"),
                                ("whole", "whole-image JSCC")):
                rows = {(x["source_size"], x["round"]): x for x in summary
                        if x["channel"] == c and x["patch"] == p and x["mode"] == mode}
                for r in range(1, exp.rounds + 1):
                    if not rows:
                        continue
                    uses = [rows[(s, r)]["channel_uses"] for s in exp.sizes if (s, r) in rows]
                    cells = " | ".join(cell(c, p, s, mode, r) for s in exp.sizes)
                    lines.append(f"| {label}, {r} round{'s' * (r > 1)} ({min(uses):.0f}–{max(uses):.0f} "
                                 f"uses) | {cells} |")
    return "\n".join(lines).lstrip() + "\n"


def replot(out: Path) -> None:
    """The PNGs again from ``out``'s summary.csv and the experiment in its summary.json."""
    missing = [n for n in ("summary.csv", "summary.json") if not (out / n).is_file()]
    if missing:
        raise UsageError(f"--replot: no {' or '.join(missing)} in {out}")
    doc = json.loads((out / "summary.json").read_text())["experiment"]
    # what the plot reads of the run: its sizes, rounds, seeds, SNR and parts (the training config not)
    names = ("patches", "sizes", "rounds", "agents", "seeds", "snr_db", "ofat_patch", "ofat", "jscc")
    exp = PartialExperiment(**{k: tuple(doc[k]) if isinstance(doc[k], list) else doc[k] for k in names})
    plot(read_csv(out / "summary.csv"), exp, out)


def plot(summary: list[dict], exp: PartialExperiment, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(exp.sizes)
    fig, axes = plt.subplots(1, len(exp.patches), figsize=(5.2 * len(exp.patches), 4.2), sharey=True,
                             squeeze=False)
    cmap = plt.get_cmap("viridis")
    for ax, p in zip(axes[0], exp.patches, strict=True):
        for r in range(1, exp.rounds + 1):
            m = [_acc(summary, "awgn", p, s, "guided", r) for s in sizes]
            ax.errorbar(sizes, [v[0] for v in m], yerr=[v[1] for v in m], marker="o", capsize=3,
                        color=cmap((r - 1) / max(exp.rounds - 1, 1)),
                        label=f"guided, {r} round{'s' * (r > 1)}")
        m = [_acc(summary, "awgn", p, s, "random", exp.rounds) for s in sizes]
        ax.errorbar(sizes, [v[0] for v in m], yerr=[v[1] for v in m], marker="s", ls="--", color="tab:red",
                    capsize=3, label=f"random places, {exp.rounds} rounds")
        if exp.jscc:
            m = [_acc(summary, "awgn", p, s, "whole", exp.rounds) for s in sizes]
            ax.errorbar(sizes, [v[0] for v in m], yerr=[v[1] for v in m], marker="^", ls=":", color="k",
                        capsize=3, label="whole-image JSCC, same channel uses")
        ax.set_title(f"{p}x{p} patches, {exp.agents} agents, AWGN {exp.snr_db:g} dB")
        ax.set_xlabel("source size (px)")
        ax.set_xticks(sizes)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"accuracy (mean ± std, {len(exp.seeds)} seeds)")
    axes[0][-1].legend(fontsize=7)
    save_figure(fig, out / "fig6_accuracy_vs_source_size.png")
    channels = [c for c in ("awgn", "ofat_torch_2x4_zf", "ofat_flowgraph_2x4_zf")
                if any(r["channel"] == c for r in summary)]
    if len(channels) > 1:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        p = exp.ofat_patch
        for c, color in zip(channels, ("tab:blue", "tab:orange", "tab:green"), strict=False):
            for mode, ls in (("guided", "-"), ("random", "--")):
                ax.plot(sizes, [_acc(summary, c, p, s, mode, exp.rounds)[0] for s in sizes], ls=ls,
                        marker="o",
                        color=color, label=f"{plot_label(c)}, {mode}")
        ax.set_title(f"{p}x{p}, {exp.rounds} rounds, {exp.snr_db:g} dB (seed {exp.seeds[0]})")
        ax.set_xlabel("source size (px)")
        ax.set_ylabel("accuracy")
        ax.set_xticks(sizes)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        save_figure(fig, out / "ofat_loopback.png")
