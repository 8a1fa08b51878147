"""Fused Triton kernels for the three mask families of [`masks`][torchlass.masks.functional].

Each family is one complex product ``X = (a + j b) * Y`` (the real/imaginary mask takes
``Re X = a Re Y, Im X = b Im Y``): the complex ratio mask uses the planes as ``(a, b)``, the
magnitude+phase mask ``(a, b) = sigmoid(z0) (p_r, p_i) / max(|p|, 1e-10)`` with
``p = (tanh z1, tanh z2)``. One kernel reads the spectrogram and the planes once and
writes the output; the backward kernel recomputes ``(a, b)`` from the saved inputs
instead of saving intermediates, so nothing is kept beyond the inputs. Planes broadcast
against the spectrogram through strides (nothing is expanded in memory); a broadcast
input's gradient is summed down after the kernel. Arithmetic is float32 (float64 when an
input is double), whatever the storage dtype (bfloat16, float16, complex32 included).

Backward of the magnitude+phase mask. The eager reference is
[`apply_mag_phase_mask`][torchlass.masks.apply_mag_phase_mask]; with ``g = g_r + j g_i``
the gradient autograd hands back for the output and ``Y`` the spectrogram:

```text
m = sigmoid(z0)        p = (p_r, p_i) = (tanh z1, tanh z2)
rho = sqrt(max(p_r^2 + p_i^2, F^2))          F = 1e-10, the baseline's phasor floor
c = p_r / rho          s = p_i / rho          a = m c          b = m s

dL/da = Re(g conj Y) = g_r Y_r + g_i Y_i     dL/db = Im(g conj Y) = g_i Y_r - g_r Y_i
dL/dm = c dL/da + s dL/db                    dL/dz0 = dL/dm m (1 - m)
dL/dc = m dL/da                              dL/ds = m dL/db
```

Above the floor (``rho = |p|``) the Jacobian of the unit phasor ``(c, s)`` with respect to
``p`` is ``[[s^2, -c s], [-c s, c^2]] / rho``, so with ``w = (s dL/dc - c dL/ds) / rho``

```text
dL/dp_r = s w                                dL/dp_i = -c w
```

(the gradient is tangent to the unit circle: scaling ``p`` does not change the phase).
Below the floor ``rho = F`` is a constant and ``dL/dp_r = dL/dc / F``,
``dL/dp_i = dL/ds / F``: finite, as the eager function's. Last, ``tanh' = 1 - tanh^2``:
``dL/dz1 = dL/dp_r (1 - p_r^2)`` and ``dL/dz2 = dL/dp_i (1 - p_i^2)``. The gradient of
``Y`` is ``conj(a + j b) g``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from torchlass.checks import check_mask_inputs
from torchlass.kernels._layout import check_kernel_device, empty_like_layout, grad_buffer
from torchlass.kernels._tiles import (
    launch_elementwise,
    load_complex_tile,
    load_tile,
    store_complex_tile,
    store_tile,
    tanh,
    tile_coords,
)

__all__ = [
    "fused_apply_complex_ratio_mask",
    "fused_apply_mag_phase_mask",
    "fused_apply_real_imag_mask",
]

# The kernels' MODE, one per mask family. Globals a kernel reads must be tl.constexpr.
REAL_IMAG = tl.constexpr(0)
COMPLEX_RATIO = tl.constexpr(1)
MAG_PHASE = tl.constexpr(2)
# Floor on |(p_r, p_i)|^2: the square of the baseline's phasor floor 1e-10.
PHASOR_FLOOR_SQ = tl.constexpr(1e-20)


@triton.jit
def _mask_planes(z0, z1, z2, MODE: tl.constexpr):
    """The mask ``(a, b)`` and, for MODE == MAG_PHASE, ``(m, p_r, p_i, rho)``."""
    if MODE == MAG_PHASE:
        m = 1.0 / (1.0 + tl.exp(-z0))
        p_r = tanh(z1)
        p_i = tanh(z2)
        rho = tl.sqrt(tl.maximum(p_r * p_r + p_i * p_i, PHASOR_FLOOR_SQ))
        a = m * (p_r / rho)
        b = m * (p_i / rho)
    else:
        m = z0
        p_r = z0
        p_i = z1
        rho = z1
        a = z0
        b = z1
    return a, b, m, p_r, p_i, rho


@triton.jit
def _load_mask(z0_ptr, a_st, A_FAST: tl.constexpr, z1_ptr, b_st, B_FAST: tl.constexpr, z2_ptr,
               c_st, C_FAST: tl.constexpr, at, MODE: tl.constexpr, CD: tl.constexpr):
    """Load this tile's planes (``z2`` for MAG_PHASE only) and return ``_mask_planes``."""
    z0 = load_tile(z0_ptr, a_st, at, A_FAST, CD)
    z1 = load_tile(z1_ptr, b_st, at, B_FAST, CD)
    if MODE == MAG_PHASE:
        z2 = load_tile(z2_ptr, c_st, at, C_FAST, CD)
    else:
        z2 = z1
    return _mask_planes(z0, z1, z2, MODE)


