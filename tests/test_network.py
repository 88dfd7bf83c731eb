"""The multi-cell semantic network (semcom.network): environment physics and API, the measured semantic
table, the schemes, the policy checkpoints."""

from __future__ import annotations

import csv
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from semcom.network.agents import (
    SCHEMES,
    BatchedMLP,
    HindsightDQN,
    OracleScheme,
    agent_view,
    beam_order,
    best_compression,
    hindsight_high,
    hindsight_joint,
    make_scheme,
    power_level_qoe,
    prior_high,
    run_scheme,
)
from semcom.network.curves import DEFAULT_TABLE, SemanticTable
from semcom.network.env import NetworkConfig, NetworkCore, dft_codebook, hex_positions, make_env
from semcom.network.experiment import (
    Fig7Config,
    fig7,
    has_policy,
    load_policy,
    run_one,
    save_policy,
    tail_mean,
)

torch.set_num_threads(1)


def test_env_accuracy_equals_the_measured_curve() -> None:
    """At every measured (level, SNR) the env's accuracy is the CSV's number; between two grid points it is
    the straight line in dB; the env's QoE uses that accuracy."""
    with DEFAULT_TABLE.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 100
    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    core.reset(0)
    t = core.table
    for r in rows[::7]:
        c = t.names.index(r["level"])
        got = core.qoe(np.full((1, 3), c), np.full((1, 3), float(r["snr_db"])))[0]
        np.testing.assert_allclose(got, float(r["accuracy"]), atol=1e-12)
        assert t.values[c] == float(r["values"])
    c = t.names.index("jtcc_k5")
    mid = 0.5 * (t.snr_db[3] + t.snr_db[4])
    assert t.accuracy(np.array(c), np.array(mid)) == pytest.approx(t.accuracy_table[c, 3:5].mean())
    # held flat outside the grid, and fewer values = more compression = lower accuracy at high SNR
    assert t.accuracy(np.array(c), np.array(99.0)) == pytest.approx(t.accuracy_table[c, -1])
    jt = [t.names.index(f"jtcc_k{k}") for k in (5, 4, 3, 2, 1)]
    assert np.all(np.diff(t.accuracy_table[jt, -1]) < 0)
    with pytest.raises(ValueError, match="out of range"):
        t.accuracy(np.array(t.n_levels), np.array(0.0))


def test_table_rejects_a_hole(tmp_path) -> None:
    p = tmp_path / "t.csv"
    p.write_text("level,values,snr_db,accuracy\na,10,0,0.5\na,10,5,0.6\nb,5,0,0.4\n")
    with pytest.raises(ValueError, match="every level"):
        SemanticTable.from_csv(p)
    with pytest.raises(FileNotFoundError, match="semcom network curves"):
        SemanticTable.from_csv(tmp_path / "missing.csv")


def test_pettingzoo_parallel_api() -> None:
    from pettingzoo.test import parallel_api_test

    env = make_env(NetworkConfig(n_cells=3, n_slots=60))
    parallel_api_test(env, num_cycles=80)


def test_reproducible_by_seed_and_episode_ends() -> None:
    def rollout(seed: int) -> list[np.ndarray]:
        env = make_env(NetworkConfig(n_cells=3, n_slots=25))
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(1)
        out = [np.stack(list(obs.values()))]
        while env.agents:
            acts = {a: rng.integers(0, env.action_space(a).nvec) for a in env.agents}
            obs, rew, _, trunc, info = env.step(acts)
            out.append(np.array(list(rew.values())))
        assert all(trunc.values()) and len(out) == 26
        return out

    a, b, c = rollout(5), rollout(5), rollout(6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])


def test_invalid_actions_are_refused() -> None:
    env = make_env(NetworkConfig(n_cells=3))
    env.reset(seed=0)
    ok = {a: np.array([0, 0, 0]) for a in env.agents}
    with pytest.raises(ValueError, match="invalid action for bs_1"):
        env.step({**ok, "bs_1": np.array([8, 0, 0])})
    with pytest.raises(ValueError, match="invalid action for bs_0"):
        env.step({**ok, "bs_0": np.array([0.5, 0, 0])})
    with pytest.raises(ValueError, match="missing"):
        env.step({"bs_0": np.array([0, 0, 0])})
    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    core.reset(0)
    with pytest.raises(ValueError, match="power action out of range"):
        core.step(np.zeros((1, 3), int), np.full((1, 3), 5), np.zeros((1, 3), int))
    with pytest.raises(ValueError, match="n_cells"):
        NetworkConfig(n_cells=1)


def test_geometry_and_codebook() -> None:
    xy = hex_positions(19, 400.0)
    d = np.sort(np.hypot(xy[:, 0], xy[:, 1]))
    np.testing.assert_allclose(d, [0] + [400] * 6 + [400 * np.sqrt(3)] * 6 + [800] * 6, atol=1e-6)
    f = dft_codebook(8, 8)
    np.testing.assert_allclose(f @ f.conj().T, np.eye(8), atol=1e-12)  # 8 orthonormal DFT beams


def test_sinr_and_fading_against_theory() -> None:
    """SINR = own received power / (the others' + noise); the fading's lag-1 correlation is rho."""
    cfg = NetworkConfig(n_cells=3, rho=0.64)
    core = NetworkCore(cfg, 200)
    core.reset(1)
    beam = np.random.default_rng(0).integers(0, 8, (200, 3))
    power = np.full((200, 3), 2)
    a0 = core.alpha.copy()
    m = core.step(beam, power, np.zeros((200, 3), int))
    G = core.beam_gains()
    p = core.power_w[2]
    k = 1
    sig = p * G[np.arange(200), k, k, beam[:, k]]
    intf = sum(p * G[np.arange(200), j, k, beam[:, j]] for j in (0, 2))
    np.testing.assert_allclose(m["sinr_db"][:, k], 10 * np.log10(sig / (intf + core.noise_w)), rtol=1e-9)
    r = np.mean(core.alpha * a0.conj()).real / np.mean(np.abs(a0) ** 2)
    assert r == pytest.approx(0.64, abs=0.05)  # 200 x 9 x 4 draws: std ~0.01


