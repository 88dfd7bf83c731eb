"""One informal ablation run of the network README's "Why learning made the DQNs worse" table (7 cells,
T = 20, final = mean QoE of the last 20 % of slots):

    .venv/bin/python experiments/network/ablation.py NAME SCHEME SEED SLOTS [key=value ...]
    # e.g. the first design, only its high level learning:
    .venv/bin/python experiments/network/ablation.py first_only_high hierarchical 0 1500 \\
        hindsight=0 freeze=low

keys: any DQNConfig field (hindsight=0/1, buffer=1000, eps_start=0.2, ...), nw=<neighbour weight>,
freeze=high,low (that DQN's optimiser at lr 0; single_layer: freeze=dqn).
"""

from __future__ import annotations

import sys
import time

import torch

from semcom.network.agents import DQNConfig, make_scheme, run_scheme
from semcom.network.env import NetworkConfig, NetworkCore
from semcom.network.experiment import tail_mean

INTS = ("buffer", "batch_size", "learn_start")


def main(argv: list[str]) -> None:
    torch.set_num_threads(1)
    name, scheme_name, seed, slots = argv[0], argv[1], int(argv[2]), int(argv[3])
    kw = dict(x.split("=", 1) for x in argv[4:])
    dqn = {k: (v == "1") if k == "hindsight" else int(v) if k in INTS else float(v)
           for k, v in kw.items() if k not in ("freeze", "nw")}
    net = NetworkConfig(n_cells=7, period=20, n_slots=slots, neighbour_weight=float(kw.get("nw", 0.5)))
    scheme = make_scheme(scheme_name, NetworkCore(net, 1), seed, DQNConfig(**dqn))
    for level in filter(None, kw.get("freeze", "").split(",")):
        for g in getattr(scheme, level).opt.param_groups:
            g["lr"] = 0.0
    t0 = time.time()
    res = run_scheme(scheme, seed, slots)
    tail = {k: tail_mean(res[k], 0.2) for k in ("qoe", "accuracy", "power_dbm", "level", "sinr_db")}
    print(f"{name} {scheme_name} s{seed}: final {tail['qoe']:.4f} acc {tail['accuracy']:.3f} power "
          f"{tail['power_dbm']:.1f} level {tail['level']:.2f} sinr {tail['sinr_db']:.1f} "
          f"({time.time() - t0:.0f}s)", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 5:
        raise SystemExit(__doc__)
    main(sys.argv[1:])
