"""Multi-process training through PyTorch's own engine: `torchrun` starts the processes and
sets RANK / WORLD_SIZE / LOCAL_RANK; `DistributedDataParallel` averages the gradients.

    torchrun --standalone --nproc_per_node 4 -m clonebench.cli train --device cuda ...

Each process takes every world-th batch of the epoch's deterministic batch list (cut to a
multiple of the world size, so all processes step together). Only rank 0 touches the store
and the run folder: DuckDB allows one writing process, and one copy of each checkpoint is
enough because the replicas hold the same weights (checked at the end of a run). NCCL on
CUDA, gloo on a CPU (which is how the tests run it).
"""

from __future__ import annotations

import hashlib

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
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, batches: list) -> list:
        """This process's batches: every size-th one, the list first cut to a multiple of size."""
        if not self.enabled:
            return batches
        return batches[: len(batches) // self.size * self.size][self.rank::self.size]

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()


def from_env() -> World:
    """The world torchrun describes, or a single process."""
    if "WORLD_SIZE" not in os.environ or int(os.environ["WORLD_SIZE"]) <= 1:
        return World()
    return World(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))


def start(world: World, device: torch.device) -> torch.device:
    """Join the process group; on CUDA each process takes the GPU of its local rank."""
    if not world.enabled:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def stop(world: World) -> None:
    if world.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(module: torch.nn.Module, world: World, device: torch.device, unused: bool = False) -> torch.nn.Module:
    """The module DDP-wrapped for its training forward (the bare module stays for everything else)."""
    if not world.enabled:
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=unused)


def sum_across(*tensors: torch.Tensor) -> None:
    """In-place sum over the processes (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        for t in tensors:
            dist.all_reduce(t)


def from_main(*tensors: torch.Tensor) -> None:
    """In-place copy of rank 0's values to every process (a no-op in a single process)."""
    if dist.is_available() and dist.is_initialized():
        for t in tensors:
            dist.broadcast(t, src=0)


def replicas_identical(modules: list[torch.nn.Module], world: World) -> bool:
    """Whether every process holds bit-identical parameters and buffers: a SHA-256 of their bytes,
    compared across processes (a float sum would not do: its rounding depends on where the
    tensor lies in memory on some CPUs)."""
    if not world.enabled:
        return True
    digest = hashlib.sha256()
    for m in modules:
        for t in m.state_dict().values():
            digest.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    device = next(modules[0].parameters()).device
    mine = torch.tensor(list(digest.digest()), dtype=torch.int64, device=device)
    gathered = [torch.zeros_like(mine) for _ in range(world.size)]
    dist.all_gather(gathered, mine)
    return all(torch.equal(g.cpu(), gathered[0].cpu()) for g in gathered)


def first_refusal(mine: str | None, world: World) -> str | None:
    """The lowest rank's refusal, if any process refused (a decision every process must share)."""
    if not world.enabled:
        return mine
    gathered: list[str | None] = [None] * world.size
    dist.all_gather_object(gathered, mine)
    return next((f"rank {rank}: {r}" for rank, r in enumerate(gathered) if r), None)
