"""The live run's loop against the simulation's (semcom.network.live with a stand-in for the flowgraph) and
the receiver's SNR-measurement model of the link table (semcom.network.env.LinkTable)."""

from __future__ import annotations

import csv
from typing import Any

import numpy as np
import pytest
import torch

from semcom.network.air import Delivered
from semcom.network.env import LOST_SINR_DB

torch.set_num_threads(1)
POLICIES = "experiments/network/output/live_train/policies"


class FakePool:
    """TokenPool's interface without the shipped models: every question answered right when a frame
    comes back, wrong without one."""

    def take(self, q: int) -> np.ndarray:
        return np.arange(q)

    def frame(self, link: str, k: int, idx: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.zeros(n, np.float32)

    def answers(self, link: str, k: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.ones(len(idx), bool)

    def no_frame_correct(self, link: str, idx: np.ndarray) -> np.ndarray:
        return np.zeros(len(idx), bool)


class FakeAir:
    """SharedAir's interface without the flowgraph: a frame comes back when the SINR its channel gives
    (own transmitter at unit gain) is >= 0 dB, reported 0.5 dB above it; every frame booked."""

    def __init__(self, n: int, seed: int, **kw: Any) -> None:
        self.n, self.sinr_db = n, np.zeros(n)
        self.counters: dict[str, Any] = {"links": [dict(sent=0, delivered=0, lost=0, late=0, unexpected=0)
                                                   for _ in range(n)], "rx": [{"header_crc_fail": 0}] * n}

    def __enter__(self) -> FakeAir:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set_channel(self, slot: int, gains: np.ndarray, noise: np.ndarray, *rest: Any, **kw: Any) -> None:
        foreign = (np.abs(gains) ** 2).sum(axis=1) - np.abs(np.diag(gains)) ** 2
        self.sinr_db = -10.0 * np.log10(foreign + noise)

    def exchange(self, frames: list[np.ndarray], meta: dict[str, Any]) -> list[Delivered | None]:
        back = [Delivered(f, float(s) + 0.5) if s >= 0.0 else None for f, s in zip(frames, self.sinr_db,
                                                                                 strict=True)]
        for book, b in zip(self.counters["links"], back, strict=True):
            book["sent"] += 1
            book["delivered" if b is not None else "lost"] += 1
        return back


def test_live_loop_keeps_the_large_timescale(monkeypatch, tmp_path) -> None:
    """`run_live` acts through the simulation's loop: the hierarchical policies change beam and power only
    every T = 20 slots live too (the first live runs re-decided them every slot: 74-92 % of the slots
    inside a period changed them), and the BSs observe the receivers' reports (a lost frame at
    LOST_SINR_DB, a delivered one at its reported SNR)."""
    import semcom.network.live as live

    monkeypatch.setattr(live, "SharedAir", FakeAir)
    monkeypatch.setattr(live, "TokenPool", lambda **kw: FakePool())
    monkeypatch.setattr(live, "FRAME_DRAWS", 2)
    slots = 45
    res = live.run_live(POLICIES, tmp_path, n_frames=slots, seed=102, progress=False)
    with (tmp_path / "live.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * slots and res["summary"]["frames_sent"] == 3 * slots
    beam = np.array([int(r["beam"]) for r in rows]).reshape(slots, 3)
    power = np.array([float(r["power_dbm"]) for r in rows]).reshape(slots, 3)
    changed = (np.diff(beam, axis=0) != 0) | (np.diff(power, axis=0) != 0)          # before slot t + 1
    inside = (np.arange(1, slots) % 20) != 0
    assert not changed[inside].any()
    delivered = np.array([r["delivered"] == "True" for r in rows])
    seen = np.array([float(r["snr_measured_db"]) for r in rows])
    model = np.array([float(r["sinr_sim_db"]) for r in rows])
    assert delivered.any() and (~delivered).any()   # seed 102 has a link below 0 dB
    assert np.all(seen[~delivered] == LOST_SINR_DB)
    assert seen[delivered] == pytest.approx(model[delivered] + 0.5, abs=1e-3)


def _shipped_rows() -> list[dict[str, str]]:
    from semcom.network.linktable import DEFAULT_LINK_TABLE

    with DEFAULT_LINK_TABLE.open() as f:
        return list(csv.DictReader(f))


def test_measurement_model_draws_the_tables_bias_and_spread() -> None:
    """`LinkTable.measured_snr_db` at each bin's centre: the mean and sd of 20 000 draws are the shipped
    table's SNR-estimate bias and sd (read with the csv module), within 4 standard errors; a bin without a
    measured spread reports the true SINR; a table without the columns reports it everywhere."""
    from semcom.network.env import LinkTable, load_link_table
    from semcom.network.linktable import DEFAULT_LINK_TABLE

    rows = _shipped_rows()
    lt = load_link_table(str(DEFAULT_LINK_TABLE))
    rng = np.random.default_rng(0)
    n = 20000
    checked = 0
    for r in rows:
        centre = 0.5 * (float(r["sinr_lo_db"]) + float(r["sinr_hi_db"]))
        err = lt.measured_snr_db(np.full(n, centre), rng) - centre
        bias, sd = float(r["snr_estimate_bias_db"]), float(r["snr_estimate_sd_db"])
        if not (np.isfinite(bias) and np.isfinite(sd)):
            assert np.all(err == 0.0)
            continue
        assert err.mean() == pytest.approx(bias, abs=4 * sd / np.sqrt(n) + 1e-12)
        assert err.std() == pytest.approx(sd, rel=4 / np.sqrt(2 * n))
        checked += 1
    sd_top, sd_low = float(rows[-1]["snr_estimate_sd_db"]), float(rows[3]["snr_estimate_sd_db"])
    assert checked >= 15 and 0.2 < sd_top < sd_low   # the estimate spreads more near the header's threshold
    plain = LinkTable(lt.edges, lt.delivered, lt.accuracy_ratio, lt.accuracy_lost)
    assert np.array_equal(plain.measured_snr_db(np.array([-3.0, 5.0, 30.0]), rng), [-3.0, 5.0, 30.0])


def _sampled_run(seed: int, frame_seed: int, table: str, slots: int = 60) -> dict[str, np.ndarray]:
    """Fixed actions (beam 0, max power, jtcc k5) on a 3-cell network, frame by frame: per slot the true
    SINR, whether the frame came back and what the BS observes."""
    from semcom.network.env import NetworkConfig, NetworkCore

    core = NetworkCore(NetworkConfig(n_cells=3, n_antennas=2, n_beams=2, link_table=table, frame_values=2560,
                                     sample_frames=True, frame_seed=frame_seed), 1)
    core.reset(seed)
    a = np.zeros((1, 3), np.int64)
    out: dict[str, list] = {"sinr": [], "got": [], "seen": []}
    for _ in range(slots):
        m = core.step(a, a + 4, a + core.table.names.index("jtcc_k5"))
        out["sinr"].append(m["sinr_db"][0])
        out["got"].append(m["delivered"][0] > 0)
        out["seen"].append(core.observe()[0, :, core.obs_slices()["sinr"]][:, 0] * 20.0)
    return {k: np.array(v) for k, v in out.items()}


def test_simulated_observation_draws_from_the_measurement_model(tmp_path) -> None:
    """In the frame-by-frame simulation a BS observes its delivered frame's SNR as the measurement model
    draws it (bias + spread around the true SINR), a lost one at LOST_SINR_DB; reproducible by seed and
    frame seed; the measurement's draws do not move the frames' deliveries (their own stream): with the
    columns removed from the table the same frames come back and the observation is the true SINR."""
    from semcom.network.linktable import DEFAULT_LINK_TABLE
    from semcom.results import write_csv

    table = str(DEFAULT_LINK_TABLE)
    a, b = _sampled_run(5, 1, table), _sampled_run(5, 1, table)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["seen"], _sampled_run(5, 2, table)["seen"])
    got = a["got"]
    assert got.any() and (~got).any()
    assert np.allclose(a["seen"][~got], LOST_SINR_DB, atol=1e-4)
    err = (a["seen"] - a["sinr"])[got]
    assert 0.1 < err.std() < 1.5 and abs(err.mean()) < 0.5    # the table's 0.3-1.0 dB spread, ~0.1 dB bias
    rows = [{k: v for k, v in r.items() if k not in ("snr_estimate_bias_db", "snr_estimate_sd_db")}
            for r in _shipped_rows()]
    write_csv(tmp_path / "no_model.csv", rows)
    exact = _sampled_run(5, 1, str(tmp_path / "no_model.csv"))
    assert np.array_equal(exact["got"], got)
    assert np.allclose(exact["seen"][got], a["sinr"][got], atol=1e-4)


def test_observations_of_a_run_that_is_a_simulation_draw(load_script, monkeypatch, tmp_path) -> None:
    """`live_gap.py observations` on a "live" run that is the frame-by-frame simulation's draw 0 written as
    a live.csv: the simulated side (one draw, frame seed 0) has the live side's statistics exactly
    (reproducible by seed); the policies hold beam and power inside every period; a lost frame is observed
    at LOST_SINR_DB, a delivered one through the measurement model (about 0.1 dB above, spread).
    `live_gap.py gaps` on it: the comparison on a copy (the run's folder untouched), live = draw 0."""
    import json

    import semcom.network.live as live_module
    from semcom.network.curves import DEFAULT_TABLE
    from semcom.network.env import load_table
    from semcom.network.linktable import DEFAULT_LINK_TABLE
    from semcom.network.live import simulate_scenario
    from semcom.results import write_csv

    gap = load_script("experiments/network/live_gap.py")
    policies, seed, slots = f"{POLICIES}/hierarchical", 102, 45
    tr: dict[str, list[np.ndarray]] = {}
    qoe = simulate_scenario(policies, seed, slots, DEFAULT_LINK_TABLE, frame_seed=0, trace=tr)
    t = {k: np.array(v) for k, v in tr.items()}
    assert t["beam"].shape == (slots, 3) and qoe == pytest.approx(t["qoe_live_lost_answered"].mean(axis=1))
    names = load_table(str(DEFAULT_TABLE)).names
    write_csv(tmp_path / "live.csv", [{**{k: t[k][s, n].item() for k in t if k != "level"},
                                       "level": names[t["level"][s, n]], "slot": s, "link": n,
                                       "qoe_live": t["qoe_live_lost_answered"][s, n].item()}
                                      for s in range(slots) for n in range(3)])
    (tmp_path / "live.json").write_text(json.dumps({"summary": {
        "policies": policies, "scheme": "hierarchical", "seed": seed, "slots": slots, "n_links": 3,
        "frames_sent": 3 * slots, "frames_delivered": int(t["delivered"].sum()),
        "frames_lost": int((~t["delivered"]).sum())}}))
    out = gap.observations(tmp_path, draws=1)
    assert json.loads((tmp_path / "observations.json").read_text())["draws"] == 1
    for link, live in out["live"].items():
        sim = out["simulated"][link]
        assert live["changed_in_period"] == sim["changed_in_period"]["mean"] == 0.0
        for key in ("delivered", "snr_error_mean_db", "sinr_model_db", "power_dbm", "qoe"):
            assert live[key] == pytest.approx(sim[key]["mean"], nan_ok=True), (link, key)
        assert live["levels"] == pytest.approx(sim["levels"])
    lost = ~t["delivered"]
    assert lost.any() and np.all(t["snr_measured_db"][lost] == LOST_SINR_DB)
    err = (t["snr_measured_db"] - t["sinr_sim_db"])[~lost]
    assert 0.05 < err.std() < 1.5 and abs(err.mean()) < 0.5
    monkeypatch.setattr(live_module, "FRAME_DRAWS", 3)
    g = gap.gaps([tmp_path], DEFAULT_LINK_TABLE, tmp_path / "gaps.json")
    assert not (tmp_path / "gap.json").exists() and g["n_runs"] == 1 and (tmp_path / "gaps.png").exists()
    r = g["runs"][0]
    assert r["qoe_live"] == pytest.approx(qoe.mean())
    assert r["gap"] == pytest.approx(r["qoe_live"] - r["qoe_sim"])
    assert abs(r["gap"]) < 3 * r["qoe_sim_sd_draws"] and g["gap_mean"] == r["gap"]


def test_shared_air_binds_its_own_ports_and_delivers_every_link() -> None:
    """The real three-link flowgraph: the bridge blocks bind ports of their own (no probed port to race
    for; the links connect to what they report) and one frame per link comes back over clean links."""
    from semcom.network.air import FRAME_VALUES, SharedAir

    rng = np.random.default_rng(0)
    with SharedAir(3, 0) as air:
        endpoints = {air.tb.tensor_source_0.endpoint(), air.tb.tensor_sink_2.endpoint()}
        assert all(not e.endswith(":*") for e in endpoints) and len(endpoints) == 2
        air.set_channel(0, np.eye(3), np.full(3, 1e-3))
        out = air.exchange([rng.standard_normal(FRAME_VALUES).astype(np.float32) for _ in range(3)])
    assert [o is not None for o in out] == [True, True, True]
    assert [c["delivered"] for c in air.counters["links"]] == [1, 1, 1]


@pytest.mark.parametrize("scheme", ["hierarchical_cf", "single_layer_cf"])
def test_simulated_scenario_runs_any_saved_policy(scheme: str, tmp_path) -> None:
    """The live comparison's simulation reads any learner's saved policy (it read ``<name>_joint.json`` for
    every scheme but ``hierarchical``): its QoE is the frozen policy's run on the scenario."""
    from semcom.network.agents import DQNConfig, make_scheme, run_scheme
    from semcom.network.env import NetworkConfig, NetworkCore
    from semcom.network.experiment import load_policy, read_policy_doc, save_policy
    from semcom.network.live import simulate_scenario

    net = NetworkConfig(n_cells=3, period=5, n_slots=30)
    trained = make_scheme(scheme, NetworkCore(net, 1), 0)
    run_scheme(trained, 0, 30)
    save_policy(tmp_path / scheme, trained, net, DQNConfig(), {"seed": 0})
    assert read_policy_doc(tmp_path / scheme)["config"]["scheme"] == scheme
    sim = simulate_scenario(tmp_path / scheme, 7, 12, per_frame=False)
    core = NetworkCore(NetworkConfig(n_cells=3, period=5, n_slots=12), 1)
    assert np.array_equal(sim, run_scheme(load_policy(tmp_path / scheme, core, 7), 7, 12)["qoe"])