@triton.jit
def _mask_forward_kernel(
    x_ptr, x_st, z0_ptr, a_st, z1_ptr, b_st, z2_ptr, c_st, y_ptr, y_st, D1, D2, P, Q,
    X_FAST: tl.constexpr, A_FAST: tl.constexpr, B_FAST: tl.constexpr, C_FAST: tl.constexpr,
    Y_FAST: tl.constexpr, MODE: tl.constexpr, CD: tl.constexpr,
    BP: tl.constexpr, BQ: tl.constexpr, WIDE: tl.constexpr,
):
    """``y = (a + j b) x`` (real/imaginary: ``a Re x + j b Im x``) on one tile.

    Eager reference: [`apply_real_imag_mask`][torchlass.masks.apply_real_imag_mask],
    [`apply_complex_ratio_mask`][torchlass.masks.apply_complex_ratio_mask] or
    [`apply_mag_phase_mask`][torchlass.masks.apply_mag_phase_mask], by ``MODE``.

    Strides: each operand (spectrogram ``x``, planes ``z0 z1 z2``, output ``y``) comes as a
    pointer and a tuple of five element strides over the plan's ``(D0, D1, D2, P, Q)`` (see
    [`plan_tiles`][torchlass.kernels._layout.plan_tiles]): 0 along a broadcast dim,
    counted in complex elements for ``x`` and ``y``. ``*_FAST`` says the operand is
    contiguous along ``P``, so its tile is read transposed. ``z2`` is read only for
    ``MAG_PHASE``.
    """
    at = tile_coords(D1, D2, P, Q, BP, BQ, WIDE)
    xr, xi = load_complex_tile(x_ptr, x_st, at, X_FAST, CD)
    a, b, _m, _p_r, _p_i, _rho = _load_mask(z0_ptr, a_st, A_FAST, z1_ptr, b_st, B_FAST, z2_ptr,
                                            c_st, C_FAST, at, MODE, CD)
    if MODE == REAL_IMAG:
        yr = a * xr
        yi = b * xi
    else:
        yr = a * xr - b * xi
        yi = a * xi + b * xr
    store_complex_tile(y_ptr, yr, yi, y_st, at, Y_FAST)


@triton.jit
def _mask_backward_kernel(
    x_ptr, x_st, z0_ptr, a_st, z1_ptr, b_st, z2_ptr, c_st, g_ptr, g_st,
    dx_ptr, dx_st, d0_ptr, d0_st, d1_ptr, d1_st, d2_ptr, d2_st, D1, D2, P, Q,
    X_FAST: tl.constexpr, A_FAST: tl.constexpr, B_FAST: tl.constexpr, C_FAST: tl.constexpr,
    G_FAST: tl.constexpr, DX_FAST: tl.constexpr, D0_FAST: tl.constexpr,
    D1_FAST: tl.constexpr, D2_FAST: tl.constexpr,
    NEED_DX: tl.constexpr, NEED_D0: tl.constexpr, NEED_D1: tl.constexpr,
    NEED_D2: tl.constexpr, MODE: tl.constexpr, CD: tl.constexpr,
    BP: tl.constexpr, BQ: tl.constexpr, WIDE: tl.constexpr,
):
    """Gradients of the forward kernel's inputs from the output's gradient ``g``, one tile.

    Eager reference: autograd through the function the forward kernel equals (see the
    module docstring for the magnitude+phase derivation). ``(a, b)`` is recomputed from
    the planes rather than saved. Strides as the forward kernel's; ``dx d0 d1 d2`` are
    written only where ``NEED_*`` is set, in full broadcast shape (the host sums them
    down to a broadcast input's shape).
    """
    at = tile_coords(D1, D2, P, Q, BP, BQ, WIDE)
    gr, gi = load_complex_tile(g_ptr, g_st, at, G_FAST, CD)
    a, b, m, p_r, p_i, rho = _load_mask(z0_ptr, a_st, A_FAST, z1_ptr, b_st, B_FAST, z2_ptr,
                                        c_st, C_FAST, at, MODE, CD)
    if NEED_DX:
        if MODE == REAL_IMAG:
            dxr = gr * a
            dxi = gi * b
        else:  # conj(a + j b) * g
            dxr = gr * a + gi * b
            dxi = gi * a - gr * b
        store_complex_tile(dx_ptr, dxr, dxi, dx_st, at, DX_FAST)
    if NEED_D0 or NEED_D1 or NEED_D2:
        xr, xi = load_complex_tile(x_ptr, x_st, at, X_FAST, CD)
        if MODE == REAL_IMAG:
            da = gr * xr
            db = gi * xi
        else:  # dL/da = Re(g conj(x)), dL/db = Im(g conj(x))
            da = gr * xr + gi * xi
            db = gi * xr - gr * xi
        if MODE == MAG_PHASE:
            cos_m = p_r / rho
            sin_m = p_i / rho
            if NEED_D0:
                dm = da * cos_m + db * sin_m
                store_tile(d0_ptr, dm * m * (1.0 - m), d0_st, at, D0_FAST)
            dcos = da * m
            dsin = db * m
            floored = p_r * p_r + p_i * p_i < PHASOR_FLOOR_SQ
            w = (dcos * sin_m - dsin * cos_m) / rho
            dp_r = tl.where(floored, dcos / rho, sin_m * w)
            dp_i = tl.where(floored, dsin / rho, -cos_m * w)
            if NEED_D1:
                store_tile(d1_ptr, dp_r * (1.0 - p_r * p_r), d1_st, at, D1_FAST)
            if NEED_D2:
                store_tile(d2_ptr, dp_i * (1.0 - p_i * p_i), d2_st, at, D2_FAST)
        else:
            if NEED_D0:
                store_tile(d0_ptr, da, d0_st, at, D0_FAST)
            if NEED_D1:
                store_tile(d1_ptr, db, d1_st, at, D1_FAST)


