"""The custom per-signal loss that [`mixit_loss`][torchlass.losses.mixit_loss] and
[`pit_loss`][torchlass.losses.pit_loss] accept in place of their default, and its output check.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from torchlass.errors import ShapeError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""``loss_fn(estimate, target) -> loss``: ``(..., time)`` signals to ``(...)`` losses."""


def call_loss_fn(loss_fn: LossFn, estimate: torch.Tensor, target: torch.Tensor, fn: str
                 ) -> torch.Tensor:
    """``loss_fn(estimate, target)``, checked to return one loss per signal.

    Raises:
        ShapeError: naming ``fn``'s argument ``loss_fn`` if the result is not a tensor of
            shape ``estimate.shape[:-1]``.
    """
    values = loss_fn(estimate, target)
    expected = tuple(estimate.shape[:-1])
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != expected:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ShapeError(
            f"{fn}(): argument 'loss_fn' expected to return one loss per signal, "
            f"shape {expected}, got {got}"
        )
    return values
