"""Fig. 7 of the seed paper on this network: QoE vs time slots for every scheme over several seeds, the
final-QoE table, the hierarchical scheme's gain over single-layer DRL, and how the gain scales with the
number of cells and with the large timescale T. Writes CSV + PNG + JSON (+ the trained policies)."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from semcom import checkpoint as ckpt
from semcom.errors import UsageError
from semcom.progress import progress_bar
from semcom.results import FIGURE_DPI, plot_label, read_csv, save_figure, write_csv

from .agents import SCHEMES, DQNConfig, Scheme, make_scheme, run_scheme
from .env import NetworkConfig, NetworkCore

log = logging.getLogger(__name__)
POLICY_KIND = "semcom_network_dqn"
# the *_cf schemes: the same with counterfactual neighbour targets (semcom.network.agents)
LEARNERS = ("hierarchical", "single_layer", "hierarchical_ref", "single_layer_plain", "hierarchical_cf",
            "hierarchical_ref_cf", "single_layer_cf")
HIERARCHICAL = ("hierarchical", "hierarchical_ref", "hierarchical_cf", "hierarchical_ref_cf")
SINGLE_LAYER = ("single_layer", "single_layer_plain", "single_layer_cf")
# the scaling study's default: the best hierarchical and single-layer schemes of Fig. 7 with and without
# the counterfactual option, and the two rules they are measured against (greedy, the centralised FP)
SCALING_SCHEMES = ("hierarchical", "hierarchical_cf", "single_layer", "single_layer_cf", "greedy", "fp")


@dataclass(frozen=True)
class Fig7Config:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_slots: int = 3000         # DHDRL runs 5000; 3000 keeps a CPU run of every scheme and seed < 20 min
    n_cells: int = 7
    period: int = 20
    # the scenario variant (defaults: DESIGN.md's): BS antennas = DFT beams, terminals in [frac R, R]
    n_antennas: int = 8
    ue_min_frac: float = 0.0
    schemes: tuple[str, ...] = tuple(SCHEMES)
    scaling_cells: tuple[int, ...] = (3, 7, 19)
    scaling_periods: tuple[int, ...] = (5, 10, 40)   # T = 20 is the cells axis' 7-cell point
    scaling_seeds: tuple[int, ...] = (0, 1)
    scaling_slots: int = 1500
    scaling_schemes: tuple[str, ...] = SCALING_SCHEMES
    tail: float = 0.2            # the final QoE: mean over the last 20 % of slots
    smooth: int = 100            # moving-average window of the plotted curves (slots)

    def __post_init__(self) -> None:
        for field in ("schemes", "scaling_schemes"):
            unknown = [n for n in getattr(self, field) if n not in SCHEMES]
            if unknown:
                raise UsageError(f"{field}: unknown scheme(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(SCHEMES)}")

    def network(self, **kw: Any) -> NetworkConfig:
        """The scenario of this run (``kw`` overrides, e.g. the scaling study's cells and T)."""
        base = {"n_cells": self.n_cells, "period": self.period, "n_slots": self.n_slots,
                "n_antennas": self.n_antennas, "n_beams": self.n_antennas, "ue_min_frac": self.ue_min_frac}
        return NetworkConfig(**{**base, **kw})

    @classmethod
    def quick(cls) -> Fig7Config:
        return cls(seeds=(0, 1), n_slots=600, n_cells=3, period=10, scaling_cells=(), scaling_periods=(),
                   scaling_seeds=(0,), scaling_slots=300, smooth=50)


def tail_mean(x: np.ndarray, tail: float) -> float:
    """Mean of the last ``tail`` share of ``x`` (n,)."""
    n = max(1, int(round(tail * len(x))))
    return float(np.mean(x[-n:]))


def moving_average(x: np.ndarray, w: int) -> np.ndarray:
    c = np.cumsum(np.insert(x, 0, 0.0))
    out = np.empty_like(x)
    k = np.arange(1, len(x) + 1)
    lo = np.maximum(0, k - w)
    out[:] = (c[k] - c[lo]) / (k - lo)
    return out


def run_one(scheme_name: str, net: NetworkConfig, seed: int, n_slots: int, dqn: DQNConfig | None = None,
            progress: bool = False) -> tuple[dict[str, np.ndarray], Scheme]:
    # the env enforces the scheme's large timescale (a hierarchical high level holds its choice T slots)
    core = NetworkCore(replace(net, n_slots=n_slots, large_timescale=SCHEMES[scheme_name].large_timescale), 1)
    scheme = make_scheme(scheme_name, core, seed, dqn or DQNConfig())
    t0 = time.perf_counter()
    res = run_scheme(scheme, seed, n_slots, progress=progress, desc=f"{scheme_name} seed {seed}")
    res["seconds"] = np.asarray(time.perf_counter() - t0)
    return res, scheme


def save_policy(path: Path, scheme: Scheme, net: NetworkConfig, dqn: DQNConfig, meta: dict[str, Any]) -> None:
    """The scheme's DQNs (one checkpoint per level) in the project's checkpoint format."""
    for level, module in scheme.modules().items():  # type: ignore[attr-defined]
        ckpt.save(path.with_name(f"{path.name}_{level}"), POLICY_KIND, module,
                  {"scheme": scheme.name, "level": level, "network": net.to_dict(), "dqn": dqn.to_dict(),
                   "obs_dim": int(module.n_in), "n_actions": int(module.n_out)},
                  meta=meta)


def _policy_first_level(path: Path) -> Path | None:
    """The checkpoint ``save_policy`` wrote first at ``path`` (a hierarchical scheme's high level, a
    single-layer one's joint DQN), or None when there is no policy there."""
    for level in ("high", "joint"):
        p = path.with_name(f"{path.name}_{level}")
        if ckpt.checkpoint_paths(p)[1].exists():
            return p
    return None


def has_policy(path: str | Path) -> bool:
    """Whether ``save_policy`` wrote a policy at ``path`` (a hierarchical or a single-layer one)."""
    return _policy_first_level(Path(path)) is not None


def read_policy_doc(path: str | Path) -> dict[str, Any]:
    """The checkpoint document of the policy at ``path`` (its first level's; every level has the same
    scheme, network and DQN config); a CheckpointError when there is none."""
    path = Path(path)
    first = _policy_first_level(path)
    if first is None:
        raise ckpt.CheckpointError(f"{path}: no network policy ({path.name}_high.json or "
                                   f"{path.name}_joint.json) there")
    return ckpt.read_doc(first, POLICY_KIND, "a network policy")


def load_policy(path: str | Path, core: NetworkCore, seed: int = 0) -> Scheme:
    """A trained hierarchical or single-layer scheme for ``core`` (exploration off)."""
    path = Path(path)
    cfg = read_policy_doc(path)["config"]
    if cfg["network"]["n_cells"] != core.N:
        raise ckpt.CheckpointError(f"{path}: trained for {cfg['network']['n_cells']} cells, the network has "
                                   f"{core.N}")
    stored = {"hindsight": False, **cfg["dqn"]}  # policies saved before the fix: the first design
    dqn = DQNConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()})
    scheme = make_scheme(cfg["scheme"], core, seed, dqn, period=cfg["network"]["period"])
    for level, module in scheme.modules().items():  # type: ignore[attr-defined]
        p = path.with_name(f"{path.name}_{level}")
        doc = ckpt.read_doc(p, POLICY_KIND, "a network policy")
        ckpt.load_weights(p, doc, module)
    scheme.explore = scheme.learning = False
    return scheme


