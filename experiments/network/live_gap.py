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
    # what the BSs did and observed, live against the frame-by-frame simulation of the same scenario
    # (DRAWS realisations, default 10; TABLE default the shipped link table) -> observations.json beside it
    .venv/bin/python experiments/network/live_gap.py observations LIVE_DIR [DRAWS] [TABLE]
    # live.compare of several runs against one link table, on copies (the runs' own gap.json untouched)
    # -> per seed live, simulated (mean +- sd of the draws), gap, and the mean +- sd over the runs
    .venv/bin/python experiments/network/live_gap.py gaps OUT_JSON TABLE LIVE_DIR [LIVE_DIR ...]
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from semcom.network.env import NetworkConfig, NetworkCore
from semcom.network.experiment import read_policy_doc
from semcom.network.live import simulate_scenario
from semcom.results import save_figure, write_csv

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


def observation_stats(tr: dict[str, np.ndarray], period: int, names: list[str]) -> dict[str, dict]:
    """Per link (and "network": pooled over links) of one run's (slots, N) arrays: the share of the slots
    inside a large-timescale period in which beam or power changed, frames delivered, the observed SNR of a
    delivered frame minus the model SINR (mean, sd), model SINR, power, QoE, and each level's share."""
    slots, n = tr["beam"].shape
    changed = (np.diff(tr["beam"], axis=0) != 0) | (np.diff(tr["power_dbm"], axis=0) != 0)
    inside = (np.arange(1, slots) % period) != 0
    err = np.where(tr["delivered"], tr["snr_measured_db"] - tr["sinr_sim_db"], np.nan)
    out = {}
    for k, sel in [*((str(k), np.s_[:, k]) for k in range(n)), ("network", np.s_[:, :])]:
        e = err[sel]
        e = e[np.isfinite(e)]
        lv = tr["level"][sel]
        out[k] = {"changed_in_period": float(changed[inside][sel].mean()),
                  "delivered": float(tr["delivered"][sel].mean()),
                  "snr_error_mean_db": float(e.mean()) if e.size else float("nan"),
                  "snr_error_sd_db": float(e.std(ddof=1)) if e.size > 1 else float("nan"),
                  "sinr_model_db": float(tr["sinr_sim_db"][sel].mean()),
                  "power_dbm": float(tr["power_dbm"][sel].mean()),
                  "qoe": float(tr["qoe_live_lost_answered"][sel].mean()),
                  "levels": {names[c]: float(np.mean(lv == c)) for c in np.unique(lv)}}
    return out


