"""Triton building blocks shared by the element-wise kernels: tile indexing, loads, tanh.

Only core builtins are used (not the ``@jit`` helpers of ``triton.language.standard``
such as ``tl.sum`` or ``tl.sigmoid``), so the kernels also run under the interpreter when
Triton itself was imported before ``TRITON_INTERPRET`` was set. A program handles one
``BP x BQ`` tile of the ``(P, Q)`` plane of one outer index
``(i0, i1, i2)`` (see `torchlass.kernels._layout`). Operands contiguous along ``P``
are loaded as a ``BQ x BP`` tile and transposed in registers, so every global access is
coalesced whatever the operand's layout. `launch_elementwise` plans and launches
such a kernel.

Every operand reaches a kernel as a pointer and a tuple ``st`` of its five element strides
``(s0, s1, s2, sp, sq)`` over ``(D0, D1, D2, P, Q)``; a program's place ``at`` is the tuple
``(i0, i1, i2, p, q, P, Q)`` that [`tile_coords`][torchlass.kernels._tiles.tile_coords]
returns. The loads and stores below take both.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

from torchlass.kernels._layout import element_strides, plan_tiles


@triton.jit
def tile_coords(D1, D2, P, Q, BP: tl.constexpr, BQ: tl.constexpr, WIDE: tl.constexpr):
    """This program's place ``(i0, i1, i2, p, q, P, Q)``: outer indices (int64), the tile's
    row and column indices, and the plane's size."""
    pid = tl.program_id(0)
    n_q = (Q + BQ - 1) // BQ
    n_p = (P + BP - 1) // BP
    tq = pid % n_q
    rest = pid // n_q
    tp = rest % n_p
    rest = rest // n_p
    i2 = rest % D2
    rest = rest // D2
    i1 = rest % D1
    i0 = rest // D1
    p = tp * BP + tl.arange(0, BP)
    q = tq * BQ + tl.arange(0, BQ)
    if WIDE:
        p = p.to(tl.int64)
        q = q.to(tl.int64)
    return i0.to(tl.int64), i1.to(tl.int64), i2.to(tl.int64), p, q, P, Q


@triton.jit
def load_tile(ptr, st, at, FAST_P: tl.constexpr, CD: tl.constexpr):
    """Load a ``BP x BQ`` tile (zeros outside ``P x Q``) and convert it to ``CD``."""
    s0, s1, s2, sp, sq = st
    i0, i1, i2, p, q, P, Q = at
    base = ptr + (i0 * s0 + i1 * s1 + i2 * s2)
    if FAST_P:
        mask_t = (q < Q)[:, None] & (p < P)[None, :]
        value = tl.trans(tl.load(base + q[:, None] * sq + p[None, :] * sp, mask=mask_t,
                                 other=0.0))
    else:
        mask = (p < P)[:, None] & (q < Q)[None, :]
        value = tl.load(base + p[:, None] * sp + q[None, :] * sq, mask=mask, other=0.0)
    return value.to(CD)


@triton.jit
def load_complex_tile(ptr, st, at, FAST_P: tl.constexpr, CD: tl.constexpr):
    """Real and imaginary ``BP x BQ`` tiles of an interleaved complex operand.

    Strides are in complex elements (offsets are doubled here). Each element is read as
    one (re, im) pair, a trailing axis of 2 split in registers, so a warp reads whole
    contiguous segments and contiguous operands get vector loads.
    """
    s0, s1, s2, sp, sq = st
    i0, i1, i2, p, q, P, Q = at
    base = ptr + 2 * (i0 * s0 + i1 * s1 + i2 * s2)
    pair = tl.arange(0, 2)
    if FAST_P:
        mask_t = (q < Q)[:, None] & (p < P)[None, :]
        offs = 2 * (q[:, None] * sq + p[None, :] * sp)[:, :, None] + pair[None, None, :]
        re, im = tl.split(tl.load(base + offs, mask=mask_t[:, :, None], other=0.0))
        re = tl.trans(re)
        im = tl.trans(im)
    else:
        mask = (p < P)[:, None] & (q < Q)[None, :]
        offs = 2 * (p[:, None] * sp + q[None, :] * sq)[:, :, None] + pair[None, None, :]
        re, im = tl.split(tl.load(base + offs, mask=mask[:, :, None], other=0.0))
    return re.to(CD), im.to(CD)


@triton.jit
def store_complex_tile(ptr, re, im, st, at, FAST_P: tl.constexpr):
    """Store real and imaginary tiles as interleaved (re, im) pairs."""
    s0, s1, s2, sp, sq = st
    i0, i1, i2, p, q, P, Q = at
    base = ptr + 2 * (i0 * s0 + i1 * s1 + i2 * s2)
    pair = tl.arange(0, 2)
    dtype = ptr.dtype.element_ty
    re = cast_for_store(re, dtype)
    im = cast_for_store(im, dtype)
    if FAST_P:
        mask_t = (q < Q)[:, None] & (p < P)[None, :]
        offs = 2 * (q[:, None] * sq + p[None, :] * sp)[:, :, None] + pair[None, None, :]
        tl.store(base + offs, tl.join(tl.trans(re), tl.trans(im)), mask=mask_t[:, :, None])
    else:
        mask = (p < P)[:, None] & (q < Q)[None, :]
        offs = 2 * (p[:, None] * sp + q[None, :] * sq)[:, :, None] + pair[None, None, :]
        tl.store(base + offs, tl.join(re, im), mask=mask[:, :, None])