def fig7(fc: Fig7Config, out_dir: str | Path, dqn: DQNConfig | None = None, progress: bool = True,
         command: str = "") -> dict[str, Any]:
    """Run every scheme on every seed; write fig7.csv/png, final_qoe.csv, scaling.csv/png, summary.json."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dqn = dqn or DQNConfig()
    t0 = time.perf_counter()
    if not fc.schemes:  # the scaling study alone (a second process beside the main runs)
        rows = scaling(fc, out, dqn, progress)
        summary = {"command": command, "config": fc.__dict__, "dqn": dqn.to_dict(), "scaling": rows,
                   "seconds": time.perf_counter() - t0}
        (out / "scaling.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
        return summary
    net = fc.network()
    curves: dict[str, np.ndarray] = {}
    finals: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    extra: dict[str, dict[str, list[float]]] = {}
    jobs = [(s, seed) for s in fc.schemes for seed in fc.seeds]
    per: dict[str, list[np.ndarray]] = {s: [] for s in fc.schemes}
    ceiling: dict[int, float] = {}   # per seed: the same channel for every scheme, so one bound per seed
    for name, seed in progress_bar(jobs, progress=progress, desc="fig7 runs"):
        res, scheme = run_one(name, net, seed, fc.n_slots, dqn)
        per[name].append(res["qoe"])
        ceiling.setdefault(seed, tail_mean(res["ceiling"], fc.tail))
        finals.setdefault(name, []).append(tail_mean(res["qoe"], fc.tail))
        seconds.setdefault(name, []).append(float(res["seconds"]))
        for k in ("accuracy", "rate", "sinr_db", "power_dbm", "level"):
            extra.setdefault(name, {}).setdefault(k, []).append(tail_mean(res[k], fc.tail))
        log.info("%s seed %d: final QoE %.4f (%.1f s)", name, seed, finals[name][-1], res["seconds"])
        if name in LEARNERS and seed == fc.seeds[0]:
            save_policy(out / "policies" / name, scheme, net, dqn,
                        {"seed": seed, "final_qoe": finals[name][-1], "command": command})
    for name in fc.schemes:
        curves[name] = np.stack(per[name])                          # (seeds, slots)
    rows = []
    step = max(1, fc.n_slots // 500)
    smooth = {n: np.stack([moving_average(c, fc.smooth) for c in curves[n]]) for n in fc.schemes}
    for t in range(0, fc.n_slots, step):
        for n in fc.schemes:
            rows.append({"slot": t + 1, "scheme": n, "qoe_mean": float(smooth[n][:, t].mean()),
                         "qoe_std": float(smooth[n][:, t].std())})
    write_csv(out / "fig7.csv", rows)
    table = []
    for n in fc.schemes:
        f = np.asarray(finals[n])
        table.append({"scheme": n, "centralised": SCHEMES[n].centralised, "final_qoe_mean": float(f.mean()),
                      "final_qoe_std": float(f.std()), "n_seeds": len(f),
                      **{f"{k}_mean": float(np.mean(v)) for k, v in extra[n].items()},
                      "seconds_per_run": float(np.mean(seconds[n]))})
    write_csv(out / "final_qoe.csv", table)
    summary: dict[str, Any] = {"command": command, "config": fc.__dict__, "network": net.to_dict(),
                               "dqn": dqn.to_dict(), "final_qoe": {r["scheme"]: r for r in table},
                               "final_qoe_per_seed": finals}
    summary["acceptance"] = acceptance(finals)
    summary["headroom"] = headroom(finals, [ceiling[s] for s in fc.seeds], fc.seeds, out)
    stats = {n: (c.mean(axis=0), c.std(axis=0)) for n, c in smooth.items()}
    plot_fig7(out / "fig7.png", np.arange(1, fc.n_slots + 1), stats, fc, summary["acceptance"],
              summary["headroom"]["ceiling_mean"])
    if fc.scaling_cells or fc.scaling_periods:
        summary["scaling"] = scaling(fc, out, dqn, progress)
    summary["seconds"] = time.perf_counter() - t0
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    return summary


def gain(h: list[float] | np.ndarray, s: list[float] | np.ndarray) -> float:
    """Relative gain (%) of mean ``h`` over mean ``s``."""
    return float(100.0 * (np.mean(h) / np.mean(s) - 1.0))


def best_of(finals: dict[str, list[float]], names: tuple[str, ...]) -> str | None:
    """Of ``names``, the scheme in ``finals`` with the highest mean final QoE (None: none of them ran)."""
    ran = [n for n in names if n in finals]
    return max(ran, key=lambda n: float(np.mean(finals[n]))) if ran else None


def best_single_layer(finals: dict[str, list[float]]) -> str | None:
    """The single-layer DRL scheme with the highest mean final QoE (the acceptance compares with it)."""
    return best_of(finals, SINGLE_LAYER)


def acceptance(finals: dict[str, list[float]]) -> dict[str, Any]:
    """Gains (%) of each hierarchical scheme over both single-layer ones, the best of them, and the rest;
    the keys without a prefix are the headline scheme's (``hierarchical``)."""
    acc: dict[str, Any] = {}
    best = best_single_layer(finals)
    if best is not None:
        acc["best_single_layer"] = best
    top = best_of(finals, HIERARCHICAL)   # the best of the hierarchical schemes (with or without the option)
    if top is not None and best is not None:
        acc["best_hierarchical"] = top
        acc["best_hierarchical_gain_over_best_single_layer_pct"] = gain(finals[top], finals[best])
    for hname in HIERARCHICAL:
        if hname not in finals:
            continue
        h, pre = finals[hname], "" if hname == "hierarchical" else f"{hname}_"
        for n in (*SINGLE_LAYER, "random", "greedy", "fixed", "fp", "hierarchical", "oracle"):
            if n in finals and n != hname:
                acc[f"{pre}gain_over_{n}_pct"] = gain(h, finals[n])
                acc[f"{pre}beats_{n}"] = bool(np.mean(h) > np.mean(finals[n]))
        if best is not None:
            acc[f"{pre}gain_over_best_single_layer_pct"] = gain(h, finals[best])
            acc[f"{pre}gain_ge_20pct"] = acc[f"{pre}gain_over_best_single_layer_pct"] >= 20.0
    return acc


