"""Fused forward and backward of the SNR-family losses (SNR, SI-SDR, thresholded SNR).

Every one of these losses is ``10 log10(D) - 10 log10(N)`` for per-row energies ``N``
(the reference part) and ``D`` (the error, plus an optional relative floor), so its
gradient with respect to each signal is a per-row combination ``p * s + q * x + r`` of the
two inputs. The autograd function below computes the few per-row sums in one pass, forms
the error explicitly (no ``1 - cos^2`` cancellation), saves only the per-row scalars,
and writes the gradient in a second pass. On the CPU the rows are processed in chunks
that fit in cache, so no temporary as large as the input is allocated (only the gradient
itself); elsewhere
(CUDA) the whole batch is one chunk. Sums use float32 at least, float64 for float64
inputs; autocast is disabled inside.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from torchlass.errors import check_finite as _check_finite

_DB = 10.0 / math.log(10.0)
# Rows are processed in chunks of about this many samples on the CPU. With one thread,
# 1 MiB of float32 per temporary stays in cache. With several, every op is a parallel
# region whose thread synchronisation costs far more than the op on a busy CPU, so the
# chunks are larger and fewer (16 MiB, still under glibc's 32 MiB mmap threshold).
_CHUNK_ELEMENTS = 1 << 18
_THREADED_CHUNK_ELEMENTS = 1 << 22


class LossConfig(NamedTuple):
    """What the fused loss computes; see `snr_family_loss`."""

    scale_invariant: bool
    zero_mean: bool
    tau: float
    eps: float


def snr_family_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    config: LossConfig,
    *,
    fn: str,
    check_finite: bool = True,
    index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-row loss in dB for ``(rows, time)`` inputs: ``10 log10(D) - 10 log10(N)``.

    ``scale_invariant=False`` (SNR): ``N = ||s||^2 + eps``,
    ``D = ||s - x||^2 + tau ||s||^2 + eps``. ``scale_invariant=True`` (SI-SDR):
    ``alpha = (<x, s> + eps) / (||s||^2 + eps)``, ``N = alpha^2 ||s||^2 + eps``,
    ``D = ||alpha s - x||^2 + tau alpha^2 ||s||^2 + eps``. ``zero_mean`` centres both
    rows first. ``index`` pairs target row ``i`` with estimate row ``index[i]`` (a
    permutation of the rows); with ``check_finite`` a non-finite input raises
    ``NonFiniteError`` naming ``fn``, and a float32 overflow is redone in float64.
    """
    return _SNRFamilyLoss.apply(estimate, target, index, config, fn, check_finite)


