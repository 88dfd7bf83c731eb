"""The multi-cell semantic network: base-station agents, beams, power, compression, QoE.

``NetworkCore`` is the vectorised simulator (numpy, a batch of E independent networks, all agents at
once); ``SemanticNetworkEnv`` is the same network behind PettingZoo's ``ParallelEnv`` API (E = 1) with
gymnasium spaces. Both share one observation builder (``NetworkCore.observe``).

Per slot t, BS j serves its own terminal j with beam b_j of a DFT codebook and power p_j; terminal k
receives

    SINR_k = p_k G[k, k, b_k] / (sum_{j != k} p_j G[j, k, b_j] + sigma^2),   G[j, k, b] = |h_jk^H f_b|^2

with h_jk = sqrt(PL_jk) * sum_p alpha_jkp a(theta_jk + delta_p) / sqrt(P): path loss
120.9 + 37.6 log10(d km) dB + log-normal shadowing, P paths with angular offsets (spread 3 deg), and
first-order Gauss-Markov fading alpha(t+1) = rho alpha(t) + sqrt(1 - rho^2) n(t).

Semantic quality: the link's compression level c and SINR give the accuracy xi from the *measured* table
(``semcom.network.curves``, the shipped token link), the semantic rate is the rate of correctly
answered questions phi = W xi / n_c (W real channel values per second, n_c values per question), and

    QoE = w sigma(beta (phi - phi_req)) + (1 - w) sigma(lambda (xi - xi_req))

with per-link requirements xi_req ~ U(0.8, 0.9), phi_req ~ U(50, 70) and weight w ~ U(0, 1) (DHDRL's
form, with a rate that does not saturate, so both terms matter).
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .curves import DEFAULT_TABLE, SemanticTable

N_NEIGHBOURS = 2  # neighbours an agent hears from: the ones its own beam interferes with most
LOST_SINR_DB = -10.0  # what a BS records as the SINR of a slot whose frame was lost (the table's floor)


@dataclass(frozen=True)
class NetworkConfig:
    """Defaults: the DHDRL reference design (``shared/DESIGN.md``)."""

    n_cells: int = 7
    cell_radius_m: float = 200.0        # BS spacing = 2 x radius
    min_distance_m: float = 20.0
    ue_min_frac: float = 0.0            # terminals uniform in the annulus [frac R, R] (> 0: cell-edge users)
    n_antennas: int = 8
    n_beams: int = 8                    # DFT codebook
    power_dbm: tuple[float, ...] = (18.0, 23.0, 28.0, 33.0, 38.0)
    noise_dbm: float = -114.0
    n_paths: int = 4
    angle_spread_deg: float = 3.0
    rho: float = 0.64                   # slot-to-slot fading correlation
    shadowing_db: float = 8.0
    n_slots: int = 5000                 # episode length (20 ms slots)
    period: int = 20                    # large timescale T (slots): reported to agents, used by them
    values_per_second: float = 6000.0   # W: real channel values per second the link's share carries
    beta: float = 0.2                   # rate sigmoid slope
    lam: float = 55.0                   # accuracy sigmoid slope
    acc_req: tuple[float, float] = (0.8, 0.9)
    rate_req: tuple[float, float] = (50.0, 70.0)
    neighbour_weight: float = 0.5       # reward = (1 - k) own QoE + k mean QoE of the N_NEIGHBOURS
    table: str = str(DEFAULT_TABLE)
    # optional PHY link table (``semcom network linktable``, semcom.network.linktable): per SINR bin the
    # OFAT frame-delivery probability, the delivered frames' accuracy ratio to the AWGN table and the
    # accuracy of a lost frame's questions answered without tokens; "" = the AWGN table alone (Fig. 7)
    link_table: str = ""
    # > 0: every slot a link carries one frame of this many real values, q = frame_values // n_c questions,
    # and its accuracy is the fraction of them answered right (as the live run scores it): the QoE is the
    # expectation over Binomial(q, accuracy); 0 = the QoE of the expected accuracy (Fig. 7)
    frame_values: int = 0
    # True (needs frame_values): every slot one realisation of each link's frame instead of expectations:
    # delivered with the link table's probability, each question answered right at random, and the BS then
    # observes what a live receiver reports (LOST_SINR_DB for a lost frame, a delivered frame's SNR drawn
    # from the table's measurement model: ``LinkTable.measured_snr_db``); drawn from ``frame_seed`` and
    # the episode's seed, apart from the channel's draws (the fading is the same for every frame_seed)
    sample_frames: bool = False
    frame_seed: int = 0
    # action components an agent may change only every ``period`` slots (its large timescale), enforced
    # by ``step``: () = any schedule; ("beam", "power") = the hierarchical scheme here; ("beam",) = the
    # reference design's split (DHDRL: beam high, power x compression low)
    large_timescale: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n_cells < 2:
            raise ValueError(f"n_cells must be >= 2 (an interference network), got {self.n_cells}")
        if self.n_beams < 1 or self.n_antennas < 1 or not self.power_dbm:
            raise ValueError("need >= 1 antenna, >= 1 beam and >= 1 power level")
        if self.period < 1 or self.n_slots < 1:
            raise ValueError("period and n_slots must be >= 1")
        if not 0.0 <= self.ue_min_frac < 1.0:
            raise ValueError(f"ue_min_frac must be in [0, 1), got {self.ue_min_frac}")
        if not 0.0 <= self.rho <= 1.0:
            raise ValueError(f"rho must be in [0, 1], got {self.rho}")
        if self.frame_values < 0:
            raise ValueError(f"frame_values must be >= 0, got {self.frame_values}")
        if self.sample_frames and not self.frame_values:
            raise ValueError("sample_frames draws each frame's questions: it needs frame_values > 0")
        if not set(self.large_timescale) <= {"beam", "power", "compression"}:
            raise ValueError(f"large_timescale: components of beam, power, compression; got "
                             f"{self.large_timescale}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@functools.lru_cache(maxsize=8)
def load_table(path: str) -> SemanticTable:
    return SemanticTable.from_csv(path)


@dataclass(frozen=True)
class LinkTable:
    """The PHY as the env's link model, per SINR bin: ``edges`` (n-1,) inner bin edges in dB, ``delivered``
    (n,) frame-delivery probability, ``accuracy_ratio`` (n,) a delivered frame's accuracy over the AWGN
    table's, ``accuracy_lost`` the accuracy of a lost frame's questions answered without any token, and
    the receiver's SNR estimate of a delivered frame: ``snr_bias_db`` (n,) its mean and ``snr_sd_db`` (n,)
    its sd around the true SINR (zeros: a table without them, or a bin without two delivered frames)."""

    edges: np.ndarray
    delivered: np.ndarray
    accuracy_ratio: np.ndarray
    accuracy_lost: float
    snr_bias_db: np.ndarray | None = None
    snr_sd_db: np.ndarray | None = None

    def bin(self, sinr_db: np.ndarray) -> np.ndarray:
        return np.digitize(sinr_db, self.edges)

    @staticmethod
    def _read(column: np.ndarray, b: np.ndarray) -> np.ndarray:
        """``column`` at bins ``b`` (..., N): a per-link column (rows (N, n): each link's own radios, e.g. its
        interferers' oscillator offsets) is read row k for link k, along the last axis."""
        if column.ndim == 1:
            return column[b]
        return column[np.broadcast_to(np.arange(b.shape[-1]), b.shape), b]

    def lookup(self, sinr_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(delivery probability, accuracy ratio) at ``sinr_db`` (..., N)."""
        b = self.bin(sinr_db)
        return self._read(self.delivered, b), self._read(self.accuracy_ratio, b)

    def measured_snr_db(self, sinr_db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The measurement model: what the receiver reports as a delivered frame's SNR when the true SINR is
        ``sinr_db`` (..., N): sinr + bias + sd x N(0, 1) with the bin's bias and sd (one normal drawn per
        link-slot whatever the table holds, so the draws stay aligned)."""
        z = rng.standard_normal(np.shape(sinr_db))
        if self.snr_bias_db is None or self.snr_sd_db is None:
            return np.asarray(sinr_db, dtype=float)
        b = self.bin(sinr_db)
        return sinr_db + self._read(self.snr_bias_db, b) + self._read(self.snr_sd_db, b) * z


@functools.lru_cache(maxsize=8)
def load_link_table(path: str) -> LinkTable:
    """A link table CSV (rows: sinr_lo_db, sinr_hi_db, delivered, accuracy_ratio[, accuracy_lost][, link])
    -> LinkTable; a table without ``accuracy_lost`` (the first, live-read ones) scores a lost frame 0; one
    with a ``link`` column holds one table per link (the same bins for each)."""
    import csv

    with open(path) as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"sinr_lo_db", "delivered", "accuracy_ratio"} <= set(rows[0]):
        raise ValueError(f"{path}: not a link table (sinr_lo_db, sinr_hi_db, delivered, accuracy_ratio)")
    links = sorted({int(r["link"]) for r in rows}) if "link" in rows[0] else [None]
    per = [[r for r in rows if links == [None] or int(r["link"]) == k] for k in links]
    if any([r["sinr_lo_db"] for r in t] != [r["sinr_lo_db"] for r in per[0]] for t in per):
        raise ValueError(f"{path}: every link's table needs the same SINR bins")
    def column(name: str) -> np.ndarray:
        a = np.array([[float(r[name]) for r in t] for t in per])
        return a[0] if links == [None] else a

    # the receiver's SNR estimate (tables measured before it was recorded have no sd: no model, observed
    # exact); a bin without two delivered frames has no measured spread: read as exact (bias 0, sd 0)
    snr = None
    if {"snr_estimate_bias_db", "snr_estimate_sd_db"} <= set(rows[0]):
        bias, sd = column("snr_estimate_bias_db"), column("snr_estimate_sd_db")
        known = np.isfinite(bias) & np.isfinite(sd)
        snr = np.where(known, bias, 0.0), np.where(known, sd, 0.0)
    return LinkTable(np.array([float(r["sinr_lo_db"]) for r in per[0][1:]]), column("delivered"),
                     column("accuracy_ratio"), float(rows[0].get("accuracy_lost") or 0.0),
                     *(snr or (None, None)))


def hex_positions(n: int, spacing: float) -> np.ndarray:
    """(n, 2) BS positions: the centre cell, then rings of the hexagonal lattice (nearest first)."""
    rings = int(np.ceil(np.sqrt(n))) + 1
    q, r = np.meshgrid(np.arange(-rings, rings + 1), np.arange(-rings, rings + 1))
    q, r = q.ravel(), r.ravel()
    xy = np.stack([spacing * (q + r / 2.0), spacing * (np.sqrt(3) / 2.0) * r], axis=1)
    d = np.round(np.hypot(xy[:, 0], xy[:, 1]), 6)
    ang = np.mod(np.arctan2(xy[:, 1], xy[:, 0]), 2 * np.pi)
    return xy[np.lexsort((ang, d))[:n]]


def dft_codebook(n_antennas: int, n_beams: int) -> np.ndarray:
    """(B, Nt) unit-norm DFT beams for a half-wavelength ULA, spatial frequencies spread over [-1, 1)."""
    u = -1.0 + (2.0 * np.arange(n_beams) + 1.0) / n_beams
    return np.exp(1j * np.pi * np.outer(u, np.arange(n_antennas))) / np.sqrt(n_antennas)


def most_interfered(rx: np.ndarray) -> np.ndarray:
    """rx (E, N_bs, ..., N_ue) the power BS j puts at terminal k -> (E, N_bs, ..., N_NEIGHBOURS) the terminals
    other than its own (k = j) each BS reaches most, strongest first: its neighbours in the reward."""
    cross = rx.copy()
    idx = np.arange(rx.shape[1])
    cross[:, idx, ..., idx] = -1.0
    return np.argsort(-cross, axis=-1)[..., :N_NEIGHBOURS]


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


class NetworkCore:
    """E independent networks of N cells, stepped together.

    ``reset(seed)`` draws terminals, shadowing, path angles, fading and requirements; ``step(beam, power,
    level)`` with int arrays (E, N) applies the actions for one slot and returns the per-link metrics;
    ``observe()`` gives every agent's local observation (E, N, obs_dim) built from what it measured in the
    last slot.
    """

    def __init__(self, cfg: NetworkConfig, n_envs: int = 1) -> None:
        self.cfg, self.E, self.N = cfg, n_envs, cfg.n_cells
        self.table = load_table(cfg.table)
        self.link = load_link_table(cfg.link_table) if cfg.link_table else None
        n_tables = len(self.link.delivered) if self.link is not None and self.link.delivered.ndim == 2 else 0
        if n_tables and n_tables != cfg.n_cells:
            raise ValueError(f"{cfg.link_table}: a table for {n_tables} links, the network has {cfg.n_cells}")
        self.C = self.table.n_levels
        self.codebook = dft_codebook(cfg.n_antennas, cfg.n_beams)            # (B, Nt)
        self.power_w = 10.0 ** ((np.asarray(cfg.power_dbm) - 30.0) / 10.0)   # (L,)
        self.noise_w = 10.0 ** ((cfg.noise_dbm - 30.0) / 10.0)
        self.bs_xy = hex_positions(self.N, 2.0 * cfg.cell_radius_m)
        self.obs_dim = cfg.n_beams + 2 + cfg.n_beams + len(cfg.power_dbm) + self.C + 3 + 2 * N_NEIGHBOURS + 3
        self.rng = np.random.default_rng(0)
        self.t = 0

    # -- the channel -------------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> np.ndarray:
        """New terminals, shadowing, fading and requirements -> observations (E, N, obs_dim)."""
        cfg, E, N = self.cfg, self.E, self.N
        self.rng = np.random.default_rng(seed)
        rng = self.rng
        self.frame_rng = np.random.default_rng((cfg.frame_seed, 0 if seed is None else seed))
        # the receivers' SNR-estimate errors: their own stream, so the frames' draws do not depend on them
        self.snr_rng = np.random.default_rng((cfg.frame_seed, 0 if seed is None else seed, 1))
        # terminal k area-uniform in the disc of radius R around BS k (or the annulus from ue_min_frac R)
        r0 = max(cfg.min_distance_m / cfg.cell_radius_m, cfg.ue_min_frac) ** 2
        rad = np.sqrt(rng.uniform(r0, 1.0, (E, N))) * cfg.cell_radius_m
        phi = rng.uniform(0, 2 * np.pi, (E, N))
        ue = self.bs_xy[None] + np.stack([rad * np.cos(phi), rad * np.sin(phi)], axis=-1)   # (E, N, 2)
        diff = ue[:, None, :, :] - self.bs_xy[None, :, None, :]                            # (E, Nbs, Nue, 2)
        dist = np.maximum(np.hypot(diff[..., 0], diff[..., 1]), cfg.min_distance_m)
        pl_db = 120.9 + 37.6 * np.log10(dist / 1000.0) + cfg.shadowing_db * rng.standard_normal((E, N, N))
        self.path_gain = 10.0 ** (-pl_db / 10.0)                                            # (E, N, N)
        theta = np.arctan2(diff[..., 1], diff[..., 0])                                      # (E, N, N)
        delta = np.deg2rad(cfg.angle_spread_deg) * rng.standard_normal((E, N, N, cfg.n_paths))
        ang = theta[..., None] + delta
        n = np.arange(cfg.n_antennas)
        self.steer = np.exp(1j * np.pi * np.cos(ang)[..., None] * n)                        # (E,N,N,P,Nt)
        # the beam response of every path, fixed per episode: (E, N, N, P, B)
        self.path_beam = np.einsum("ejkpn,bn->ejkpb", self.steer, self.codebook.conj())
        self.alpha = self._cn((E, N, N, cfg.n_paths))
        self.acc_req = rng.uniform(*cfg.acc_req, (E, N))
        self.rate_req = rng.uniform(*cfg.rate_req, (E, N))
        self.w = rng.uniform(0.0, 1.0, (E, N))
        # the next slot's fading innovation, drawn ahead (same draw order as drawing it in step) so a
        # genie-aided oracle can see the slot's true channel before acting (``next_beam_gains``)
        self._innovation = self._cn(self.alpha.shape)
        self.t = 0
        # what the agents measured "before slot 0": max power, beam 0, least compression, no QoE yet
        self.last = {"beam": np.zeros((E, N), int), "power": np.full((E, N), len(cfg.power_dbm) - 1),
                     "level": np.zeros((E, N), int), "qoe": np.zeros((E, N)), "acc": np.zeros((E, N)),
                     "rate": np.zeros((E, N))}
        self._measure(self.last["beam"], self.last["power"])
        self.last["sinr_db"] = self.metrics_sinr_db
        return self.observe()

    def _cn(self, shape: tuple[int, ...]) -> np.ndarray:
        return (self.rng.standard_normal(shape) + 1j * self.rng.standard_normal(shape)) / np.sqrt(2.0)

    def beam_channels(self, alpha: np.ndarray | None = None) -> np.ndarray:
        """(E, Nbs, Nue, B) complex h_jk^H f_b of the current fading state (or ``alpha``), path loss in."""
        a = self.alpha if alpha is None else alpha
        resp = np.einsum("ejkp,ejkpb->ejkb", a, self.path_beam) / np.sqrt(self.cfg.n_paths)
        return np.sqrt(self.path_gain)[..., None] * resp

    def beam_gains(self, alpha: np.ndarray | None = None) -> np.ndarray:
        """G (E, Nbs, Nue, B) = |h_jk^H f_b|^2 of the current fading state (path loss included)."""
        h = self.beam_channels(alpha)
        return h.real ** 2 + h.imag ** 2

    def _next_alpha(self) -> np.ndarray:
        rho = self.cfg.rho
        return rho * self.alpha + np.sqrt(1.0 - rho ** 2) * self._innovation

    def next_beam_gains(self) -> np.ndarray:
        """GENIE: G (E, Nbs, Nue, B) of the slot the next ``step`` applies (its true channel, before any
        measurement of it). Only the centralised oracle reads this; no agent can know it."""
        return self.beam_gains(self._next_alpha())

    def ceiling_qoe(self) -> np.ndarray:
        """(E, N) the interference-free ceiling of each link in the current slot: its best beam at max
        power with no other BS on the air and its best compression, scored with the running-maximum
        (monotone) table, so no action profile of any scheme can give a link more QoE in this slot
        (AWGN table; ignores ``link_table``)."""
        idx = np.arange(self.N)
        snr_db = 10.0 * np.log10(self.G[:, idx, idx, :].max(axis=-1) * self.power_w[-1] / self.noise_w)
        mono = self.table.monotone()
        return np.max([self.qoe(np.full(snr_db.shape, c), snr_db, mono)[2] for c in range(self.C)], axis=0)

    def _measure(self, beam: np.ndarray, power: np.ndarray) -> None:
        """Received powers of the current channel under (beam, power): rx[e, j, k] from BS j at UE k."""
        G = self.beam_gains()
        self.G = G
        e, j = np.ogrid[:self.E, :self.N]
        g_sel = np.take_along_axis(G, beam[:, :, None, None].repeat(self.N, 2), axis=3)[..., 0]  # (E,N,N)
        rx = self.power_w[power][:, :, None] * g_sel
        self.rx = rx
        signal = rx[e, j, j]
        interf = rx.sum(axis=1) - signal
        self.interference_w = interf + self.noise_w
        self.metrics_sinr_db = 10.0 * np.log10(signal / self.interference_w)

    def qoe(self, level: np.ndarray, sinr_db: np.ndarray, table: SemanticTable | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(accuracy, semantic rate, QoE) per link for compression ``level`` at ``sinr_db`` (..., N), from
        the measured table (or ``table``, e.g. an agent's smoothed model of it)."""
        acc = (table or self.table).accuracy(level, sinr_db)
        rate, q = self.qoe_from_accuracy(level, acc)
        return acc, rate, q

    def qoe_from_accuracy(self, level: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(semantic rate, QoE) per link from an accuracy (measured live, or from the table)."""
        return self.qoe_for(level, acc, self.w, self.acc_req, self.rate_req)

    def qoe_for(self, level: np.ndarray, acc: np.ndarray, w: np.ndarray, acc_req: np.ndarray,
                rate_req: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(semantic rate, QoE) of links with the requirements ``w``, ``acc_req``, ``rate_req`` (broadcast
        with ``acc``): the one QoE definition, for links laid out other than (E, N)."""
        cfg = self.cfg
        rate = cfg.values_per_second * acc / self.table.values[level]
        q = w * sigmoid(cfg.beta * (rate - rate_req)) + (1.0 - w) * sigmoid(cfg.lam * (acc - acc_req))
        return rate, q

    def questions(self, level: np.ndarray) -> np.ndarray:
        """Questions one frame of ``cfg.frame_values`` values carries at compression ``level``."""
        return self.cfg.frame_values // self.table.values[np.asarray(level)].astype(int)

    def sampled_qoe(self, level: np.ndarray, acc: np.ndarray, questions: np.ndarray) -> np.ndarray:
        """(E, N) expected QoE when a link's accuracy is the fraction right of its ``questions`` (E, N)
        independent answers, each right with probability ``acc`` (E, N): sum over x of Binomial(q, acc)(x)
        QoE(x / q). The accuracy sigmoid is steep (lambda), so a frame of few questions scores less than the
        QoE of its expected accuracy where that accuracy is above the requirement."""
        from scipy.stats import binom

        q = np.maximum(np.asarray(questions, dtype=np.int64), 1)
        x = np.arange(int(q.max()) + 1).reshape((-1,) + (1,) * q.ndim)              # (X, 1, 1)
        with np.errstate(divide="ignore"):  # scipy's pmf at p = 0 or 1 (exact zeros, harmless)
            pmf = binom.pmf(x, q, np.clip(acc, 0.0, 1.0))                            # (X, E, N), 0 past q
        _, qoe = self.qoe_from_accuracy(np.asarray(level), np.minimum(x / q, 1.0))
        return (pmf * qoe).sum(axis=0)

    def link_metrics(self, level: np.ndarray, sinr_db: np.ndarray) -> dict[str, np.ndarray]:
        """(E, N) accuracy, rate, QoE and frame-delivery probability of links at compression ``level`` and
        ``sinr_db``: the AWGN table, then the link table's delivery and accuracy ratio (a lost frame's
        questions answered without tokens), scored per frame when ``cfg.frame_values`` > 0. The expected
        accuracy is p ratio xi(SINR) + (1 - p) xi_lost; the QoE is p QoE(delivered) + (1 - p) QoE(lost)."""
        acc = self.table.accuracy(level, sinr_db)
        deliver = np.ones_like(acc)
        acc_lost = np.zeros_like(acc)
        if self.link is not None:
            deliver, ratio = self.link.lookup(sinr_db)
            acc = np.minimum(1.0, acc * ratio)
            acc_lost = np.full_like(acc, self.link.accuracy_lost)

        def score(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            rate, q = self.qoe_from_accuracy(level, a)
            return rate, (self.sampled_qoe(level, a, self.questions(level)) if self.cfg.frame_values else q)

        rate_ok, q_ok = score(acc)
        rate_lost, q_lost = score(acc_lost)
        return {"accuracy": deliver * acc + (1 - deliver) * acc_lost,
                "rate": deliver * rate_ok + (1 - deliver) * rate_lost,
                "qoe": deliver * q_ok + (1 - deliver) * q_lost, "delivered": deliver,
                "accuracy_delivered": acc, "accuracy_lost": acc_lost}

    def check_actions(self, beam: np.ndarray, power: np.ndarray, level: np.ndarray) -> None:
        for name, a, n in (("beam", beam, self.cfg.n_beams), ("power", power, len(self.cfg.power_dbm)),
                           ("compression", level, self.C)):
            a = np.asarray(a)
            if a.shape != (self.E, self.N):
                raise ValueError(f"{name} actions must have shape {(self.E, self.N)}, got {a.shape}")
            if not np.issubdtype(a.dtype, np.integer):
                raise ValueError(f"{name} actions must be integers, got dtype {a.dtype}")
            if np.any((a < 0) | (a >= n)):
                raise ValueError(f"{name} action out of range [0, {n}): {a[(a < 0) | (a >= n)][:4]}")
        if self.t % self.cfg.period:  # inside a large-timescale period: those components are held
            for name, a in (("beam", beam), ("power", power), ("compression", level)):
                held = self.last["level" if name == "compression" else name]
                if name in self.cfg.large_timescale and np.any(np.asarray(a) != held):
                    bs = np.argwhere(np.asarray(a) != held)[0]
                    raise ValueError(f"{name} is on the large timescale: it may change only every "
                                     f"T = {self.cfg.period} slots (slot {self.t}); BS {bs[-1]} changed it "
                                     f"from {held[tuple(bs)]} to {np.asarray(a)[tuple(bs)]}")

    def step(self, beam: np.ndarray, power: np.ndarray, level: np.ndarray) -> dict[str, np.ndarray]:
        """Advance the fading one slot, apply the actions -> per-link metrics (E, N) and rewards."""
        self.check_actions(beam, power, level)
        cfg = self.cfg
        self.alpha = self._next_alpha()
        self._innovation = self._cn(self.alpha.shape)
        self._measure(beam, power)
        sinr = self.metrics_sinr_db
        if self.link is None and not cfg.frame_values:
            acc, rate, q = self.qoe(level, sinr)
            deliver = np.ones_like(acc)
        else:  # the PHY's link table and / or the per-frame scoring
            lm = self.link_metrics(level, sinr)
            acc, rate, q, deliver = lm["accuracy"], lm["rate"], lm["qoe"], lm["delivered"]
        observed = sinr
        if cfg.sample_frames:  # one realisation of every frame, observed as a live receiver reports it
            got = self.frame_rng.random(sinr.shape) < deliver
            n_q = self.questions(level)
            p_right = np.where(got, lm["accuracy_delivered"], lm["accuracy_lost"])
            acc = self.frame_rng.binomial(n_q, p_right) / n_q
            rate, q = self.qoe_from_accuracy(level, acc)
            deliver = got.astype(float)
            # a delivered frame: the SNR its receiver reports (the link table's measurement model, the true
            # SINR without one); a lost frame: LOST_SINR_DB, as live
            seen = self.link.measured_snr_db(sinr, self.snr_rng) if self.link is not None else sinr
            observed = np.where(got, seen, LOST_SINR_DB)
            idx = np.arange(self.N)
            self.interference_w = self.rx[:, idx, idx] / 10.0 ** (observed / 10.0)
        self.t += 1
        self.last = {"beam": beam.copy(), "power": power.copy(), "level": level.copy(), "qoe": q, "acc": acc,
                     "rate": rate, "sinr_db": observed}
        nb = self.neighbours()
        reward = (1 - cfg.neighbour_weight) * q + cfg.neighbour_weight * np.take_along_axis(
            q[:, None, :].repeat(self.N, 1), nb, axis=2).mean(axis=2)
        return {"sinr_db": sinr, "accuracy": acc, "rate": rate, "qoe": q, "reward": reward,
                "delivered": deliver, "truncated": np.full((self.E,), self.t >= cfg.n_slots)}

    def exchanged_reports(self) -> dict[str, np.ndarray]:
        """What the cells exchange after a slot (X2/Xn-style signalling; only the schemes with
        counterfactual neighbour targets read it), each (E, N) per terminal k unless noted:

        * ``signal_w``, ``interference_w``: the power terminal k received from its own BS, and its
          interference plus noise, in the slot (what its receiver measures);
        * ``level``, ``w``, ``acc_req``, ``rate_req``: its compression in the slot and its requirements;
        * ``beam_gain`` (E, N_bs, N_ue, B): G[j, k, b], BS j's every codebook beam at terminal k as the
          terminal measures it on the beams' reference signals (5G's neighbour-cell beam measurements),
          reported to BS j; G[j, j, :] is BS j's own link (already in its observation);
        * ``beam``, ``power`` (E, N): each BS's own last action (its own knowledge, not exchanged)."""
        idx = np.arange(self.N)
        return {"signal_w": self.rx[:, idx, idx], "interference_w": self.interference_w,
                "level": self.last["level"], "w": self.w, "acc_req": self.acc_req, "rate_req": self.rate_req,
                "beam_gain": self.G, "beam": self.last["beam"], "power": self.last["power"]}

    def neighbours(self) -> np.ndarray:
        """(E, N, M) the M terminals each BS interfered with most in the last slot (measured, local)."""
        return most_interfered(self.rx)

    # -- what each agent sees ------------------------------------------------------------------------
    def observe(self) -> np.ndarray:
        """Local observations (E, N, obs_dim) from the last slot's measurements, all float32:

        own link's gain for every beam at max power over noise (dB, scaled), interference + noise and SINR,
        last beam / power / compression one-hot, own last QoE, accuracy and rate, for the M most-interfered
        neighbours the interference caused there and their reported QoE, own requirements (w, xi, phi)."""
        cfg, last = self.cfg, self.last
        idx = np.arange(self.N)
        own = self.G[:, idx, idx, :] * self.power_w[-1] / self.noise_w              # (E, N, B)
        own_db = (10.0 * np.log10(own) - 60.0) / 20.0
        in_db = (10.0 * np.log10(self.interference_w / self.noise_w) - 40.0) / 20.0
        nb = self.neighbours()
        caused = np.take_along_axis(self.rx, nb, axis=2) / self.noise_w
        caused_db = (10.0 * np.log10(caused) - 40.0) / 20.0
        nb_q = np.take_along_axis(last["qoe"][:, None, :].repeat(self.N, 1), nb, axis=2)
        eye_b, eye_p, eye_c = np.eye(cfg.n_beams), np.eye(len(cfg.power_dbm)), np.eye(self.C)
        parts = [own_db, in_db[..., None], (last["sinr_db"] / 20.0)[..., None], eye_b[last["beam"]],
                 eye_p[last["power"]], eye_c[last["level"]], last["qoe"][..., None], last["acc"][..., None],
                 (last["rate"] / 100.0)[..., None], caused_db, nb_q, self.w[..., None],
                 ((self.acc_req - 0.85) * 10.0)[..., None], ((self.rate_req - 60.0) / 10.0)[..., None]]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    # slices of the observation the agents' own structure reads (gains per beam, interference, SINR)
    def obs_slices(self) -> dict[str, slice]:
        B, L, C = self.cfg.n_beams, len(self.cfg.power_dbm), self.C
        s = {"own_db": slice(0, B), "interf_db": slice(B, B + 1), "sinr": slice(B + 1, B + 2)}
        o = B + 2
        for name, n in (("beam", B), ("power", L), ("level", C), ("qoe", 1), ("acc", 1), ("rate", 1),
                        ("caused_db", N_NEIGHBOURS), ("nb_qoe", N_NEIGHBOURS), ("req", 3)):
            s[name] = slice(o, o + n)
            o += n
        return s


class SemanticNetworkEnv:
    """PettingZoo ``ParallelEnv`` over one network (built lazily so ``semcom`` imports without pettingzoo).

    Agents ``bs_0 .. bs_{N-1}``; action per agent ``MultiDiscrete([beams, powers, levels])`` applied each
    slot (the hierarchical agents change beam and power only every T = ``cfg.period`` slots; the env allows
    any schedule); observation ``Box(obs_dim)``; reward the agent's local reward (own QoE mixed with its
    neighbours' reported QoE); ``infos[agent]`` has its QoE, accuracy, rate and SINR. Use ``make_env``.
    """


def make_env(cfg: NetworkConfig | None = None, render_mode: str | None = None) -> Any:
    """A PettingZoo ParallelEnv of the network (see ``SemanticNetworkEnv``)."""
    from gymnasium import spaces
    from pettingzoo import ParallelEnv

    class _Env(ParallelEnv):
        __doc__ = SemanticNetworkEnv.__doc__
        metadata = {"name": "semcom_network_v0", "render_modes": []}

        def __init__(self, cfg: NetworkConfig, render_mode: str | None = None) -> None:
            self.cfg = cfg
            self.core = NetworkCore(cfg, 1)
            self.render_mode = render_mode
            self.possible_agents = [f"bs_{i}" for i in range(cfg.n_cells)]
            self.agents: list[str] = []
            self._obs_space = spaces.Box(-np.inf, np.inf, (self.core.obs_dim,), np.float32)
            self._act_space = spaces.MultiDiscrete([cfg.n_beams, len(cfg.power_dbm), self.core.C])

        def observation_space(self, agent: str) -> spaces.Space:
            return self._obs_space

        def action_space(self, agent: str) -> spaces.Space:
            return self._act_space

        def _obs(self, o: np.ndarray) -> dict[str, np.ndarray]:
            return {a: o[0, i] for i, a in enumerate(self.possible_agents)}

        def reset(self, seed: int | None = None, options: dict | None = None
                  ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
            self.agents = list(self.possible_agents)
            obs = self.core.reset(seed)
            return self._obs(obs), {a: {} for a in self.agents}

        def step(self, actions: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
            if not self.agents:
                raise RuntimeError("step() after the episode ended: call reset()")
            missing = set(self.agents) - set(actions)
            if missing:
                raise ValueError(f"actions missing for agents {sorted(missing)}")
            a = np.zeros((1, self.cfg.n_cells, 3), dtype=np.int64)
            for i, name in enumerate(self.possible_agents):
                act = np.asarray(actions[name])
                if act.shape != (3,) or not self._act_space.contains(act.astype(np.int64)) \
                        or not np.issubdtype(act.dtype, np.integer):
                    raise ValueError(f"invalid action for {name}: {actions[name]!r}; expected 3 integers "
                                     f"(beam < {self.cfg.n_beams}, power < {len(self.cfg.power_dbm)}, "
                                     f"compression < {self.core.C})")
                a[0, i] = act
            m = self.core.step(a[..., 0], a[..., 1], a[..., 2])
            obs = self._obs(self.core.observe())
            trunc = bool(m["truncated"][0])
            rew = {n: float(m["reward"][0, i]) for i, n in enumerate(self.possible_agents)}
            infos = {n: {"qoe": float(m["qoe"][0, i]), "accuracy": float(m["accuracy"][0, i]),
                         "rate": float(m["rate"][0, i]), "sinr_db": float(m["sinr_db"][0, i])}
                     for i, n in enumerate(self.possible_agents)}
            terms = {n: False for n in self.possible_agents}
            truncs = {n: trunc for n in self.possible_agents}
            if trunc:
                self.agents = []
            return obs, rew, terms, truncs, infos

        def render(self) -> None:
            return None

        def close(self) -> None:
            return None

        def state(self) -> np.ndarray:
            return self.core.observe()[0].ravel()

    return _Env(cfg or NetworkConfig(), render_mode)