def test_batched_mlp_agents_are_independent() -> None:
    net = BatchedMLP(3, 4, 2, (8,))
    x = torch.randn(5, 3, 4)
    y = net(x)
    x2 = x.clone()
    x2[:, 1] += 1.0
    y2 = net(x2)
    assert torch.equal(y[:, 0], y2[:, 0]) and torch.equal(y[:, 2], y2[:, 2])
    assert not torch.equal(y[:, 1], y2[:, 1])
    with pytest.raises(ValueError, match="expected"):
        net(torch.randn(5, 2, 4))


def test_priors_and_greedy_are_local_best_responses() -> None:
    """The best compression at a predicted SINR is the argmax of the table-based QoE; the high level's
    prior ranks max power on the best beam first where it is saturated."""
    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    obs = core.reset(2)
    sinr = np.array([[0.0, 10.0, 30.0]])
    best = best_compression(core, sinr)
    qs = np.stack([core.qoe(np.full((1, 3), c), sinr)[2] for c in range(core.C)], -1)
    assert np.array_equal(best, qs.argmax(-1))
    pr = prior_high(core, agent_view(core, obs))
    assert pr.shape == (1, 3, 8 * 5)


def test_quick_training_beats_random_and_learns(tmp_path) -> None:
    """A short online run on a tiny network: the hierarchical scheme ends far above random and above its
    own exploration phase; its checkpoints load back into the same greedy policy."""
    cfg = NetworkConfig(n_cells=3, n_slots=400, period=10)
    res = {}
    for name in ("hierarchical", "random"):
        core = NetworkCore(cfg, 1)
        scheme = make_scheme(name, core, 0)
        res[name] = run_scheme(scheme, 0, 400)["qoe"]
        if name == "hierarchical":
            trained = scheme
    h, r = tail_mean(res["hierarchical"], 0.2), tail_mean(res["random"], 0.2)
    assert h > r + 0.2
    assert h > res["hierarchical"][:40].mean() + 0.1
    save_policy(tmp_path / "hierarchical", trained, cfg, trained.high.cfg, {"seed": 0})
    core = trained.core  # the priors read the network's requirements: the same network for both
    loaded = load_policy(tmp_path / "hierarchical", core)
    obs = core.reset(9)
    trained.explore = False
    trained.t = loaded.t = 0
    for a, b in zip(trained.act(obs), loaded.act(obs), strict=True):
        assert np.array_equal(a, b)


def test_every_scheme_runs_and_fp_is_marked_centralised() -> None:
    cfg = NetworkConfig(n_cells=3, n_slots=30)
    for name, cls in SCHEMES.items():
        core = NetworkCore(replace(cfg), 1)
        out = run_scheme(make_scheme(name, core, 0), 0, 30)
        assert out["qoe"].shape == (30,) and np.all((out["qoe"] >= 0) & (out["qoe"] <= 1))
        assert cls.centralised == (name in ("fp", "oracle", "oracle_stale"))
    with pytest.raises(ValueError, match="unknown scheme"):
        make_scheme("nope", NetworkCore(cfg, 1), 0)


def test_flowgraph_gains_reproduce_the_model_sinr() -> None:
    """The interference channel's normalised gains give every receiver exactly the model's SINR."""
    from semcom.network.live import flowgraph_gains

    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    core.reset(4)
    beam, power = np.array([[1, 5, 2]]), np.array([[4, 1, 3]])
    m = core.step(beam, power, np.zeros((1, 3), int))
    g, noise = flowgraph_gains(core, beam, power)
    np.testing.assert_allclose(np.diag(g), 1.0, rtol=1e-6)
    interf = (np.abs(g) ** 2).sum(axis=1) - 1.0
    np.testing.assert_allclose(10 * np.log10(1.0 / (interf + noise)), m["sinr_db"][0], atol=1e-4)


def test_sampled_qoe_is_the_binomial_mean_of_the_per_frame_qoe() -> None:
    """A slot scored per frame (the fraction right of its q questions): one question gives
    p QoE(1) + (1 - p) QoE(0); many questions give the QoE of the expected accuracy; a few give less than
    it where the accuracy sigmoid is concave (accuracy above the requirement)."""
    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    core.reset(2)
    level, acc = np.array([[0, 3, 5]]), np.array([[0.92, 0.95, 0.3]])  # link 0: 0.88 required, weight 0.4
    _, q_exp = core.qoe_from_accuracy(level, acc)
    _, q_one = core.qoe_from_accuracy(level, np.ones((1, 3)))
    _, q_zero = core.qoe_from_accuracy(level, np.zeros((1, 3)))
    np.testing.assert_allclose(core.sampled_qoe(level, acc, np.ones((1, 3), int)),
                               acc * q_one + (1 - acc) * q_zero, rtol=1e-9)
    np.testing.assert_allclose(core.sampled_qoe(level, acc, np.full((1, 3), 20000)), q_exp, atol=2e-3)
    few = core.sampled_qoe(level, acc, np.full((1, 3), 30))
    assert few[0, 0] < q_exp[0, 0] - 0.03  # 0.30 against 0.35
    # mixed question counts in one call: each link its own binomial (the sum written out for link 1)
    q = np.array([[4, 7, 160]])
    got = core.sampled_qoe(level, acc, q)
    x = np.arange(8)
    pmf = np.array([math.comb(7, int(i)) * 0.95 ** i * 0.05 ** (7 - i) for i in x])
    grid = np.repeat(acc, 8, axis=0)
    grid[:, 1] = x / 7
    want = float(pmf @ core.qoe_from_accuracy(np.repeat(level, 8, axis=0), grid)[1][:, 1])
    assert got[0, 1] == pytest.approx(want, rel=1e-9)


