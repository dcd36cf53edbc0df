"""Data-parallel training under ``torchrun``: one process per GPU (or per CPU slot).

    torchrun --standalone --nproc-per-node 8 -m multihowto.trainer.train --data ... --stream true

``torchrun`` sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; without them the trainer is
one process and nothing here does anything. Each process streams its own shards (the
loader splits them by node), computes its batch, and gathers every process's embeddings
so the contrastive loss sees the global batch as negatives, as CLIP-style training does.
The gather keeps the gradient (the functional all-gather's backward is a reduce-scatter),
so with DDP averaging the gradients, ``world`` processes of batch ``B`` take exactly the step that one process of
batch ``world × B`` would (``tests/trainer/test_distributed.py`` checks this).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """The process that logs, shows the progress bar and writes checkpoints."""
        return self.rank == 0


ALONE = World()  # a single process: the default everywhere a world is taken


def world_from_env() -> World:
    """The process's place in a torchrun launch, or a world of one."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return ALONE
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def start(world: World, device: str) -> str:
    """Join the process group (NCCL on GPUs, gloo on CPUs) and return this process's
    device (``cuda:{local_rank}`` on a GPU)."""
    if world.size == 1:
        return device
    if device.startswith("cuda"):
        device = f"cuda:{world.local_rank}"
        torch.cuda.set_device(device)
    global _owned, _host_group
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
        _owned = True
    # the small agreements below go through gloo on CPU tensors: over NCCL each would
    # copy to the GPU and wait for it (``.item()``) on every step
    _host_group = dist.new_group(backend="gloo") if dist.get_backend() == "nccl" else None
    return device


_owned = False  # whether start() made the process group (a caller's own one stays)
_host_group = None  # the group for host-side collectives; None: the default (gloo) group


def stop(world: World) -> None:
    global _owned, _host_group
    if world.size > 1 and _owned and dist.is_initialized():
        dist.destroy_process_group()
        _owned, _host_group = False, None


def gather(x: torch.Tensor, world: World) -> torch.Tensor:
    """Every process's rows of ``x``, in rank order, the gradient flowing back to each
    process's own rows. A world of one returns ``x``."""
    if world.size == 1:
        return x
    from torch.distributed._functional_collectives import all_gather_single, wait_tensor

    # the functional all-gather (what torch.distributed.nn's deprecation points to)
    # carries the gradient back: its backward is a reduce-scatter of the rows' gradients
    return wait_tensor(all_gather_single(x.contiguous(), 0, dist.group.WORLD))


def _all_reduce(values: list, dtype: torch.dtype, op=dist.ReduceOp.SUM) -> list:
    """One all-reduce of a few host-side numbers, on the CPU."""
    t = torch.tensor(values, dtype=dtype)
    dist.all_reduce(t, op=op, group=_host_group)
    return t.tolist()


def reduce(x: int, world: World, op: str = "sum") -> int:
    """``x`` summed (``op="sum"``) or its least value (``"min"``) over every process."""
    if world.size == 1:
        return x
    return _all_reduce([int(x)], torch.int64, {"sum": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN}[op])[0]


def mean(values: dict[str, float], world: World) -> dict[str, float]:
    """Each value averaged over every process (one all-reduce): a logged loss is the
    global batch's, not the first process's share of it."""
    if world.size == 1 or not values:
        return values
    totals = _all_reduce(list(values.values()), torch.float64)
    return {k: v / world.size for k, v in zip(values, totals, strict=True)}


def all_true(flag: bool, world: World) -> bool:
    """Whether ``flag`` holds in every process: a step's shape (with or without the
    cross-lingual term) must be the same everywhere, or the collectives would not match."""
    return bool(reduce(int(flag), world, "min"))


def barrier(world: World) -> None:
    if world.size > 1:
        dist.barrier(group=_host_group)
