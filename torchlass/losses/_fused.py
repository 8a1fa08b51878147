"""Fused forward and backward of the SNR-family losses (SNR, SI-SDR, thresholded SNR).

Every one of these losses is ``10 log10(D) - 10 log10(N)`` for per-row energies ``N``
(the reference part) and ``D`` (the error energy, plus an optional relative floor). Near a
perfect estimate ``D`` is tiny and the loss is steep, so both passes work from the error
``e`` itself (``x - s``, or ``x - alpha s`` for SI-SDR), never from differences of large
energies:

* the rows are read into float64, where products of float32 samples are exact, and
  centred there when ``zero_mean``; ``<x, s>``, ``||s||^2`` and ``||e||^2`` are summed
  from them, with ``e`` formed explicitly;
* the backward pass forms ``e`` again and writes each gradient as ``a e + b s`` with
  per-row coefficients whose terms are each free of cancellation (see
  ``_coefficients``). At an exact copy the gradient of the SNR loss with respect to the
  estimate is therefore exactly zero. That of SI-SDR is its float64 value, since
  ``alpha`` is then exactly 1 (all sums take one code path, see ``_dot``).

Only per-row float64 scalars are saved for the backward pass. On the CPU rows are
processed in chunks that fit in cache, in float64 buffers reused from chunk to chunk, so
no temporary as large as the input is allocated (only the gradient itself); elsewhere
(CUDA) the whole batch is one chunk. Autocast is disabled inside. Float64 energies that
overflow (amplitudes above about 1e150) raise ``ValueRangeError`` rather than return NaN.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch

from torchlass.checks import check_finite as _check_finite
from torchlass.checks import check_overflow

_DB = 10.0 / math.log(10.0)
# Rows are processed in chunks of about this many samples on the CPU. With one thread,
# 2 MiB of float64 per buffer stays in cache. With several, every op is a parallel
# region whose thread synchronisation costs far more than the op on a busy CPU, so the
# chunks are larger and fewer (16 MiB of float64 per buffer).
_CHUNK_ELEMENTS = 1 << 18
_THREADED_CHUNK_ELEMENTS = 1 << 21
_WORK = torch.float64


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
    permutation of the rows). With ``check_finite`` a non-finite input raises
    ``NonFiniteError`` naming ``fn``, and energies that overflow float64 raise
    ``ValueRangeError``; without it neither is checked (no GPU sync). The result is
    float64 for float64 inputs, float32 otherwise.
    """
    return _SNRFamilyLoss.apply(estimate, target, index, config, fn, check_finite)


def chunk_rows(rows: int, length: int, device: torch.device) -> list[slice]:
    """Slices of ``rows`` rows of ``length`` samples, one chunk each (see above)."""
    if device.type != "cpu":
        return [slice(0, rows)]
    elements = _CHUNK_ELEMENTS if torch.get_num_threads() == 1 else _THREADED_CHUNK_ELEMENTS
    step = max(1, elements // max(length, 1))
    return [slice(i, min(i + step, rows)) for i in range(0, rows, step)]


class _Workspace:
    """Float64 row buffers of one chunk's size, reused by every chunk.

    A fresh temporary of that size per op would be fresh pages for the OS to map, which
    costs more than the op itself.
    """

    def __init__(self, rows: int, length: int, device: torch.device, count: int) -> None:
        self.buffers = [torch.empty(rows, length, dtype=_WORK, device=device)
                        for _ in range(count)]

    def take(self, i: int, rows: int) -> torch.Tensor:
        return self.buffers[i][:rows]


def _load(out: torch.Tensor, x: torch.Tensor, index: torch.Tensor | None, chunk: slice,
          zero_mean: bool) -> torch.Tensor:
    """Rows ``chunk`` of ``x`` (rows ``index[chunk]`` if given) into float64 ``out``."""
    if index is None:
        rows = x[chunk]
    elif chunk.stop - chunk.start == 1 and x.device.type == "cpu":
        start = int(index[chunk.start])  # one row: a view, no gather
        rows = x[start:start + 1]
    else:
        rows = x.index_select(0, index[chunk])
    out.copy_(rows)
    if zero_mean:
        out.sub_(out.mean(-1, keepdim=True))
    return out


def _dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    # One routine, on buffers of one layout, for every sum: an exact copy then gives
    # <x, s> == ||s||^2 bit for bit, so alpha == 1 and e == 0 exactly, which SI-SDR's
    # gradient needs at an exact copy (its error energy is then only eps).
    return torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1)


def _stats(x: torch.Tensor, s: torch.Tensor, index: torch.Tensor | None,
           config: LossConfig) -> torch.Tensor:
    """Per-row float64 ``(<x, s>, ||s||^2, ||e||^2)`` of the (centred) rows."""
    rows, length = s.shape
    stats = torch.zeros(3, rows, dtype=_WORK, device=s.device)
    chunks = chunk_rows(rows, length, s.device)
    space = _Workspace(chunks[0].stop, length, s.device, 3)
    for chunk in chunks:
        n = chunk.stop - chunk.start
        xc = _load(space.take(0, n), x, index, chunk, config.zero_mean)
        sc = _load(space.take(1, n), s, None, chunk, config.zero_mean)
        energy = _dot(sc, sc)
        if config.scale_invariant:
            inner = _dot(xc, sc)
            alpha = (inner + config.eps) / (energy + config.eps)
            e = torch.addcmul(xc, sc, alpha.unsqueeze(-1), value=-1.0, out=space.take(2, n))
            stats[0, chunk] = inner
        else:
            e = torch.sub(xc, sc, out=space.take(2, n))
        stats[1, chunk] = energy
        stats[2, chunk] = _dot(e, e)
    return stats