def _compute_dtype(spec: torch.Tensor, planes: list[torch.Tensor]) -> torch.dtype:
    """Real dtype of the result, as [`masks`][torchlass.masks.functional] promotes (>= float32)."""
    double = any(t.dtype in (torch.float64, torch.complex128) for t in (spec, *planes))
    return torch.float64 if double else torch.float32


_FORWARD_FAST = ("X_FAST", "A_FAST", "B_FAST", "C_FAST", "Y_FAST")
_BACKWARD_FAST = ("X_FAST", "A_FAST", "B_FAST", "C_FAST", "G_FAST", "DX_FAST", "D0_FAST",
                  "D1_FAST", "D2_FAST")


class _FusedMask(torch.autograd.Function):
    @staticmethod
    def forward(ctx, mode: int, shape: tuple[int, ...], spec: torch.Tensor,
                *planes: torch.Tensor) -> torch.Tensor:
        cd = _compute_dtype(spec, list(planes))
        out = empty_like_layout(shape, cd.to_complex(), spec)
        ctx.save_for_backward(spec, *planes)
        ctx.mode, ctx.cd, ctx.shape = mode, cd, shape
        if out.numel():
            z = list(planes) + [planes[-1]] * (3 - len(planes))  # unused third plane
            launch_elementwise(_mask_forward_kernel, _FORWARD_FAST, shape, [spec, *z], [out],
                               {"MODE": mode}, cd)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        spec, *planes = ctx.saved_tensors
        inputs = [spec, *planes]
        needs = list(ctx.needs_input_grad[2:])
        cd, shape = ctx.cd, ctx.shape
        buffers = [
            grad_buffer(t, shape, cd.to_complex() if t.is_complex() else cd, grad)
            if need else None for t, need in zip(inputs, needs, strict=True)
        ]
        if grad.numel() == 0:
            for b in buffers:
                if b is not None:
                    b[0].zero_()
        elif any(needs):
            z = list(planes) + [planes[-1]] * (3 - len(planes))
            unused = torch.empty((), dtype=cd, device=grad.device)  # never written
            outs = [b[0] if b is not None else unused for b in buffers]
            outs += [unused] * (4 - len(outs))
            needs += [False] * (4 - len(needs))
            flags = {"MODE": ctx.mode, "NEED_DX": needs[0], "NEED_D0": needs[1],
                     "NEED_D1": needs[2], "NEED_D2": needs[3]}
            launch_elementwise(_mask_backward_kernel, _BACKWARD_FAST, shape,
                               [spec, *z, grad.resolve_conj()], outs, flags, cd)
        grads: list[torch.Tensor | None] = [None, None]
        for t, b in zip(inputs, buffers, strict=True):
            if b is None:
                grads.append(None)
            else:
                grads.append(b[0].sum_to_size(t.shape).to(t.dtype) if b[1] else b[0])
        return tuple(grads)


def _check(fn: str, spec: torch.Tensor, **planes: torch.Tensor) -> tuple[int, ...]:
    """Validate the inputs as the eager functions do, and their device; return the shape."""
    shape = check_mask_inputs(fn, spec, **planes)
    check_kernel_device(fn, spec=spec, **planes)
    return shape


def _resolve(t: torch.Tensor) -> torch.Tensor:
    """Materialise lazy conjugate/negative views: the kernels read raw memory."""
    return t.resolve_conj().resolve_neg()