@pytest.mark.slow
def test_network_flowgraph_shares_the_air_and_counts_every_frame() -> None:
    """network_loopback_3: three links at once, each on its own sequence_id; a clean link comes back at
    its SNR, a link with interference 25 dB down reports its SINR (the fit-residual noise estimate), a
    link drowned by a 10 dB stronger interferer is counted lost and the foreign frame it synchronised to
    is rejected (its header fails under the own scrambler, booked as a sequence mismatch), never
    delivered; the channel's counters show the applied power and compression."""
    import pmt
    from gnuradio.semcom.messages import tensor_message

    from semcom.flowgraphs import top_block_class
    from semcom.link import LinkClient
    from semcom.ofat.equalize import reconstruct_payload
    from semcom.ofat.frame import DEFAULT_GAP_SAMPLES, make_layout

    layout = make_layout("wifi64", n_tx=1, n_rx=1, mode="complex", train_reps=2, header_reps=3,
                         max_data_symbols=64)
    # the bridge blocks bind ports of their own and report them (no port probed free first: a race)
    addr = {f"{side}_address_{k}": "tcp://127.0.0.1:*" for side in ("tx", "rx") for k in range(3)}
    tb = top_block_class("network_loopback_3")(stagger=0, gap_samples=DEFAULT_GAP_SAMPLES, fill_power=52 / 64,
                                               interferer_cfo=0.5 / 64, seed=3, **addr)
    tx = [getattr(tb, f"tensor_source_{k}").endpoint() for k in range(3)]
    rx = [getattr(tb, f"tensor_sink_{k}").endpoint() for k in range(3)]
    tb.start()
    links = [LinkClient(tx[k], rx[k], window=1, timeout_s=8.0, first_seq=1_000_000 * k) for k in range(3)]
    try:
        # receiver 0: interference 25 dB below; receiver 1: interferer 2 hears 10 dB above its own link;
        # receiver 2: clean
        g = np.array([[1, 0.056, 0.0], [0.0, 1, 3.16], [0.0, 0.0, 1]], np.complex64)
        ch = tb.semcom_interference_channel_0
        ch._post(pmt.intern("control"), tensor_message({"slot": 0, "power_dbm": [38.0, 33.0, 28.0],
                                                        "level": [5, 6, 0]},
                                                       {"gains": g, "noise_var": np.full(3, 1e-3)}))
        while ch.counters()["slot"] != 0:
            pass
        rng = np.random.default_rng(0)
        x = [(rng.standard_normal(1024) * np.sqrt(0.5)).astype(np.float32) for _ in range(3)]
        seqs = [links[k].send(x[k]) for k in range(3)]
        got = {}
        for _ in range(400):
            for k in set(range(3)) - set(got):
                msg = links[k].receive(timeout_s=0.02)
                if msg is not None:
                    got[k] = msg
            if len(got) == 3:
                break
        for k in (0, 2):
            assert got[k].seq == seqs[k]
            m = got[k].meta
            est = reconstruct_payload(layout, np.array(got[k].tensors["H"]), np.array(got[k].tensors["Y"]),
                                      shape=m["shape"], scale=m["scale"], noise_var=m["noise_var"])
            nmse = float(np.mean((est - x[k]) ** 2) / np.mean(x[k] ** 2))
            assert nmse < 0.05
        assert got[0].meta["snr_db"] < got[2].meta["snr_db"] - 3  # receiver 0's estimate hears interferer 1
        sinr0 = -10 * np.log10(abs(g[0, 1]) ** 2 + 1e-3)  # 23.8 dB
        assert abs(got[0].meta["snr_db"] - sinr0) < 1.5
        assert 1 not in got
        rx1 = tb.ofat_rx_1.counters()
        # the foreign frame and any detection the interferer's idle fill trips: none has the own training
        assert rx1["frames"] == 0 and rx1["sequence_mismatch"] >= 1
        c = ch.counters()
        assert (c["power_dbm"], c["level"], c["updates"]) == ([38.0, 33.0, 28.0], [5, 6, 0], 1)
    finally:
        books = [lk.finish(drain_s=0.2) for lk in links]
        for lk in links:
            lk.close()
        tb.stop()
        tb.wait()
    assert [b["sent"] for b in books] == [1, 1, 1]
    assert all(b["delivered"] + b["lost"] == b["sent"] for b in books)
    assert books[1]["lost"] == 1 and books[1]["unexpected"] == 0  # no foreign frame came back as its own


def test_hindsight_targets_are_the_realised_own_qoe() -> None:
    """The own QoE the hindsight target gives the TAKEN joint action is the QoE the env measured for it
    (up to the 0.05 dB lookup grid and the monotone table); the targets need the slot's measurements."""
    core = NetworkCore(NetworkConfig(n_cells=3), 1)
    obs = core.reset(5)
    rng = np.random.default_rng(0)
    L, C = len(core.cfg.power_dbm), core.C
    for _ in range(5):
        beam, power, level = (rng.integers(0, n, (1, 3)) for n in (core.cfg.n_beams, L, C))
        m = core.step(beam, power, level)
        nxt = core.observe()
        rank = (beam_order(core, obs) == beam[..., None]).argmax(-1)
        got = np.take_along_axis(hindsight_joint(core, obs, nxt), ((rank * L + power) * C + level)[..., None],
                                 -1)[..., 0]
        assert np.allclose(got, m["qoe"], atol=0.03)
        obs = nxt
    dqn = HindsightDQN(3, 4, 5, make_scheme("hierarchical", core, 0).high.cfg, 10, 0,
                       own=lambda v: np.zeros(v.shape[:-1] + (5,)), nb=None, k=0.0)
    with pytest.raises(ValueError, match="hindsight targets"):
        dqn.store(np.zeros((1, 3, 4)), np.zeros((1, 3), int), np.zeros((1, 3)), np.zeros((1, 3, 4)))


