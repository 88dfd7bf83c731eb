"""Schemes that run the network: the distributed hierarchical DRL, single-layer DRL and baselines.

Every scheme has ``act(obs (E, N, O)) -> (beam, power, level)`` int arrays (E, N) and
``update(obs, actions, metrics, next_obs)`` (a no-op for the fixed rules); ``run_scheme`` drives one
online run of ``cfg.n_slots`` slots, as the paper's Fig. 7 does: the learners learn while they act.

The DQN is a minimal plain-PyTorch one (``IndependentDQN``: one MLP per BS evaluated together, target
network, Huber loss, replay): TorchRL 0.14 does the same job but took ~25 ms per update on this machine
against ~1 ms here (docs/ARCHITECTURE.md, "network"), which the CPU budget of the Fig. 7 runs cannot pay.
On top of it, the hierarchy: a high-level DQN per BS
choosing (beam, power) every T slots on its local observation, a low-level DQN per BS choosing the
compression every slot on a view conditioned on the high-level action; each update round updates the
high level first, then the low level (the order of the paper, section III-C).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .env import N_NEIGHBOURS, NetworkConfig, NetworkCore, most_interfered

Tensor = torch.Tensor

Actions = tuple[np.ndarray, np.ndarray, np.ndarray]

# Both DRL schemes refuse counterfactual neighbour targets without the hindsight DQN they are an option of.
CF_NEEDS_HINDSIGHT = ("counterfactual neighbour targets are an option of the hindsight DQN: "
                      "they need hindsight=True")


@dataclass(frozen=True)
class DQNConfig:
    """Independent per-BS DQNs (DHDRL: MLP 64-32, lr 5e-4)."""

    hidden: tuple[int, ...] = (64, 32)
    lr: float = 5e-4
    gamma_high: float = 0.0       # the high level's (and single-layer's) Q: expected local reward of a choice
    gamma_low: float = 0.0        # compression only changes this slot's QoE of the own link
    # (both gammas apply to the first design only: HindsightDQN is gamma = 0 by construction)
    batch_size: int = 64
    buffer: int = 5000
    learn_start: int = 100        # slots of experience before the first gradient step
    eps_start: float = 1.0
    eps_end: float = 0.02
    explore_frac: float = 0.3     # share of the run over which epsilon decays linearly
    tau: float = 0.01             # soft target update
    # hindsight own-QoE targets for every action (``HindsightDQN``); False: the first design, a residual
    # learnt from the taken action only, whose learning made both schemes worse than their greedy start
    # (experiments/network/README.md, "Why learning made the DQNs worse")
    hindsight: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predicted_sinr_db(core: NetworkCore, obs: np.ndarray, beam: np.ndarray, power: np.ndarray) -> np.ndarray:
    """What a BS can predict locally: its own gain under ``beam`` at ``power`` over the interference it
    measured in the last slot (dB), from the observation alone. (E, N)."""
    s = core.obs_slices()
    own_db = obs[..., s["own_db"]] * 20.0 + 60.0                  # own gain at max power over noise, per beam
    g = np.take_along_axis(own_db, beam[..., None], axis=-1)[..., 0]
    p_off = np.asarray(core.cfg.power_dbm)[power] - core.cfg.power_dbm[-1]
    interf = obs[..., s["interf_db"]][..., 0] * 20.0 + 40.0
    return g + p_off - interf


def best_compression(core: NetworkCore, sinr_db: np.ndarray) -> np.ndarray:
    """Best response: the level with the highest own QoE at ``sinr_db`` (E, N) -> (E, N)."""
    return level_qoe_at(core, sinr_db).argmax(axis=-1)


def level_qoe_at(core: NetworkCore, sinr_db: np.ndarray) -> np.ndarray:
    """(E, N, C) the own QoE of every compression level at ``sinr_db`` (E, N)."""
    return np.stack([core.qoe(np.full(sinr_db.shape, c), sinr_db)[2] for c in range(core.C)], axis=-1)


class Scheme:
    """Base: a fixed rule (no learning)."""

    name = "scheme"
    centralised = False
    large_timescale: tuple[str, ...] = ()   # components it changes only every T slots (the env checks)
    explore = True     # learners: epsilon-greedy exploration on
    learning = True    # learners: store transitions and take gradient steps

    def __init__(self, core: NetworkCore, seed: int) -> None:
        self.core, self.rng = core, np.random.default_rng(seed)

    def act(self, obs: np.ndarray) -> Actions:
        raise NotImplementedError

    def update(self, obs: np.ndarray, actions: Actions, metrics: dict[str, np.ndarray],
               next_obs: np.ndarray) -> None:
        return None


class RandomScheme(Scheme):
    name = "random"

    def act(self, obs: np.ndarray) -> Actions:
        c, shape = self.core.cfg, (self.core.E, self.core.N)
        return (self.rng.integers(0, c.n_beams, shape), self.rng.integers(0, len(c.power_dbm), shape),
                self.rng.integers(0, self.core.C, shape))


class GreedyScheme(Scheme):
    """Max power, the beam with the best own gain, best-response compression at the predicted SINR."""

    name = "greedy"

    def _beam_power(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        beam = obs[..., self.core.obs_slices()["own_db"]].argmax(axis=-1)
        return beam, np.full(beam.shape, len(self.core.cfg.power_dbm) - 1)

    def act(self, obs: np.ndarray) -> Actions:
        beam, power = self._beam_power(obs)
        return beam, power, best_compression(self.core, predicted_sinr_db(self.core, obs, beam, power))


class FixedScheme(GreedyScheme):
    """Max power and best own beam, one fixed compression level (the shipped link: JTCC, 5 tokens)."""

    name = "fixed"

    def __init__(self, core: NetworkCore, seed: int, level: str = "jtcc_k5") -> None:
        super().__init__(core, seed)
        self.level = core.table.names.index(level)

    def act(self, obs: np.ndarray) -> Actions:
        beam, power = self._beam_power(obs)
        return beam, power, np.full(beam.shape, self.level)


class FractionalProgramming(Scheme):
    """CENTRALISED classical optimiser: full last-slot CSI of every link, beams = own best beam, powers
    by fractional programming (Shen & Yu's quadratic transform) for the sum of log(1 + SINR), projected
    to the nearest power level in dB, then best-response compression at the resulting SINR."""

    name = "fp"
    centralised = True

    def __init__(self, core: NetworkCore, seed: int, iters: int = 30) -> None:
        super().__init__(core, seed)
        self.iters = iters

    def act(self, obs: np.ndarray) -> Actions:
        core = self.core
        G = core.G                                                    # last slot's channel, all pairs
        idx = np.arange(core.N)
        beam = G[:, idx, idx, :].argmax(axis=-1)                      # (E, N)
        g = np.take_along_axis(G, beam[:, :, None, None].repeat(core.N, 2), axis=3)[..., 0]  # (E, j, k)
        pmax = core.power_w[-1]
        p = np.full(beam.shape, pmax)
        direct = g[:, idx, idx]
        for _ in range(self.iters):
            rx = p[:, :, None] * g
            total = rx.sum(axis=1) + core.noise_w                     # (E, k)
            sinr = p * direct / (total - p * direct)
            y = np.sqrt((1 + sinr) * p * direct) / total              # quadratic-transform auxiliaries
            num = y ** 2 * (1 + sinr) * direct
            den = np.einsum("ek,ejk->ej", y ** 2, g) ** 2
            p = np.minimum(pmax, num / np.maximum(den, 1e-300))
        p_dbm = 10 * np.log10(np.maximum(p, 1e-30)) + 30
        power = np.abs(p_dbm[..., None] - np.asarray(core.cfg.power_dbm)).argmin(axis=-1)
        rx = core.power_w[power][:, :, None] * g
        sig = rx[:, idx, idx]
        sinr_db = 10 * np.log10(sig / (rx.sum(axis=1) - sig + core.noise_w))
        return beam, power, best_compression(core, sinr_db)


class BatchedMLP(nn.Module):
    """N independent MLPs (one per BS, no shared weights) evaluated in one einsum per layer.

    forward(x (..., N, n_in)) -> (..., N, n_out); ReLU between layers, PyTorch's default Linear init."""

    def __init__(self, n_agents: int, n_in: int, n_out: int, hidden: tuple[int, ...] = (64, 32)) -> None:
        super().__init__()
        self.n_agents, self.n_in, self.n_out = n_agents, n_in, n_out
        dims = [n_in, *hidden, n_out]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            bound = 1.0 / math.sqrt(a)
            self.weights.append(nn.Parameter(torch.empty(n_agents, a, b).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(n_agents, b).uniform_(-bound, bound)))

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-2:] != (self.n_agents, self.n_in):
            raise ValueError(f"expected (..., {self.n_agents}, {self.n_in}), got {tuple(x.shape)}")
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.einsum("...ni,nio->...no", x, w) + b
            if i < last:
                x = torch.relu(x)
        return x


