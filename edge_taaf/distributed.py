"""torchrun support: DistributedDataParallel with gloo on CPU, nccl on GPU.

Under ``torchrun`` the environment carries RANK / WORLD_SIZE / LOCAL_RANK; outside it everything
here is a no-op and the world has one rank.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(device: torch.device) -> tuple[int, int]:
    """Join the process group when launched by torchrun; return (rank, world_size)."""
    if not is_distributed():
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size()


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_object(obj):
    """Rank 0's value on every rank (e.g. the run folder, whose name holds a timestamp)."""
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def mean_stats(stats: dict[str, float]) -> dict[str, float]:
    """Average scalar statistics over ranks, so every rank modulates learning rates identically."""
    if not (dist.is_available() and dist.is_initialized()) or not stats:
        return stats
    keys = sorted(stats)
    t = torch.tensor([float(stats[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return dict(zip(keys, t.tolist()))
