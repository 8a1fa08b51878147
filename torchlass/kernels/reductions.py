"""One-pass reductions behind the SNR-family metrics and the MixIT assignment search.

SI-SDR and SNR of a pair of signals depend on them only through five per-row sums, the
moments ``(sum x, sum s, <x, s>, ||s||^2, ||x||^2)``;
[`fused_row_moments`][torchlass.kernels.reductions.fused_row_moments] reads both signals once and
returns them in float64. Products of float32 samples are exact in float64, so the error energy
``alpha^2 ||s||^2 - 2 alpha <x, s> + ||x||^2`` formed from the moments agrees with the explicitly
formed error to about 1e-3 dB even at 110 dB, where the machine-epsilon floor of the convention
bounds float32 signals anyway. Its backward is one more pass, ``dx = g_1 + g_3 s + 2 g_5 x``.
[`fused_si_sdr`][torchlass.kernels.reductions.fused_si_sdr] and
[`fused_snr`][torchlass.kernels.reductions.fused_snr] are
[`torchlass.metrics.si_sdr`][torchlass.metrics.si_sdr] and
[`torchlass.metrics.snr`][torchlass.metrics.snr] built on it.

MixIT ranks all assignments of ``M`` estimates to ``N`` mixtures from the Gram matrix of
the estimates and their inner products with the mixtures;
[`fused_mixture_gram`][torchlass.kernels.reductions.fused_mixture_gram] computes all three in one
pass (a ``(M + N) x (M + N)`` Gram matrix per example, float32 products summed per chunk, chunks
summed in float64).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from torchlass.checks import (
    check_min_length,
    check_ndim,
    check_real_floating,
    common_dtype,
    machine_eps,
)
from torchlass.errors import ShapeError
from torchlass.kernels._layout import check_kernel_device
from torchlass.kernels._tiles import cast_for_store, interpreted, on_device, sum_lanes

__all__ = ["fused_mixture_gram", "fused_row_moments", "fused_si_sdr", "fused_snr"]

# Samples a program of the moment kernels loads at once: 8 per thread of the default 4
# warps, enough loads in flight to hide memory latency.
_BLOCK = 1024
# Samples per program of the moment kernel: 16 blocks, so that a 10 s signal at 16 kHz
# spreads over ~10 programs (parallel even for a batch of a few signals) while the
# partial sums left to add on the host stay few.
_CHUNK = 16 * _BLOCK
# Samples per tl.dot of the Gram kernel (its inner dimension): an R x 64 float32 tile of
# the stacked signals stays in registers for the few rows (M + N) of a MixIT problem.
_GRAM_BLOCK = 64
# Samples per program of the Gram kernel: float32 sums over at most 4096 products each
# before the host adds the chunks in float64.
_GRAM_CHUNK = 64 * _GRAM_BLOCK
# tl.dot needs every dimension >= 16: the Gram tile has at least 16 rows (zeros past M + N).
_DOT_MIN = 16
# Per-row moments (sum x, sum s, <x, s>, ||s||^2, ||x||^2), in this order.
N_MOMENTS = tl.constexpr(5)


@triton.jit
def _moments_kernel(x_ptr, s_ptr, out_ptr, T, N_CHUNKS, sx_row, sx_t, ss_row, ss_t,
                    CHUNK: tl.constexpr, BLOCK: tl.constexpr, LOG2_BLOCK: tl.constexpr,
                    TREE: tl.constexpr):
    """Partial moments of one chunk of ``CHUNK`` samples of one row, in float64.

    Eager reference: the sums behind [`si_sdr`][torchlass.metrics.si_sdr] and
    [`snr`][torchlass.metrics.snr]. Strides: ``x`` and ``s`` are addressed as
    ``row * s_row + t * s_t`` (any 2-d layout); the output is contiguous
    ``(rows, N_CHUNKS, N_MOMENTS)``, summed over chunks on the host. Grid
    ``(N_CHUNKS, rows)``. ``TREE`` sums lanes without ``tl.sum`` (interpreter).
    """
    chunk = tl.program_id(0)
    row = tl.program_id(1).to(tl.int64)
    acc_x = tl.full([BLOCK], 0.0, tl.float64)
    acc_s = tl.full([BLOCK], 0.0, tl.float64)
    acc_xs = tl.full([BLOCK], 0.0, tl.float64)
    acc_ss = tl.full([BLOCK], 0.0, tl.float64)
    acc_xx = tl.full([BLOCK], 0.0, tl.float64)
    first = chunk * CHUNK
    for start in range(first, tl.minimum(first + CHUNK, T), BLOCK):
        t = start + tl.arange(0, BLOCK)
        inside = t < T
        x = tl.load(x_ptr + row * sx_row + t * sx_t, mask=inside, other=0.0).to(tl.float64)
        s = tl.load(s_ptr + row * ss_row + t * ss_t, mask=inside, other=0.0).to(tl.float64)
        acc_x += x
        acc_s += s
        acc_xs += x * s
        acc_ss += s * s
        acc_xx += x * x
    out = out_ptr + (row * N_CHUNKS + chunk) * N_MOMENTS
    one = tl.arange(0, 1)
    tl.store(out + one, sum_lanes(acc_x, LOG2_BLOCK, TREE))
    tl.store(out + 1 + one, sum_lanes(acc_s, LOG2_BLOCK, TREE))
    tl.store(out + 2 + one, sum_lanes(acc_xs, LOG2_BLOCK, TREE))
    tl.store(out + 3 + one, sum_lanes(acc_ss, LOG2_BLOCK, TREE))
    tl.store(out + 4 + one, sum_lanes(acc_xx, LOG2_BLOCK, TREE))


@triton.jit
def _moments_backward_kernel(x_ptr, s_ptr, g_ptr, dx_ptr, ds_ptr, T, sx_row, sx_t, ss_row,
                             ss_t, NEED_DX: tl.constexpr, NEED_DS: tl.constexpr,
                             BLOCK: tl.constexpr):
    """``dx = g_1 + g_3 s + 2 g_5 x`` and ``ds = g_2 + g_3 x + 2 g_4 s`` on ``BLOCK`` samples.

    Eager reference: autograd through the five sums. Strides: ``x`` and ``s`` as in the
    forward kernel; the moments' gradient ``g`` is contiguous ``(rows, N_MOMENTS)``
    float64; ``dx`` and ``ds`` are contiguous ``(rows, T)``. Grid ``(cdiv(T, BLOCK), rows)``.
    """
    row = tl.program_id(1).to(tl.int64)
    t = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = t < T
    x = tl.load(x_ptr + row * sx_row + t * sx_t, mask=inside, other=0.0).to(tl.float64)
    s = tl.load(s_ptr + row * ss_row + t * ss_t, mask=inside, other=0.0).to(tl.float64)
    g = g_ptr + row * N_MOMENTS
    g_xs = tl.load(g + 2)
    if NEED_DX:
        dx = tl.load(g) + g_xs * s + 2.0 * tl.load(g + 4) * x
        tl.store(dx_ptr + row * T + t, cast_for_store(dx, dx_ptr.dtype.element_ty), mask=inside)
    if NEED_DS:
        ds = tl.load(g + 1) + g_xs * x + 2.0 * tl.load(g + 3) * s
        tl.store(ds_ptr + row * T + t, cast_for_store(ds, ds_ptr.dtype.element_ty), mask=inside)


class _RowMoments(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        rows, length = x.shape
        n_chunks = triton.cdiv(length, _CHUNK)
        partial = torch.empty(rows, n_chunks, N_MOMENTS.value, dtype=torch.float64, device=x.device)
        if rows:
            with on_device(x):
                _moments_kernel[(n_chunks, rows)](
                    x, s, partial, length, n_chunks, x.stride(0), x.stride(1), s.stride(0),
                    s.stride(1), CHUNK=_CHUNK, BLOCK=_BLOCK, LOG2_BLOCK=_BLOCK.bit_length() - 1,
                    TREE=interpreted(_moments_kernel),
                )
        ctx.save_for_backward(x, s)
        return partial.sum(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, s = ctx.saved_tensors
        need_dx, need_ds = ctx.needs_input_grad
        rows, length = x.shape
        dx = torch.empty(rows, length, dtype=x.dtype, device=x.device) if need_dx else None
        ds = torch.empty(rows, length, dtype=s.dtype, device=s.device) if need_ds else None
        if rows and (need_dx or need_ds):
            with on_device(x):
                _moments_backward_kernel[(triton.cdiv(length, _BLOCK), rows)](
                    x, s, grad.double().contiguous(), x if dx is None else dx,
                    s if ds is None else ds, length, x.stride(0), x.stride(1), s.stride(0),
                    s.stride(1), NEED_DX=need_dx, NEED_DS=need_ds, BLOCK=_BLOCK,
                )
        return dx, ds


def _check_pair(fn: str, estimate: torch.Tensor, target: torch.Tensor) -> None:
    for name, t in (("estimate", estimate), ("target", target)):
        check_real_floating(t, fn, name)
        check_ndim(t, fn, name, min_ndim=1, layout="(..., time)")
    if estimate.shape != target.shape:
        raise ShapeError(f"{fn}(): arguments 'estimate' and 'target' must have the same "
                         f"shape, got {tuple(estimate.shape)} and {tuple(target.shape)}")
    check_min_length(estimate, fn, "estimate", 1, why="the time axis must not be empty")
    check_kernel_device(fn, estimate=estimate, target=target)


def fused_row_moments(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-signal sums ``(sum x, sum s, <x, s>, ||s||^2, ||x||^2)`` in one pass, float64.

    ``x`` is ``estimate`` and ``s`` is ``target``. Products are formed and summed in
    float64 (exact for float32 and half inputs). Differentiable: the backward is one
    element-wise pass.

    Args:
        estimate: real signal ``x``.
        target: real signal ``s``, same shape.

    Returns:
        float64 moments.

    Shape:
        inputs ``(..., time)``; output ``(..., 5)``.

    Raises:
        DTypeError: an input is not real floating-point.
        ShapeError: the shapes differ or the time axis is empty.
        DeviceError: the inputs are not on one CUDA device.

    Examples:
        >>> fused_row_moments(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))  # doctest: +SKIP
        tensor([ 3.,  7., 11., 25.,  5.], dtype=torch.float64)
    """
    _check_pair("fused_row_moments", estimate, target)
    *lead, length = estimate.shape
    moments = _RowMoments.apply(estimate.reshape(-1, length), target.reshape(-1, length))
    return moments.reshape(*lead, N_MOMENTS.value)