class Replay:
    """Ring buffer of (obs, action, reward, next_obs) per slot, every agent's row together (numpy)."""

    def __init__(self, capacity: int, n_agents: int, obs_dim: int, rng: np.random.Generator,
                 n_targets: int = 0, n_nb: int = 0) -> None:
        self.obs = np.zeros((capacity, n_agents, obs_dim), np.float32)
        self.own = np.zeros((capacity, n_agents, n_targets), np.float32)  # hindsight targets per action
        # the neighbours' QoE in the slot; n_nb > 0: one per counterfactual own choice
        self.nb = np.zeros((capacity, n_agents, n_nb) if n_nb else (capacity, n_agents), np.float32)
        self.next = np.zeros_like(self.obs)
        self.act = np.zeros((capacity, n_agents), np.int64)
        self.rew = np.zeros((capacity, n_agents), np.float32)
        self.cap, self.n, self.i, self.rng = capacity, 0, 0, rng

    def __len__(self) -> int:
        return self.n

    def add(self, obs: np.ndarray, act: np.ndarray, rew: np.ndarray, nxt: np.ndarray,
            own: np.ndarray | None = None, nb: np.ndarray | None = None) -> None:
        for e in range(obs.shape[0]):  # E rows (1 in the online runs)
            i = self.i
            self.obs[i], self.act[i], self.rew[i], self.next[i] = obs[e], act[e], rew[e], nxt[e]
            if own is not None and nb is not None:
                self.own[i], self.nb[i] = own[e], nb[e]
            self.i = (self.i + 1) % self.cap
            self.n = min(self.n + 1, self.cap)

    def sample(self, batch: int) -> tuple[Tensor, ...]:
        # (obs, act, rew, next, own, nb) of ``batch`` random slots
        j = self.rng.integers(0, self.n, batch)
        return tuple(torch.from_numpy(a[j]) for a in (self.obs, self.act, self.rew, self.next, self.own,
                                                      self.nb))