def observations(live_dir: Path, draws: int = 10, link_table: Path | None = None) -> dict:
    """A live run's per-slot actions and observations against ``draws`` frame-by-frame simulations of its
    scenario (same seed, frozen policies, the link table's model of delivery and of the receiver's SNR
    estimate) -> observations.json in ``live_dir``: the live run's statistics and the draws' mean and sd."""
    from semcom.network.linktable import DEFAULT_LINK_TABLE

    link_table = link_table or DEFAULT_LINK_TABLE
    s = json.loads((live_dir / "live.json").read_text())["summary"]
    core = NetworkCore(NetworkConfig(n_cells=int(s["n_links"])), 1)
    names = list(core.table.names)
    period = int(read_policy_doc(s["policies"])["config"]["network"]["period"])
    with (live_dir / "live.csv").open() as f:
        rows = list(csv.DictReader(f))
    n = int(s["n_links"])
    live = {k: np.array([float(r[k]) for r in rows]).reshape(-1, n)
            for k in ("beam", "power_dbm", "sinr_sim_db", "snr_measured_db", "qoe_live_lost_answered")}
    live["level"] = np.array([names.index(r["level"]) for r in rows]).reshape(-1, n)
    live["delivered"] = np.array([r["delivered"] == "True" for r in rows]).reshape(-1, n)
    sims = []
    for d in range(draws):
        tr: dict[str, list[np.ndarray]] = {}
        simulate_scenario(s["policies"], s["seed"], s["slots"], link_table, frame_seed=d, trace=tr)
        sims.append(observation_stats({k: np.array(v) for k, v in tr.items()}, period, names))

    def spread(key: str, link: str) -> dict[str, float]:
        v = np.array([x[link][key] for x in sims])
        v = v[np.isfinite(v)]  # a draw without two delivered frames on the link has no SNR-error sd
        return {"mean": float(v.mean()) if v.size else float("nan"),
                "sd": float(v.std(ddof=1)) if v.size > 1 else float("nan")}

    live_stats = observation_stats(live, period, names)
    sim_stats = {link: {**{key: spread(key, link) for key in live_stats[link] if key != "levels"},
                        "levels": {name: float(np.mean([x[link]["levels"].get(name, 0.0) for x in sims]))
                                   for name in names if any(name in x[link]["levels"] for x in sims)}}
                 for link in live_stats}
    out = {"live_run": str(live_dir), "link_table": str(link_table), "draws": draws, "period": period,
           "live": live_stats, "simulated": sim_stats}
    (live_dir / "observations.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


def gaps(live_dirs: list[Path], link_table: Path, out: Path) -> dict:
    """``live.compare`` of every run in ``live_dirs`` against ``link_table``, each on a temporary copy of
    its live.json / live.csv -> ``out``: per run the live QoE, the simulated one (mean and sd of the
    frame-by-frame draws) and the gap; over the runs the gap's mean and sd and how many are within the
    margin."""
    import shutil
    import tempfile

    from semcom.network.live import QOE_MARGIN, compare

    runs = []
    for d in live_dirs:
        with tempfile.TemporaryDirectory() as tmp:
            for name in ("live.json", "live.csv"):
                shutil.copy(d / name, Path(tmp) / name)
            g = compare(tmp, link_table)
        runs.append({"live_run": str(d), **{k: g[k] for k in (
            "seed", "qoe_live", "qoe_sim", "qoe_sim_sd_draws", "gap", "live_percentile_in_draws",
            "within_margin")}})
    gap = np.array([r["gap"] for r in runs])
    doc = {"link_table": str(link_table), "margin": QOE_MARGIN, "runs": runs,
           "gap_mean": float(gap.mean()), "gap_sd": float(gap.std(ddof=1)) if gap.size > 1 else float("nan"),
           "within_margin": int(sum(r["within_margin"] for r in runs)), "n_runs": len(runs)}
    out.write_text(json.dumps(doc, indent=2) + "\n")
    write_csv(out.with_suffix(".csv"), runs)
    plot_gaps(out.with_suffix(".png"), doc)
    return doc


def plot_gaps(path: Path, doc: dict) -> None:
    """Live QoE against the simulated one (mean +- sd of the draws) per run, the margin as a band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    runs = doc["runs"]
    x = np.arange(len(runs))
    sim = np.array([r["qoe_sim"] for r in runs])
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.bar(x, 2 * doc["margin"], bottom=sim - doc["margin"], width=0.5, color="0.88",
           label=f"simulated +- the margin {doc['margin']}")
    ax.errorbar(x, sim, [r["qoe_sim_sd_draws"] for r in runs], fmt="o", capsize=4,
                label="simulated (mean +- sd of the frame-by-frame draws)")
    ax.plot(x, [r["qoe_live"] for r in runs], "s", color="C3", label="live flowgraph")
    ax.set_xticks(x, [f"seed {r['seed']}" for r in runs])
    ax.set_ylabel("network QoE (mean over links and slots)")
    ax.set_title(f"live - simulated: {doc['gap_mean']:+.3f} +- {doc['gap_sd']:.3f}, within the margin on "
                 f"{doc['within_margin']} of {doc['n_runs']}\n({Path(doc['link_table']).name})", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save_figure(fig, path)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "table":
        for r in table([Path(a) for a in sys.argv[2:-1]], Path(sys.argv[-1])):
            print({k: round(v, 3) for k, v in r.items()})
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "predict":
        print(json.dumps(predict(Path(sys.argv[2]), *map(Path, sys.argv[3:])), indent=2))
    elif len(sys.argv) >= 5 and sys.argv[1] == "gaps":
        g = gaps([Path(a) for a in sys.argv[4:]], Path(sys.argv[3]), Path(sys.argv[2]))
        for r in g["runs"]:
            print(f"seed {r['seed']}: live {r['qoe_live']:.3f}, simulated {r['qoe_sim']:.3f} +- "
                  f"{r['qoe_sim_sd_draws']:.3f}, gap {r['gap']:+.3f}")
        print(f"gap {g['gap_mean']:+.3f} +- {g['gap_sd']:.3f}, within {g['margin']} on {g['within_margin']} "
              f"of {g['n_runs']}")
    elif len(sys.argv) in (3, 4, 5) and sys.argv[1] == "observations":
        o = observations(Path(sys.argv[2]), *(int(a) for a in sys.argv[3:4]), *map(Path, sys.argv[4:5]))
        for link, st in o["live"].items():
            sim = o["simulated"][link]
            print(f"link {link}: " + ", ".join(f"{k} {v:.3f} / {sim[k]['mean']:.3f} +- {sim[k]['sd']:.3f}"
                                               for k, v in st.items() if k != "levels"))
            print("   levels live " + " ".join(f"{k} {v:.2f}" for k, v in st["levels"].items())
                  + " | sim " + " ".join(f"{k} {v:.2f}" for k, v in sim["levels"].items() if v > 0.005))
    else:
        raise SystemExit(__doc__)