def test_link_table_drops_frames_and_scales_accuracy(tmp_path) -> None:
    """With a link table the QoE is the expectation over delivery: p QoE(ratio x acc) + (1 - p) QoE(lost);
    a table without ``accuracy_lost`` (the first, live-read ones) scores a lost frame 0, one with it answers
    a lost frame's questions at that accuracy; a bin with p = 1, ratio = 1 leaves the AWGN table's numbers
    unchanged; a malformed table is refused."""
    t = tmp_path / "link.csv"
    t.write_text("sinr_lo_db,sinr_hi_db,delivered,accuracy_ratio\n-60,0,0.0,1.0\n0,10,0.5,0.8\n10,80,1.0,1.0\n")
    t2 = tmp_path / "link_lost.csv"
    t2.write_text("sinr_lo_db,sinr_hi_db,delivered,accuracy_ratio,accuracy_lost\n"
                  "-60,0,0.0,1.0,0.25\n0,10,0.5,0.8,0.25\n10,80,1.0,1.0,0.25\n")
    cfg = NetworkConfig(n_cells=3)
    plain, linked = NetworkCore(cfg, 1), NetworkCore(replace(cfg, link_table=str(t)), 1)
    answered = NetworkCore(replace(cfg, link_table=str(t2)), 1)
    plain.reset(3), linked.reset(3), answered.reset(3)
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = tuple(rng.integers(0, n, (1, 3)) for n in (8, 5, plain.C))
        mp, ml, ma = plain.step(*a), linked.step(*a), answered.step(*a)
        s = mp["sinr_db"]
        p = np.where(s < 0, 0.0, np.where(s < 10, 0.5, 1.0))
        ratio = np.where((s >= 0) & (s < 10), 0.8, 1.0)
        for lost_acc, m in ((0.0, ml), (0.25, ma)):
            _, q_lost = plain.qoe_from_accuracy(a[2], np.full((1, 3), lost_acc))
            _, q_ok = plain.qoe_from_accuracy(a[2], ratio * mp["accuracy"])
            np.testing.assert_allclose(m["qoe"], p * q_ok + (1 - p) * q_lost)
            np.testing.assert_allclose(m["accuracy"], p * ratio * mp["accuracy"] + (1 - p) * lost_acc)
            np.testing.assert_allclose(m["delivered"], p)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="not a link table"):
        NetworkCore(replace(cfg, link_table=str(bad)), 1)


def test_env_with_the_measured_link_table_equals_the_table() -> None:
    """The env's expected accuracy, delivery and per-frame QoE at a given SINR and compression are the
    shipped link table's (``semcom network linktable``, read here with the csv module) applied to the AWGN
    table: accuracy = p ratio xi(SINR) + (1 - p) xi_lost, QoE = p E[QoE(Bin(q, ratio xi) / q)] +
    (1 - p) E[QoE(Bin(q, xi_lost) / q)] with q = 2560 // values questions per frame."""
    from semcom.network.linktable import DEFAULT_LINK_TABLE

    with DEFAULT_LINK_TABLE.open() as f:
        rows = list(csv.DictReader(f))
    cfg = NetworkConfig(n_cells=3, link_table=str(DEFAULT_LINK_TABLE), frame_values=2560)
    core, plain = NetworkCore(cfg, 1), NetworkCore(NetworkConfig(n_cells=3), 1)
    core.reset(7), plain.reset(7)
    lost = float(rows[0]["accuracy_lost"])
    assert 0.0 < lost < 0.6  # the receiver's no-token answers: above chance, far below the tokens'
    for r in rows:
        sinr = np.full((1, 3), 0.5 * (float(r["sinr_lo_db"]) + float(r["sinr_hi_db"])))
        p, ratio = float(r["delivered"]), float(r["accuracy_ratio"])
        for level in ([[0, 4, 9]], [[2, 5, 7]]):
            level = np.array(level)
            xi = plain.table.accuracy(level, sinr)
            m = core.link_metrics(level, sinr)
            np.testing.assert_allclose(m["delivered"], p)
            np.testing.assert_allclose(m["accuracy"], p * np.minimum(1, ratio * xi) + (1 - p) * lost,
                                       rtol=1e-12)
            q = 2560 // plain.table.values[level].astype(int)
            want = (p * plain.sampled_qoe(level, np.minimum(1, ratio * xi), q)
                    + (1 - p) * plain.sampled_qoe(level, np.full((1, 3), lost), q))
            np.testing.assert_allclose(m["qoe"], want, rtol=1e-12)
    # the PHY loses every frame at the sweep's lowest SINRs and (almost) none at its highest
    assert float(rows[0]["delivered"]) < 0.1 and float(rows[-1]["delivered"]) > 0.95


def test_oracle_sees_the_slot_it_acts_in_and_is_bounded_by_the_ceiling() -> None:
    """The genie's channel is the one the next step measures; in every slot the oracle's network QoE is at
    least that of its own start (best own beam, max power, best compression, on the same true channel),
    every scheme's per-slot QoE is below the interference-free ceiling, and over a run the oracle is above
    every scheme on the same seed."""
    cfg = NetworkConfig(n_cells=3, n_slots=200, period=10)
    a, b = NetworkCore(cfg, 1), NetworkCore(cfg, 1)
    a.reset(4), b.reset(4)
    oracle = OracleScheme(a, 0)
    idx = np.arange(3)
    for _ in range(30):
        G = a.next_beam_gains()
        acts = oracle.act(a.observe())
        m = a.step(*acts)
        np.testing.assert_allclose(a.G, G)
        beam = G[:, idx, idx, :].argmax(-1)
        power = np.full((1, 3), 4)
        b._measure(beam, power)  # the same channel (the fading does not depend on the actions)
        lvl = best_compression(b, b.metrics_sinr_db)
        mb = b.step(beam, power, lvl)
        assert m["qoe"].mean() >= mb["qoe"].mean() - 1e-9
    finals = {}
    for name in SCHEMES:
        res, _ = run_one(name, cfg, 1, 200)
        assert np.all(res["ceiling"] >= res["qoe"] - 1e-12), name
        finals[name] = tail_mean(res["qoe"], 0.5)
    assert all(finals["oracle"] > v for n, v in finals.items() if n != "oracle"), finals


