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
