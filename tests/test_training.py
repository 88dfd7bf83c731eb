"""The shared training loop (semcom.training.fit) and checkpoint format (semcom.checkpoint)."""

from __future__ import annotations

import copy
import io
import json
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from semcom import checkpoint as ckpt
from semcom.training import cosine_lr, fit


@dataclass
class Cfg:
    epochs: int = 4
    batch_size: int = 8
    lr: float = 0.3
    lr_min: float = 0.001
    seed: int = 3
    max_seconds: float | None = None


def regression_problem(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(40, 3, generator=g)
    return x, x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.3


def make_run(model: nn.Linear, x: torch.Tensor, y: torch.Tensor):
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    seen: list[torch.Tensor] = []

    def step(idx: torch.Tensor, gen: torch.Generator) -> float:
        seen.append(idx.clone())
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        return float(loss.detach())

    return opt, step, seen


def test_fit_learns_covers_every_item_and_follows_the_schedule() -> None:
    x, y = regression_problem()
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt, step, seen = make_run(model, x, y)
    hist = fit(opt, len(x), Cfg(), step, evaluate=lambda: {"w0": model.weight[0, 0].item()}, progress=False)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    assert hist[-1]["loss"] < 0.25 * hist[0]["loss"]
    # One epoch = every item exactly once (40 items, batches of 8).
    first_epoch = torch.cat(seen[:5])
    assert sorted(first_epoch.tolist()) == list(range(40))
    assert all("w0" in h for h in hist)
    assert hist[-1]["lr"] == pytest.approx(cosine_lr(Cfg(), 19 / 20))


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_gives_the_uninterrupted_run() -> None:
    x, y = regression_problem()
    torch.manual_seed(0)
    straight = nn.Linear(3, 1)
    opt, step, seen_straight = make_run(straight, x, y)
    hist_straight = fit(opt, len(x), Cfg(), step, progress=False)

    torch.manual_seed(0)
    first = nn.Linear(3, 1)
    states: list[dict] = []
    opt, step, seen_a = make_run(first, x, y)
    fit(opt, len(x), Cfg(epochs=4), step, progress=False,
        on_epoch_end=lambda h, s: states.append({**copy.deepcopy(s), "model": snapshot(first)}))
    # "Interrupt" after epoch 2: a new model and optimizer from the saved state.
    saved = states[1]
    resumed = nn.Linear(3, 1)
    resumed.load_state_dict(saved["model"])
    opt, step, seen_b = make_run(resumed, x, y)
    hist = fit(opt, len(x), Cfg(), step, progress=False, resume=saved)
    assert [h["epoch"] for h in hist] == [1, 2, 3, 4]
    torch.testing.assert_close(resumed.weight, straight.weight, rtol=0, atol=0)
    assert [h["loss"] for h in hist] == pytest.approx([h["loss"] for h in hist_straight])
    assert all(torch.equal(a, b) for a, b in zip(seen_b, seen_straight[10:], strict=True))


def test_wall_time_cap_stops_early() -> None:
    x, y = regression_problem()
    model = nn.Linear(3, 1)
    opt, step, seen = make_run(model, x, y)
    hist = fit(opt, len(x), Cfg(epochs=1000, max_seconds=0.0), step, progress=False)
    assert len(hist) == 1 and len(seen) == 1
    with pytest.raises(ValueError, match="0 items"):
        fit(opt, 0, Cfg(), step, progress=False)


def test_checkpoint_round_trip_fp16_and_errors(tmp_path) -> None:
    def net() -> nn.Module:
        return nn.Sequential(nn.Linear(4, 64), nn.ReLU(), nn.Linear(64, 2))

    torch.manual_seed(1)
    model = net()
    pt, js = ckpt.save(tmp_path / "m", "test.kind", model, {"width": 8}, {"note": "x"},
                       train_state={"epoch": 2, "optimizer": {"state": {}, "param_groups": []}})
    doc = ckpt.read_doc(tmp_path / "m", "test.kind", "a test checkpoint")
    assert doc["config"] == {"width": 8} and doc["meta"] == {"note": "x"}
    again = ckpt.load_weights(tmp_path / "m.pt", doc, net())
    x = torch.randn(3, 4)
    torch.testing.assert_close(again(x), model(x), rtol=0, atol=0)
    assert ckpt.load_train_state(tmp_path / "m")["epoch"] == 2
    assert ckpt.load_train_state(tmp_path / "none") is None

    ckpt.save(tmp_path / "h", "test.kind", model, {}, store_dtype=torch.float16)
    assert (tmp_path / "h.pt").stat().st_size < 0.75 * pt.stat().st_size
    half = ckpt.load_weights(tmp_path / "h", ckpt.read_doc(tmp_path / "h", "test.kind", "t"), net())
    assert half[0].weight.dtype == torch.float32
    torch.testing.assert_close(half(x), model(x), rtol=2e-3, atol=2e-3)

    with pytest.raises(ckpt.CheckpointError, match="is not a model"):
        ckpt.read_doc(tmp_path / "m", "other.kind", "a model")
    with pytest.raises(ckpt.CheckpointError, match="invalid model config"):
        ckpt.read_doc(tmp_path / "m", "test.kind", "t", check_config=lambda c: c["depth"])
    with pytest.raises(ckpt.CheckpointError, match="missing="):
        ckpt.load_weights(tmp_path / "m", doc, nn.Linear(4, 2))
    js.write_text(json.dumps({**doc, "format_version": 99}))
    with pytest.raises(ckpt.CheckpointError, match="format_version"):
        ckpt.read_doc(tmp_path / "m", "test.kind", "t")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_only_on_a_terminal_and_when_asked() -> None:
    from semcom.progress import progress_bar

    log_file, terminal = io.StringIO(), _Terminal()
    assert list(progress_bar(range(3), file=log_file)) == [0, 1, 2]  # the items pass through
    assert log_file.getvalue() == ""  # a log file gets no bar
    assert list(progress_bar(range(3), file=terminal, desc="epoch")) == [0, 1, 2]
    assert "epoch" in terminal.getvalue() and "3/3" in terminal.getvalue()
    quiet = _Terminal()
    list(progress_bar(range(3), file=quiet, progress=False))
    assert quiet.getvalue() == ""
