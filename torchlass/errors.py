"""Error types and the input guards shared by every public function.

Every error raised on bad input derives from [`TorchlassError`][torchlass.errors.TorchlassError] and
also from the built-in type a caller would expect (``ValueError`` or ``TypeError``), so both
``except TorchlassError`` and ``except ValueError`` work. Messages follow one pattern::

    stft(): argument 'x' expected a floating-point tensor, got dtype torch.int64

that is, the function, the argument, what was expected and what was received.

The guards below are small and cheap; the only one that synchronises a GPU is
[`check_finite`][torchlass.errors.check_finite], which every caller can switch off
(``check_finite=False``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = [
    "CheckpointError",
    "DTypeError",
    "NonFiniteError",
    "ShapeError",
    "TorchlassError",
    "ValueRangeError",
    "check_choice",
    "check_dtype",
    "check_finite",
    "check_floating",
    "check_min_length",
    "check_ndim",
    "check_positive_int",
    "check_real_floating",
    "check_same_shape",
    "check_tensor",
]


class TorchlassError(Exception):
    """Base class of every error torchlass raises on purpose."""


class ShapeError(TorchlassError, ValueError):
    """A tensor has the wrong rank, size or length."""


class DTypeError(TorchlassError, TypeError):
    """A tensor has a dtype the function does not accept (integer, complex, ...)."""


class NonFiniteError(TorchlassError, ValueError):
    """A tensor holds NaN or Inf where finite values are required."""


class ValueRangeError(TorchlassError, ValueError):
    """A scalar option is outside its valid range (``hop_length > n_fft``, ...)."""


class CheckpointError(TorchlassError, ValueError):
    """A checkpoint does not match the layout the loader expects."""


def _where(fn: str, name: str) -> str:
    return f"{fn}(): argument '{name}'"


def check_tensor(x: object, fn: str, name: str) -> torch.Tensor:
    """Return ``x`` if it is a tensor, else raise ``TypeError`` naming the argument."""
    if not isinstance(x, torch.Tensor):
        raise DTypeError(f"{_where(fn, name)} expected a torch.Tensor, got {type(x).__name__}")
    return x


def check_floating(x: torch.Tensor, fn: str, name: str, *, allow_complex: bool = False) -> None:
    """Reject integer and boolean tensors (and complex ones unless ``allow_complex``)."""
    check_tensor(x, fn, name)
    if x.is_complex():
        if not allow_complex:
            raise DTypeError(
                f"{_where(fn, name)} expected a real floating-point tensor, got dtype {x.dtype}"
            )
        return
    if not x.is_floating_point():
        raise DTypeError(
            f"{_where(fn, name)} expected a floating-point tensor, got dtype {x.dtype}"
        )


def check_real_floating(x: torch.Tensor, fn: str, name: str) -> None:
    """Shorthand for [`check_floating`][torchlass.errors.check_floating] with complex tensors
    rejected."""
    check_floating(x, fn, name, allow_complex=False)


def check_dtype(x: torch.Tensor, fn: str, name: str, *, complex_: bool) -> None:
    """Require a complex (``complex_=True``) or real floating-point tensor."""
    check_tensor(x, fn, name)
    if complex_ and not x.is_complex():
        raise DTypeError(f"{_where(fn, name)} expected a complex tensor, got dtype {x.dtype}")
    if not complex_:
        check_real_floating(x, fn, name)


def check_ndim(x: torch.Tensor, fn: str, name: str, *, min_ndim: int = 1,
               ndim: int | None = None, layout: str = "") -> None:
    """Require exactly ``ndim`` dimensions, or at least ``min_ndim`` when ``ndim`` is None.

    ``layout`` (e.g. ``"(batch, channels, time)"``) is quoted in the message.
    """
    hint = f" {layout}" if layout else ""
    if ndim is not None and x.dim() != ndim:
        raise ShapeError(
            f"{_where(fn, name)} expected a {ndim}-d tensor{hint}, "
            f"got shape {tuple(x.shape)}"
        )
    if ndim is None and x.dim() < min_ndim:
        raise ShapeError(
            f"{_where(fn, name)} expected at least {min_ndim} dimension(s){hint}, "
            f"got shape {tuple(x.shape)}"
        )


def check_same_shape(fn: str, **tensors: torch.Tensor) -> None:
    """Require every named tensor to have the same shape: ``check_same_shape("sdr", a=a, b=b)``."""
    items = list(tensors.items())
    first_name, first = items[0]
    for name, t in items[1:]:
        if t.shape != first.shape:
            raise ShapeError(
                f"{fn}(): arguments '{first_name}' and '{name}' must have the same shape, "
                f"got {tuple(first.shape)} and {tuple(t.shape)}"
            )


def check_min_length(x: torch.Tensor, fn: str, name: str, minimum: int, *,
                     dim: int = -1, why: str = "") -> None:
    """Require ``x.shape[dim] >= minimum`` (``why`` explains the bound in the message)."""
    size = x.shape[dim]
    if size < minimum:
        reason = f" ({why})" if why else ""
        raise ShapeError(
            f"{_where(fn, name)} expected at least {minimum} samples along dim {dim}{reason}, "
            f"got {size} (shape {tuple(x.shape)})"
        )


def check_finite(x: torch.Tensor, fn: str, name: str) -> None:
    """Reject NaN and Inf. Synchronises a GPU: callers expose ``check_finite=False``."""
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).sum())
        raise NonFiniteError(
            f"{_where(fn, name)} expected finite values, got {bad} NaN/Inf "
            f"element(s) in a tensor of shape {tuple(x.shape)}"
        )


def check_positive_int(value: object, fn: str, name: str, *, minimum: int = 1) -> int:
    """Require an ``int`` (not bool) of at least ``minimum``; return it."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DTypeError(f"{_where(fn, name)} expected an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueRangeError(f"{_where(fn, name)} expected an int >= {minimum}, got {value}")
    return value


def check_choice(value: object, fn: str, name: str, choices: Sequence[str]) -> str:
    """Require ``value`` to be one of ``choices``; return it."""
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise ValueRangeError(f"{_where(fn, name)} expected one of {options}, got {value!r}")
    return str(value)