def fused_apply_mag_phase_mask(
    spec: torch.Tensor,
    mag_logit: torch.Tensor,
    phase_real_logit: torch.Tensor,
    phase_imag_logit: torch.Tensor,
) -> torch.Tensor:
    """Fused [`apply_mag_phase_mask`][torchlass.masks.apply_mag_phase_mask] (the baseline's mask).

    ``X = m e^{j angle M} Y`` with ``m = sigmoid(z0)`` and the phasor of
    ``(tanh z1, tanh z2)`` floored at length 1e-10, in one pass (forward) and one pass
    (backward) over the data. Values and gradients equal the eager function's to rounding,
    including the finite gradient at ``z1 = z2 = 0`` (``1 / 1e-10`` per unit of ``p``).

    Args:
        spec: complex mixture spectrogram ``Y``.
        mag_logit: magnitude-mask logit ``z0``.
        phase_real_logit: phase logit ``z1``.
        phase_imag_logit: phase logit ``z2``.

    Returns:
        Complex64 (complex128 if any input is double), frequency-fastest in memory when
        ``spec`` is (as `torch.stft` returns it).

    Shape:
        all inputs broadcast together, e.g. ``spec`` ``(batch, 1, channels, freq, frames)``
        and logits ``(batch, sources, channels, freq, frames)``; output: the broadcast shape.

    Raises:
        DTypeError: ``spec`` is not complex or a logit is not real floating-point.
        ShapeError: the shapes do not broadcast.
        DeviceError: the tensors are not on one CUDA device.

    Examples:
        >>> y = torch.tensor([3 + 4j])
        >>> fused_apply_mag_phase_mask(y, torch.tensor([0.0]), torch.tensor([9.0]),
        ...                            torch.tensor([0.0]))  # doctest: +SKIP
        tensor([1.5000+2.j])
    """
    shape = _check("fused_apply_mag_phase_mask", spec, mag_logit=mag_logit,
                   phase_real_logit=phase_real_logit, phase_imag_logit=phase_imag_logit)
    return _FusedMask.apply(MAG_PHASE.value, shape, _resolve(spec), _resolve(mag_logit),
                            _resolve(phase_real_logit), _resolve(phase_imag_logit))


def fused_apply_real_imag_mask(
    spec: torch.Tensor, mask_real: torch.Tensor, mask_imag: torch.Tensor
) -> torch.Tensor:
    """Fused [`apply_real_imag_mask`][torchlass.masks.apply_real_imag_mask].

    ``X = M_re Re Y + j M_im Im Y``.

    Args:
        spec: complex mixture spectrogram ``Y``.
        mask_real: ``M_re``.
        mask_imag: ``M_im``.

    Returns:
        Complex64 (complex128 if any input is double), laid out like ``spec``'s last two
        dims.

    Shape:
        all three broadcast together; output: the broadcast shape.

    Raises:
        DTypeError: ``spec`` is not complex or a mask is not real floating-point.
        ShapeError: the shapes do not broadcast.
        DeviceError: the tensors are not on one CUDA device.

    Examples:
        >>> fused_apply_real_imag_mask(torch.tensor([3 + 4j]), torch.tensor([0.5]),
        ...                            torch.tensor([-1.0]))  # doctest: +SKIP
        tensor([1.5000-4.j])
    """
    shape = _check("fused_apply_real_imag_mask", spec, mask_real=mask_real, mask_imag=mask_imag)
    return _FusedMask.apply(REAL_IMAG.value, shape, _resolve(spec), _resolve(mask_real),
                            _resolve(mask_imag))


def fused_apply_complex_ratio_mask(
    spec: torch.Tensor, mask_real: torch.Tensor, mask_imag: torch.Tensor
) -> torch.Tensor:
    """Fused [`apply_complex_ratio_mask`][torchlass.masks.apply_complex_ratio_mask].

    ``X = (M_re + j M_im) Y``.

    Args:
        spec: complex mixture spectrogram ``Y``.
        mask_real: real part of the mask.
        mask_imag: imaginary part of the mask.

    Returns:
        Complex64 (complex128 if any input is double), laid out like ``spec``'s last two
        dims.

    Shape:
        all three broadcast together; output: the broadcast shape.

    Raises:
        DTypeError: ``spec`` is not complex or a mask is not real floating-point.
        ShapeError: the shapes do not broadcast.
        DeviceError: the tensors are not on one CUDA device.

    Examples:
        >>> fused_apply_complex_ratio_mask(torch.tensor([3 + 4j]), torch.tensor([0.0]),
        ...                                torch.tensor([1.0]))  # doctest: +SKIP
        tensor([-4.+3.j])
    """
    shape = _check("fused_apply_complex_ratio_mask", spec, mask_real=mask_real,
                   mask_imag=mask_imag)
    return _FusedMask.apply(COMPLEX_RATIO.value, shape, _resolve(spec), _resolve(mask_real),
                            _resolve(mask_imag))
