"""`semcom network live`: the trained policies drive N OFAT links that share the air in one loopback
flowgraph (flowgraphs/network_loopback_<N>.grc), and the QoE they reach is compared with the simulation
of the same scenario.

The slots run through the simulation's own loop (``agents.run_scheme`` with the live slot as its
``measured`` hook), so the policies keep the simulation's schedule: the hierarchical high level re-decides
beam and power every T slots, live as simulated. Per slot:

1. every BS's policy acts on its local observation, whose link measurements (SINR, interference, last
   accuracy / rate / QoE) are what its receiver MEASURED in the last slot: the ofat_rx SNR estimate (noise
   plus the other links' interference: the fit-residual estimate), the answers of the delivered frame, or
   for a lost frame LOST_SINR_DB and the answers the receiver gives its questions without any token; its
   own per-beam gains come from the network model (CSI feedback);
2. the network model advances one slot (same geometry, fading and requirements as the simulation) and the
   beamformed channel under the chosen beams and powers becomes the interference channel's gains:
   receiver k hears its transmitter with unit gain and transmitter j through sqrt(p_j / p_k) h_jk / h_kk,
   noise sigma^2 / (p_k |h_kk|^2); posted on the block's ``control`` port, applied before any frame moves;
3. each link sends one frame of V real values: as many questions as fit at its compression level
   (the first k tokens of the shipped JTCC or raw-token link, n_c values each; Gaussian filler of the
   same power pads to V, so every frame has the same length and all links' frames are on the air
   together; each interferer arrives with its own oscillator offset (the receiver locks to its own
   transmitter only));
4. every frame comes back or is counted lost (the link client); the receiver reconstructs (ZF), decodes
   the tokens, answers the questions: accuracy, rate W xi / n_c and QoE as in the environment.

Link k's frames use the layout's sequence_id k (``link_sequences``), so a receiver that synchronises to a
stronger foreign frame fails its header CRC (counted ``sequence_mismatch``) instead of delivering it, and
its SNR estimate is noise plus interference from the training's fit residual (its SINR).

The live QoE and the simulated QoE are scored the same way, as a slot is served: the accuracy of a slot
is the fraction of its frame's q questions answered right, and a lost frame's questions are answered
without any token (what the receiver does in service; it is also what the AWGN table's floor measures,
the tokens carrying nothing). The simulation of the scenario (same seed, frozen policy, model
observations) runs the environment with ``frame_values`` = FRAME_VALUES (the QoE is the expectation over
the frame's Binomial question sampling) and with the PHY's link table as its link model (``semcom network
linktable``: delivery probability and the delivered frames' accuracy ratio per SINR bin, measured in a
controlled sweep of the same flowgraph, not on any live run). ``compare`` puts the two side by side
(``gap.json``) with two references: the environment as Fig. 7 scores it (AWGN table, expected accuracy)
and the link model at the live run's own slots (the live trajectory's actions and model SINRs), which
splits the gap into what the PHY model misses and what the different trajectory costs. Every row also
keeps the QoE with a lost frame scored accuracy 0 (``qoe_live``, the first runs' scoring).
"""

from __future__ import annotations

import csv
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from semcom.results import save_figure, write_csv

from .air import FRAME_VALUES, INTERFERER_CFO, SharedAir, TokenPool, level_parts
from .env import LOST_SINR_DB, NetworkConfig, NetworkCore
from .linktable import DEFAULT_LINK_TABLE

log = logging.getLogger(__name__)
QOE_MARGIN = 0.05  # stated margin: |live QoE - simulated QoE| of the same scenario, mean over links and slots
# what compare() adds to a live run's summary
COMPARISON_KEYS = ("link_table", "qoe_live", "qoe_sim", "qoe_sim_sd_draws", "qoe_sim_expected",
                   "qoe_model_at_live_slots", "qoe_live_lost_zero", "qoe_sim_awgn_expected_accuracy", "gap",
                   "gap_expected", "margin", "within_margin")
FRAME_DRAWS = 20  # realisations of the frame-by-frame simulation of a live scenario


