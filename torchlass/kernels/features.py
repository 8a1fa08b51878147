"""Fused separator features: floored magnitude and unit phasor in one pass over the spectrum.

[`fused_magnitude_phase`][torchlass.kernels.features.fused_magnitude_phase] equals
[`torchlass.stft.magnitude_phase`][torchlass.stft.magnitude_phase]:
``mag = sqrt(max(Re^2 + Im^2, eps))``, ``cos = Re / mag``, ``sin = Im / mag``. The eager version
makes five passes over the spectrogram; this kernel reads it once, in whatever layout `torch.stft`
left it (frequency-fastest), and writes the three features contiguous, the layout a convolutional
network reads best. The backward kernel recomputes the features from the saved spectrogram.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from torchlass.checks import check_dtype
from torchlass.errors import ValueRangeError
from torchlass.kernels._layout import check_kernel_device, grad_buffer
from torchlass.kernels._tiles import (
    launch_elementwise,
    load_complex_tile,
    load_tile,
    store_complex_tile,
    store_tile,
    tile_coords,
)

__all__ = ["fused_magnitude_phase"]


@triton.jit
def _features_forward_kernel(
    x_ptr, x_st, m_ptr, m_st, c_ptr, c_st, s_ptr, s_st, D1, D2, P, Q, eps: tl.constexpr,
    X_FAST: tl.constexpr, M_FAST: tl.constexpr, C_FAST: tl.constexpr, S_FAST: tl.constexpr,
    CD: tl.constexpr, BP: tl.constexpr, BQ: tl.constexpr, WIDE: tl.constexpr,
):
    """``mag = sqrt(max(|x|^2, eps))``, ``cos = Re x / mag``, ``sin = Im x / mag``, one tile.

    Eager reference: [`magnitude_phase`][torchlass.stft.magnitude_phase]. Strides: the
    spectrogram ``x`` and the outputs ``m c s`` each come as a pointer and five element
    strides ``*_st`` over the plan's ``(D0, D1, D2, P, Q)`` (``x``'s in complex elements);
    ``*_FAST`` says the operand is contiguous along ``P`` (read or written transposed).
    """
    at = tile_coords(D1, D2, P, Q, BP, BQ, WIDE)
    xr, xi = load_complex_tile(x_ptr, x_st, at, X_FAST, CD)
    mag = tl.sqrt(tl.maximum(xr * xr + xi * xi, eps))
    store_tile(m_ptr, mag, m_st, at, M_FAST)
    store_tile(c_ptr, xr / mag, c_st, at, C_FAST)
    store_tile(s_ptr, xi / mag, s_st, at, S_FAST)


@triton.jit
def _features_backward_kernel(
    x_ptr, x_st, gm_ptr, m_st, gc_ptr, c_st, gs_ptr, s_st, dx_ptr, dx_st,
    D1, D2, P, Q, eps: tl.constexpr,
    X_FAST: tl.constexpr, M_FAST: tl.constexpr, C_FAST: tl.constexpr, S_FAST: tl.constexpr,
    DX_FAST: tl.constexpr, HAS_GM: tl.constexpr, HAS_GC: tl.constexpr,
    HAS_GS: tl.constexpr, CD: tl.constexpr, BP: tl.constexpr, BQ: tl.constexpr,
    WIDE: tl.constexpr,
):
    """Gradient of ``x`` from the gradients ``gm gc gs`` of the three features, one tile.

    Eager reference: autograd through [`magnitude_phase`][torchlass.stft.magnitude_phase];
    the features are recomputed from ``x``. A feature whose gradient is None is skipped
    (``HAS_G* = False``, its pointer unused). Strides as the forward kernel's.
    """
    at = tile_coords(D1, D2, P, Q, BP, BQ, WIDE)
    xr, xi = load_complex_tile(x_ptr, x_st, at, X_FAST, CD)
    power = xr * xr + xi * xi
    mag = tl.sqrt(tl.maximum(power, eps))
    cos = xr / mag
    sin = xi / mag
    # k = 1 where the floor is inactive (the clamp passes its gradient at equality).
    k = tl.where(power >= eps, 1.0, 0.0).to(CD)
    dxr = tl.full(xr.shape, 0.0, CD)
    dxi = tl.full(xi.shape, 0.0, CD)
    if HAS_GM:
        gm = load_tile(gm_ptr, m_st, at, M_FAST, CD)
        dxr += gm * k * cos
        dxi += gm * k * sin
    if HAS_GC:
        gc = load_tile(gc_ptr, c_st, at, C_FAST, CD)
        dxr += gc * (1.0 - k * cos * cos) / mag
        dxi -= gc * k * cos * sin / mag
    if HAS_GS:
        gs = load_tile(gs_ptr, s_st, at, S_FAST, CD)
        dxr -= gs * k * cos * sin / mag
        dxi += gs * (1.0 - k * sin * sin) / mag
    store_complex_tile(dx_ptr, dxr, dxi, dx_st, at, DX_FAST)


_FORWARD_FAST = ("X_FAST", "M_FAST", "C_FAST", "S_FAST")
_BACKWARD_FAST = ("X_FAST", "M_FAST", "C_FAST", "S_FAST", "DX_FAST")


def _real_dtype(spec: torch.Tensor) -> torch.dtype:
    return torch.float16 if spec.dtype == torch.complex32 else spec.real.dtype


class _FusedMagnitudePhase(torch.autograd.Function):
    @staticmethod
    def forward(ctx, spec: torch.Tensor, eps: float
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shape = tuple(spec.shape)
        dtype = _real_dtype(spec)
        cd = torch.float64 if dtype == torch.float64 else torch.float32
        outs = [torch.empty(shape, dtype=dtype, device=spec.device) for _ in range(3)]
        ctx.save_for_backward(spec)
        ctx.eps, ctx.cd = eps, cd
        ctx.set_materialize_grads(False)
        if spec.numel():
            launch_elementwise(_features_forward_kernel, _FORWARD_FAST, shape, [spec], outs,
                               {"eps": eps}, cd)
        return outs[0], outs[1], outs[2]

    @staticmethod
    def backward(ctx, *grads: torch.Tensor | None) -> tuple[torch.Tensor | None, None]:
        (spec,) = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None
        shape = tuple(spec.shape)
        dx, _ = grad_buffer(spec, shape, spec.dtype, spec)
        if spec.numel() == 0 or all(g is None for g in grads):
            return dx.zero_(), None
        unused = torch.empty((), dtype=ctx.cd, device=spec.device)
        flags = {"eps": ctx.eps, "HAS_GM": grads[0] is not None,
                 "HAS_GC": grads[1] is not None, "HAS_GS": grads[2] is not None}
        inputs = [spec, *(unused if g is None else g for g in grads)]
        launch_elementwise(_features_backward_kernel, _BACKWARD_FAST, shape, inputs, [dx],
                           flags, ctx.cd)
        return dx, None


def fused_magnitude_phase(
    spec: torch.Tensor, *, eps: float = 1e-10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fused [`magnitude_phase`][torchlass.stft.magnitude_phase]: floored magnitude, cosine, sine.

    ``mag = sqrt(max(Re^2 + Im^2, eps))``, ``cos = Re / mag``, ``sin = Im / mag``, from one
    read of ``spec``; gradients equal the eager function's (the floor passes no gradient
    to ``mag`` below ``eps``).

    Args:
        spec: complex spectrogram (any layout, e.g. straight from `torch.stft`).
        eps: floor on the squared magnitude, > 0 (the baseline's 1e-10).

    Returns:
        ``(mag, cos, sin)``, contiguous real tensors of the precision of ``spec`` (float16
        for complex32, computed in float32).

    Shape:
        ``spec``: ``(..., freq, frames)``; each output: the same shape.

    Raises:
        DTypeError: ``spec`` is not complex.
        ValueRangeError: ``eps`` is not positive.
        DeviceError: ``spec`` is not on a CUDA device.

    Examples:
        >>> mag, cos, sin = fused_magnitude_phase(torch.tensor([[3 + 4j]]))  # doctest: +SKIP
        >>> mag, cos, sin  # doctest: +SKIP
        (tensor([[5.]]), tensor([[0.6000]]), tensor([[0.8000]]))
    """
    fn = "fused_magnitude_phase"
    check_dtype(spec, fn, "spec", complex_=True)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ValueRangeError(f"{fn}(): argument 'eps' expected a positive float, got {eps!r}")
    check_kernel_device(fn, spec=spec)
    return _FusedMagnitudePhase.apply(spec.resolve_conj(), float(eps))