def test_large_timescale_is_enforced_by_the_env() -> None:
    """With the reference split (beam on the large timescale) a beam change inside a period is refused with a
    clear error, power and compression may change every slot, and the beam may change at t = k T."""
    env = make_env(NetworkConfig(n_cells=3, period=5, large_timescale=("beam",)))
    env.reset(seed=0)
    act = {a: np.array([2, 4, 0]) for a in env.agents}
    env.step(act)
    env.step({**act, "bs_0": np.array([2, 1, 3])})
    with pytest.raises(ValueError, match="beam is on the large timescale.*T = 5.*BS 1 changed it from 2 to"):
        env.step({**act, "bs_1": np.array([3, 4, 0])})
    for _ in range(3):
        env.step(act)
    env.step({a: np.array([5, 0, 1]) for a in env.agents})  # slot 5: a new period
    with pytest.raises(ValueError, match="large_timescale"):
        NetworkConfig(large_timescale=("bandwidth",))


def test_reference_split_scheme_holds_its_beam_and_its_hindsight_targets_are_realised() -> None:
    """hierarchical_ref (beam high every T, power x compression low every slot) runs under the env's check;
    its low level's target for the taken (power, level) is the QoE the env measured, and its high level's
    target for the taken beam rank is the QoE the greedy low level would have had there."""
    cfg = NetworkConfig(n_cells=3, n_slots=60, period=10)
    res, scheme = run_one("hierarchical_ref", cfg, 0, 60)
    assert scheme.core.cfg.large_timescale == ("beam",) and np.all(res["qoe"] >= 0)
    core = NetworkCore(cfg, 1)
    obs = core.reset(5)
    rng = np.random.default_rng(0)
    L, C = len(cfg.power_dbm), core.C
    for _ in range(5):
        beam, power, level = (rng.integers(0, n, (1, 3)) for n in (cfg.n_beams, L, C))
        m = core.step(beam, power, level)
        nxt = core.observe()
        top = m["sinr_db"] + cfg.power_dbm[-1] - np.asarray(cfg.power_dbm)[power]
        got = np.take_along_axis(power_level_qoe(core, top), (power * C + level)[..., None], -1)[..., 0]
        np.testing.assert_allclose(got, m["qoe"], atol=1e-9)
        hi = hindsight_high(core, obs, nxt, beam_only=True)
        assert hi.shape == (1, 3, cfg.n_beams)
        # each rank's target is the (beam, power) split's target of one power (the one the greedy low
        # level picks), so never above the best power's
        both = hindsight_high(core, obs, nxt).reshape(1, 3, cfg.n_beams, L)
        assert np.all(hi <= both.max(-1) + 1e-12) and np.all(np.isclose(hi[..., None], both).any(-1))
        obs = nxt
    with pytest.raises(ValueError, match="needs hindsight=True"):
        make_scheme("hierarchical_ref", core, 0, replace(scheme.high.cfg, hindsight=False))


def test_fig7_headroom_summary(tmp_path) -> None:
    """A tiny Fig. 7 with the oracle: the summary names the best single-layer scheme, the ceiling bounds
    every scheme per seed and the headroom numbers are consistent with the per-seed table."""
    fc = Fig7Config(seeds=(0, 1), n_slots=80, n_cells=3, period=10, n_antennas=2,
                    schemes=("single_layer", "single_layer_plain", "hierarchical", "hierarchical_cf",
                             "greedy", "oracle"),
                    scaling_cells=(), scaling_periods=(), smooth=10)
    s = fig7(fc, tmp_path, progress=False)
    hr, fin = s["headroom"], s["final_qoe_per_seed"]
    best = hr["best_single_layer"]
    assert best == s["acceptance"]["best_single_layer"]
    assert np.mean(fin[best]) == max(np.mean(fin["single_layer"]), np.mean(fin["single_layer_plain"]))
    for i in range(2):
        assert all(hr["ceiling_per_seed"][i] >= fin[n][i] for n in fc.schemes)
    assert hr["gain_ge_20pct_reachable"] == (hr["ceiling_mean"] >= 1.2 * np.mean(fin[best]))
    assert s["network"]["n_beams"] == 2 and (tmp_path / "headroom.csv").exists()
    assert "gain_over_single_layer_plain_pct" in s["acceptance"]
    top = s["acceptance"]["best_hierarchical"]
    assert np.mean(fin[top]) == max(np.mean(fin["hierarchical"]), np.mean(fin["hierarchical_cf"]))
    assert s["acceptance"]["best_hierarchical_gain_over_best_single_layer_pct"] == pytest.approx(
        100 * (np.mean(fin[top]) / np.mean(fin[best]) - 1))
    # the learners' policies are saved (eval runs those), the rules have none
    policies = tmp_path / "policies"
    assert has_policy(policies / "hierarchical_cf") and not has_policy(policies / "greedy")