def headroom(finals: dict[str, list[float]], ceiling: list[float], seeds: tuple[int, ...], out: Path
             ) -> dict[str, Any]:
    """How much QoE this environment leaves above the schemes: the per-link interference-free ceiling (an
    upper bound on any scheme) and the genie oracle (a centralised local optimum with the true channels)
    against 1.2 x the best single-layer DRL scheme, per seed -> headroom.csv and the summary's numbers."""
    best = best_single_layer(finals)
    rows = []
    for i, seed in enumerate(seeds):
        row: dict[str, Any] = {"seed": seed, "ceiling": ceiling[i]}
        row.update({n: finals[n][i] for n in finals})
        if best is not None:
            row["needed_for_20pct"] = 1.2 * finals[best][i]
        rows.append(row)
    write_csv(out / "headroom.csv", rows)
    res: dict[str, Any] = {"ceiling_mean": float(np.mean(ceiling)), "ceiling_std": float(np.std(ceiling)),
                           "ceiling_per_seed": list(ceiling)}
    if best is not None:
        ref = float(np.mean(finals[best]))
        res.update(best_single_layer=best, needed_for_20pct=1.2 * ref,
                   ceiling_over_best_single_layer_pct=gain(ceiling, finals[best]),
                   ceiling_below_needed_on_every_seed=bool(all(
                       c < 1.2 * s for c, s in zip(ceiling, finals[best], strict=True))))
        if "oracle" in finals:
            res["oracle_over_best_single_layer_pct"] = gain(finals["oracle"], finals[best])
        res["gain_ge_20pct_reachable"] = res["ceiling_mean"] >= 1.2 * ref
    return res


