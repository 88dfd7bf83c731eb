"""The live-vs-simulation gap as a link model: from a measured live run (live.csv of `semcom network live`)
the table, per model-SINR bin, of the OFAT frame-delivery probability with the other links interfering
and of the live accuracy of the delivered frames against the AWGN table at the model's SINR; and the
simulation of a live scenario with such a table as its link model (a frame is delivered with the bin's
probability, its accuracy scaled by the bin's live / table ratio; a lost frame scores accuracy 0).

    # the table of one run or several pooled (the first live run, first-design policies; committed as
    # link_table_run1.csv)
    .venv/bin/python experiments/network/live_gap.py table LIVE_CSV [LIVE_CSV ...] OUT_CSV
    # predict another run's live QoE from that table, and compare (writes gap.json beside the run's
    # live.json; default the run in output/live)
    .venv/bin/python experiments/network/live_gap.py predict output/live/link_table_run1.csv [LIVE_JSON]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from semcom.network.env import NetworkConfig, NetworkCore
from semcom.network.live import simulate_scenario
from semcom.results import write_csv

LIVE = Path(__file__).resolve().parent / "output" / "live"
EDGES = (-60.0, -5.0, -2.5, 0.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 80.0)  # model SINR bins (dB)


def _bins(sinr: np.ndarray) -> np.ndarray:
    return np.digitize(sinr, EDGES[1:-1])


def table(live_csvs: list[Path], out: Path) -> list[dict[str, float]]:
    """live.csv of one or more runs -> per-bin delivery probability and live / table accuracy ratio
    (written to ``out``)."""
    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    rows = []
    for live_csv in live_csvs:
        with live_csv.open() as f:
            rows += list(csv.DictReader(f))
    sinr = np.array([float(r["sinr_sim_db"]) for r in rows])
    deliv = np.array([r["delivered"] == "True" for r in rows])
    level = np.array([core.table.names.index(r["level"]) for r in rows])
    acc_live = np.array([float(r["accuracy_live"]) for r in rows])
    acc_model = core.table.accuracy(level, sinr)
    b = _bins(sinr)
    tab = []
    for i in range(len(EDGES) - 1):
        m, d = b == i, (b == i) & deliv
        tab.append({"sinr_lo_db": EDGES[i], "sinr_hi_db": EDGES[i + 1], "link_slots": int(m.sum()),
                    "delivered": float(deliv[m].mean()) if m.any() else 1.0,
                    "accuracy_live_delivered": float(acc_live[d].mean()) if d.any() else float("nan"),
                    "accuracy_table_at_model_sinr": float(acc_model[d].mean()) if d.any() else float("nan"),
                    "accuracy_ratio": float(acc_live[d].mean() / acc_model[d].mean()) if d.any() else 1.0})
    write_csv(out, tab)
    return tab


def predict(table_csv: Path, live_json: Path = LIVE / "live.json") -> dict[str, float]:
    """Simulate the scenario of ``live_json`` (same policies, seed, slots, frozen, model observations) with
    the table as the link model: expected QoE per link-slot = p QoE(ratio x table accuracy) + (1 - p)
    QoE(0)."""
    s = json.loads(live_json.read_text())["summary"]
    plain, linked = (simulate_scenario(s["policies"], s["seed"], s["slots"], t, per_frame=False)
                     for t in (None, table_csv))
    # a lost frame scored 0 (the first runs' scoring; `qoe_live_lost_zero` once `compare` rewrote live.json)
    out = {"table": str(table_csv), "live_run": str(live_json),
           "qoe_live": s.get("qoe_live_lost_zero", s["qoe_live"]),
           "qoe_sim_scenario_awgn_table": float(np.mean(plain)),
           "qoe_sim_scenario_with_link_table": float(np.mean(linked))}
    out["gap_awgn"] = out["qoe_live"] - out["qoe_sim_scenario_awgn_table"]
    out["gap_with_link_table"] = out["qoe_live"] - out["qoe_sim_scenario_with_link_table"]
    (live_json.parent / "gap.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "table":
        for r in table([Path(a) for a in sys.argv[2:-1]], Path(sys.argv[-1])):
            print({k: round(v, 3) for k, v in r.items()})
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "predict":
        print(json.dumps(predict(Path(sys.argv[2]), *map(Path, sys.argv[3:])), indent=2))
    else:
        raise SystemExit(__doc__)
