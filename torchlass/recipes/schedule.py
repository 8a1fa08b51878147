"""Learning-rate schedules: the baseline's stepped warm-up, a linear warm-up, a constant.

Each schedule is a function ``step -> factor`` applied to the optimiser's base learning
rate by `torch.optim.lr_scheduler.LambdaLR`, stepped once per optimisation step as
the baseline does (SPEC.md §6). The baseline's ``constant_warm_up`` multiplies the rate by
0.001, 0.01 and 0.1 for ``warmup_steps`` steps each, then by 1 (1e-6 -> 1e-5 -> 1e-4 ->
1e-3 for 10 000 steps each with its settings), with no decay. Fine-tuning from a checkpoint
uses ``"constant"``: the new rate from the first step.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from torchlass.errors import check_choice, check_positive_int

__all__ = ["SCHEDULES", "baseline_warmup", "build_scheduler", "constant", "linear_warmup"]


def baseline_warmup(step: int, *, warmup_steps: int = 10000) -> float:
    """The baseline's stepped warm-up factor: 0.001, 0.01, 0.1, then 1.

    Args:
        step: optimisation steps taken so far (0 for the first step).
        warmup_steps: length of each of the three warm-up stages.

    Returns:
        The factor on the base learning rate.

    Examples:
        >>> [baseline_warmup(s, warmup_steps=10) for s in (0, 9, 10, 25, 30)]
        [0.001, 0.001, 0.01, 0.1, 1.0]
    """
    stage = step // warmup_steps
    return (0.001, 0.01, 0.1)[stage] if stage < 3 else 1.0


def linear_warmup(step: int, *, warmup_steps: int = 10000) -> float:
    """A linear warm-up factor, ``(step + 1) / warmup_steps``, then 1.

    Examples:
        >>> [linear_warmup(s, warmup_steps=4) for s in (0, 1, 3, 9)]
        [0.25, 0.5, 1.0, 1.0]
    """
    return min(1.0, (step + 1) / warmup_steps)


def constant(step: int, *, warmup_steps: int = 0) -> float:
    """Factor 1 at every step (no warm-up; used to fine-tune from a checkpoint)."""
    return 1.0


SCHEDULES: dict[str, Callable[..., float]] = {
    "baseline_warmup": baseline_warmup,
    "linear_warmup": linear_warmup,
    "constant": constant,
}


def build_scheduler(optimizer: torch.optim.Optimizer, name: str, *,
                    warmup_steps: int = 10000) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` for one of `SCHEDULES`.

    Args:
        optimizer: the optimiser whose learning rate is scheduled.
        name: ``"baseline_warmup"``, ``"linear_warmup"`` or ``"constant"``.
        warmup_steps: see [`baseline_warmup`][torchlass.recipes.baseline_warmup] and
            [`linear_warmup`][torchlass.recipes.linear_warmup].

    Returns:
        The scheduler; call ``scheduler.step()`` after every ``optimizer.step()``.

    Raises:
        ValueRangeError: for an unknown name or ``warmup_steps < 1``.

    Examples:
        >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        >>> sched = build_scheduler(opt, "linear_warmup", warmup_steps=2)
        >>> opt.param_groups[0]["lr"]
        0.5
    """
    check_choice(name, "build_scheduler", "name", tuple(SCHEDULES))
    check_positive_int(warmup_steps, "build_scheduler", "warmup_steps")
    factor = functools.partial(SCHEDULES[name], warmup_steps=warmup_steps)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
