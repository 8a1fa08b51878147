"""The input guards shared by every public function, in one place.

Each guard raises an error of [`torchlass.errors`][torchlass.errors] whose message names the
calling function and the argument, says what was expected and what was received. One
argument order throughout: a guard of one value takes ``(value, fn, name, *, options)``; a
guard relating several tensors takes ``(fn, **named_tensors)`` so that each keyword is the
caller's argument name.

The guards are small and cheap; the only ones that synchronise a GPU are
[`check_finite`][torchlass.checks.check_finite] and
[`check_overflow`][torchlass.checks.check_overflow], which callers can switch off.

The dtype conventions live here too: half types compute in float32
([`compute_dtype`][torchlass.checks.compute_dtype]), the SNR family adds that dtype's
machine epsilon ([`machine_eps`][torchlass.checks.machine_eps]), and losses and metrics
return float64 for float64 input and float32 otherwise
([`result_dtype`][torchlass.checks.result_dtype]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from torchlass.errors import DTypeError, NonFiniteError, ShapeError, ValueRangeError

#: Storage-only half types: arithmetic on them runs in float32.
HALF_DTYPES = (torch.float16, torch.bfloat16)


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
    """Shorthand for [`check_floating`][torchlass.checks.check_floating] with complex tensors
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
    """Reject NaN and Inf. Synchronises a GPU: callers expose ``check_finite=False``.

    Skipped while ``torch.export`` traces: an exported graph cannot branch on data.
    """
    if torch.compiler.is_exporting():
        return
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
    return torch.finfo(compute_dtype(dtype)).eps


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


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...] | None:
    """The broadcast of ``shapes`` (NumPy rules), or None if they do not broadcast.

    A few microseconds, where ``torch.broadcast_shapes`` costs tens: it runs on every
    fused call.
    """
    ndim = max(len(s) for s in shapes)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, start=ndim - len(shape)):
            if size != 1:
                if out[i] not in (1, size):
                    return None
                out[i] = size
    return tuple(out)


def check_mask_inputs(fn: str, spec: torch.Tensor, **masks: torch.Tensor) -> tuple[int, ...]:
    """A complex ``spec`` and real masks that broadcast together; return the broadcast shape.

    Shared by the eager masks and the fused kernels, so that both paths reject the same
    inputs with the same message.
    """
    check_dtype(spec, fn, "spec", complex_=True)
    for name, mask in masks.items():
        check_dtype(mask, fn, name, complex_=False)
    shapes = [tuple(spec.shape)] + [tuple(m.shape) for m in masks.values()]
    shape = broadcast_shape(*shapes)
    if shape is None:
        got = " and ".join(f"{n} {s}" for n, s in zip(["spec", *masks], shapes, strict=True))
        raise ShapeError(
            f"{fn}(): arguments {', '.join(repr(n) for n in ['spec', *masks])} expected "
            f"shapes that broadcast together, got {got}"
        )
    return shape


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype arithmetic runs in: float32 for half types, ``dtype`` otherwise."""
    return torch.float32 if dtype in HALF_DTYPES else dtype
