"""Input checks and dtype conventions shared by the metrics and the losses.

Every metric and loss takes real floating-point signals shaped ``(..., time)`` with the
same shape and at least one sample. The helpers here apply those checks with messages
that name the calling function and argument, pick the machine epsilon the SNR-family
conventions add (the input dtype's, float32's for half types), and choose the dtype the
sums are accumulated in.
"""

from __future__ import annotations

import torch

from torchlass.errors import (
    ShapeError,
    ValueRangeError,
    check_choice,
    check_finite,
    check_min_length,
    check_ndim,
    check_real_floating,
    check_same_shape,
)

_HALF_TYPES = (torch.float16, torch.bfloat16)


def check_signals(fn: str, *, finite: bool = True, items: bool = False,
                  **signals: torch.Tensor) -> None:
    """Validate named ``(..., time)`` signals: real floating, same shape, non-empty, finite.

    ``items=True`` also requires at least one signal (a loss cannot average over none).
    """
    for name, x in signals.items():
        check_real_floating(x, fn, name)
        check_ndim(x, fn, name, min_ndim=1, layout="(..., time)")
    check_same_shape(fn, **signals)
    for name, x in signals.items():
        check_min_length(x, fn, name, 1, why="the time axis must not be empty")
        if items and x.numel() == 0:
            raise ShapeError(
                f"{fn}(): argument '{name}' expected at least one signal, "
                f"got shape {tuple(x.shape)}"
            )
    if finite:
        for name, x in signals.items():
            check_finite(x, fn, name)


def common_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """The dtype the inputs promote to (it decides ``eps``)."""
    dtype = tensors[0].dtype
    for t in tensors[1:]:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype


def machine_eps(dtype: torch.dtype) -> float:
    """The eps the SNR-family conventions add: ``finfo(dtype).eps`` (float32's for halves)."""
    return torch.finfo(torch.float32 if dtype in _HALF_TYPES else dtype).eps


def loss_dtype(dtype: torch.dtype) -> torch.dtype:
    """Dtype of a loss's sums and of every result: float64 for float64, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def result_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """Dtype a metric returns: the inputs' precision, float32 for half types."""
    return loss_dtype(common_dtype(*tensors))


def check_reduction(reduction: str, fn: str) -> str:
    """Validate ``reduction`` (``"mean"``, ``"sum"`` or ``"none"``) and return it."""
    return check_choice(reduction, fn, "reduction", ("mean", "sum", "none"))


def reduce(values: torch.Tensor, reduction: str) -> torch.Tensor:
    """Apply a validated ``reduction`` to per-item losses."""
    if reduction == "mean":
        return values.mean()
    if reduction == "sum":
        return values.sum()
    return values


def check_overflow(value: torch.Tensor, fn: str) -> torch.Tensor:
    """Raise instead of returning a non-finite metric when float64 energies overflowed."""
    if not bool(torch.isfinite(value).all()):
        raise ValueRangeError(
            f"{fn}(): the signal energies overflow float64 (amplitudes above about 1e150); "
            "rescale the inputs"
        )
    return value