def scaling(fc: Fig7Config, out: Path, dqn: DQNConfig, progress: bool) -> list[dict[str, Any]]:
    """``fc.scaling_schemes`` against the number of cells (at T = fc.period) and T (at fc.n_cells): per
    setting each scheme's final QoE over ``fc.scaling_seeds`` and every hierarchical scheme's gain over the
    best single-layer one, each single-layer one and the rules -> scaling.csv / scaling.png; the rows
    (with the per-seed numbers) are returned."""
    rows: list[dict[str, Any]] = []
    settings = [("cells", c, fc.period) for c in fc.scaling_cells] + \
               [("period", fc.n_cells, p) for p in fc.scaling_periods]
    # a scheme without a large timescale never reads T, so its runs on one cell count are the same
    # for every T (the env draws nothing from T): run once per cell count
    same_for_every_period: dict[tuple[str, int], list[float]] = {}
    for axis, cells, period in progress_bar(settings, progress=progress, desc="scaling"):
        net = fc.network(n_cells=cells, period=period, n_slots=fc.scaling_slots)
        res: dict[str, list[float]] = {}
        for name in fc.scaling_schemes:
            key = (name, cells)
            if SCHEMES[name].large_timescale or key not in same_for_every_period:
                res[name] = [tail_mean(run_one(name, net, s, fc.scaling_slots, dqn)[0]["qoe"], fc.tail)
                             for s in fc.scaling_seeds]
                if not SCHEMES[name].large_timescale:
                    same_for_every_period[key] = res[name]
            else:
                res[name] = same_for_every_period[key]
        rows.append({"axis": axis, "n_cells": cells, "period": period, "n_seeds": len(fc.scaling_seeds),
                     "n_slots": fc.scaling_slots,
                     **{f"{n}_mean": float(np.mean(v)) for n, v in res.items()},
                     **{f"{n}_std": float(np.std(v)) for n, v in res.items()},
                     **scaling_gains(res), "per_seed": res})
        log.info("scaling %s: %s", axis, rows[-1])
    write_csv(out / "scaling.csv", [{k: v for k, v in r.items() if k != "per_seed"} for r in rows])
    plot_scaling(out / "scaling.png", rows, fc.scaling_schemes)
    return rows


