"""The DCASE 2024 baseline's waveform loss: mean absolute error over time."""

from __future__ import annotations

import torch

from torchlass.checks import check_finite as _check_finite
from torchlass.checks import check_reduction, check_signals, loss_dtype, reduce

__all__ = ["l1_loss"]


def l1_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    reduction: str = "mean",
    check_finite: bool = True,
) -> torch.Tensor:
    """Mean absolute error between waveforms, the baseline's training loss.

    ``loss = mean_t |s_hat[t] - s[t]|`` per signal; ``reduction="mean"`` then averages
    over signals, which equals the baseline's ``torch.mean(torch.abs(output - target))``
    over all elements. Not scale invariant: a silent target scores the estimate's mean
    magnitude. Accumulated in float32 at least (float64 for float64 inputs).

    Args:
        estimate: Estimated waveform, real floating point.
        target: Reference waveform, same shape.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs (checked on the per-signal result).

    Returns:
        The loss (same unit as the waveforms): a scalar, or one value per signal.

    Shape:
        ``(..., time)`` for both inputs; ``()`` or ``(...)`` out.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ, the time axis is empty or there is no signal.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``reduction`` is invalid.

    Examples:
        >>> l1_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 3.0])).item()
        0.6666666865348816
    """
    check_signals("l1_loss", finite=False, items=True, estimate=estimate, target=target)
    check_reduction(reduction, "l1_loss")
    dtype = loss_dtype(torch.promote_types(estimate.dtype, target.dtype))
    with torch.autocast(estimate.device.type, enabled=False):
        values = (estimate.to(dtype) - target.to(dtype)).abs().mean(-1)
        if check_finite and not bool(torch.isfinite(values).all()):
            _check_finite(estimate, "l1_loss", "estimate")
            _check_finite(target, "l1_loss", "target")
            values = (estimate.double() - target.double()).abs().mean(-1).to(dtype)
    return reduce(values, reduction)