def test_live_cli_passes_the_sequence_choice(monkeypatch, tmp_path) -> None:
    """`semcom network live` runs link-specific sequences by default, one shared with --shared-sequence."""
    import semcom.network.live as live
    from semcom.cli import main
    from semcom.network.linktable import DEFAULT_LINK_TABLE

    seen = []

    def fake_run_live(policies, out, **kw):
        seen.append((kw["link_sequences"], kw["link_table"]))
        return {"summary": {"within_margin": True}}

    def fake_compare(out, table):
        seen.append((out, table))
        return {"within_margin": False}

    monkeypatch.setattr(live, "run_live", fake_run_live)
    monkeypatch.setattr(live, "compare", fake_compare)
    assert main(["network", "live", "--no-progress", "--out", str(tmp_path)]) == 0
    assert main(["network", "live", "--shared-sequence", "--no-progress", "--out", str(tmp_path),
                 "--link-table", "t.csv"]) == 0
    # --compare-only runs nothing; outside the margin -> exit status 1
    assert main(["network", "live", "--compare-only", "--out", str(tmp_path)]) == 1
    table = str(DEFAULT_LINK_TABLE)
    assert seen == [(True, table), (False, "t.csv"), (str(tmp_path), table)]


@pytest.mark.slow
def test_linktable_quick_sweeps_the_live_link(tmp_path) -> None:
    """`semcom network linktable --quick --no-answers`: the live flowgraph's links at controlled SINRs;
    every frame delivered or counted lost; at 20-25 dB every frame comes back with the receiver's SNR
    estimate and the payload's SNR at the set SINR, at -8 to -6 dB none does; the table the env reads."""
    import json

    from semcom.cli import main
    from semcom.network.env import load_link_table

    table = tmp_path / "t.csv"
    assert main(["network", "linktable", "--quick", "--no-answers", "--no-progress", "--out", str(tmp_path),
                 "--table", str(table)]) == 0
    doc = json.loads((tmp_path / "link_table.json").read_text())
    assert doc["frames_sent"] == 9 and doc["frames_delivered"] + doc["frames_lost"] == 9
    assert doc["foreign_frames_delivered"] == 0
    with (tmp_path / "frames_seed_0.csv").open() as f:
        frames = list(csv.DictReader(f))
    high = [r for r in frames if float(r["sinr_db"]) >= 20]
    low = [r for r in frames if float(r["sinr_db"]) < -6]
    assert len(high) == len(low) == 3  # one per mix (interference, half, noise)
    assert all(r["delivered"] == "True" for r in high) and not any(r["delivered"] == "True" for r in low)
    for r in high:
        assert abs(float(r["snr_measured_db"]) - float(r["sinr_db"])) < 1.5
        assert abs(float(r["payload_snr_db"]) - float(r["sinr_db"])) < 2.0
    lt = load_link_table(str(table))
    assert lt.delivered[0] == 0.0 and lt.delivered[-1] == 1.0
    assert (tmp_path / "link_table.png").stat().st_size > 0
    # --aggregate: the same table again from the seed's frames, nothing measured
    again = tmp_path / "again.csv"
    assert main(["network", "linktable", "--quick", "--aggregate", "--per-link", "--out", str(tmp_path),
                 "--table", str(again)]) == 0
    assert again.read_text() == table.read_text()
    per_link = load_link_table(str(tmp_path / "again_per_link.csv"))  # one table per link
    assert per_link.delivered.shape == (3, 3)


def test_live_comparison_of_a_run_that_follows_the_model(tmp_path) -> None:
    """`compare` on a run whose per-frame QoE is exactly the expected simulation's (its own slots and
    link-model QoE written as a live.csv): live = the expected simulation = the link model at the live
    slots, both parts of the gap 0; the frame-by-frame simulation's draws spread around it."""
    import json

    from semcom.network.agents import run_scheme
    from semcom.network.experiment import load_policy
    from semcom.network.linktable import DEFAULT_LINK_TABLE
    from semcom.network.live import compare
    from semcom.results import write_csv

    policies = "experiments/network/output/live_train/policies/hierarchical"
    seed, slots = 101, 12
    core = NetworkCore(NetworkConfig(n_cells=3, n_slots=slots, link_table=str(DEFAULT_LINK_TABLE),
                                     frame_values=2560), 1)
    rows: list[dict] = []
    step = core.step

    def recorded(beam, power, level):
        m = step(beam, power, level)
        q = m["qoe"][0]
        rows.extend({"slot": core.t - 1, "link": k, "level": core.table.names[level[0, k]],
                     "sinr_sim_db": float(m["sinr_db"][0, k]), "qoe_live_lost_answered": float(q[k]),
                     "qoe_live": float(q[k]) - 0.1} for k in range(3))
        return m

    core.step = recorded
    run_scheme(load_policy(policies, core, seed), seed, slots)
    write_csv(tmp_path / "live.csv", rows)
    (tmp_path / "live.json").write_text(json.dumps({"summary": {
        "policies": policies, "seed": seed, "slots": slots, "n_links": 3, "scheme": "hierarchical",
        "frames_sent": 36, "frames_delivered": 36, "frames_lost": 0}}))
    out = compare(tmp_path, DEFAULT_LINK_TABLE)
    want = float(np.mean([r["qoe_live_lost_answered"] for r in rows]))
    assert out["qoe_live"] == pytest.approx(want) and out["qoe_sim_expected"] == pytest.approx(want, abs=1e-9)
    assert out["qoe_model_at_live_slots"] == pytest.approx(want, abs=1e-9)
    assert out["gap_expected"] == pytest.approx(0.0, abs=1e-9)
    assert out["gap_phy_model"] == pytest.approx(0.0, abs=1e-9)
    assert out["gap_trajectory"] == pytest.approx(0.0, abs=1e-9)
    # the frame-by-frame simulation: 20 realisations around it (12 slots: a wide spread)
    assert 0 < out["qoe_sim_sd_draws"] < 0.1 and abs(out["qoe_sim"] - want) < 0.1
    assert out["gap"] == pytest.approx(out["qoe_live"] - out["qoe_sim"])
    assert out["within_margin"] == (abs(out["gap"]) <= 0.05)
    assert out["qoe_live_lost_zero"] == pytest.approx(want - 0.1)
    doc = json.loads((tmp_path / "live.json").read_text())["summary"]
    assert doc["gap"] == out["gap"] and (tmp_path / "gap.json").exists() and (tmp_path / "live.png").exists()