def scaling_gains(res: dict[str, list[float]]) -> dict[str, Any]:
    """One scaling setting's gains (%): the best hierarchical scheme over the best single-layer one, and
    every hierarchical scheme over the best single-layer one, each single-layer one, greedy and FP."""
    row: dict[str, Any] = {}
    top, best = best_of(res, HIERARCHICAL), best_of(res, SINGLE_LAYER)
    if top is not None and best is not None:
        row.update(best_hierarchical=top, best_single_layer=best,
                   best_hierarchical_gain_over_best_single_layer_pct=gain(res[top], res[best]))
    for h in (n for n in HIERARCHICAL if n in res):
        if best is not None:
            row[f"{h}_gain_over_best_single_layer_pct"] = gain(res[h], res[best])
        for ref in (*SINGLE_LAYER, "greedy", "fp"):
            if ref in res:
                row[f"{h}_gain_over_{ref}_pct"] = gain(res[h], res[ref])
    return row


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fig7(path: Path, slots: np.ndarray, stats: dict[str, tuple[np.ndarray, np.ndarray]], fc: Fig7Config,
              acc: dict[str, Any], ceiling: float | None = None) -> None:
    """Fig. 7 from each scheme's smoothed QoE, mean and std over the seeds, at ``slots`` (n,) (every slot
    of the run, or fig7.csv's subsample when redrawn)."""
    plt = _plt()
    # left: the whole run; right: its second half, zoomed (the schemes lie within a few % there)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.0, 1.25]})
    half = int(np.searchsorted(slots, fc.n_slots // 2 + 1))
    # a *_cf scheme (counterfactual neighbour targets) in its base scheme's colour, thicker
    bases = list(dict.fromkeys(n.removesuffix("_cf") for n in stats))
    colours = plt.get_cmap("tab10").colors
    zoom_lo, zoom_hi = 1.0, 0.0
    for n, (m, s) in stats.items():
        label = plot_label(n) + (" (centralised)" if SCHEMES[n].centralised else "")
        style = {"color": colours[bases.index(n.removesuffix("_cf")) % len(colours)],
                 "lw": 2.2 if n.endswith("_cf") else 1.1, "ls": "--" if SCHEMES[n].centralised else "-"}
        axes[0].plot(slots, m, label=label, **style)
        axes[0].fill_between(slots, m - s, m + s, color=style["color"], alpha=0.08)
        axes[1].plot(slots[half:], m[half:], **style)
        if n != "random":
            zoom_lo, zoom_hi = min(zoom_lo, float(m[half:].min())), max(zoom_hi, float(m[half:].max()))
    for ax in axes:
        if ceiling is not None:
            ax.axhline(ceiling, color="k", ls=":", lw=1, label="interference-free ceiling (bound)"
                       if ax is axes[0] else None)
        ax.set_xlabel("time slot")
        ax.grid(alpha=0.3)
    axes[1].set_ylim(zoom_lo - 0.01, max(zoom_hi, ceiling or 0.0) + 0.01)
    axes[1].set_title("second half, mean over seeds (random not shown)", fontsize=9)
    edge = f", terminals at {fc.ue_min_frac:g}-1 R" if fc.ue_min_frac else ""
    title = (f"QoE vs time slots, {fc.n_cells} cells, {fc.n_antennas} BS antennas{edge}, T = {fc.period}, "
             f"mean ± std over {len(fc.seeds)} seeds")
    if "best_hierarchical" in acc:
        title += (f"\nbest hierarchical ({plot_label(acc['best_hierarchical'])}) vs best single-layer "
                  f"({plot_label(acc['best_single_layer'])}), last {int(100 * fc.tail)} %: "
                  f"{acc['best_hierarchical_gain_over_best_single_layer_pct']:+.1f} %")
    fig.suptitle(title, fontsize=9)
    axes[0].set_ylabel(f"network QoE ({fc.smooth}-slot moving average)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="center right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 0.71, 1))  # room for the legend (its longest label) on the right
    fig.savefig(path, dpi=FIGURE_DPI)
    plt.close(fig)


def replot_fig7(out_dir: str | Path) -> Path:
    """Redraw ``out_dir``'s fig7.png from its fig7.csv (each scheme's smoothed mean and std over the seeds,
    every ``n_slots // 500``-th slot) and summary.json (the run's configuration, acceptance and ceiling):
    nothing is trained."""
    out = Path(out_dir)
    table, summary_path = out / "fig7.csv", out / "summary.json"
    for path in (table, summary_path):
        if not path.is_file():
            raise UsageError(f"--replot: no {path}")
    summary = json.loads(summary_path.read_text())
    known = Fig7Config.__dataclass_fields__
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in summary["config"].items() if k in known}
    fc = Fig7Config(**config)
    rows = read_csv(table)
    stats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    slots = np.unique([int(r["slot"]) for r in rows])
    for name in dict.fromkeys(r["scheme"] for r in rows):
        if name not in SCHEMES:
            raise UsageError(f"--replot: {table} has a scheme {name!r} this version does not know")
        mine = sorted((int(r["slot"]), float(r["qoe_mean"]), float(r["qoe_std"])) for r in rows
                      if r["scheme"] == name)
        if [t for t, _, _ in mine] != slots.tolist():
            raise UsageError(f"--replot: {table}: scheme {name!r} is not on the slots of the others")
        stats[name] = (np.array([m for _, m, _ in mine]), np.array([s for _, _, s in mine]))
    path = out / "fig7.png"
    plot_fig7(path, slots, stats, fc, summary.get("acceptance", {}),
              summary.get("headroom", {}).get("ceiling_mean"))
    return path