def _energies(stats: torch.Tensor, config: LossConfig
              ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``(alpha, N, D)`` from the per-row sums (``alpha`` is ``None`` for SNR)."""
    inner, energy, error = stats
    if config.scale_invariant:
        alpha = (inner + config.eps) / (energy + config.eps)
        reference = alpha.square() * energy
    else:
        alpha, reference = None, energy
    return alpha, reference + config.eps, error + config.tau * reference + config.eps


def _coefficients(stats: torch.Tensor, config: LossConfig, grad: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(a_x, b_x, a_s, b_s)``: d loss/dx = a_x e + b_x s and d loss/ds = a_s e + b_s s.

    Write ``E = ||s||^2``, ``beta = E + eps`` and
    ``rho = 1/N - tau/D = (||e||^2 + (1 - tau) eps) / (D N)``. This closed form of the
    difference is what keeps the coefficients exact when ``D`` approaches ``tau N``.

    * SNR: ``dL/dx = (2/D) e`` and ``dL/ds = -(2/D) e - 2 rho s``.
    * SI-SDR: ``dalpha/dx = s / beta`` and ``dalpha/ds = (e - alpha s) / beta``. Also
      ``<s, e> = eps (<x, s> - E) / beta`` exactly, and
      ``kappa = dL/dalpha = -2 alpha E rho - 2 <s, e> / D``. Then
      ``dL/dx = (2/D) e + (kappa / beta) s``,
      ``dL/ds = (kappa / beta - 2 alpha / D) e + sigma s``, where
      ``sigma = 2 alpha^2 (tau/D - 1/N) + 2 alpha <s, e> / D - alpha kappa / beta`` and
      ``1 - E / beta = eps / beta`` turn it into
      ``(2 alpha eps / beta) ((<x, s> - E) / (beta D) - alpha rho)``.

    Every factor of ``dB = 10 / ln 10`` and the incoming gradient are included.
    """
    inner, energy, error = stats
    eps, tau = config.eps, config.tau
    alpha, num, den = _energies(stats, config)
    g = grad.to(_WORK) * _DB
    rho = (error + (1.0 - tau) * eps) / den / num
    if alpha is None:
        return g * 2 / den, torch.zeros_like(g), -g * 2 / den, -g * 2 * rho
    beta = energy + eps
    error_dot_s = eps * (inner - energy) / beta
    kappa = -2 * alpha * energy * rho - 2 * error_dot_s / den
    sigma = 2 * alpha * eps / beta * ((inner - energy) / (beta * den) - alpha * rho)
    return g * 2 / den, g * kappa / beta, g * (kappa / beta - 2 * alpha / den), g * sigma


def _backward(grad: torch.Tensor, x: torch.Tensor, s: torch.Tensor, index: torch.Tensor | None,
              stats: torch.Tensor, config: LossConfig, need: tuple[bool, bool]
              ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients with respect to ``x`` (estimate) and ``s`` (target), chunk by chunk."""
    a_x, b_x, a_s, b_s = (c.unsqueeze(-1) for c in _coefficients(stats, config, grad))
    alpha = _energies(stats, config)[0]
    grad_x = torch.empty_like(x, memory_format=torch.contiguous_format) if need[0] else None
    grad_s = torch.empty_like(s, memory_format=torch.contiguous_format) if need[1] else None
    rows, length = s.shape
    chunks = chunk_rows(rows, length, s.device)
    space = _Workspace(chunks[0].stop, length, s.device, 4)
    for chunk in chunks:
        n = chunk.stop - chunk.start
        xc = _load(space.take(0, n), x, index, chunk, config.zero_mean)
        sc = _load(space.take(1, n), s, None, chunk, config.zero_mean)
        if alpha is None:
            e = torch.sub(xc, sc, out=space.take(2, n))
        else:
            e = torch.addcmul(xc, sc, alpha[chunk].unsqueeze(-1), value=-1.0,
                              out=space.take(2, n))
        for out, a, b in ((grad_x, a_x, b_x), (grad_s, a_s, b_s)):
            if out is None:
                continue
            g = torch.mul(e, a[chunk], out=space.take(3, n)).addcmul_(sc, b[chunk])
            if config.zero_mean:  # the chain rule through the centring: project out the mean
                g.sub_(g.mean(-1, keepdim=True))
            if out is grad_x and index is not None:
                if n == 1 and out.device.type == "cpu":
                    start = int(index[chunk.start])
                    out[start:start + 1] = g
                else:
                    out.index_copy_(0, index[chunk], g.to(out.dtype))
            else:
                out[chunk] = g
    return grad_x, grad_s


class _SNRFamilyLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, estimate: torch.Tensor, target: torch.Tensor,
                index: torch.Tensor | None, config: LossConfig, fn: str,
                check_finite: bool) -> torch.Tensor:
        out_dtype = (
            torch.float64 if torch.float64 in (estimate.dtype, target.dtype) else torch.float32)
        with torch.autocast(estimate.device.type, enabled=False):
            stats = _stats(estimate, target, index, config)
            if check_finite and not bool(torch.isfinite(stats).all()):
                _check_finite(estimate, fn, "estimate")
                _check_finite(target, fn, "target")
                check_overflow(stats, fn)
            _, num, den = _energies(stats, config)
        ctx.save_for_backward(estimate, target, index, stats)
        ctx.config = config
        return (_DB * (torch.log(den) - torch.log(num))).to(out_dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        estimate, target, index, stats = ctx.saved_tensors
        with torch.autocast(estimate.device.type, enabled=False):
            grad_estimate, grad_target = _backward(
                grad, estimate, target, index, stats, ctx.config,
                (ctx.needs_input_grad[0], ctx.needs_input_grad[1]))
        return grad_estimate, grad_target, None, None, None, None