def test_sampled_frames_are_one_realisation_of_the_link_model() -> None:
    """``sample_frames``: each frame delivered with the link table's probability and its q questions
    answered right at random; over many networks the realised QoE, accuracy and delivery average to the
    expectations (within 4 standard errors); a lost frame is observed at LOST_SINR_DB, a delivered one at
    the SNR the table's measurement model draws; the channel does not depend on the frame draws; an env
    without frame_values refuses it."""
    from semcom.network.env import LOST_SINR_DB
    from semcom.network.linktable import DEFAULT_LINK_TABLE

    base = NetworkConfig(n_cells=3, link_table=str(DEFAULT_LINK_TABLE), frame_values=2560)
    E = 3000
    exp_core = NetworkCore(base, E)
    cores = [NetworkCore(replace(base, sample_frames=True, frame_seed=f), E) for f in (0, 1)]
    rng = np.random.default_rng(4)
    a = tuple(rng.integers(0, n, (E, 3)) for n in (8, 5, exp_core.C))
    for c in (exp_core, *cores):
        c.reset(11)
    me, m0, m1 = (c.step(*a) for c in (exp_core, *cores))
    np.testing.assert_array_equal(m0["sinr_db"], m1["sinr_db"])   # same channel for every frame seed
    assert not np.array_equal(m0["delivered"], m1["delivered"])
    for key in ("delivered", "accuracy", "qoe"):
        d = m0[key] - me[key]
        assert abs(d.mean()) < 4 * d.std() / np.sqrt(d.size), key
    assert 0.05 < me["delivered"].mean() < 0.95  # the draws matter: the SINRs span the table's transition
    q = cores[0].questions(a[2])
    np.testing.assert_allclose(np.round(m0["accuracy"] * q), m0["accuracy"] * q, atol=1e-9)
    lost = m0["delivered"] == 0
    np.testing.assert_array_equal(cores[0].last["sinr_db"][lost], LOST_SINR_DB)
    # a delivered frame is observed as the table's measurement model reports it, drawn from the env's own
    # stream for the receivers' estimates (frame seed 0, episode seed 11)
    seen = cores[0].link.measured_snr_db(m0["sinr_db"], np.random.default_rng((0, 11, 1)))
    np.testing.assert_array_equal(cores[0].last["sinr_db"][~lost], seen[~lost])
    with pytest.raises(ValueError, match="frame_values"):
        NetworkConfig(sample_frames=True)


def test_linktable_channel_gives_the_set_sinr_and_mix() -> None:
    """The sweep's channel: receiver k's interference + noise over its own unit-gain signal is exactly the
    set SINR, the interference share is the mix's, and a one-interferer mix puts it all on one transmitter."""
    from semcom.network.linktable import channel_for

    rng = np.random.default_rng(0)
    sinr, share = np.array([-5.0, 3.0, 20.0]), np.array([0.99, 0.5, 0.0])
    for one in (None, np.array([True, True, False])):
        g, noise = channel_for(sinr, share, rng, one)
        np.testing.assert_allclose(np.diag(g), 1.0)
        interf = (np.abs(g) ** 2).sum(axis=1) - 1.0
        np.testing.assert_allclose(10 * np.log10(1.0 / (interf + noise)), sinr, atol=1e-9)
        np.testing.assert_allclose(interf / (interf + noise), share, atol=1e-12)
        off = np.abs(g - np.diag(np.diag(g))) > 0
        if one is not None:
            assert off[:2].sum(axis=1).tolist() == [1, 1]
        else:
            assert off[:2].sum(axis=1).tolist() == [2, 2]


def test_per_link_table_is_read_per_link(tmp_path) -> None:
    """A link table with a ``link`` column gives each link its own delivery and ratio (the links' own
    radios); one for another number of links is refused."""
    t = tmp_path / "per_link.csv"
    lines = ["link,sinr_lo_db,sinr_hi_db,delivered,accuracy_ratio,accuracy_lost"]
    for k, p in enumerate((0.1, 0.5, 0.9)):
        lines += [f"{k},-60,0,{p},0.8,0.25", f"{k},0,80,1.0,1.0,0.25"]
    t.write_text("\n".join(lines) + "\n")
    core = NetworkCore(NetworkConfig(n_cells=3, link_table=str(t)), 1)
    core.reset(0)
    m = core.link_metrics(np.zeros((2, 3), int), np.array([[-3.0, -3.0, -3.0], [5.0, -1.0, 2.0]]))
    np.testing.assert_allclose(m["delivered"], [[0.1, 0.5, 0.9], [1.0, 0.5, 1.0]])
    xi = core.table.accuracy(np.zeros(3, int), np.full(3, -3.0))
    np.testing.assert_allclose(m["accuracy"][0], np.array([0.1, 0.5, 0.9]) * 0.8 * xi
                               + (1 - np.array([0.1, 0.5, 0.9])) * 0.25)
    with pytest.raises(ValueError, match="a table for 3 links"):
        NetworkCore(NetworkConfig(n_cells=7, link_table=str(t)), 1)


