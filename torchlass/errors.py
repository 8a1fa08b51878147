"""The error types torchlass raises on purpose.

Every error raised on bad input derives from [`TorchlassError`][torchlass.errors.TorchlassError]
and also from the built-in type a caller would expect (``ValueError`` or ``TypeError``), so
both ``except TorchlassError`` and ``except ValueError`` work. Messages follow one pattern::

    stft(): argument 'x' expected a floating-point tensor, got dtype torch.int64

that is, the function, the argument, what was expected and what was received. The guards
that raise them live in [`torchlass.checks`][torchlass.checks].
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "DTypeError",
    "DeviceError",
    "NonFiniteError",
    "ShapeError",
    "TorchlassError",
    "ValueRangeError",
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


class DeviceError(TorchlassError, ValueError):
    """Tensors are on a device the function cannot run on (a fused kernel off CUDA, ...)."""