class IndependentDQN:
    """N independent DQNs (one ``BatchedMLP`` row per BS, a target copy, Huber TD loss, Adam, soft target
    update) over a replay of (E, N) transitions; epsilon-greedy per agent."""

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int, gamma: float, cfg: DQNConfig,
                 n_slots: int, seed: int, prior: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        torch.manual_seed(seed)
        self.n_actions, self.cfg, self.n_slots, self.gamma = n_actions, cfg, n_slots, gamma
        self.net = BatchedMLP(n_agents, obs_dim, n_actions, cfg.hidden)
        self.prior = prior  # Q = prior(obs) + net(obs): a residual on a local model (None: plain DQN)
        if prior is not None:
            with torch.no_grad():  # start from the prior's greedy policy
                self.net.weights[-1].zero_()
                self.net.biases[-1].zero_()
        self.target = copy.deepcopy(self.net).requires_grad_(False)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        self.rng = np.random.default_rng(seed + 7)
        self.buffer = Replay(cfg.buffer, n_agents, obs_dim, np.random.default_rng(seed + 11))
        self.steps = 0

    def epsilon(self, t: int) -> float:
        frac = min(1.0, t / max(1.0, self.cfg.explore_frac * self.n_slots))
        return self.cfg.eps_start + frac * (self.cfg.eps_end - self.cfg.eps_start)

    def q_values(self, net: nn.Module, obs: np.ndarray | Tensor) -> Tensor:
        x = torch.as_tensor(obs, dtype=torch.float32)
        q = net(x)
        if self.prior is not None:  # a one-slot QoE, scaled to the discounted return Q estimates
            q = q + torch.from_numpy(self.prior(x.numpy()).astype(np.float32)) / (1.0 - self.gamma)
        return q

    def greedy(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            q = self.q_values(self.net, obs)
        return q.argmax(dim=-1).numpy()

    def act(self, obs: np.ndarray, eps: float) -> np.ndarray:
        a = self.greedy(obs)
        explore = self.rng.random(a.shape) < eps
        return np.where(explore, self.rng.integers(0, self.n_actions, a.shape), a)

    def store(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray) -> None:
        self.buffer.add(obs, action, reward, next_obs)

    def learn(self) -> float | None:
        """One gradient step on a sampled batch (None before ``learn_start`` transitions)."""
        if len(self.buffer) < self.cfg.learn_start:
            return None
        obs, act, rew, nxt, _, _ = self.buffer.sample(self.cfg.batch_size)
        q = self.q_values(self.net, obs).gather(-1, act[..., None])[..., 0]      # (b, N)
        with torch.no_grad():
            target = rew if self.gamma == 0 else \
                rew + self.gamma * self.q_values(self.target, nxt).max(dim=-1).values
        loss = nn.functional.smooth_l1_loss(q, target)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            for p, tp in zip(self.net.parameters(), self.target.parameters(), strict=True):
                tp.lerp_(p, self.cfg.tau)
        self.steps += 1
        return float(loss.detach())


class HindsightDQN(IndependentDQN):
    """Per-BS DQNs (gamma = 0) whose Q splits the local reward r = (1 - k) own QoE + k neighbours' QoE:

        Q(s, a) = (1 - k) (own(s, a) + d_own(s, a)) + k (nb(s) + d_nb(s, a)) + tie(a)

    own(s, a): the own QoE the table predicts for a from the last slot's measurements (the prior); nb(s):
    the neighbours' QoE they reported last slot; d_own, d_nb: the 2A outputs of one MLP per BS. Why: the
    own QoE EVERY action would have had in a slot is known locally afterwards (the BS's measured per-beam
    gains and interference of the slot do not depend on its own choice), so d_own learns from all A
    targets of every sample (hindsight); only the effect on the neighbours, d_nb, needs the taken action.
    The first design learnt one residual from the taken action alone: the tried (greedy) actions took the
    prior's mean optimism (-0.02 ... -0.09) while untried ones kept a residual of 0, and the agents drifted
    to untried, worse beams and powers (experiments/network/README.md)."""

    def __init__(self, n_agents: int, obs_dim: int, n_actions: int, cfg: DQNConfig, n_slots: int, seed: int,
                 own: Callable[[np.ndarray], np.ndarray], nb: Callable[[np.ndarray], np.ndarray] | None,
                 k: float, tie: np.ndarray | None = None, nb_choice: np.ndarray | None = None) -> None:
        super().__init__(n_agents, obs_dim, n_actions, 0.0, cfg, n_slots, seed, prior=None)
        self.own, self.nb, self.k = own, nb, (k if nb is not None else 0.0)
        # the neighbour term's option: None = learnt from the taken action's reported neighbour QoE;
        # (A,) = counterfactual targets, ``store`` gets one neighbour QoE per own choice (computed from the
        # exchanged measurements) and action a learns from column nb_choice[a] (e.g. the (beam, power) of a
        # joint action: the neighbours do not depend on the own compression)
        self.nb_choice = None if nb_choice is None else torch.from_numpy(np.asarray(nb_choice, np.int64))
        self.tie = torch.from_numpy(np.zeros(n_actions) if tie is None else tie).float()
        torch.manual_seed(seed)
        self.net = BatchedMLP(n_agents, obs_dim, 2 * n_actions, cfg.hidden)
        with torch.no_grad():  # start from the prior's greedy policy
            self.net.weights[-1].zero_()
            self.net.biases[-1].zero_()
        self.target = copy.deepcopy(self.net).requires_grad_(False)  # unused (gamma = 0); kept for the API
        self.opt = torch.optim.Adam(self.net.parameters(), lr=cfg.lr)
        n_nb = 0 if nb_choice is None else int(np.max(nb_choice)) + 1
        self.buffer = Replay(cfg.buffer, n_agents, obs_dim, np.random.default_rng(seed + 11), n_actions, n_nb)

    def _parts(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        """(own prediction + d_own, neighbours' reported QoE + d_nb), each (b, N, A)."""
        x = obs.numpy()
        out = self.net(obs)
        A = self.n_actions
        own = torch.from_numpy(self.own(x).astype(np.float32)) + out[..., :A]
        if self.nb is None:
            return own, out[..., A:]
        return own, torch.from_numpy(self.nb(x).astype(np.float32))[..., None] + out[..., A:]

    def q_values(self, net: nn.Module, obs: np.ndarray | Tensor) -> Tensor:
        own, nb = self._parts(torch.as_tensor(obs, dtype=torch.float32))
        return (1.0 - self.k) * own + self.k * nb + self.tie

    def store(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray,
              own: np.ndarray | None = None, nb: np.ndarray | None = None) -> None:
        """``own`` (E, N, A): the own QoE every action had in the slot; ``nb`` (E, N): the neighbours' QoE,
        or with counterfactual neighbour targets (E, N, n_nb): their QoE under each own choice."""
        if own is None or nb is None:
            raise ValueError("HindsightDQN.store needs the hindsight targets own (E, N, A) and nb (E, N)")
        if nb.shape[2:] != self.buffer.nb.shape[2:]:
            raise ValueError(f"neighbour targets of shape {nb.shape[2:]} per BS, this DQN stores "
                             f"{self.buffer.nb.shape[2:]}")
        self.buffer.add(obs, action, reward, next_obs, own, nb)

    def learn(self) -> float | None:
        if len(self.buffer) < self.cfg.learn_start:
            return None
        obs, act, _, _, own_t, nb_t = self.buffer.sample(self.cfg.batch_size)
        own, nb = self._parts(obs)
        loss = nn.functional.smooth_l1_loss(own, own_t)                            # every action
        if self.k > 0 and self.nb_choice is not None:                              # every action
            loss = loss + nn.functional.smooth_l1_loss(nb, nb_t[..., self.nb_choice])
        elif self.k > 0:                                                           # the taken action
            loss = loss + nn.functional.smooth_l1_loss(nb.gather(-1, act[..., None])[..., 0], nb_t)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.steps += 1
        return float(loss.detach())


def beam_order(core: NetworkCore, obs: np.ndarray) -> np.ndarray:
    """(E, N, B) each BS's codebook indices sorted by its measured own gain, best first (local)."""
    return np.argsort(-obs[..., core.obs_slices()["own_db"]], axis=-1, kind="stable")


def agent_view(core: NetworkCore, obs: np.ndarray) -> np.ndarray:
    """The learners' view of the local observation (E, N, obs_dim - B): own gains sorted best beam first
    (so an action "rank r" means the same thing in every cell), without the absolute last-beam one-hot."""
    s = core.obs_slices()
    own = -np.sort(-obs[..., s["own_db"]], axis=-1)
    return np.concatenate([own, obs[..., s["interf_db"].start:s["beam"].start],
                           obs[..., s["beam"].stop:]], axis=-1).astype(np.float32)


def level_qoe(core: NetworkCore, obs: np.ndarray, beam: np.ndarray, power: np.ndarray) -> np.ndarray:
    """(E, N, C) the own QoE each compression level would give at the SINR predicted locally under
    (beam, power): the codec's measured table and the link's own requirements, nothing global."""
    return level_qoe_at(core, predicted_sinr_db(core, obs, beam, power))


def _view_sinr_db(core: NetworkCore, view: np.ndarray) -> np.ndarray:
    """(..., B, L, N) SINR predicted for every (beam rank, power) from agent views (..., N, obs_dim - B)."""
    B = core.cfg.n_beams
    own = view[..., :B] * 20.0 + 60.0                                       # sorted, at max power
    interf = view[..., B] * 20.0 + 40.0
    p_off = np.asarray(core.cfg.power_dbm) - core.cfg.power_dbm[-1]
    sinr = own[..., :, None] + p_off - interf[..., None, None]              # (..., N, B, L)
    return np.moveaxis(sinr, -3, -1)


_GRID = (-40.0, 80.0, 0.05)  # SINR grid (dB) of the per-link QoE lookup the priors read


def _qoe_levels(core: NetworkCore, sinr_db: np.ndarray) -> np.ndarray:
    """(C, ...) own QoE of every level at ``sinr_db`` (..., N), from a per-episode lookup on a 0.05 dB grid
    (the link's requirements are fixed for the episode; the exact ``core.qoe`` is far slower at 400
    actions x batch)."""
    key = (id(core.w), core.E)
    if getattr(core, "_qoe_lut_key", None) != key:
        grid = np.arange(*_GRID)
        sinr = np.broadcast_to(grid[:, None, None], (len(grid), core.E, core.N))
        model = core.table.monotone()
        core._qoe_lut = np.stack([core.qoe(np.full(sinr.shape, c), sinr, model)[2]
                                  for c in range(core.C)])[:, :, 0]
        core._qoe_lut_key = key                                          # (C, grid, N), first network
    i = np.clip(np.rint((sinr_db - _GRID[0]) / _GRID[2]).astype(np.int64), 0, core._qoe_lut.shape[1] - 1)
    n = np.broadcast_to(np.arange(core.N), sinr_db.shape)
    return core._qoe_lut[:, i, n]


def prior_high(core: NetworkCore, view: np.ndarray) -> np.ndarray:
    """(..., N, B*L) the own QoE each (rank, power) would give with its best compression, predicted locally:
    the model-based prior the high-level Q-network learns a residual on (neighbours' effects, errors)."""
    return _own_high(core, view) + _tie_break(core, 1)


def prior_joint(core: NetworkCore, view: np.ndarray) -> np.ndarray:
    """(..., N, B*L*C) the own QoE of every joint (rank, power, level), predicted locally (same model)."""
    return _own_joint(core, view) + _tie_break(core, core.C)


def _own_high(core: NetworkCore, view: np.ndarray, beam_only: bool = False) -> np.ndarray:
    """(..., N, B*L) predicted own QoE of every (rank, power) with its best compression; ``beam_only``:
    (..., N, B) of every rank with its best (power, compression) (the reference split's high level)."""
    q = _qoe_levels(core, _view_sinr_db(core, view)).max(axis=0)             # (..., B, L, N)
    if beam_only:
        q = q.max(axis=-2)                                                   # (..., B, N)
        return np.moveaxis(q, -1, -2)
    return np.moveaxis(q, -1, -3).reshape(*view.shape[:-1], -1)


def _own_joint(core: NetworkCore, view: np.ndarray) -> np.ndarray:
    """(..., N, B*L*C) predicted own QoE of every joint (rank, power, level)."""
    q = _qoe_levels(core, _view_sinr_db(core, view))                         # (C, ..., B, L, N)
    return np.moveaxis(np.moveaxis(q, 0, -1), -2, -4).reshape(*view.shape[:-1], -1)


def nb_reported(core: NetworkCore, view: np.ndarray) -> np.ndarray:
    """(..., N) the mean QoE the BS's neighbours reported, from an agent view (which has no beam one-hot)."""
    s, B = core.obs_slices(), core.cfg.n_beams
    return view[..., s["nb_qoe"].start - B:s["nb_qoe"].stop - B].mean(axis=-1)


def hindsight_sinr_db(core: NetworkCore, obs: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """(E, B, L, N) the SINR every (rank, power) HAD in the slot between ``obs`` and ``next_obs``: beams
    ranked as at the decision (``obs``), their gains and the interference as measured in the slot
    (``next_obs``; the BS's own choice changes neither)."""
    s = core.obs_slices()
    g = np.take_along_axis(next_obs[..., s["own_db"]], beam_order(core, obs), axis=-1) * 20.0 + 60.0
    interf = next_obs[..., s["interf_db"]][..., 0] * 20.0 + 40.0
    p_off = np.asarray(core.cfg.power_dbm) - core.cfg.power_dbm[-1]
    return np.moveaxis(g[..., :, None] + p_off - interf[..., None, None], -3, -1)


def hindsight_high(core: NetworkCore, obs: np.ndarray, next_obs: np.ndarray, beam_only: bool = False
                   ) -> np.ndarray:
    """(E, N, B*L) the own QoE every (rank, power) had in the slot, with the compression the greedy low
    level picks at its predicted SINR (not the best in hindsight: it is chosen before the slot).
    ``beam_only``: (E, N, B) every rank with the (power, compression) the greedy low level picks."""
    real = _qoe_levels(core, hindsight_sinr_db(core, obs, next_obs))         # (C, E, B, L, N)
    if beam_only:
        real = _levels_by_power(real)
    q = np.take_along_axis(real, greedy_low_pick(core, obs, beam_only)[None], axis=0)[0]  # (E, B, [L,] N)
    return np.moveaxis(q, -1, 1).reshape(q.shape[0], core.N, -1)


def _levels_by_power(q: np.ndarray) -> np.ndarray:
    """(C, E, B, L, N) -> (C*L, E, B, N): one axis of every (level c, power l) per rank, index c * L + l."""
    return np.moveaxis(q, 3, 1).reshape(-1, *q.shape[1:3], q.shape[-1])


def greedy_low_pick(core: NetworkCore, obs: np.ndarray, beam_only: bool = False) -> np.ndarray:
    """What the greedy low level picks at its predicted SINR (before the slot): (E, B, L, N) the level per
    (beam rank, power); ``beam_only``: (E, B, N) the index c * L + l of its (level, power) per rank (ties
    to the higher power)."""
    pred = _qoe_levels(core, _view_sinr_db(core, agent_view(core, obs)))     # (C, E, B, L, N)
    if beam_only:
        L = pred.shape[3]
        pred = _levels_by_power(pred + (1e-3 * np.arange(L) / L)[:, None])
    return pred.argmax(axis=0)


def hindsight_joint(core: NetworkCore, obs: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
    """(E, N, B*L*C) the own QoE every joint (rank, power, level) had in the slot."""
    q = _qoe_levels(core, hindsight_sinr_db(core, obs, next_obs))            # (C, E, B, L, N)
    return np.moveaxis(np.moveaxis(q, 0, -1), -2, -4).reshape(q.shape[1], core.N, -1)


def _tie_break(core: NetworkCore, n_levels: int, n_beams: int | None = None, n_powers: int | None = None
               ) -> np.ndarray:
    """(B*L*n_levels,) 1e-3-scale preference for the better beam and the higher power where the predicted
    QoE ties (saturated links): the margin against the next slot's fading, as the greedy rule has.
    ``n_beams`` = 1 (a power x level action) or ``n_powers`` = 1 (a beam-rank action) drop that axis."""
    B = core.cfg.n_beams if n_beams is None else n_beams
    L = len(core.cfg.power_dbm) if n_powers is None else n_powers
    t = 1e-3 * (np.arange(L)[None, :] / L - np.arange(B)[:, None] / B)
    return np.repeat(t.ravel(), n_levels)


def power_level_qoe(core: NetworkCore, sinr_top_db: np.ndarray) -> np.ndarray:
    """(E, N, L*C) the own QoE of every (power, compression) of a link whose SINR at max power is
    ``sinr_top_db`` (E, N): the interference it hears does not depend on its own power."""
    p_off = np.asarray(core.cfg.power_dbm) - core.cfg.power_dbm[-1]
    q = level_qoe_at(core, sinr_top_db[None] + p_off[:, None, None])        # (L, E, N, C)
    return np.moveaxis(q, 0, 2).reshape(*sinr_top_db.shape, -1)


def counterfactual_qoe(core: NetworkCore, rep: dict[str, np.ndarray]) -> np.ndarray:
    """(E, N_j, B, L, N_k) the QoE terminal k would have had in the last slot had BS j used codebook beam b
    at power level l, every other BS's action and every link's compression held, from the exchanged
    reports alone (``NetworkCore.exchanged_reports``): k's interference changes by BS j's new minus its
    taken received power there (k = j: its signal does), the measured table gives the accuracy at the new
    SINR and k's requirements the QoE (the env's expected QoE: AWGN table, no link table)."""
    G, p = rep["beam_gain"], core.power_w                                        # (E, j, k, B), (L,)
    taken = np.take_along_axis(G, rep["beam"][:, :, None, None].repeat(core.N, 2), axis=3)[..., 0] \
        * p[rep["power"]][:, :, None]                                            # (E, j, k)
    cand = np.moveaxis(G[..., None] * p, 2, -1)                                  # (E, j, B, L, k)
    taken = taken[:, :, None, None, :]
    own = np.eye(core.N, dtype=bool)[None, :, None, None, :]                     # k == j
    signal = np.where(own, cand, rep["signal_w"][:, None, None, None, :])
    interf = rep["interference_w"][:, None, None, None, :] + np.where(own, 0.0, cand - taken)
    sinr_db = 10.0 * np.log10(signal / interf)
    level = np.broadcast_to(rep["level"][:, None, None, None, :], sinr_db.shape)
    req = [rep[k][:, None, None, None, :] for k in ("w", "acc_req", "rate_req")]
    return core.qoe_for(level, core.table.accuracy(level, sinr_db), *req)[1]


def counterfactual_neighbour_term(core: NetworkCore, rep: dict[str, np.ndarray]) -> np.ndarray:
    """(E, N, B, L) the neighbour term of BS j's local reward (the mean QoE of the N_NEIGHBOURS terminals it
    interferes with most, ``NetworkCore.neighbours``) had it used codebook beam b at power level l in the
    last slot, the others held: which terminals those are also follows from (b, l)."""
    q = counterfactual_qoe(core, rep)                                            # (E, j, B, L, k)
    nb = most_interfered(np.moveaxis(rep["beam_gain"][..., None] * core.power_w, 2, -1))  # (E, j, B, L, M)
    return np.take_along_axis(q, nb, axis=-1).mean(axis=-1)


def by_rank(core: NetworkCore, obs: np.ndarray, per_beam: np.ndarray) -> np.ndarray:
    """``per_beam`` (E, N, B, ...) indexed by codebook beam -> the same by each BS's beam rank at ``obs``."""
    order = beam_order(core, obs).reshape(*per_beam.shape[:3], *(1,) * (per_beam.ndim - 3))
    return np.take_along_axis(per_beam, order, axis=2)


class HierarchicalDRL(Scheme):
    """Distributed multi-timescale hierarchical DRL (DHDRL-style), one high- and one low-level DQN per BS.

    High level, every T slots: the agent view -> (beam rank, power) index (beam rank r = the r-th best beam
    by the BS's own measured gains; the chosen codebook beam then holds for T slots). It learns from every
    slot of its decision (intra-option learning: the choice holds for the slot; the reward is the slot's
    local reward, own QoE mixed with the neighbours' reported QoE). Low level, every slot, conditioned on
    the high-level action: [beam rank and power one-hot, predicted SINR under them, measured interference
    and SINR, the QoE each compression level would give at that SINR, last compression, own QoE,
    requirements] -> compression index; reward = own QoE (compression changes nothing else).
    ``HierarchicalRefDRL`` is the reference design's split of the same structure (beam high, power x
    compression low)."""

    name = "hierarchical"
    split = "beam_power"                       # what the high level picks
    large_timescale: tuple[str, ...] = ("beam", "power")
    # the neighbour term's targets: False = the taken action's (the neighbours' reported QoE), True =
    # counterfactual, from the cells' exchanged measurements (``counterfactual_neighbour_term``)
    counterfactual_nb = False

    def __init__(self, core: NetworkCore, seed: int, dqn: DQNConfig = DQNConfig(), period: int | None = None
                 ) -> None:
        super().__init__(core, seed)
        c = core.cfg
        self.T = period or c.period
        self.B, self.L, self.C = c.n_beams, len(c.power_dbm), core.C
        beam_only = self.split == "beam"
        if beam_only:  # low view: rank, SINR at max power, interference, SINR, QoE of every (power, level),
            # last power and level, own QoE, the neighbours' reported QoE (power reaches them), requirements
            self.low_dim = self.B + 3 + self.L * self.C + self.L + self.C + 1 + N_NEIGHBOURS + 3
            n_low, n_high = self.L * self.C, self.B
        else:
            self.low_dim = self.B + self.L + 3 + 2 * self.C + 1 + 3
            n_low, n_high = self.C, self.B * self.L
        q0 = self.B + (3 if beam_only else self.L + 3)  # where the low view holds the QoE of its actions
        nb0 = q0 + n_low + (self.L if beam_only else 0) + self.C + 1
        self.hindsight = dqn.hindsight
        cf = self.counterfactual_nb
        if dqn.hindsight:
            # counterfactual neighbour targets: the high level's per action (a rank, or a rank x power); the
            # reference split's low level's per power (its actions are power x level)
            self.high: IndependentDQN = HindsightDQN(
                core.N, core.obs_dim - self.B, n_high, dqn, c.n_slots, seed,
                own=lambda v: _own_high(core, v, beam_only), nb=lambda v: nb_reported(core, v),
                k=c.neighbour_weight, tie=_tie_break(core, 1, n_powers=1 if beam_only else None),
                nb_choice=np.arange(n_high) if cf else None)
            self.low: IndependentDQN = HindsightDQN(
                core.N, self.low_dim, n_low, dqn, c.n_slots, seed + 1, own=lambda v: v[..., q0:q0 + n_low],
                nb=(lambda v: v[..., nb0:nb0 + N_NEIGHBOURS].mean(axis=-1)) if beam_only else None,
                k=c.neighbour_weight if beam_only else 0.0,
                tie=_tie_break(core, self.C, n_beams=1) if beam_only else None,
                nb_choice=np.arange(n_low) // self.C if cf and beam_only else None)
        elif beam_only:
            raise ValueError("the reference split (beam high, power x compression low) needs hindsight=True")
        elif cf:
            raise ValueError(CF_NEEDS_HINDSIGHT)
        else:
            self.high = IndependentDQN(core.N, core.obs_dim - self.B, n_high, dqn.gamma_high, dqn,
                                       c.n_slots, seed, prior=lambda v: prior_high(core, v))
            self.low = IndependentDQN(core.N, self.low_dim, n_low, dqn.gamma_low, dqn, c.n_slots, seed + 1,
                                      prior=lambda v: v[..., q0:q0 + n_low])
        self.t = 0
        self.beam = np.zeros((core.E, core.N), dtype=np.int64)
        self.power = np.full((core.E, core.N), self.L - 1, dtype=np.int64)

    def rank_of(self, obs: np.ndarray, beam: np.ndarray) -> np.ndarray:
        """(E, N) the rank of codebook ``beam`` in each BS's current ordering."""
        return (beam_order(self.core, obs) == beam[..., None]).argmax(axis=-1)

    def low_obs(self, obs: np.ndarray, beam: np.ndarray, power: np.ndarray) -> np.ndarray:
        """The low level's view (E, N, low_dim), conditioned on the high-level action (beam[, power])."""
        s, core = self.core.obs_slices(), self.core
        rank = np.eye(self.B)[self.rank_of(obs, beam)]
        measured = [obs[..., s["interf_db"]], obs[..., s["sinr"]]]
        if self.split == "beam":
            top = predicted_sinr_db(core, obs, beam, np.full(beam.shape, self.L - 1))
            parts = [rank, top[..., None] / 20.0, *measured, power_level_qoe(core, top), obs[..., s["power"]],
                     obs[..., s["level"]], obs[..., s["qoe"]], obs[..., s["nb_qoe"]], obs[..., s["req"]]]
        else:
            pred = predicted_sinr_db(core, obs, beam, power) / 20.0
            levels = level_qoe(core, obs, beam, power)
            parts = [rank, np.eye(self.L)[power], pred[..., None], *measured, levels, obs[..., s["level"]],
                     obs[..., s["qoe"]], obs[..., s["req"]]]
        return np.concatenate(parts, axis=-1).astype(np.float32)

    def act(self, obs: np.ndarray) -> Actions:
        if self.t % self.T == 0:
            eps = self.high.epsilon(self.t) if self.explore else 0.0
            hi = self.high.act(agent_view(self.core, obs), eps)
            rank = hi if self.split == "beam" else hi // self.L
            self.beam = np.take_along_axis(beam_order(self.core, obs), rank[..., None], -1)[..., 0]
            if self.split != "beam":
                self.power = hi % self.L
        self._low_obs = self.low_obs(obs, self.beam, self.power)
        eps = self.low.epsilon(self.t) if self.explore else 0.0
        a = self.low.act(self._low_obs, eps)
        if self.split == "beam":
            self.power = a // self.C
            return self.beam.copy(), self.power.copy(), a % self.C
        return self.beam.copy(), self.power.copy(), a

    def update(self, obs: np.ndarray, actions: Actions, metrics: dict[str, np.ndarray],
               next_obs: np.ndarray) -> None:
        self.t += 1
        if not self.learning:
            return
        beam, power, level = actions
        beam_only = self.split == "beam"
        rank = self.rank_of(obs, beam)
        hi, lo = (rank, power * self.C + level) if beam_only else (rank * self.L + power, level)
        view, next_view = agent_view(self.core, obs), agent_view(self.core, next_obs)
        low_next = self.low_obs(next_obs, beam, power)
        if self.hindsight:
            s = self.core.obs_slices()
            nb = next_obs[..., s["nb_qoe"]].mean(axis=-1)                  # the neighbours' QoE in the slot
            nb_high = nb_low = nb
            if self.counterfactual_nb:
                cf = counterfactual_neighbour_term(self.core, self.core.exchanged_reports())  # (E, N, B, L)
                nb_high = by_rank(self.core, obs, cf)                            # (E, N, rank, L)
                if beam_only:  # each rank at the power the greedy low level picks; the low level: the held
                    # beam at every power
                    pick = np.moveaxis(greedy_low_pick(self.core, obs, True), -1, 1) % self.L
                    nb_high = np.take_along_axis(nb_high, pick[..., None], -1)[..., 0]
                    nb_low = np.take_along_axis(cf, beam[..., None, None], 2)[:, :, 0]
                nb_high = nb_high.reshape(*nb.shape, -1)
            self.high.store(view, hi, metrics["reward"], next_view,
                            hindsight_high(self.core, obs, next_obs, beam_only), nb_high)
            # every low action's own QoE at the SINR the link had in the slot (held beam [and power])
            sinr = next_obs[..., s["sinr"]][..., 0] * 20.0
            if beam_only:
                top = sinr + self.core.cfg.power_dbm[-1] - np.asarray(self.core.cfg.power_dbm)[power]
                own = power_level_qoe(self.core, top)
                self.low.store(self._low_obs, lo, metrics["reward"], low_next, own, nb_low)
            else:
                self.low.store(self._low_obs, lo, metrics["qoe"], low_next, level_qoe_at(self.core, sinr), nb)
        else:
            self.high.store(view, hi, metrics["reward"], next_view)
            self.low.store(self._low_obs, lo, metrics["qoe"], low_next)
        self.high.learn()   # large timescale first (interference), then the small timescale on top of it
        self.low.learn()

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"high": self.high.net, "low": self.low.net}


class HierarchicalRefDRL(HierarchicalDRL):
    """The reference design's action split (DHDRL, shared/DESIGN.md): the high level picks only the beam
    rank every T slots; the low level picks power x compression (L*C actions) every slot, conditioned on
    the beam, with the neighbour term in its Q (power reaches the neighbours) and hindsight targets for
    every (power, level) (the interference the link hears does not depend on its own power)."""

    name = "hierarchical_ref"
    split = "beam"
    large_timescale = ("beam",)


class HierarchicalCfDRL(HierarchicalDRL):
    """``hierarchical`` with counterfactual neighbour targets (``counterfactual_neighbour_term``)."""

    name = "hierarchical_cf"
    counterfactual_nb = True


class HierarchicalRefCfDRL(HierarchicalRefDRL):
    """``hierarchical_ref`` with counterfactual neighbour targets at both levels (beam rank at the greedy
    low level's power; power at the held beam)."""

    name = "hierarchical_ref_cf"
    counterfactual_nb = True


class SingleLayerDRL(Scheme):
    """One DQN per BS choosing the joint (beam rank, power, compression) every slot. Its input: the agent
    view plus the QoE each level would give under the best beam at max power (it cannot condition on an
    action it has not chosen yet: that is what the hierarchy adds)."""

    name = "single_layer"
    model_prior = True   # False: the plain DQN of the paper's single-layer baseline (``PlainSingleLayerDRL``)
    counterfactual_nb = False   # as ``HierarchicalDRL.counterfactual_nb``

    def __init__(self, core: NetworkCore, seed: int, dqn: DQNConfig = DQNConfig()) -> None:
        super().__init__(core, seed)
        c = core.cfg
        self.B, self.L, self.C = c.n_beams, len(c.power_dbm), core.C
        n_view = core.obs_dim - self.B
        self.hindsight = dqn.hindsight and self.model_prior
        if not self.model_prior:
            self.dqn: IndependentDQN = IndependentDQN(core.N, n_view + self.C, self.B * self.L * self.C,
                                                      dqn.gamma_high, dqn, c.n_slots, seed, prior=None)
        elif self.hindsight:
            self.dqn: IndependentDQN = HindsightDQN(
                core.N, n_view + self.C, self.B * self.L * self.C, dqn, c.n_slots, seed,
                own=lambda v: _own_joint(core, v[..., :n_view]),
                nb=lambda v: nb_reported(core, v[..., :n_view]),
                k=c.neighbour_weight, tie=_tie_break(core, self.C),
                nb_choice=np.arange(self.B * self.L * self.C) // self.C if self.counterfactual_nb else None)
        elif self.counterfactual_nb:
            raise ValueError(CF_NEEDS_HINDSIGHT)
        else:
            self.dqn = IndependentDQN(core.N, n_view + self.C, self.B * self.L * self.C, dqn.gamma_high, dqn,
                                      c.n_slots, seed, prior=lambda v: prior_joint(core, v[..., :n_view]))
        self.t = 0

    def view(self, obs: np.ndarray) -> np.ndarray:
        best = beam_order(self.core, obs)[..., 0]
        q = level_qoe(self.core, obs, best, np.full(best.shape, self.L - 1))
        return np.concatenate([agent_view(self.core, obs), q], axis=-1).astype(np.float32)

    def act(self, obs: np.ndarray) -> Actions:
        a = self.dqn.act(self.view(obs), self.dqn.epsilon(self.t) if self.explore else 0.0)
        rank = a // (self.L * self.C)
        beam = np.take_along_axis(beam_order(self.core, obs), rank[..., None], -1)[..., 0]
        return beam, (a // self.C) % self.L, a % self.C

    def update(self, obs: np.ndarray, actions: Actions, metrics: dict[str, np.ndarray],
               next_obs: np.ndarray) -> None:
        self.t += 1
        if not self.learning:
            return
        beam, power, level = actions
        rank = (beam_order(self.core, obs) == beam[..., None]).argmax(axis=-1)
        a = (rank * self.L + power) * self.C + level
        if self.hindsight:
            nb = next_obs[..., self.core.obs_slices()["nb_qoe"]].mean(axis=-1)
            if self.counterfactual_nb:   # per (rank, power): the neighbours do not see the compression
                cf = counterfactual_neighbour_term(self.core, self.core.exchanged_reports())
                nb = by_rank(self.core, obs, cf).reshape(*nb.shape, -1)
            self.dqn.store(self.view(obs), a, metrics["reward"], self.view(next_obs),
                           hindsight_joint(self.core, obs, next_obs), nb)
        else:
            self.dqn.store(self.view(obs), a, metrics["reward"], self.view(next_obs))
        self.dqn.learn()

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"joint": self.dqn.net}


class PlainSingleLayerDRL(SingleLayerDRL):
    """The paper's single-layer baseline as the paper has it: a plain DQN per BS on the joint (beam rank,
    power, compression) action every slot, learnt from the taken action's reward alone (no model-based
    prior, no hindsight targets); same input view, network, replay, exploration and gamma as the others."""

    name = "single_layer_plain"
    model_prior = False


class SingleLayerCfDRL(SingleLayerDRL):
    """``single_layer`` (hindsight) with counterfactual neighbour targets, for a fair comparison."""

    name = "single_layer_cf"
    counterfactual_nb = True


class OracleScheme(Scheme):
    """CENTRALISED GENIE, an upper reference, not a scheme any network could run: it knows every link's
    TRUE channel of the slot it acts in (``NetworkCore.next_beam_gains``) and the requirements, and does
    coordinate descent (best response, one BS at a time) over all BSs' (beam, power) on the network QoE,
    each link with its best compression at the resulting SINR (given the SINRs, the levels are separable),
    until no BS changes (at most ``sweeps`` sweeps). It starts from every BS's best own beam at max power
    and from its last slot's solution and keeps the better: a local optimum, so a lower bound on the true
    optimum; ``NetworkCore.ceiling_qoe`` is the upper bound."""

    name = "oracle"
    centralised = True
    genie = True   # the slot's true channel; False (``StaleOracleScheme``): the last slot's, as FP has it
    _GRID = (-60.0, 100.0, 0.01)   # SINR grid (dB) of the per-link best-level QoE lookup of the search

    def __init__(self, core: NetworkCore, seed: int, sweeps: int = 10) -> None:
        super().__init__(core, seed)
        self.sweeps = sweeps
        B, L = core.cfg.n_beams, len(core.cfg.power_dbm)
        self.opt_beam, self.opt_power = np.repeat(np.arange(B), L), np.tile(np.arange(L), B)   # (O,)
        self.prev: tuple[np.ndarray, np.ndarray] | None = None
        self._lut_key: tuple[int, int] | None = None

    def _best_qoe(self, sinr_db: np.ndarray) -> np.ndarray:
        """(E, O, N) best-level QoE of each link at ``sinr_db`` (E, O, N), exact table, 0.01 dB lookup."""
        core = self.core
        if self._lut_key != (id(core.w), core.E):   # requirements are drawn per episode
            grid = np.arange(*self._GRID)
            sinr = np.broadcast_to(grid[:, None, None], (len(grid), core.E, core.N))
            self._lut = np.max([core.qoe(np.full(sinr.shape, c), sinr)[2] for c in range(core.C)], axis=0)
            self._lut_key, self.prev = (id(core.w), core.E), None                # (grid, E, N)
        i = np.rint((sinr_db - self._GRID[0]) / self._GRID[2]).astype(np.int64)
        i = np.clip(i, 0, len(self._lut) - 1)
        return self._lut[i, np.arange(core.E)[:, None, None], np.arange(core.N)]

    def _descend(self, G: np.ndarray, beam: np.ndarray, power: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinate descent from (beam, power) (E, N) on the network QoE -> (beam, power, QoE (E,))."""
        core, N = self.core, self.core.N
        idx, e = np.arange(N), np.arange(core.E)
        cand_g = G[..., self.opt_beam] * core.power_w[self.opt_power]           # (E, j, k, O)
        value = np.zeros(core.E)
        for _ in range(self.sweeps):
            changed = False
            for j in range(N):
                rx = core.power_w[power][:, :, None] * np.take_along_axis(
                    G, beam[:, :, None, None].repeat(N, 2), axis=3)[..., 0]     # (E, j, k)
                sig = rx[:, idx, idx]                                            # (E, k)
                others = rx.sum(axis=1) - rx[:, j, :]                            # all BSs but j, at k
                cand = np.moveaxis(cand_g[:, j], -1, 1)                          # (E, O, k): BS j's options
                own = np.arange(N) == j
                s = np.where(own, cand, sig[:, None, :])
                interf = others[:, None, :] - np.where(own, 0.0, sig[:, None, :]) \
                    + np.where(own, 0.0, cand) + core.noise_w
                v = self._best_qoe(10.0 * np.log10(s / interf)).mean(axis=-1)  # (E, O)
                best = v.argmax(axis=1)
                cur = beam[:, j] * len(core.power_w) + power[:, j]
                better = v[e, best] > v[e, cur] + 1e-12
                beam[better, j], power[better, j] = self.opt_beam[best[better]], self.opt_power[best[better]]
                value = np.where(better, v[e, best], v[e, cur])
                changed = changed or bool(better.any())
            if not changed:
                break
        return beam, power, value

    def act(self, obs: np.ndarray) -> Actions:
        core = self.core
        G = core.next_beam_gains() if self.genie else core.G                    # true / last slot's channel
        idx = np.arange(core.N)
        own_best = G[:, idx, idx, :].argmax(axis=-1)
        starts = [(own_best, np.full(own_best.shape, len(core.power_w) - 1))]
        self._best_qoe(np.zeros((core.E, 1, core.N)))                           # (re)build the lookup
        if self.prev is not None:
            starts.append(self.prev)
        best: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        for b0, p0 in starts:
            b, p, v = self._descend(G, b0.copy(), p0.copy())
            if best is None:
                best = (b, p, v)
            else:
                keep = v > best[2]
                best = (np.where(keep[:, None], b, best[0]), np.where(keep[:, None], p, best[1]),
                        np.maximum(v, best[2]))
        beam, power, _ = best  # type: ignore[misc]
        self.prev = (beam.copy(), power.copy())
        rx = core.power_w[power][:, :, None] * np.take_along_axis(
            G, beam[:, :, None, None].repeat(core.N, 2), axis=3)[..., 0]
        sig = rx[:, idx, idx]
        sinr_db = 10.0 * np.log10(sig / (rx.sum(axis=1) - sig + core.noise_w))
        return beam, power, best_compression(core, sinr_db)


class StaleOracleScheme(OracleScheme):
    """CENTRALISED, no genie: the oracle's coordinate descent on every link's LAST-slot channel (the CSI the
    FP baseline has). Between it and ``oracle`` is what knowing the slot's fading is worth; between it and
    the distributed learners, what full coordination with the same stale channel is worth."""

    name = "oracle_stale"
    genie = False


SCHEMES: dict[str, type[Scheme]] = {s.name: s for s in (
    HierarchicalDRL, SingleLayerDRL, RandomScheme, GreedyScheme, FixedScheme, FractionalProgramming,
    HierarchicalRefDRL, PlainSingleLayerDRL, OracleScheme, StaleOracleScheme, HierarchicalCfDRL,
    HierarchicalRefCfDRL, SingleLayerCfDRL)}


def make_scheme(name: str, core: NetworkCore, seed: int, dqn: DQNConfig = DQNConfig(),
                period: int | None = None) -> Scheme:
    if name not in SCHEMES:
        raise ValueError(f"unknown scheme {name!r}; choose from {sorted(SCHEMES)}")
    cls = SCHEMES[name]
    if issubclass(cls, HierarchicalDRL):
        return cls(core, seed, dqn, period)
    if issubclass(cls, SingleLayerDRL):
        return cls(core, seed, dqn)
    return cls(core, seed)


def run_scheme(scheme: Scheme, seed: int, n_slots: int | None = None, progress: bool = False,
               desc: str = "", measured: Callable[[int, Actions, dict[str, np.ndarray]], None] | None = None
               ) -> dict[str, np.ndarray]:
    """One online run on ``scheme.core`` reset with ``seed`` -> per-slot network means (n_slots,) of
    qoe, accuracy, rate, sinr_db, and the per-link qoe (n_slots, E, N).

    ``measured(t, actions, metrics)`` runs after each slot's step and before the agents observe it: the
    live run (``semcom.network.live``) serves the slot on the flowgraph there and puts what its receivers
    measured into ``core.last``. The schedule (the scheme's slot clock, its large timescale) is this loop's
    alone, for the simulation and the live run alike."""
    from semcom.progress import progress_bar

    core = scheme.core
    n = n_slots or core.cfg.n_slots
    obs = core.reset(seed)
    out = {k: np.zeros(n) for k in ("qoe", "accuracy", "rate", "sinr_db", "power_dbm", "level", "ceiling")}
    links = np.zeros((n, core.E, core.N))
    for t in progress_bar(range(n), progress=progress, desc=desc or scheme.name, leave=False):
        actions = scheme.act(obs)
        m = core.step(*actions)
        if measured is not None:
            measured(t, actions, m)
        nxt = core.observe()
        scheme.update(obs, actions, m, nxt)   # a frozen scheme only advances its slot clock here
        obs = nxt
        for k in ("qoe", "accuracy", "rate", "sinr_db"):
            out[k][t] = m[k].mean()
        out["power_dbm"][t] = np.asarray(core.cfg.power_dbm)[actions[1]].mean()
        out["level"][t] = actions[2].mean()
        out["ceiling"][t] = core.ceiling_qoe().mean()   # the slot's interference-free upper bound
        links[t] = m["qoe"]
    out["links"] = links
    return out


def network_config(**kw: Any) -> NetworkConfig:
    return NetworkConfig(**kw)
