"""The order of training items as a function of the step: resumable and world-size free.

Epoch ``e`` is a permutation of the items drawn from ``(seed, e)``; step ``s`` takes the
``s``-th run of ``global_batch`` items of that order (the incomplete run at the end of an
epoch is dropped), and process ``r`` of ``W`` takes its ``r``-th slice of
``global_batch / W`` items. The batch of a step therefore depends only on the step, so a
resumed run continues exactly, and one process with the global batch sees the same items
as ``W`` processes together. Each index comes with its epoch, ``(index, epoch)``, so a
dataset can draw a fresh random crop every epoch whatever worker loads it.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from torchlass.checks import check_positive_int
from torchlass.errors import ShapeError, ValueRangeError

__all__ = ["StepBatchSampler"]


class StepBatchSampler:
    """Batches of ``(index, epoch)`` pairs for steps ``start_step, start_step + 1, ...``.

    Use it as a `DataLoader`'s ``batch_sampler``; it never ends.

    Args:
        num_items: dataset size.
        batch_size: items per step and process.
        world_size: number of processes.
        rank: this process's rank.
        seed: seed of the epoch permutations.
        start_step: first step to yield.

    Raises:
        ShapeError: if the dataset is smaller than the global batch.
        ValueRangeError: if ``rank`` is not in ``[0, world_size)``.

    Examples:
        >>> sampler = StepBatchSampler(10, 2, world_size=2, rank=1, seed=0)
        >>> [i for i, _ in sampler.batch(0)] == sampler.global_batch(0)[2:]
        True
    """

    def __init__(self, num_items: int, batch_size: int, *, world_size: int = 1, rank: int = 0,
                 seed: int = 0, start_step: int = 0) -> None:
        check_positive_int(num_items, "StepBatchSampler", "num_items")
        self.batch_size = check_positive_int(batch_size, "StepBatchSampler", "batch_size")
        self.world_size = check_positive_int(world_size, "StepBatchSampler", "world_size")
        if not 0 <= rank < world_size:
            raise ValueRangeError(f"StepBatchSampler(): argument 'rank' expected a value in "
                                  f"[0, {world_size}), got {rank}")
        self.num_items, self.rank, self.seed = num_items, rank, seed
        self.start_step = start_step
        self.steps_per_epoch = num_items // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ShapeError(
                f"StepBatchSampler(): the dataset expected at least the global batch of "
                f"{batch_size * world_size} items, got {num_items}"
            )
        self._order: tuple[int, list[int]] | None = None

    def _permutation(self, epoch: int) -> list[int]:
        if self._order is None or self._order[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._order = (epoch, torch.randperm(self.num_items, generator=g).tolist())
        return self._order[1]

    def global_batch(self, step: int) -> list[int]:
        """Item indices of step ``step`` over all processes, in rank order."""
        epoch, position = divmod(step, self.steps_per_epoch)
        size = self.batch_size * self.world_size
        return self._permutation(epoch)[position * size:(position + 1) * size]

    def batch(self, step: int) -> list[tuple[int, int]]:
        """This process's ``(index, epoch)`` pairs for step ``step``."""
        epoch = step // self.steps_per_epoch
        mine = self.global_batch(step)[self.rank * self.batch_size:
                                       (self.rank + 1) * self.batch_size]
        return [(index, epoch) for index in mine]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        step = self.start_step
        while True:
            yield self.batch(step)
            step += 1