@triton.jit
def sum_lanes(x, LOG2_N: tl.constexpr, TREE: tl.constexpr):
    """Sum of a 1-d block of ``2**LOG2_N`` values, as a 1-element block.

    Compiled: ``tl.sum``. Interpreted (``TREE``): pairwise halving with ``reshape`` and
    ``split``, core builtins, because ``tl.sum`` is a ``@jit`` helper of
    ``triton.language.standard`` that fails when Triton was imported before
    ``TRITON_INTERPRET`` was set (and the tree compiles slowly on a GPU).
    """
    if TREE:
        for _ in tl.static_range(LOG2_N):
            left, right = tl.split(tl.reshape(x, [x.shape[0] // 2, 2]))
            x = left + right
        total = x
    else:
        total = tl.sum(x, axis=0, keep_dims=True)
    return total


def interpreted(kernel: object) -> bool:
    """Whether ``kernel`` was decorated under Triton's interpreter."""
    return not isinstance(kernel, triton.runtime.JITFunction)


@triton.jit
def cast_for_store(value, dtype: tl.constexpr):
    """``value.to(dtype)``, through float32 when narrowing float64 (one rounding path)."""
    if value.dtype.is_fp64() and not dtype.is_fp64():
        value = value.to(tl.float32)
    return value.to(dtype)


@triton.jit
def store_tile(ptr, value, st, at, FAST_P: tl.constexpr):
    """Store a ``BP x BQ`` tile (inside ``P x Q``) in the pointer's dtype."""
    s0, s1, s2, sp, sq = st
    i0, i1, i2, p, q, P, Q = at
    base = ptr + (i0 * s0 + i1 * s1 + i2 * s2)
    value = cast_for_store(value, ptr.dtype.element_ty)
    if FAST_P:
        mask_t = (q < Q)[:, None] & (p < P)[None, :]
        tl.store(base + q[:, None] * sq + p[None, :] * sp, tl.trans(value), mask=mask_t)
    else:
        mask = (p < P)[:, None] & (q < Q)[None, :]
        tl.store(base + p[:, None] * sp + q[None, :] * sq, value, mask=mask)


# Levels of the continued fraction of tanh below |x| = 1: ten bring the truncation error
# below 1e-20, under float64's rounding.
TANH_LEVELS = tl.constexpr(10)
# tanh(20) rounds to 1 in float64; clamping there keeps exp(2|x|) finite.
TANH_SATURATION = tl.constexpr(20.0)


@triton.jit
def tanh(x):
    """``tanh`` to full precision in float32 and float64, without libdevice.

    Below ``|x| = 1``: ``TANH_LEVELS`` levels of Lambert's continued fraction
    ``x / (1 + x^2 / (3 + x^2 / (5 + ...)))`` (truncation error below 1e-20), evaluated as
    one quotient; above: ``1 - 2 / (exp(2|x|) + 1)``, free of cancellation there.
    """
    small = tl.minimum(tl.maximum(x, -1.0), 1.0)  # the fraction's branch, kept finite
    x2 = small * small
    # Convergents A_k / B_k of the fraction, starting from A_1 / B_1 = x / 1.
    num_prev = tl.full(x.shape, 0.0, x.dtype)
    num = small
    den_prev = tl.full(x.shape, 1.0, x.dtype)
    den = tl.full(x.shape, 1.0, x.dtype)
    for k in tl.static_range(2, TANH_LEVELS + 1):
        next_num = (2.0 * k - 1.0) * num + x2 * num_prev
        next_den = (2.0 * k - 1.0) * den + x2 * den_prev
        num_prev = num
        den_prev = den
        num = next_num
        den = next_den
    ax = tl.minimum(tl.abs(x), TANH_SATURATION)
    big = 1.0 - 2.0 / (tl.exp(2.0 * ax) + 1.0)
    return tl.where(ax < 1.0, num / den, tl.where(x < 0, -big, big))


def on_device(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Make ``t``'s GPU current for a launch (Triton launches on the current device)."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def launch_elementwise(kernel: triton.JITFunction, fast_names: tuple[str, ...],
                       shape: tuple[int, ...], inputs: list[torch.Tensor],
                       outputs: list[torch.Tensor], flags: dict[str, object],
                       cd: torch.dtype) -> None:
    """Launch a tiled element-wise ``kernel`` over ``shape``.

    Operands are passed as ``pointer, (5 strides)`` in the order ``inputs + outputs``;
    inputs may broadcast, outputs have the full ``shape``. Layouts with too many dims to
    merge (rare) fall back to contiguous copies of the inputs, then of the outputs.
    """
    operands = inputs + outputs
    plan = plan_tiles(shape, tuple(element_strides(t, shape) for t in operands),
                      tuple(t.is_complex() for t in operands))
    if plan is None:
        inputs = [t.expand(shape).contiguous() for t in inputs]
        temps = [t.contiguous() for t in outputs]
        launch_elementwise(kernel, fast_names, shape, inputs, temps, flags, cd)
        for out, temp in zip(outputs, temps, strict=True):
            if temp is not out:
                out.copy_(temp)
        return
    args: list[object] = []
    for t, strides in zip(operands, plan.strides, strict=True):
        args += [torch.view_as_real(t) if t.is_complex() else t, tuple(strides)]
    _, d1, d2, p, q = plan.sizes
    with on_device(operands[0]):
        kernel[plan.grid](
            *args, d1, d2, p, q, **dict(zip(fast_names, plan.fast_p, strict=True)), **flags,
            CD=tl.float64 if cd == torch.float64 else tl.float32,
            BP=plan.block_p, BQ=plan.block_q, WIDE=plan.wide,
        )