def plot_scaling(path: Path, rows: list[dict[str, Any]], schemes: tuple[str, ...]) -> None:
    """Top: each scheme's final QoE (mean ± std over the seeds) per setting; bottom: each hierarchical
    scheme's gain over the best single-layer scheme of the setting and over greedy."""
    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex="col")
    colour = dict(zip(schemes, plt.get_cmap("tab10").colors, strict=False))   # a scheme's colour in both rows
    for col, (axis, key) in enumerate((("cells", "n_cells"), ("period", "period"))):
        rs = [r for r in rows if r["axis"] == axis]
        if not rs:
            continue
        x = [r[key] for r in rs]
        xl = f"cells (T = {rs[0]['period']})" if axis == "cells" else \
            f"large timescale T (slots), {rs[0]['n_cells']} cells"
        for n in schemes:
            axes[0, col].errorbar(x, [r[f"{n}_mean"] for r in rs], yerr=[r[f"{n}_std"] for r in rs],
                                  marker="o", capsize=3, lw=2.0 if n.endswith("_cf") else 1.0,
                                  label=plot_label(n), ls="--" if SCHEMES[n].centralised else "-",
                                  color=colour[n])
        for h in (n for n in HIERARCHICAL if n in schemes):
            for ref, style in (("best_single_layer", "o-"), ("greedy", "s--")):
                if f"{h}_gain_over_{ref}_pct" in rs[0]:
                    axes[1, col].plot(x, [r[f"{h}_gain_over_{ref}_pct"] for r in rs], style, color=colour[h],
                                      label=f"{plot_label(h)} over {plot_label(ref)}")
        axes[1, col].axhline(0.0, color="k", lw=0.8)
        axes[1, col].set_xlabel(xl)
        for ax in axes[:, col]:
            ax.set_xticks(x, [str(v) for v in x])
            ax.grid(alpha=0.3)
        axes[0, col].legend(fontsize=7)
        axes[1, col].legend(fontsize=7)
    axes[0, 0].set_ylabel(f"final QoE (last 20 %), mean ± std over {rows[0]['n_seeds']} seeds")
    axes[1, 0].set_ylabel("QoE gain (%)")
    fig.suptitle(f"scaling: {rows[0]['n_slots']} slots per run", fontsize=9)
    save_figure(fig, path)
