"""`semcom network eval`: the policies trained by `semcom network train`, frozen (no exploration, no
learning), against the fixed-rule baselines on seeds the training never saw (new terminal positions,
shadowing, requirements and fading)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from semcom.progress import progress_bar
from semcom.results import write_csv

from .agents import make_scheme, run_scheme
from .env import NetworkConfig, NetworkCore
from .experiment import LEARNERS, has_policy, load_policy

BASELINES = ("random", "greedy", "fixed", "fp")


def evaluate_policies(policies: str | Path, out_dir: str | Path, seeds: tuple[int, ...], n_slots: int,
                      n_cells: int = 7, progress: bool = True, link_table: str = "",
                      frame_values: int = 0) -> dict[str, Any]:
    """Mean network QoE over ``n_slots`` per scheme and seed -> eval.csv + eval.json in ``out_dir``;
    ``link_table`` / ``frame_values``: the env's link model and per-frame scoring (``NetworkConfig``)."""
    policies = Path(policies)
    net = NetworkConfig(n_cells=n_cells, n_slots=n_slots, link_table=link_table, frame_values=frame_values)
    per: dict[str, list[float]] = {}
    learners = [n for n in LEARNERS if has_policy(policies / n)]   # the ones that run trained
    jobs = [(n, s) for n in (*learners, *BASELINES) for s in seeds]
    for name, seed in progress_bar(jobs, progress=progress, desc="eval"):
        core = NetworkCore(net, 1)
        learner = name in learners
        scheme = load_policy(policies / name, core, seed) if learner else make_scheme(name, core, seed)
        per.setdefault(name, []).append(float(run_scheme(scheme, seed, n_slots)["qoe"].mean()))
    rows = [{"scheme": n, "qoe_mean": float(np.mean(v)), "qoe_std": float(np.std(v)), "n_seeds": len(v),
             "seeds": " ".join(map(str, seeds)), "n_slots": n_slots} for n, v in per.items()]
    out = Path(out_dir)
    write_csv(out / "eval.csv", rows)
    res = {"final_qoe": {r["scheme"]: (r["qoe_mean"], r["qoe_std"]) for r in rows}, "per_seed": per,
           "policies": str(policies), "link_table": link_table, "frame_values": frame_values}
    (out / "eval.json").write_text(json.dumps(res, indent=2) + "\n")
    return res