def flowgraph_gains(core: NetworkCore, beam: np.ndarray, power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Interference-channel gains (N, N) [receiver, transmitter] and noise variances (N,) of network 0,
    normalised so every receiver hears its own transmitter with unit gain (the receiver's AGC)."""
    h = core.beam_channels()[0]                                           # (Nbs, Nue, B)
    n = core.N
    hb = h[np.arange(n)[:, None], np.arange(n)[None, :], beam[0][:, None]]  # (j, k) under BS j's beam
    amp = np.sqrt(core.power_w[power[0]])[:, None] * hb                   # transmitter j -> receiver k
    own = np.diag(amp)
    gains = (amp / own[None, :]).T                                        # [k, j] = amp[j, k] / amp[k, k]
    noise = core.noise_w / np.abs(own) ** 2
    return gains.astype(np.complex64), noise


def simulate_scenario(policies: str | Path, seed: int, n_slots: int, link_table: str | Path | None = None,
                      per_frame: bool = True, frame_seed: int | None = None,
                      trace: dict[str, list[np.ndarray]] | None = None) -> np.ndarray:
    """(n_slots,) network QoE (mean over links) of the simulation of a live scenario: same seed, the
    policies frozen; with ``link_table`` as the env's link model and, ``per_frame``, each slot scored over
    its frame's question sampling (``NetworkConfig.frame_values``). ``frame_seed`` None: expectations (the
    BSs observe the model's SINR and expected QoE); an int: one realisation of every frame (delivered or
    not, its questions right or wrong), observed as the live receivers report it (``sample_frames``).
    ``trace``: gets per slot one (N,) array per live.csv column of what the BSs did and observed (beam,
    power_dbm, level as an index, delivered, sinr_sim_db, snr_measured_db: the SNR the BS observes,
    qoe_live_lost_answered: the slot's QoE), to set beside a live run's (``live_gap.py observations``)."""
    from .agents import run_scheme
    from .experiment import load_policy, read_policy_doc

    policies = Path(policies)
    net = read_policy_doc(policies)["config"]["network"]
    cfg = NetworkConfig(n_cells=int(net["n_cells"]), period=int(net["period"]), n_slots=n_slots,
                        link_table=str(link_table or ""), frame_values=FRAME_VALUES if per_frame else 0,
                        sample_frames=frame_seed is not None, frame_seed=frame_seed or 0)
    core = NetworkCore(cfg, 1)

    def record(t: int, actions: tuple[np.ndarray, np.ndarray, np.ndarray], m: dict[str, np.ndarray]) -> None:
        beam, power, level = actions
        now = {"beam": beam[0], "power_dbm": np.asarray(cfg.power_dbm)[power[0]], "level": level[0],
               "delivered": m["delivered"][0] > 0, "sinr_sim_db": m["sinr_db"][0],
               "snr_measured_db": core.last["sinr_db"][0],
               "qoe_live_lost_answered": m["qoe"][0]}
        for k, v in now.items():
            trace.setdefault(k, []).append(np.array(v))  # type: ignore[union-attr]

    return run_scheme(load_policy(policies, core, seed), seed, n_slots,
                      measured=record if trace is not None else None)["qoe"]


def compare(live_dir: str | Path, link_table: str | Path = DEFAULT_LINK_TABLE) -> dict[str, Any]:
    """The live run in ``live_dir`` (live.json + live.csv) against the simulation of its scenario with the
    link table, both scored per frame with a lost frame's questions answered without tokens -> gap.json.

    Also: the environment as Fig. 7 scores it (AWGN table, QoE of the expected accuracy), and the link model
    at the live run's own slots (its actions and model SINRs, each frame's questions): live - that is what
    the PHY model misses; that - the scenario's simulation is what the live trajectory's other actions do."""
    live_dir = Path(live_dir)
    s = json.loads((live_dir / "live.json").read_text())["summary"]
    with (live_dir / "live.csv").open() as f:
        rows = list(csv.DictReader(f))
    n = int(s["n_links"])
    # the headline simulation: the live loop simulated, frame by frame (delivery drawn from the link table,
    # questions answered at random, the BSs observing what the receivers report), FRAME_DRAWS
    # realisations; its mean is the simulated QoE, its spread what one 100-slot run varies by alone
    draws = np.array([simulate_scenario(s["policies"], s["seed"], s["slots"], link_table, frame_seed=d).mean()
                      for d in range(FRAME_DRAWS)])
    sim = simulate_scenario(s["policies"], s["seed"], s["slots"], link_table)  # expectations (mean field)
    awgn = simulate_scenario(s["policies"], s["seed"], s["slots"], None, per_frame=False)
    core = NetworkCore(NetworkConfig(n_cells=n, link_table=str(link_table), frame_values=FRAME_VALUES), 1)
    core.reset(s["seed"])  # the scenario's requirements and weights
    grid = {k: np.array([float(r[k]) for r in rows]).reshape(-1, n)
            for k in ("sinr_sim_db", "qoe_live_lost_answered", "qoe_live")}
    level = np.array([core.table.names.index(r["level"]) for r in rows]).reshape(-1, n)
    same = core.link_metrics(level, grid["sinr_sim_db"])
    out = {"live_run": str(live_dir), "link_table": str(link_table), "seed": s["seed"], "slots": s["slots"],
           "frames_sent": s["frames_sent"], "frames_delivered": s["frames_delivered"],
           "frames_lost": s["frames_lost"],
           "qoe_live": float(grid["qoe_live_lost_answered"].mean()),
           "qoe_sim": float(draws.mean()), "qoe_sim_sd_draws": float(draws.std(ddof=1)),
           "frame_draws": FRAME_DRAWS,
           "live_percentile_in_draws": float(100.0 * np.mean(draws < grid["qoe_live_lost_answered"].mean())),
           "qoe_sim_expected": float(sim.mean()),
           "qoe_model_at_live_slots": float(same["qoe"].mean()),
           "delivered_model_at_live_slots": float(same["delivered"].mean()),
           "qoe_live_lost_zero": float(grid["qoe_live"].mean()),
           "qoe_sim_awgn_expected_accuracy": float(awgn.mean())}
    out["gap"] = out["qoe_live"] - out["qoe_sim"]
    out["gap_expected"] = out["qoe_live"] - out["qoe_sim_expected"]
    # live - model at the live slots: what the link model misses; model at the live slots - expected
    # simulation: what the live trajectory's other actions do
    out["gap_phy_model"] = out["qoe_live"] - out["qoe_model_at_live_slots"]
    out["gap_trajectory"] = out["qoe_model_at_live_slots"] - out["qoe_sim_expected"]
    out["gap_awgn_env"] = out["qoe_live_lost_zero"] - out["qoe_sim_awgn_expected_accuracy"]
    out["margin"] = QOE_MARGIN
    out["within_margin"] = bool(abs(out["gap"]) <= QOE_MARGIN)
    (live_dir / "gap.json").write_text(json.dumps(out, indent=2) + "\n")
    # live.json's summary gets the comparison (replacing the keys the first runs' scoring wrote)
    doc = json.loads((live_dir / "live.json").read_text())
    for stale in ("qoe_live_table_at_measured_snr", "qoe_sim_same_slots", "qoe_live_lost_answered",
                  "qoe_sim_same_slots_sampled", "qoe_sim_scenario", "qoe_sim_scenario_sampled",
                  "within_margin_per_frame_scoring"):
        doc["summary"].pop(stale, None)
    doc["summary"].update({k: out[k] for k in COMPARISON_KEYS})
    (live_dir / "live.json").write_text(json.dumps(doc, indent=2, default=float) + "\n")
    plot_live(live_dir / "live.png", grid["qoe_live_lost_answered"].mean(axis=1),
              grid["qoe_live"].mean(axis=1), sim, {**doc["summary"], **out})
    return out


def run_live(policies: str | Path, out_dir: str | Path, n_frames: int = 200, seed: int = 100,
             scheme: str = "hierarchical", timeout_s: float = 4.0, progress: bool = True,
             link_sequences: bool = True, link_table: str | Path = DEFAULT_LINK_TABLE) -> dict[str, Any]:
    """Run ``n_frames`` slots live; write live.csv (per slot and link), live.png, live.json and gap.json
    (``compare`` with ``link_table``). ``link_sequences=False``: every link on sequence_id 0 (the first
    live runs, for comparison)."""
    from .agents import run_scheme
    from .experiment import load_policy, read_policy_doc

    policies = Path(policies) / scheme
    doc = read_policy_doc(policies)
    n = int(doc["config"]["network"]["n_cells"])
    net = NetworkConfig(n_cells=n, period=int(doc["config"]["network"]["period"]), n_slots=n_frames)
    core = NetworkCore(net, 1)
    policy = load_policy(policies, core, seed)
    pool = TokenPool(progress=progress)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with SharedAir(n, seed, link_sequences=link_sequences, timeout_s=timeout_s) as air:

        def serve(s: int, actions: tuple[np.ndarray, np.ndarray, np.ndarray], m: dict[str, np.ndarray]
                  ) -> None:
            """Slot ``s`` on the air under the model's channel and the policies' ``actions``; what the
            receivers measured replaces the model's metrics in ``core.last`` (what the BSs observe next)."""
            beam, power, level = actions
            gains, noise = flowgraph_gains(core, beam, power)
            p_dbm = np.asarray(net.power_dbm)[power[0]]
            air.set_channel(s, gains, noise, p_dbm.tolist(), level[0].tolist())
            sent = []
            for k in range(n):
                link_name, kk = level_parts(core.table.names[level[0, k]])
                n_c = int(core.table.values[level[0, k]])
                idx = pool.take(FRAME_VALUES // n_c)
                sent.append((pool.frame(link_name, kk, idx, rng, FRAME_VALUES), link_name, kk, idx))
            back = air.exchange([x[0] for x in sent], {"slot": s})
            acc = np.zeros(n)
            acc_no_frame = np.zeros(n)  # what a lost frame's questions get answered without tokens
            sinr = np.full(n, LOST_SINR_DB)
            delivered = np.array([b is not None for b in back])
            for k, got in enumerate(back):
                _, link_name, kk, idx = sent[k]
                if got is None:
                    acc_no_frame[k] = pool.no_frame_correct(link_name, idx).mean()
                    continue
                acc[k] = pool.answers(link_name, kk, idx, got.values).mean()
                sinr[k] = got.snr_db
            lvl = level[0]
            _, q = core.qoe_from_accuracy(lvl[None], acc[None])
            acc_answered = np.where(delivered, acc, acc_no_frame)
            rate_answered, q_answered = core.qoe_from_accuracy(lvl[None], acc_answered[None])
            q_sampled = core.sampled_qoe(lvl[None], m["accuracy"], np.array([[len(x[3]) for x in sent]]))[0]
            acc_t, _, q_table = core.qoe(lvl[None], sinr[None])
            for k in range(n):
                rows.append({"slot": s, "link": k, "beam": int(beam[0, k]), "power_dbm": float(p_dbm[k]),
                             "level": core.table.names[lvl[k]], "delivered": bool(delivered[k]),
                             "questions": len(sent[k][3]),
                             "sinr_sim_db": float(m["sinr_db"][0, k]), "snr_measured_db": float(sinr[k]),
                             "accuracy_live": float(acc[k]), "accuracy_table_at_measured": float(acc_t[0, k]),
                             "qoe_live": float(q[0, k]), "qoe_table_at_measured": float(q_table[0, k]),
                             "qoe_sim_same_slot": float(m["qoe"][0, k]),
                             "accuracy_sim_same_slot": float(m["accuracy"][0, k]),
                             "qoe_live_lost_answered": float(q_answered[0, k]),
                             "qoe_sim_same_slot_sampled": float(q_sampled[k])})
            # what the BSs observe next: their receivers' measurements, not the model's SINR (a lost frame:
            # LOST_SINR_DB and the accuracy of the questions answered without tokens)
            own = core.rx[0, np.arange(n), np.arange(n)]
            core.metrics_sinr_db = sinr[None]
            core.interference_w = (own / 10 ** (sinr / 10))[None]
            core.last.update({"sinr_db": sinr[None], "acc": acc_answered[None], "rate": rate_answered,
                              "qoe": q_answered})

        # the simulation's own loop (agents.run_scheme): the policies keep their slot clock, so the high
        # level re-decides beam and power every T slots live as in the simulation
        run_scheme(policy, seed, n_frames, progress=progress, desc="live slots", measured=serve)
    counters = air.counters
    out = Path(out_dir)
    write_csv(out / "live.csv", rows)
    summary = {"scheme": scheme, "policies": str(policies), "n_links": n, "slots": n_frames, "seed": seed,
               "frame_values": FRAME_VALUES, "interferer_cfo_subcarriers": INTERFERER_CFO,
               "frames_sent": sum(c["sent"] for c in counters["links"]),
               "frames_delivered": sum(c["delivered"] for c in counters["links"]),
               "frames_lost": sum(c["lost"] for c in counters["links"]),
               "frames_late": sum(c["late"] for c in counters["links"]),
               "foreign_frames_delivered": sum(c["unexpected"] for c in counters["links"]),
               "sequence_mismatch": sum(c.get("sequence_mismatch", 0) for c in counters["rx"]),
               "header_crc_fail": sum(c["header_crc_fail"] for c in counters["rx"]),
               "link_sequences": bool(link_sequences),
               "accuracy_live": float(np.mean([r["accuracy_live"] for r in rows])),
               "mean_power_dbm": float(np.mean([r["power_dbm"] for r in rows])),
               "seconds": time.perf_counter() - t0}
    (out / "live.json").write_text(json.dumps({"summary": summary, "counters": counters}, indent=2,
                                              default=float) + "\n")
    res = {"summary": summary, "counters": counters, "rows": rows}
    res["summary"].update({k: v for k, v in compare(out, link_table).items() if k in COMPARISON_KEYS})
    return res


def plot_live(path: Path, live: np.ndarray, live_lost_zero: np.ndarray, sim: np.ndarray,
              summary: dict[str, Any]) -> None:
    """Network QoE per slot: live (per frame, lost frames answered), live with a lost frame scored 0, and
    the simulation of the scenario with the link table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt


    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(live, label=f"live flowgraph, mean {summary['qoe_live']:.3f}")
    ax.plot(live_lost_zero, alpha=0.5, label=f"live, a lost frame scored 0, mean "
            f"{summary['qoe_live_lost_zero']:.3f}")
    ax.plot(sim, ":", label=f"simulation with the link table (expectations), mean "
            f"{summary['qoe_sim_expected']:.3f}; frame by frame {summary['qoe_sim']:.3f}")
    ax.set_xlabel("slot (one frame per link)")
    ax.set_ylabel("network QoE per frame")
    ax.set_title(f"{summary['scheme']} policies on {summary['n_links']} live OFAT links: "
                 f"{summary['frames_delivered']}/{summary['frames_sent']} frames delivered, gap "
                 f"{summary['gap']:+.3f}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, path)
