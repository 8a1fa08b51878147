"""Multi-process training through ``torchrun``: process group, device, batch gathering.

``torchrun --nproc_per_node=N -m torchlass train ...`` starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; [`init_distributed`][torchlass.recipes.init_distributed]
joins them with NCCL on GPUs and gloo on CPUs (several nodes work the same way, with ``torchrun``'s
rendezvous options). Each process loads its own slice of the global batch;
[`gather_batch`][torchlass.recipes.gather_batch] collects the clean clips of every process so that
every process mixes the *global* batch the same way (pairs and SNRs do not depend on the number of
processes) and keeps its own slice. Without ``torchrun`` everything runs in one process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "gather_batch", "gather_captions", "init_distributed"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the number of processes, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """True on the process that logs, validates and writes checkpoints (rank 0)."""
        return self.rank == 0


def init_distributed(device: str | torch.device | None = None) -> DistInfo:
    """Join the ``torchrun`` process group if there is one, and pick this process's device.

    Args:
        device: ``"cpu"``, ``"cuda"`` or a specific device; None picks CUDA when available.
            Under ``torchrun`` with CUDA, each process takes ``cuda:LOCAL_RANK``.

    Returns:
        A [`DistInfo`][torchlass.recipes.DistInfo]. With ``WORLD_SIZE`` unset or 1, rank 0 of 1.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    wanted = torch.device(device if device is not None
                          else ("cuda" if torch.cuda.is_available() else "cpu"))
    if wanted.type == "cuda" and wanted.index is None:
        wanted = torch.device("cuda", local if world > 1 else 0)
    if wanted.type == "cuda":
        torch.cuda.set_device(wanted)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if wanted.type == "cuda" else "gloo")
    if dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=wanted)


def gather_batch(waveform: torch.Tensor, labels: Sequence[Sequence[str]] | None,
                 info: DistInfo) -> tuple[torch.Tensor, list[tuple[str, ...]] | None]:
    """Concatenate every process's clips (and labels) in rank order.

    Every process must pass a batch of the same shape. With one process this returns its
    inputs.

    Shape:
        waveform: ``(batch, channels, time)`` -> ``(world_size * batch, channels, time)``.
    """
    local_labels = None if labels is None else [tuple(x) for x in labels]
    if info.world_size == 1:
        return waveform, local_labels
    parts = [torch.empty_like(waveform) for _ in range(info.world_size)]
    dist.all_gather(parts, waveform.contiguous())
    if local_labels is None:
        return torch.cat(parts), None
    gathered: list[list[tuple[str, ...]] | None] = [None] * info.world_size
    dist.all_gather_object(gathered, local_labels)
    return torch.cat(parts), [x for part in gathered for x in (part or [])]


def gather_captions(captions: Sequence[str], info: DistInfo) -> list[str]:
    """Concatenate every process's captions in rank order, as
    [`gather_batch`][torchlass.recipes.gather_batch] does the clips.

    With one process this returns ``captions`` as a list.
    """
    if info.world_size == 1:
        return list(captions)
    gathered: list[list[str] | None] = [None] * info.world_size
    dist.all_gather_object(gathered, list(captions))
    return [x for part in gathered for x in (part or [])]
