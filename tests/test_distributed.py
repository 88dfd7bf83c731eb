"""Multi-process training (semcom.distributed through semcom.training.fit): two CPU processes (gloo on
127.0.0.1, ``distributed.run_local``) train the receiver stage of a tiny configuration and end where
one process with the same global batch ends.

Tolerance: the two runs differ only in float summation order (two half-batch gradients averaged vs one
batch), so the loss agrees within 1e-5 relative and the weights within 1e-5 after 6 AdamW steps (one
epoch: in later epochs the permutation differs, see ``semcom.training.fit``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from semcom import distributed
from semcom.agents.experiment import AgentsExperiment, make_data
from semcom.agents.small import TaskAgent
from semcom.agents.train import AgentTrainConfig, pretrain_receiver
from semcom.training import fit

# 84 training questions in global batches of 15: 6 steps an epoch, the last one of 9 items, split 5 / 4
# over two processes, so unequal shards are covered.
EXPERIMENT = AgentsExperiment(n_scenes=60, questions_per_scene=2, pretrain_scenes=0, n_val=12, d=32, heads=2,
                              tx_layers=1, rx_layers=1, vision_layers=1)
TRAIN = AgentTrainConfig(epochs=1, batch_size=15, lr=3e-3, seed=0)


def _train() -> tuple[list[float], dict[str, torch.Tensor]]:
    torch.set_num_threads(1)
    data = make_data(EXPERIMENT, progress=False)
    torch.manual_seed(0)
    receiver = TaskAgent(EXPERIMENT.small_config(data.vocab, data.answers))
    hist = pretrain_receiver(receiver, data.train, TRAIN, progress=False)
    return [h["loss"] for h in hist], {k: v.clone() for k, v in receiver.state_dict().items()}


def _worker(rank: int, out: str) -> None:
    world = distributed.world()
    losses, state = _train()
    # A step that does not average its gradients is refused rather than silently trained apart.
    try:
        fit(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), 4, TRAIN, lambda i, g: 0.0)
        refused = ""
    except ValueError as e:
        refused = str(e)
    torch.save({"losses": losses, "state": state, "refused": refused, "world": dataclasses.asdict(world)},
               Path(out) / f"rank{rank}.pt")


def _without_key_bias(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights with the attention key biases zeroed: softmax ignores a key bias, so its gradient is
    zero up to rounding, and AdamW's normalisation turns rounding noise into lr-sized steps (5e-4 apart
    here, every other weight within 1e-6)."""
    d = EXPERIMENT.d
    out = dict(state)
    for name, value in state.items():
        if name.endswith("self_attn.in_proj_bias"):
            out[name] = torch.cat([value[:d], torch.zeros(d), value[2 * d:]])
    return out


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="torch without gloo")
def test_two_processes_match_one_with_the_same_global_batch(tmp_path: Path) -> None:
    distributed.run_local(_worker, 2, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert [r["world"]["rank"] for r in ranks] == [0, 1]
    assert all(r["world"]["size"] == 2 and r["world"]["backend"] == "gloo" for r in ranks)
    assert all("does not average its gradients" in r["refused"] for r in ranks)

    assert not distributed.world().enabled
    losses, state = _train()  # the same run in this one process
    assert len(losses) == TRAIN.epochs
    for r in ranks:
        assert r["losses"] == pytest.approx(losses, rel=1e-5)
        theirs = _without_key_bias(r["state"])
        for name, value in _without_key_bias(state).items():
            torch.testing.assert_close(theirs[name], value, rtol=0, atol=1e-5, msg=name)
    # The replicas stayed identical to each other (same averaged gradient on both).
    for name in state:
        torch.testing.assert_close(ranks[0]["state"][name], ranks[1]["state"][name], rtol=0, atol=1e-6)


def test_single_process_helpers_are_the_identity() -> None:
    w = distributed.world()
    assert not w.enabled and w.is_main and w.size == 1
    idx = torch.arange(7)
    assert distributed.shard(idx) is idx
    assert distributed.weighted_mean(2.5, 3) == 2.5
    assert distributed.broadcast({"a": 1}) == {"a": 1}
    assert distributed.rank_seed(11) == 11


def test_shards_split_a_batch_into_contiguous_parts() -> None:
    idx = torch.arange(9)
    parts = [distributed.shard(idx, distributed.World(rank=r, size=2)) for r in range(2)]
    assert [p.tolist() for p in parts] == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    assert distributed.shard(torch.arange(1), distributed.World(rank=1, size=2)).numel() == 0
    assert distributed.rank_seed(11, distributed.World(rank=1, size=2)) != 11


def test_other_ranks_write_checkpoints_to_a_private_copy(tmp_path: Path) -> None:
    from semcom.agents.commands import _checkpoint_dir

    ckdir = tmp_path / "ck"
    ckdir.mkdir()
    (ckdir / "receiver.pt").write_bytes(b"rank 0's weights")
    with _checkpoint_dir(str(ckdir), distributed.World(rank=0, size=2)) as mine:
        assert mine == str(ckdir)
    with _checkpoint_dir(str(ckdir), distributed.World(rank=1, size=2)) as private:
        assert Path(private) != ckdir
        assert (Path(private) / "receiver.pt").read_bytes() == b"rank 0's weights"  # earlier stages readable
        (Path(private) / "receiver.pt").write_bytes(b"rank 1's copy")  # a retrained stage
        (Path(private) / "tokens_raw.pt").write_bytes(b"rank 1's copy")
    assert not Path(private).exists()
    assert (ckdir / "receiver.pt").read_bytes() == b"rank 0's weights"
    assert sorted(p.name for p in ckdir.iterdir()) == ["receiver.pt"]