def _chunks(rows: int, length: int, device: torch.device) -> list[slice]:
    if device.type != "cpu":
        return [slice(0, rows)]
    elements = _CHUNK_ELEMENTS if torch.get_num_threads() == 1 else _THREADED_CHUNK_ELEMENTS
    step = max(1, elements // max(length, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


def _rows(x: torch.Tensor, index: torch.Tensor | None, chunk: slice, dtype: torch.dtype
          ) -> torch.Tensor:
    """Rows ``chunk`` of ``x`` (rows ``index[chunk]`` if given) in ``dtype``."""
    if index is None:
        rows = x[chunk]
    elif chunk.stop - chunk.start == 1 and x.device.type == "cpu":
        start = int(index[chunk.start])  # one row: a view, no gather
        rows = x[start:start + 1]
    else:
        rows = x.index_select(0, index[chunk])
    return rows.to(dtype)


def _squared_norm(x: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(x, dim=-1).square()


def _stats(x: torch.Tensor, s: torch.Tensor, index: torch.Tensor | None, config: LossConfig,
           dtype: torch.dtype) -> torch.Tensor:
    """Per-row ``(mean_x, mean_s, <x,s>, ||s||^2, ||error||^2)`` of the centred rows."""
    rows, length = s.shape
    stats = torch.zeros(5, rows, dtype=dtype, device=s.device)
    for chunk in _chunks(rows, length, s.device):
        xc, sc = _rows(x, index, chunk, dtype), _rows(s, None, chunk, dtype)
        if config.zero_mean:
            mean_x, mean_s = xc.mean(-1, keepdim=True), sc.mean(-1, keepdim=True)
            xc, sc = xc - mean_x, sc - mean_s
            stats[0, chunk], stats[1, chunk] = mean_x.squeeze(-1), mean_s.squeeze(-1)
        energy = _squared_norm(sc)
        if config.scale_invariant:
            inner = torch.bmm(xc.unsqueeze(1), sc.unsqueeze(2)).view(-1)
            alpha = (inner + config.eps) / (energy + config.eps)
            # x - alpha s is minus the error: same norm, one fused op.
            error = torch.addcmul(xc, sc, alpha.unsqueeze(-1), value=-1.0)
            stats[2, chunk] = inner
        else:
            error = sc - xc
        stats[3, chunk] = energy
        stats[4, chunk] = _squared_norm(error)
    return stats


def _energies(stats: torch.Tensor, config: LossConfig
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(alpha, N, D)`` in float64 from the per-row sums (``alpha = 1`` for SNR)."""
    inner, energy, error = stats[2].double(), stats[3].double(), stats[4].double()
    eps, tau = config.eps, config.tau
    if config.scale_invariant:
        alpha = (inner + eps) / (energy + eps)
        reference = alpha.square() * energy
    else:
        alpha = torch.ones_like(energy)
        reference = energy
    return alpha, reference + eps, error + tau * reference + eps


def _coefficients(stats: torch.Tensor, config: LossConfig, grad: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(p_x, q_x, p_s, q_s)``: d loss/dx = p_x s~ + q_x x~ and d loss/ds = p_s s~ + q_s x~."""
    inner, energy = stats[2].double(), stats[3].double()
    eps, tau = config.eps, config.tau
    alpha, num, den = _energies(stats, config)
    g = grad.double() * _DB
    if config.scale_invariant:
        beta = energy + eps
        # <alpha s - x, s> = eps (||s||^2 - <x, s>) / beta, exactly, without cancellation.
        error_dot_s = eps * (energy - inner) / beta
        d_alpha = 2 * (error_dot_s + tau * alpha * energy) / den - 2 * alpha * energy / num
        p_x = d_alpha / beta - 2 * alpha / den
        q_x = 2 / den
        p_s = (-2 * alpha * d_alpha / beta
               + 2 * alpha.square() * (1 + tau) / den - 2 * alpha.square() / num)
        q_s = p_x
    else:
        p_x, q_x = -2 / den, 2 / den
        p_s, q_s = 2 * (1 + tau) / den - 2 / num, -2 / den
    return g * p_x, g * q_x, g * p_s, g * q_s


def _write_gradient(out: torch.Tensor, own: torch.Tensor, other: torch.Tensor,
                    pairing: torch.Tensor | None, p: torch.Tensor, q: torch.Tensor,
                    shift: torch.Tensor | None, dtype: torch.dtype) -> None:
    """``out[i] = p[i] * other[pairing[i]] + q[i] * own[i] - shift[i]``, chunk by chunk.

    ``own`` is the tensor the gradient belongs to, ``other`` its partner in the loss, and
    ``pairing[i]`` the partner row of row ``i`` (``None``: the same row).
    """
    rows, length = own.shape
    p, q = p.to(dtype).unsqueeze(-1), q.to(dtype).unsqueeze(-1)
    minus_shift = None if shift is None else (-shift).to(dtype).unsqueeze(-1)
    direct = out.dtype == dtype
    for chunk in _chunks(rows, length, own.device):
        partner, mine = _rows(other, pairing, chunk, dtype), _rows(own, None, chunk, dtype)
        target = out[chunk] if direct else None
        if minus_shift is None:
            grad = torch.mul(partner, p[chunk], out=target)
        else:
            grad = torch.addcmul(minus_shift[chunk], partner, p[chunk], out=target)
        grad.addcmul_(mine, q[chunk])
        if not direct:
            out[chunk] = grad


class _SNRFamilyLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, estimate: torch.Tensor, target: torch.Tensor,
                index: torch.Tensor | None, config: LossConfig, fn: str,
                check_finite: bool) -> torch.Tensor:
        dtype = out_dtype = (
            torch.float64 if torch.float64 in (estimate.dtype, target.dtype) else torch.float32)
        with torch.autocast(estimate.device.type, enabled=False):
            stats = _stats(estimate, target, index, config, dtype)
            if check_finite and not bool(torch.isfinite(stats).all()):
                _check_finite(estimate, fn, "estimate")
                _check_finite(target, fn, "target")
                dtype = torch.float64  # float32 energies overflowed: redo in float64
                stats = _stats(estimate, target, index, config, dtype)
            _, num, den = _energies(stats, config)
        ctx.save_for_backward(estimate, target, index, stats)
        ctx.config, ctx.dtype = config, dtype
        return (_DB * (torch.log(den) - torch.log(num))).to(out_dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        estimate, target, index, stats = ctx.saved_tensors
        config, dtype = ctx.config, ctx.dtype
        grad_estimate = grad_target = None
        with torch.autocast(estimate.device.type, enabled=False):
            p_x, q_x, p_s, q_s = _coefficients(stats, config, grad)
            means = (stats[0].double(), stats[1].double()) if config.zero_mean else None
            if ctx.needs_input_grad[0]:
                # Rows follow the targets; estimate row index[i] pairs with target row i.
                inverse = None if index is None else torch.argsort(index)
                p, q = (p_x, q_x) if inverse is None else (p_x[inverse], q_x[inverse])
                shift = None
                if means is not None:
                    shift = p_x * means[1] + q_x * means[0]
                    shift = shift if inverse is None else shift[inverse]
                grad_estimate = torch.empty_like(estimate, memory_format=torch.contiguous_format)
                _write_gradient(grad_estimate, estimate, target, inverse, p, q, shift, dtype)
            if ctx.needs_input_grad[1]:
                shift = None if means is None else q_s * means[0] + p_s * means[1]
                grad_target = torch.empty_like(target, memory_format=torch.contiguous_format)
                _write_gradient(grad_target, target, estimate, index, q_s, p_s, shift, dtype)
        return grad_estimate, grad_target, None, None, None, None