def _centred(moments: torch.Tensor, length: int, zero_mean: bool
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(<x, s>, ||s||^2, ||x||^2)``, of the mean-removed signals when ``zero_mean``."""
    sum_x, sum_s, xs, ss, xx = moments.unbind(-1)
    if zero_mean:
        xs = xs - sum_x * sum_s / length
        ss = (ss - sum_s * sum_s / length).clamp_min(0.0)
        xx = (xx - sum_x * sum_x / length).clamp_min(0.0)
    return xs, ss, xx


def fused_si_sdr(estimate: torch.Tensor, target: torch.Tensor, *, zero_mean: bool = False
                 ) -> torch.Tensor:
    """SI-SDR (dB) from one pass over the signals; equals [`si_sdr`][torchlass.metrics.si_sdr].

    ``alpha = (<x, s> + eps) / (||s||^2 + eps)``,
    ``SI-SDR = 10 log10((alpha^2 ||s||^2 + eps) / (||alpha s - x||^2 + eps))`` with
    ``||alpha s - x||^2 = alpha^2 ||s||^2 - 2 alpha <x, s> + ||x||^2`` from the float64
    moments (clamped at 0), ``eps`` the machine epsilon of the input dtype. Input checks
    for finite values are the caller's.

    Args:
        estimate: estimated signal ``x``.
        target: reference signal ``s``, same shape.
        zero_mean: remove each signal's mean first (SI-SNR).

    Returns:
        float64 SI-SDR, one value per signal; differentiable.

    Shape:
        inputs ``(..., time)``; output ``(...)``.

    Raises:
        DTypeError: an input is not real floating-point.
        ShapeError: the shapes differ or the time axis is empty.
        DeviceError: the inputs are not on one CUDA device.

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> fused_si_sdr(torch.tensor([2.5, 0.0, 2.0, 8.0]), target)  # doctest: +SKIP
        tensor(18.4030, dtype=torch.float64)
    """
    _check_pair("fused_si_sdr", estimate, target)
    eps = machine_eps(common_dtype(estimate, target))
    xs, ss, xx = _centred(fused_row_moments(estimate, target), estimate.shape[-1], zero_mean)
    alpha = (xs + eps) / (ss + eps)
    projection = alpha.square() * ss
    error = (projection - 2.0 * alpha * xs + xx).clamp_min(0.0)
    return 10.0 * torch.log10((projection + eps) / (error + eps))


def fused_snr(estimate: torch.Tensor, target: torch.Tensor, *, zero_mean: bool = False
              ) -> torch.Tensor:
    """SNR (dB) from one pass over the signals; equals [`snr`][torchlass.metrics.snr].

    ``SNR = 10 log10((||s||^2 + eps) / (||s - x||^2 + eps))`` with
    ``||s - x||^2 = ||s||^2 - 2 <x, s> + ||x||^2`` from the float64 moments (clamped at 0),
    ``eps`` the machine epsilon of the input dtype.

    Args:
        estimate: estimated signal ``x``.
        target: reference signal ``s``, same shape.
        zero_mean: remove each signal's mean first.

    Returns:
        float64 SNR, one value per signal; differentiable.

    Shape:
        inputs ``(..., time)``; output ``(...)``.

    Raises:
        DTypeError: an input is not real floating-point.
        ShapeError: the shapes differ or the time axis is empty.
        DeviceError: the inputs are not on one CUDA device.

    Examples:
        >>> target = torch.tensor([1.0, -1.0, 1.0, -1.0])
        >>> fused_snr(0.5 * target, target)  # doctest: +SKIP
        tensor(6.0206, dtype=torch.float64)
    """
    _check_pair("fused_snr", estimate, target)
    eps = machine_eps(common_dtype(estimate, target))
    xs, ss, xx = _centred(fused_row_moments(estimate, target), estimate.shape[-1], zero_mean)
    error = (ss - 2.0 * xs + xx).clamp_min(0.0)
    return 10.0 * torch.log10((ss + eps) / (error + eps))


@triton.jit
def _gram_kernel(e_ptr, m_ptr, out_ptr, M, N, T, N_CHUNKS, se_b, se_m, se_t, sm_b, sm_n,
                 sm_t, R: tl.constexpr, CHUNK: tl.constexpr, BLOCK: tl.constexpr):
    """Gram matrix of the ``M`` estimates and ``N`` mixtures stacked, over one chunk.

    Eager reference: the inner products of the Gram search of
    [`mixit_loss`][torchlass.losses.mixit_loss] (``torch.bmm`` in float64). Strides: both
    inputs are addressed as ``b * s_b + row * s_row + t * s_t``; rows ``0..M-1`` of the
    ``R x R`` tile are the estimates, ``M..M+N-1`` the mixtures, the rest zeros. The output
    is contiguous ``(batch, N_CHUNKS, R, R)`` float32, summed over chunks in float64 on the
    host. Grid ``(N_CHUNKS, batch)``.
    """
    chunk = tl.program_id(0)
    b = tl.program_id(1).to(tl.int64)
    r = tl.arange(0, R)
    is_est = r < M
    is_mix = (r >= M) & (r < M + N)
    acc = tl.full([R, R], 0.0, tl.float32)
    first = chunk * CHUNK
    for start in range(first, tl.minimum(first + CHUNK, T), BLOCK):
        t = start + tl.arange(0, BLOCK)
        inside = (t < T)[None, :]
        est = tl.load(e_ptr + b * se_b + r[:, None] * se_m + t[None, :] * se_t,
                      mask=is_est[:, None] & inside, other=0.0).to(tl.float32)
        mix = tl.load(m_ptr + b * sm_b + (r[:, None] - M) * sm_n + t[None, :] * sm_t,
                      mask=is_mix[:, None] & inside, other=0.0).to(tl.float32)
        rows = est + mix
        acc += tl.dot(rows, tl.trans(rows), input_precision="ieee")
    out = out_ptr + (b * N_CHUNKS + chunk) * R * R
    tl.store(out + r[:, None] * R + r[None, :], acc)


def fused_mixture_gram(estimates: torch.Tensor, mixtures: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gram matrix of the estimates, their inner products with the mixtures, mixture powers.

    ``gram[b, i, j] = <e_i, e_j>``, ``cross[b, n, i] = <x_n, e_i>``,
    ``power[b, n] = ||x_n||^2``: everything the MixIT search of
    [`torchlass.losses.mixit_loss`][torchlass.losses.mixit_loss] needs, from one read of both
    tensors. Products are float32 (float64 inputs are computed with `torch.bmm` in float64), partial
    sums over chunks of 4096 samples are added in float64. Not differentiable (the search
    does not differentiate its choice).

    Args:
        estimates: ``M`` signals per example, real floating point.
        mixtures: ``N`` signals per example, same batch and length.

    Returns:
        ``(gram, cross, power)`` in float64.

    Shape:
        ``estimates``: ``(batch, M, time)``; ``mixtures``: ``(batch, N, time)``; outputs
        ``(batch, M, M)``, ``(batch, N, M)``, ``(batch, N)``.

    Raises:
        DTypeError: an input is not real floating-point.
        ShapeError: ranks, batch or time disagree.
        DeviceError: the inputs are not on one CUDA device.

    Examples:
        >>> e, x = torch.randn(2, 4, 100), torch.randn(2, 2, 100)
        >>> gram, cross, power = fused_mixture_gram(e, x)  # doctest: +SKIP
        >>> gram.shape, cross.shape, power.shape  # doctest: +SKIP
        (torch.Size([2, 4, 4]), torch.Size([2, 2, 4]), torch.Size([2, 2]))
    """
    fn = "fused_mixture_gram"
    check_real_floating(estimates, fn, "estimates")
    check_real_floating(mixtures, fn, "mixtures")
    check_ndim(estimates, fn, "estimates", ndim=3, layout="(batch, estimates, time)")
    check_ndim(mixtures, fn, "mixtures", ndim=3, layout="(batch, mixtures, time)")
    (batch, m, length), (m_batch, n, m_length) = estimates.shape, mixtures.shape
    if batch != m_batch or length != m_length:
        raise ShapeError(f"{fn}(): arguments 'estimates' and 'mixtures' must agree in batch "
                         f"and time, got {tuple(estimates.shape)} and {tuple(mixtures.shape)}")
    check_kernel_device(fn, estimates=estimates, mixtures=mixtures)
    estimates, mixtures = estimates.detach(), mixtures.detach()
    if torch.float64 in (estimates.dtype, mixtures.dtype):
        e, x = estimates.double(), mixtures.double()
        return (torch.bmm(e, e.transpose(1, 2)), torch.bmm(x, e.transpose(1, 2)),
                torch.linalg.vecdot(x, x))
    r = max(_DOT_MIN, triton.next_power_of_2(m + n))
    n_chunks = max(1, triton.cdiv(length, _GRAM_CHUNK))
    partial = torch.empty(batch, n_chunks, r, r, dtype=torch.float32, device=estimates.device)
    if batch:
        with on_device(estimates):
            _gram_kernel[(n_chunks, batch)](
                estimates, mixtures, partial, m, n, length, n_chunks, *estimates.stride(),
                *mixtures.stride(), R=r, CHUNK=_GRAM_CHUNK, BLOCK=_GRAM_BLOCK,
            )
    total = partial.double().sum(1)
    power = total[:, m:m + n, m:m + n].diagonal(dim1=1, dim2=2)
    return total[:, :m, :m], total[:, m:m + n, :m], power
