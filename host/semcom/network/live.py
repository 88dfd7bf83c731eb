"""`semcom network live`: the trained policies drive N OFAT links that share the air in one loopback
flowgraph (flowgraphs/network_loopback_<N>.grc), and the QoE they reach is compared with the simulation
of the same scenario.

Per slot:

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

Besides the live QoE (a lost frame scores accuracy 0), every row also has the QoE when the receiver
answers a lost frame's questions without any token (``qoe_live_lost_answered``: what it does in service,
and the counterpart of the AWGN table's floor, where the tokens carry nothing), and the model's QoE at
the same slot averaged over the frame's question sampling (``qoe_sim_same_slot_sampled``: the live
accuracy is the fraction of the frame's q questions answered right, whose spread the steep accuracy
sigmoid turns into a lower mean QoE; the model's QoE is that of the expected accuracy). The summary
compares the live QoE with the simulation both as the environment scores it (``within_margin``) and with
both sides scored per frame (``within_margin_per_frame_scoring``: lost frames answered without tokens
live, the simulation's accuracy sampled over each frame's questions, ``qoe_sim_scenario_sampled``).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from semcom.progress import progress_bar
from semcom.results import write_csv

from .env import NetworkConfig, NetworkCore

log = logging.getLogger(__name__)
FRAME_VALUES = 2560
QOE_MARGIN = 0.05  # stated margin: |live QoE - simulated QoE| of the same scenario, mean over links and slots
INTERFERER_CFO = 0.5  # max |offset| of a foreign transmitter's oscillator, in subcarriers
LOST_SINR_DB = -10.0  # what a BS records as the SINR of a slot whose frame was lost (the table's floor)


class TokenPool:
    """Test questions with their sensor tokens, encoded once per link type (JTCC codes, raw tokens)."""

    def __init__(self, n_questions: int = 1500, progress: bool = False) -> None:
        from semcom.agents.commands import SHIPPED_CHECKPOINTS
        from semcom.agents.experiment import AgentsExperiment, load_models, make_data

        models = load_models(SHIPPED_CHECKPOINTS)
        doc = json.loads((SHIPPED_CHECKPOINTS / "receiver.json").read_text())
        exp = AgentsExperiment.from_dict(doc["meta"]["experiment"])
        test = make_data(exp, progress=progress, pretrain=False).test.subset(n_questions)
        self.jtcc, self.raw = models["jtcc"].eval(), models["tokens"].eval()
        self.receiver = self.jtcc.receiver
        b = test.batch(torch.arange(len(test)))
        self.question, self.answer = b["question"], b["answer"]
        with torch.no_grad():
            tok_j = self.jtcc.sensor(b["image"], b["vague"])
            tok_r = self.raw.sensor(b["image"], b["vague"])
            self.codes = {"jtcc": self.jtcc.link.encode(tok_j)}                      # (Q, K, 16)
            scale = torch.sqrt(tok_r.pow(2).sum(-1, keepdim=True) / (tok_r.shape[-1] / 2) + 1e-8)
            self.codes["raw"] = tok_r / scale                                        # (Q, K, 128)
            self.raw_scale = scale                                                   # side information
        self.n = len(test)
        self.next = 0

    def no_frame_correct(self, link: str, idx: np.ndarray) -> np.ndarray:
        """(q,) bool: the receiver's answers to the questions ``idx`` without any token (a lost frame)."""
        return self.answers(link, 0, idx, np.zeros(0, np.float32))

    def take(self, q: int) -> np.ndarray:
        idx = (self.next + np.arange(q)) % self.n
        self.next = int((self.next + q) % self.n)
        return idx

    def frame(self, link: str, k: int, idx: np.ndarray, rng: np.random.Generator, n_values: int
              ) -> np.ndarray:
        """(n_values,) float32: the first k tokens of each question, then Gaussian filler of equal power."""
        z = self.codes[link][idx, :k].reshape(-1).numpy()
        fill = rng.standard_normal(n_values - z.size) * np.sqrt(0.5)
        return np.concatenate([z, fill]).astype(np.float32)

    def answers(self, link: str, k: int, idx: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Received values (n_values,) -> correct (q,) bool for the questions ``idx``."""
        m = self.codes[link].shape[-1]
        K = self.codes[link].shape[1]
        y = torch.zeros(len(idx), K, m)
        y[:, :k] = torch.as_tensor(values[:len(idx) * k * m], dtype=torch.float32).reshape(len(idx), k, m)
        with torch.no_grad():
            dec = self.jtcc.link.decode(y) if link == "jtcc" else y * self.raw_scale[idx]
            dec[:, k:] = 0.0  # tokens not sent: the receiver's "no object" token
            pred = self.receiver(dec, None, self.question[idx]).argmax(-1)
        return (pred == self.answer[idx]).numpy()


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


def sampled_qoe(core: NetworkCore, level: np.ndarray, acc: np.ndarray, questions: np.ndarray) -> np.ndarray:
    """(N,) expected QoE of network 0's links when the accuracy is the fraction right of ``questions``
    (N,) independent answers, each right with probability ``acc`` (N,): sum over x of Binomial(q, acc)(x)
    QoE(x / q)."""
    from scipy.stats import binom

    out = np.zeros(len(level))
    for k, (p, q) in enumerate(zip(acc, questions, strict=True)):
        x = np.arange(q + 1)
        grid = np.repeat(np.asarray(acc, float)[None, None, :], q + 1, axis=0)   # (q + 1, 1, N)
        grid[:, 0, k] = x / q
        _, qoe = core.qoe_from_accuracy(np.asarray(level)[None], grid)
        with np.errstate(divide="ignore"):  # scipy's pmf at p = 0 or 1 (exact zeros, harmless)
            out[k] = float(np.dot(binom.pmf(x, q, p), qoe[:, 0, k]))
    return out


def _level_parts(name: str) -> tuple[str, int]:
    link, k = name.split("_k")
    return link, int(k)


def run_live(policies: str | Path, out_dir: str | Path, n_frames: int = 200, seed: int = 100,
             scheme: str = "hierarchical", timeout_s: float = 4.0, progress: bool = True,
             link_sequences: bool = True) -> dict[str, Any]:
    """Run ``n_frames`` slots live; write live.csv (per slot and link), live.png and live.json.
    ``link_sequences=False``: every link on sequence_id 0 (the first live runs, for comparison)."""
    import pmt
    from gnuradio.semcom.messages import tensor_message

    from semcom.flowgraphs import top_block_class
    from semcom.link import LinkClient
    from semcom.loopback import free_tcp_port
    from semcom.ofat.equalize import reconstruct_payload
    from semcom.ofat.frame import make_layout

    from .agents import run_scheme
    from .experiment import load_policy

    policies = Path(policies) / scheme
    doc = json.loads(policies.with_name(policies.name + ("_high.json" if scheme == "hierarchical"
                                                            else "_joint.json")).read_text())
    n = int(doc["config"]["network"]["n_cells"])
    net = NetworkConfig(n_cells=n, period=int(doc["config"]["network"]["period"]), n_slots=n_frames)
    layout = make_layout("wifi64", n_tx=1, n_rx=1, mode="complex", train_reps=2, header_reps=3,
                         max_data_symbols=64)
    # the simulation of the same scenario (same seed, frozen policy), for the comparison
    sim_core = NetworkCore(net, 1)
    sim_slots: list[tuple[np.ndarray, np.ndarray]] = []  # the simulation's (level, accuracy) per slot
    plain_step = sim_core.step

    def recorded_step(beam: np.ndarray, power: np.ndarray, level: np.ndarray) -> dict[str, np.ndarray]:
        m = plain_step(beam, power, level)
        sim_slots.append((np.array(level[0]), np.array(m["accuracy"][0])))
        return m

    sim_core.step = recorded_step  # type: ignore[method-assign]
    sim = run_scheme(load_policy(policies, sim_core, seed), seed, n_frames)
    # the same simulation scored as the live run scores a frame: the fraction right of its q questions
    sim_sampled = float(np.mean([
        sampled_qoe(sim_core, lv, a, (FRAME_VALUES // sim_core.table.values[lv]).astype(int))
        for lv, a in sim_slots]))
    core = NetworkCore(net, 1)
    policy = load_policy(policies, core, seed)
    pool = TokenPool(progress=progress)
    rng = np.random.default_rng(seed)
    tx = [f"tcp://127.0.0.1:{free_tcp_port()}" for _ in range(n)]
    rx = [f"tcp://127.0.0.1:{free_tcp_port()}" for _ in range(n)]
    cls = top_block_class(f"network_loopback_{n}")
    addr = {**{f"tx_address_{k}": a for k, a in enumerate(tx)},
            **{f"rx_address_{k}": a for k, a in enumerate(rx)}}
    fill = layout.n_used / layout.fft_len  # mean sample power of an OFAT frame (unitary IFFT)
    tb = cls(stagger=0, gap_samples=160, fill_power=fill, interferer_cfo=INTERFERER_CFO / layout.fft_len,
             seed=seed, link_sequences=int(link_sequences), **addr)
    tb.start()
    ch = tb.semcom_interference_channel_0
    # one seq space per link: a receiver that captures another link's (stronger) frame delivers a seq its
    # host does not wait for, and its own frame is counted lost
    links = [LinkClient(tx[k], rx[k], window=1, timeout_s=timeout_s, first_seq=1_000_000 * k)
             for k in range(n)]
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    try:
        time.sleep(0.5)  # ZeroMQ connect before the first frame (slow joiner)
        obs = core.reset(seed)
        for s in progress_bar(range(n_frames), progress=progress, desc="live slots"):
            beam, power, level = policy.act(obs)
            m = core.step(beam, power, level)                      # the slot's channel + simulated metrics
            gains, noise = flowgraph_gains(core, beam, power)
            p_dbm = np.asarray(net.power_dbm)[power[0]]
            ch._post(pmt.intern("control"), tensor_message(
                {"slot": s, "power_dbm": p_dbm.tolist(), "level": level[0].tolist()},
                {"gains": gains, "noise_var": noise.astype(np.float64)}))
            while ch.counters()["slot"] != s:  # applied before any sample of this slot's frames moves
                time.sleep(0.001)
            sent = []
            for k in range(n):
                link_name, kk = _level_parts(core.table.names[level[0, k]])
                n_c = int(core.table.values[level[0, k]])
                idx = pool.take(FRAME_VALUES // n_c)
                seq = links[k].send(pool.frame(link_name, kk, idx, rng, FRAME_VALUES), {"slot": s})
                sent.append((seq, link_name, kk, idx))
            acc = np.zeros(n)
            acc_no_frame = np.zeros(n)  # what a lost frame's questions get answered without tokens
            sinr = np.full(n, LOST_SINR_DB)
            delivered = np.zeros(n, bool)
            got: dict[int, Any] = {}
            deadline = time.monotonic() + timeout_s
            while len(got) < n and time.monotonic() < deadline:  # every receiver at once
                for k in set(range(n)) - set(got):
                    msg = links[k].receive(timeout_s=0.02)
                    if msg is not None and msg.seq == sent[k][0]:
                        got[k] = msg
            for k in range(n):
                links[k].expire()  # a frame not back by the deadline is counted lost (timeout_s)
                if k not in got:
                    acc_no_frame[k] = pool.no_frame_correct(sent[k][1], sent[k][3]).mean()
                    continue
                msg = got[k]
                meta = msg.meta
                h = torch.from_numpy(np.array(msg.tensors["H"], np.complex128))
                y = torch.from_numpy(np.array(msg.tensors["Y"], np.complex128))
                vals = reconstruct_payload(layout, h, y, shape=meta["shape"], scale=meta["scale"],
                                           noise_var=meta["noise_var"], method="zf").numpy()
                _, link_name, kk, idx = sent[k]
                acc[k] = pool.answers(link_name, kk, idx, vals).mean()
                sinr[k] = float(meta["snr_db"])
                delivered[k] = True
            lvl = level[0]
            _, q = core.qoe_from_accuracy(lvl[None], acc[None])
            acc_answered = np.where(delivered, acc, acc_no_frame)
            rate_answered, q_answered = core.qoe_from_accuracy(lvl[None], acc_answered[None])
            q_sampled = sampled_qoe(core, lvl, m["accuracy"][0], np.array([len(x[3]) for x in sent]))
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
            obs = core.observe()
    finally:
        counters = {"channel": ch.counters(),
                    "links": [lk.finish(drain_s=0.5) for lk in links],
                    "rx": [getattr(tb, f"ofat_rx_{k}").counters() for k in range(n)]}
        for lk in links:
            lk.close()
        tb.stop()
        tb.wait()
    out = Path(out_dir)
    write_csv(out / "live.csv", rows)
    live_q = float(np.mean([r["qoe_live"] for r in rows]))
    sim_q = float(sim["qoe"].mean())
    answered_q = float(np.mean([r["qoe_live_lost_answered"] for r in rows]))
    summary = {"scheme": scheme, "policies": str(policies), "n_links": n, "slots": n_frames, "seed": seed,
               "frame_values": FRAME_VALUES, "interferer_cfo_subcarriers": INTERFERER_CFO,
               "frames_sent": sum(c["sent"] for c in counters["links"]),
               "frames_delivered": sum(c["delivered"] for c in counters["links"]),
               "frames_lost": sum(c["lost"] for c in counters["links"]),
               "foreign_frames_delivered": sum(c["unexpected"] for c in counters["links"]),
               "sequence_mismatch": sum(c.get("sequence_mismatch", 0) for c in counters["rx"]),
               "header_crc_fail": sum(c["header_crc_fail"] for c in counters["rx"]),
               "link_sequences": bool(link_sequences),
               "qoe_live": live_q, "qoe_live_table_at_measured_snr": float(np.mean(
                   [r["qoe_table_at_measured"] for r in rows])),
               "qoe_sim_same_slots": float(np.mean([r["qoe_sim_same_slot"] for r in rows])),
               "qoe_live_lost_answered": answered_q,
               "qoe_sim_same_slots_sampled": float(np.mean([r["qoe_sim_same_slot_sampled"] for r in rows])),
               "qoe_sim_scenario": sim_q, "qoe_sim_scenario_sampled": sim_sampled,
               "accuracy_live": float(np.mean([r["accuracy_live"] for r in rows])),
               "margin": QOE_MARGIN, "within_margin": abs(live_q - sim_q) <= QOE_MARGIN,
               # both sides scored per frame (a lost frame's questions answered without tokens, the accuracy
               # the fraction right of the frame's questions)
               "within_margin_per_frame_scoring": abs(answered_q - sim_sampled) <= QOE_MARGIN,
               "mean_power_dbm": float(np.mean([r["power_dbm"] for r in rows])),
               "seconds": time.perf_counter() - t0}
    (out / "live.json").write_text(json.dumps({"summary": summary, "counters": counters}, indent=2,
                                              default=float) + "\n")
    plot_live(out / "live.png", rows, sim["qoe"], summary)
    return {"summary": summary, "counters": counters, "rows": rows}


def plot_live(path: Path, rows: list[dict[str, Any]], sim_qoe: np.ndarray, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slots = sorted({r["slot"] for r in rows})

    def per_slot(key: str) -> np.ndarray:  # network mean per slot
        return np.array([np.mean([r[key] for r in rows if r["slot"] == s]) for s in slots])

    live, same, answered = (per_slot(k) for k in ("qoe_live", "qoe_sim_same_slot", "qoe_live_lost_answered"))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(slots, live, label=f"live flowgraph (answers), mean {summary['qoe_live']:.3f}")
    ax.plot(slots, answered, alpha=0.7, label=f"live, lost frames answered without tokens, mean "
            f"{summary['qoe_live_lost_answered']:.3f}")
    ax.plot(slots, same, "--", label=f"model SINR, same slots, mean {summary['qoe_sim_same_slots']:.3f}")
    ax.plot(np.arange(len(sim_qoe)), sim_qoe, ":", label=f"simulation of the scenario, mean "
            f"{summary['qoe_sim_scenario']:.3f} (scored per frame "
            f"{summary['qoe_sim_scenario_sampled']:.3f})")
    ax.set_xlabel("slot (one frame per link)")
    ax.set_ylabel("network QoE")
    ax.set_title(f"{summary['scheme']} policies on {summary['n_links']} live OFAT links: "
                 f"{summary['frames_delivered']}/{summary['frames_sent']} frames delivered", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
