"""Multi-process data-parallel training on ``torch.distributed``: what ``semcom.training.fit`` needs.

A training command run under ``torchrun --nproc-per-node N`` finds ``WORLD_SIZE`` / ``RANK`` /
``MASTER_ADDR`` in its environment; ``setup()`` then joins the process group (gloo on CPU, NCCL when
CUDA is present) and every process becomes one data-parallel replica:

* ``data_parallel_step`` wraps the trained modules and their loss in ``DistributedDataParallel``:
  replicas start from rank 0's weights (DDP broadcasts them) and every backward pass averages the
  gradients over the processes before the step (and before any gradient clipping).
* ``fit`` draws the same global batch on every process (one shared permutation generator); the step
  trains each process on its ``shard`` of it, so N processes with a global batch B follow the single
  process with batch B: the same items per step, the same learning rates, the same mean gradient.
* Only rank 0 shows progress, runs ``evaluate`` (its record is broadcast) and writes files.

Without ``WORLD_SIZE`` > 1 nothing here starts a process group and every helper is the identity, so a
plain single process stays the default and is unchanged.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

Tensor = torch.Tensor
StepFn = Callable[[Tensor, torch.Generator], float]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes (rank 0 of 1 when not distributed)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def default_backend() -> str:
    """NCCL when CUDA is present, gloo otherwise."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def world() -> World:
    """The current process group as a ``World`` (single process when none was started)."""
    if not (dist.is_available() and dist.is_initialized()):
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())),
                 dist.get_backend())


def setup(backend: str | None = None, store: Any = None) -> World:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE`` > 1);
    a no-op for a single process or when already joined. On NCCL the process takes its local GPU.
    ``store``: a rendezvous store of the caller's (``run_local``'s file store) instead of torchrun's."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        backend = backend or default_backend()
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if store is None:
            dist.init_process_group(backend)
        else:
            dist.init_process_group(backend, store=store, rank=int(os.environ["RANK"]), world_size=size)
    return world()


def teardown() -> None:
    """Leave the process group (if one was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_seed(seed: int, w: World | None = None) -> int:
    """A seed of this process's own: ``seed`` on rank 0 (and in a single process), offset on the others."""
    return seed + 1_000_003 * (w or world()).rank


def shard(indices: Tensor, w: World | None = None) -> Tensor:
    """This process's contiguous part of a global batch (sizes differ by at most one item)."""
    w = w or world()
    return torch.tensor_split(indices, w.size)[w.rank] if w.enabled else indices


def weighted_mean(value: float, weight: float, w: World | None = None) -> float:
    """Mean of ``value`` over the processes, each weighted by ``weight`` (its items in the batch)."""
    w = w or world()
    if not w.enabled:
        return value
    t = torch.tensor([value * weight, weight], dtype=torch.float64, device=_device(w))
    dist.all_reduce(t)
    return float(t[0] / t[1])


def broadcast(obj: Any, w: World | None = None) -> Any:
    """Rank 0's ``obj`` on every process (any picklable object)."""
    w = w or world()
    if not w.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=_device(w))
    return box[0]


def _device(w: World) -> torch.device:
    return torch.device("cuda", torch.cuda.current_device()) if w.backend == "nccl" else torch.device("cpu")


class _Loss(nn.Module):
    """The trained modules and the loss of a batch as one ``forward``: the unit DDP wraps (the training
    steps call their models' own methods -- ``answer_scene``, ``sensor``, ``link`` -- not one forward)."""

    def __init__(self, trained: nn.Module, loss_fn: Callable[[Tensor, torch.Generator], Tensor]) -> None:
        super().__init__()
        self.trained = trained
        self.loss_fn = loss_fn

    def forward(self, idx: Tensor, gen: torch.Generator) -> Tensor:
        if idx.numel() == 0:  # a rank with no item in a short last batch still joins the all-reduce
            return sum((p.sum() * 0.0 for p in self.parameters() if p.requires_grad), torch.zeros(()))
        return self.loss_fn(idx, gen)


def data_parallel_step(trained: nn.Module, loss_fn: Callable[[Tensor, torch.Generator], Tensor],
                       update: Callable[[Tensor], float]) -> StepFn:
    """A ``fit`` step over a global batch: ``update(loss_fn(idx, gen))``, where ``loss_fn`` computes the
    mean loss of the items ``idx`` with the modules of ``trained`` and ``update`` back-propagates it,
    steps the optimizer and returns the loss as a float.

    In a single process that is all. Under a process group each rank takes its ``shard`` of the global
    batch and computes the loss through ``DistributedDataParallel(trained + loss_fn)`` (parameters a
    batch leaves unused are allowed), scaled by its share of the items times the number of processes:
    DDP's average of the gradients is then the gradient of the global batch's mean loss, whatever the
    shard sizes, before ``update`` clips it and steps. The returned loss is the global batch's mean.
    """
    w = world()
    module = _Loss(trained, loss_fn)
    if not w.enabled:
        def single(idx: Tensor, gen: torch.Generator) -> float:
            return update(module(idx, gen))

        single.data_parallel = True  # type: ignore[attr-defined]
        return single

    on_gpu = any(p.is_cuda for p in trained.parameters())
    model = nn.parallel.DistributedDataParallel(module, device_ids=[torch.cuda.current_device()] if on_gpu
                                                else None, find_unused_parameters=True)

    def step(idx: Tensor, gen: torch.Generator) -> float:
        mine = shard(idx, w)
        share = len(mine) * w.size / max(len(idx), 1)
        loss = update(model(mine, gen) * share)
        return weighted_mean(loss / share if share else 0.0, len(mine), w)

    step.data_parallel = True  # type: ignore[attr-defined]  # fit refuses other steps under torchrun
    return step


def is_data_parallel(step: StepFn) -> bool:
    """Whether ``step`` synchronises its gradients over the processes (made by ``data_parallel_step``)."""
    return bool(getattr(step, "data_parallel", False))


def run_local(fn: Callable[..., None], nprocs: int, *args: Any, backend: str = "gloo") -> None:
    """Run ``fn(rank, *args)`` in ``nprocs`` processes on this machine, joined in a process group
    (``torch.multiprocessing`` spawn; ``fn`` must be importable). For tests and one-machine trials;
    ``torchrun`` does the same for a command. The processes meet through a file (no rendezvous port,
    which would listen on every interface) and gloo talks over the loopback interface only."""
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="semcom_dist_") as tmp:
        mp.spawn(_local_process, args=(nprocs, str(Path(tmp) / "store"), backend, fn, args), nprocs=nprocs,
                 join=True)


def _local_process(rank: int, nprocs: int, store_path: str, backend: str, fn: Callable[..., None],
                   args: tuple[Any, ...]) -> None:
    os.environ.update(WORLD_SIZE=str(nprocs), RANK=str(rank), LOCAL_RANK=str(rank), GLOO_SOCKET_IFNAME="lo")
    setup(backend, store=dist.FileStore(store_path, nprocs))
    try:
        fn(rank, *args)
    finally:
        teardown()