def test_counterfactual_neighbour_targets_are_the_env_stepped_with_that_action() -> None:
    """From the cells' exchanged reports alone, the QoE every terminal would have had had BS j used any
    (beam, power), the others held, is the QoE the env gives when that slot is stepped again with that
    action (a copy of the network before the slot); the neighbour term is the env's reward's (its
    neighbours follow the action too). The *_cf schemes store, for the action they took, exactly the
    neighbour term of the env's reward."""
    import copy

    from semcom.network.agents import counterfactual_neighbour_term, counterfactual_qoe

    cfg = NetworkConfig(n_cells=4, n_antennas=4, n_beams=4)
    core = NetworkCore(cfg, 2)
    core.reset(3)
    rng = np.random.default_rng(1)
    L, C, k = len(cfg.power_dbm), core.C, cfg.neighbour_weight
    for _ in range(2):
        a = [rng.integers(0, n, (2, 4)) for n in (cfg.n_beams, L, C)]
        before = copy.deepcopy(core)
        core.step(*a)
        rep = core.exchanged_reports()
        q, term = counterfactual_qoe(core, rep), counterfactual_neighbour_term(core, rep)
        assert q.shape == (2, 4, cfg.n_beams, L, 4) and term.shape == (2, 4, cfg.n_beams, L)
        for j in range(4):
            for b in range(cfg.n_beams):
                for p in range(L):
                    beam, power = a[0].copy(), a[1].copy()
                    beam[:, j], power[:, j] = b, p
                    m = copy.deepcopy(before).step(beam, power, a[2])
                    np.testing.assert_allclose(q[:, j, b, p], m["qoe"], atol=1e-12)
                    reward_term = (m["reward"][:, j] - (1 - k) * m["qoe"][:, j]) / k
                    np.testing.assert_allclose(term[:, j, b, p], reward_term, atol=1e-12)
    small = NetworkConfig(n_cells=3, n_slots=40, period=5)
    for name in ("hierarchical_cf", "single_layer_cf", "hierarchical_ref_cf"):
        net = NetworkCore(replace(small, large_timescale=SCHEMES[name].large_timescale), 1)
        scheme = make_scheme(name, net, 0)
        seen: list[np.ndarray] = []

        def record(t: int, a: tuple, m: dict, seen: list = seen) -> None:
            seen.append((m["reward"] - (1 - k) * m["qoe"]) / k)    # the neighbour term of the env's reward

        run_scheme(scheme, 3, 12, measured=record)
        dqn = {"hierarchical_cf": "high", "single_layer_cf": "dqn", "hierarchical_ref_cf": "low"}[name]
        dqn = getattr(scheme, dqn)
        buf = dqn.buffer
        got = np.take_along_axis(buf.nb[:12], dqn.nb_choice.numpy()[buf.act[:12]][..., None], -1)[..., 0]
        np.testing.assert_allclose(got, np.concatenate(seen), atol=1e-6)
    with pytest.raises(ValueError, match="need hindsight=True"):
        make_scheme("single_layer_cf", net, 0, replace(scheme.high.cfg, hindsight=False))


def test_load_policy_without_a_policy_is_a_clear_error(tmp_path) -> None:
    """`has_policy` and `load_policy` share one existence check: no policy -> a one-line CheckpointError."""
    from semcom.checkpoint import CheckpointError

    assert not has_policy(tmp_path / "hierarchical")
    with pytest.raises(CheckpointError, match="no network policy"):
        load_policy(tmp_path / "hierarchical", NetworkCore(NetworkConfig(n_cells=3), 1))


def test_scaling_runs_the_schemes_it_is_given(tmp_path) -> None:
    """The scaling study runs exactly ``scaling_schemes``; a scheme without a large timescale is run once
    per cell count (its numbers equal a fresh run at the other T: it never reads T), a hierarchical one at
    each T; the gains are the rows' means'; the per-seed numbers go to the JSON, not the CSV."""
    import json

    from semcom.network.experiment import gain

    schemes = ("hierarchical", "single_layer_cf", "greedy")
    fc = Fig7Config(schemes=(), n_cells=3, period=10, n_antennas=2, scaling_cells=(3,), scaling_periods=(5,),
                    scaling_seeds=(0,), scaling_slots=150, scaling_schemes=schemes)
    rows = fig7(fc, tmp_path, progress=False)["scaling"]
    assert [(r["axis"], r["period"]) for r in rows] == [("cells", 10), ("period", 5)]
    for r in rows:
        assert set(r["per_seed"]) == set(schemes)
        net = fc.network(period=r["period"], n_slots=fc.scaling_slots)
        for name in schemes:   # what the row holds is that scheme run at that row's T
            fresh = tail_mean(run_one(name, net, 0, fc.scaling_slots)[0]["qoe"], fc.tail)
            assert r["per_seed"][name] == [fresh] and r[f"{name}_mean"] == fresh
        assert r["best_single_layer"] == "single_layer_cf" and r["best_hierarchical"] == "hierarchical"
        assert r["hierarchical_gain_over_greedy_pct"] == gain([r["hierarchical_mean"]], [r["greedy_mean"]])
        assert "fp_mean" not in r and "hierarchical_gain_over_fp_pct" not in r
    with (tmp_path / "scaling.csv").open() as f:
        header = next(csv.reader(f))
    assert "per_seed" not in header and "hierarchical_gain_over_single_layer_cf_pct" in header
    doc = json.loads((tmp_path / "scaling.json").read_text())
    assert doc["config"]["scaling_schemes"] == list(schemes) and (tmp_path / "scaling.png").exists()


def test_an_unknown_scaling_scheme_is_refused() -> None:
    """An unknown scheme: a one-line UsageError from the config, argparse's usage error (exit 2) from the
    CLI, before anything runs."""
    from semcom.cli import main
    from semcom.errors import UsageError

    with pytest.raises(UsageError, match="scaling_schemes: unknown scheme.*nope"):
        Fig7Config(scaling_schemes=("greedy", "nope"))
    with pytest.raises(UsageError, match="schemes: unknown scheme.*nope"):
        Fig7Config(schemes=("nope",))
    with pytest.raises(SystemExit) as e:
        main(["network", "train", "--only-scaling", "--scaling-schemes", "greedy", "nope"])
    assert e.value.code == 2
