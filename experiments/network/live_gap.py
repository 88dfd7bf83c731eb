"""Where the live QoE loses against the model, from the measured live run (output/live/live.csv): per
model-SINR bin, the OFAT frame-delivery probability with the other links interfering, the live accuracy of
the delivered frames against the AWGN table, and how much of the live-vs-model gap a delivery model
(a lost frame scores accuracy 0, QoE ~ 0) explains. Writes output/live/delivery_vs_sinr.csv and
output/live/gap.json.

    .venv/bin/python experiments/network/live_gap.py
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from semcom.results import write_csv

LIVE = Path(__file__).resolve().parent / "output" / "live"
EDGES = (-60.0, -5.0, -2.5, 0.0, 2.5, 5.0, 7.5, 10.0, 15.0, 20.0, 80.0)  # model SINR bins (dB)


def main() -> None:
    with (LIVE / "live.csv").open() as f:
        rows = list(csv.DictReader(f))
    sinr = np.array([float(r["sinr_sim_db"]) for r in rows])
    deliv = np.array([r["delivered"] == "True" for r in rows])
    q_live = np.array([float(r["qoe_live"]) for r in rows])
    q_model = np.array([float(r["qoe_sim_same_slot"]) for r in rows])
    acc_live = np.array([float(r["accuracy_live"]) for r in rows])
    acc_meas = np.array([float(r["accuracy_table_at_measured"]) for r in rows])
    b = np.digitize(sinr, EDGES[1:-1])
    p = np.zeros(len(rows))
    table = []
    for i in range(len(EDGES) - 1):
        m = b == i
        if not m.any():
            continue
        p[m] = deliv[m].mean()
        d = m & deliv
        table.append({"sinr_lo_db": EDGES[i], "sinr_hi_db": EDGES[i + 1], "link_slots": int(m.sum()),
                      "delivered": float(deliv[m].mean()),
                      "accuracy_live_delivered": float(acc_live[d].mean()) if d.any() else float("nan"),
                      "accuracy_table_at_measured_delivered": float(acc_meas[d].mean()) if d.any()
                      else float("nan"),
                      "qoe_live": float(q_live[m].mean()), "qoe_model": float(q_model[m].mean()),
                      "qoe_model_x_delivery": float((p[m] * q_model[m]).mean())})
    write_csv(LIVE / "delivery_vs_sinr.csv", table)
    summary = {"link_slots": len(rows), "qoe_live": float(q_live.mean()), "qoe_model_same_slots":
               float(q_model.mean()), "qoe_model_x_delivery_same_slots": float((p * q_model).mean()),
               "gap_explained_by_delivery": float((q_model.mean() - (p * q_model).mean())
                                                  / (q_model.mean() - q_live.mean()))}
    (LIVE / "gap.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    for r in table:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})


if __name__ == "__main__":
    main()
