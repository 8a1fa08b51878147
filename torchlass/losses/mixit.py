"""Mixture invariant training (MixIT) loss, Wisdom et al. 2020 (SRPOL eq. 3).

A model separates a mixture of mixtures into ``M`` estimates; each estimate is assigned
to one of the ``N`` reference mixtures, the estimates of each mixture are summed (the
remix), and the loss is the best assignment's sum over mixtures of a per-mixture loss.
The default per-mixture loss is the thresholded negative SNR, whose error energy is a
quadratic form in the estimates: all ``N**M`` candidates are therefore ranked from the
estimates' Gram matrix and their inner products with the mixtures (one pass over the
audio, tiny float64 matrices), and the loss and its gradient are computed through the
chosen remix only.
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import torch

from torchlass import kernels
from torchlass.checks import check_finite as _check_finite
from torchlass.checks import (
    check_min_length,
    check_ndim,
    check_overflow,
    check_real_floating,
    check_reduction,
    common_dtype,
    loss_dtype,
    machine_eps,
    reduce,
)
from torchlass.errors import ShapeError, ValueRangeError
from torchlass.losses._fused import LossConfig, snr_family_loss
from torchlass.losses._loss_fn import LossFn, call_loss_fn
from torchlass.losses.snr import threshold_tau

__all__ = ["mixit_loss"]

MAX_ASSIGNMENTS = 1 << 20
_SEARCH_BLOCK = 1 << 12  # assignments ranked at once by the Gram-matrix search
_REMIX_BLOCK_ELEMENTS = 1 << 24  # remix samples held at once when loss_fn is given
# Re-rankings around the current best (see _refine). The first is exact up to rounding of
# the best remix's own error; the others only run if it moved the choice.
_REFINEMENTS = 3
_GRAM_SAMPLES = 1 << 12  # samples per block of the float64 Gram matrix (see _residual_gram)


@lru_cache(maxsize=32)
def _assignment_table(num_mixtures: int, num_estimates: int) -> torch.Tensor:
    """``(N**M, M)`` int64: row ``k`` is the ``k``-th tuple of ``itertools.product``."""
    rows = list(itertools.product(range(num_mixtures), repeat=num_estimates))
    return torch.tensor(rows, dtype=torch.int64)


def _one_hot(table: torch.Tensor, num_mixtures: int, dtype: torch.dtype,
             device: torch.device) -> torch.Tensor:
    """``(K, N, M)`` mixing matrices: entry ``[k, n, m]`` is 1 if estimate m goes to n."""
    hot = torch.nn.functional.one_hot(table.to(device), num_mixtures)  # (K, M, N)
    return hot.transpose(1, 2).to(dtype)


def _first_argmin(costs: list[torch.Tensor]) -> torch.Tensor:
    """Index of the first minimum over blocks concatenated along dim 1 (ties: lowest)."""
    return torch.cat(costs, dim=1).argmin(dim=1)


def _inner_products(estimates: torch.Tensor, mixtures: torch.Tensor, dtype: torch.dtype
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gram ``(B, M, M)``, cross ``(B, N, M)`` and mixture powers ``(B, N)``, in float64.

    Products in ``dtype``; for float32 on CUDA tensors all three come from one fused pass
    ([`torchlass.kernels.fused_mixture_gram`][torchlass.kernels.reductions.fused_mixture_gram],
    float32 products, float64 partial sums).
    """
    if dtype == torch.float32 and kernels.is_available(estimates, mixtures):
        return kernels.fused_mixture_gram(estimates, mixtures)
    x, y = estimates.to(dtype), mixtures.to(dtype)
    gram = torch.bmm(x, x.transpose(1, 2)).double()
    cross = torch.bmm(y, x.transpose(1, 2)).double()
    power = torch.linalg.vector_norm(y, dim=-1).double().square()
    return gram, cross, power


def _search_gram(estimates: torch.Tensor, mixtures: torch.Tensor, table: torch.Tensor,
                 tau: float, eps: float, check_finite: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Best row of ``table`` per example for the thresholded SNR loss, and its remix.

    A first ranking uses the Gram matrix of the inputs' own precision. Its errors
    ``||x||^2 - 2 <x, remix> + ||remix||^2`` cancel near a perfect remix, so
    `_refine` then re-ranks every assignment in float64 around the best one.
    """
    num_mixtures = mixtures.shape[1]
    dtype = loss_dtype(common_dtype(estimates, mixtures))
    gram, cross, power = _inner_products(estimates, mixtures, dtype)
    if check_finite and not all(bool(torch.isfinite(t).all()) for t in (gram, cross, power)):
        _check_finite(estimates, "mixit_loss", "estimates")
        _check_finite(mixtures, "mixit_loss", "mixtures")
        gram, cross, power = _inner_products(estimates, mixtures, torch.float64)  # overflow
        check_overflow(torch.cat([gram.flatten(1), cross.flatten(1), power], 1), "mixit_loss")
    floor = tau * power + eps  # the -10 log10(||x||^2 + eps) term does not depend on k
    costs = []
    for start in range(0, table.shape[0], _SEARCH_BLOCK):
        hot = _one_hot(table[start:start + _SEARCH_BLOCK], num_mixtures, torch.float64,
                       gram.device)
        # ||x_n - sum_m a_nm s_m||^2 = ||x_n||^2 - 2 sum_m a_nm <x_n, s_m> + a_n^T G a_n
        linear = torch.einsum("knm,bnm->bkn", hot, cross)
        quadratic = torch.einsum("knm,bmp,knp->bkn", hot, gram, hot)
        error = (power.unsqueeze(1) - 2 * linear + quadratic).clamp_min(0.0)
        costs.append(torch.log10(error + floor.unsqueeze(1)).sum(-1))
    return _refine(estimates, mixtures, table, _first_argmin(costs), floor.unsqueeze(1))


def _residual_gram(estimates: torch.Tensor, mixtures: torch.Tensor, hot: torch.Tensor,
                   remix: torch.Tensor) -> torch.Tensor:
    """Float64 Gram matrix of ``(r; e)``, ``r = x - hot e``; writes ``hot e`` to ``remix``.

    Both are built block by block over time in one reused buffer, so an example's rows
    stay in cache and no float64 copy of the inputs is ever whole.
    """
    batch, num_estimates, length = estimates.shape
    num_mixtures = mixtures.shape[1]
    size = num_mixtures + num_estimates
    gram = estimates.new_zeros(batch, size, size, dtype=torch.float64)
    buffer = estimates.new_empty(batch, size, min(length, _GRAM_SAMPLES), dtype=torch.float64)
    for start in range(0, length, _GRAM_SAMPLES):
        stop = min(start + _GRAM_SAMPLES, length)
        block = buffer[..., :stop - start]
        residual, e = block[:, :num_mixtures], block[:, num_mixtures:]
        e.copy_(estimates[..., start:stop])
        part = torch.bmm(hot, e, out=remix[..., start:stop])
        residual.copy_(mixtures[..., start:stop]).sub_(part)
        gram.baddbmm_(block, block.transpose(1, 2))
    return gram


def _refine(estimates: torch.Tensor, mixtures: torch.Tensor, table: torch.Tensor,
            best: torch.Tensor, floor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-rank every row of ``table`` in float64 around the current ``best`` assignment.

    With ``r_n = x_n - sum_m a_nm e_m`` the residual of ``best``, formed sample by sample,
    and ``d = a - a'`` the change to another assignment ``a'``, that assignment's error is
    ``||r_n + sum_m d_nm e_m||^2 = ||r_n||^2 + 2 sum_m d_nm <r_n, e_m> + d_n^T G d_n``.
    Only the estimates that move enter, so the rounding scales with the error itself plus
    the moved estimates' energies, not with the mixture's: remixes within 1e-15 of
    a mixture are still told apart. ``floor`` is ``tau ||x_n||^2 + eps``, shape
    ``(B, 1, N)``. Returns the best rows and their float64 remixes.
    """
    batch, num_mixtures, length = mixtures.shape
    remix = estimates.new_empty(batch, num_mixtures, length, dtype=torch.float64)
    for _ in range(_REFINEMENTS):
        hot_best = _one_hot(table[best.cpu()], num_mixtures, torch.float64, estimates.device)
        gram = _residual_gram(estimates, mixtures, hot_best, remix)
        energy = gram[:, :num_mixtures, :num_mixtures].diagonal(dim1=1, dim2=2)
        cross = gram[:, :num_mixtures, num_mixtures:]  # <r_n, e_m>
        gram = gram[:, num_mixtures:, num_mixtures:]
        costs = []
        for start in range(0, table.shape[0], _SEARCH_BLOCK):
            hot = _one_hot(table[start:start + _SEARCH_BLOCK], num_mixtures, torch.float64,
                           estimates.device)
            d = hot_best.unsqueeze(1) - hot  # (B, K, N, M); zeros contribute exactly 0
            error = (energy.unsqueeze(1) + 2 * torch.einsum("bknm,bnm->bkn", d, cross)
                     + torch.einsum("bknm,bmp,bknp->bkn", d, gram, d)).clamp_min(0.0)
            costs.append(torch.log10(error + floor).sum(-1))
        moved = _first_argmin(costs)
        if torch.equal(moved, best):
            return best, remix
        best = moved
    hot_best = _one_hot(table[best.cpu()], num_mixtures, torch.float64, estimates.device)
    return best, torch.bmm(hot_best, estimates.double())


class _ChosenRemix(torch.autograd.Function):
    """The chosen remix, summed in float64 by the search; d remix / d estimates selects."""

    @staticmethod
    def forward(ctx: Any, estimates: torch.Tensor, assignment: torch.Tensor,
                remix: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(assignment)
        ctx.dtype = estimates.dtype
        return remix.view_as(remix)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        (assignment,) = ctx.saved_tensors
        index = assignment.unsqueeze(-1).expand(*assignment.shape, grad.shape[-1])
        return grad.to(ctx.dtype).gather(1, index), None, None


def _search_loss_fn(estimates: torch.Tensor, mixtures: torch.Tensor, table: torch.Tensor,
                    loss_fn: LossFn) -> torch.Tensor:
    """Best row of ``table`` per example for an arbitrary per-mixture loss (every remix)."""
    batch, _, length = estimates.shape
    num_mixtures = mixtures.shape[1]
    block = max(1, _REMIX_BLOCK_ELEMENTS // (batch * num_mixtures * length))
    costs = []
    for start in range(0, table.shape[0], block):
        hot = _one_hot(table[start:start + block], num_mixtures, estimates.dtype,
                       estimates.device)
        remix = torch.einsum("knm,bmt->bknt", hot, estimates)
        target = mixtures.unsqueeze(1).expand_as(remix)
        costs.append(call_loss_fn(loss_fn, remix, target, "mixit_loss").sum(-1).double())
    return _first_argmin(costs)


def _check_inputs(estimates: torch.Tensor, mixtures: torch.Tensor, anchored: bool) -> None:
    fn = "mixit_loss"
    for name, x in (("estimates", estimates), ("mixtures", mixtures)):
        check_real_floating(x, fn, name)
    check_ndim(estimates, fn, "estimates", ndim=3, layout="(batch, estimates, time)")
    check_ndim(mixtures, fn, "mixtures", ndim=3, layout="(batch, mixtures, time)")
    (batch, num_estimates, length), (m_batch, num_mixtures, m_length) = (
        estimates.shape, mixtures.shape)
    if batch != m_batch or length != m_length:
        raise ShapeError(
            f"{fn}(): arguments 'estimates' and 'mixtures' must agree in batch and time, "
            f"got {tuple(estimates.shape)} and {tuple(mixtures.shape)}"
        )
    if num_mixtures < 2:
        raise ShapeError(
            f"{fn}(): argument 'mixtures' expected at least 2 mixtures (dim 1), "
            f"got shape {tuple(mixtures.shape)}"
        )
    if num_estimates < num_mixtures:
        raise ShapeError(
            f"{fn}(): argument 'estimates' expected at least as many estimates as mixtures "
            f"(M >= N = {num_mixtures}), got M = {num_estimates}"
        )
    free = num_estimates - 1 if anchored else num_estimates
    if num_mixtures ** free > MAX_ASSIGNMENTS:
        raise ValueRangeError(
            f"{fn}(): arguments 'estimates' and 'mixtures' give "
            f"{'N**(M-1)' if anchored else 'N**M'} = {num_mixtures}**{free} assignments, "
            "more than the "
            f"{MAX_ASSIGNMENTS} this exhaustive search allows"
        )
    check_min_length(estimates, fn, "estimates", 1, why="the time axis must not be empty")
    if batch == 0:
        raise ShapeError(f"{fn}(): argument 'estimates' expected at least one example, got "
                         f"shape {tuple(estimates.shape)}")


def mixit_loss(
    estimates: torch.Tensor,
    mixtures: torch.Tensor,
    *,
    snr_max: float | None = 30.0,
    loss_fn: LossFn | None = None,
    anchored: bool = False,
    reduction: str = "mean",
    return_assignment: bool = False,
    check_finite: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """MixIT loss: best assignment of ``M`` estimates to ``N`` mixtures (Wisdom et al. 2020).

    Each estimate goes to one mixture; the remix ``x_hat_n`` is the sum of the estimates
    assigned to mixture ``n``. With the default per-mixture loss, the thresholded negative
    SNR ``10 log10(||x_n - x_hat_n||^2 + tau ||x_n||^2 + eps) - 10 log10(||x_n||^2 + eps)``
    (``tau = 10^(-snr_max/10)``, ``eps`` the machine epsilon of the input dtype, i.e.
    [`torchlass.losses.snr_loss`][torchlass.losses.snr_loss] with ``snr_max``), the per-example loss
    is the minimum over all ``N**M`` assignments of the **sum over the N mixtures**. The ``eps``
    keeps a silent mixture finite: its term is ``10 log10((||x_hat_n||^2 + eps) / eps)``,
    which pushes the estimates assigned to it towards silence with a finite gradient.

    The assignments are ranked from the estimates' Gram matrix and their inner products
    with the mixtures (float32 products for float32 inputs). They are then ranked again in
    float64 from the residual of the best remix, formed sample by sample, and its inner
    products with the estimates. That second ranking is exact up to rounding of the best
    remix's own error, so near-perfect remixes are ranked as a float64 brute force ranks
    them. The loss and its gradient then go through the chosen remix only (summed in
    float64; the choice itself is not differentiated). Ties go to the first assignment in
    ``itertools.product(range(N), repeat=M)`` order. With ``loss_fn``, every remix is
    evaluated with it (in blocks, without gradient), then the chosen one again with
    gradient; ``snr_max`` is then unused.

    ``anchored=True`` ties estimate 0 to mixture 0 and searches only the ``N**(M-1)``
    assignments of the others. This is query-anchored MixIT: a query-conditioned separator
    predicts the queried clip first, and its other outputs are noise heads free to go
    anywhere (the noise-invariant training of CLIPSep, Dong et al., ICLR 2023).

    Args:
        estimates: The model's ``M`` separated signals per example, real floating point.
        mixtures: The ``N >= 2`` reference mixtures per example.
        snr_max: Soft ceiling of the default per-mixture loss in dB (``None``: plain
            negative SNR).
        loss_fn: Optional per-mixture loss ``loss_fn(remix, mixture) -> loss``, mapping
            ``(..., time)`` tensors to ``(...)`` losses (lower is better), e.g.
            ``functools.partial(si_sdr_loss, reduction="none")``.
        anchored: Always assign estimate 0 to mixture 0.
        reduction: ``"mean"`` or ``"sum"`` over examples, or ``"none"``.
        return_assignment: Also return the mixture index each estimate was assigned to.
        check_finite: Raise on NaN/Inf inputs (one cheap check on per-signal sums).

    Returns:
        The loss in dB (a scalar, or ``(batch,)`` for ``reduction="none"``), and with
        ``return_assignment=True`` also ``(batch, M)`` int64 mixture indices.

    Shape:
        ``estimates``: ``(batch, M, time)``; ``mixtures``: ``(batch, N, time)``.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If ranks, batch or time disagree, ``N < 2``, ``M < N``, the time axis
            is empty or ``loss_fn`` returns the wrong shape.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``N**M`` (``N**(M-1)`` anchored) exceeds ``MAX_ASSIGNMENTS``
            (2**20), ``reduction`` or ``snr_max`` is invalid, or the signal energies
            overflow float64 (amplitudes above about 1e150, ``check_finite=True``).

    Examples:
        >>> sources = torch.randn(1, 4, 1000)
        >>> mixtures = torch.stack([sources[:, 0] + sources[:, 2],
        ...                         sources[:, 1] + sources[:, 3]], dim=1)
        >>> loss, assignment = mixit_loss(sources, mixtures, return_assignment=True)
        >>> assignment
        tensor([[0, 1, 0, 1]])
        >>> round(loss.item(), 2)
        -60.0
        >>> mixit_loss(sources, mixtures, anchored=True, return_assignment=True)[1]
        tensor([[0, 1, 0, 1]])
    """
    fn = "mixit_loss"
    _check_inputs(estimates, mixtures, anchored)
    check_reduction(reduction, fn)
    tau = threshold_tau(snr_max, fn)
    eps = machine_eps(common_dtype(estimates, mixtures))
    if check_finite and loss_fn is not None:
        _check_finite(estimates, fn, "estimates")
        _check_finite(mixtures, fn, "mixtures")
    batch, num_estimates, length = estimates.shape
    num_mixtures = mixtures.shape[1]
    table = _assignment_table(num_mixtures, num_estimates)
    if anchored:  # product order: the rows with estimate 0 on mixture 0 come first
        table = table[:num_mixtures ** (num_estimates - 1)]
    with torch.no_grad(), torch.autocast(estimates.device.type, enabled=False):
        if loss_fn is None:
            best, remix = _search_gram(estimates, mixtures, table, tau, eps, check_finite)
        else:
            best = _search_loss_fn(estimates, mixtures, table, loss_fn)
        assignment = table.to(best.device)[best]
    dtype = loss_dtype(common_dtype(estimates, mixtures))
    if loss_fn is None:
        # float64 remix from the search: a float32 sum would round an exact remix
        remix = _ChosenRemix.apply(estimates, assignment, remix)
        config = LossConfig(scale_invariant=False, zero_mean=False, tau=tau, eps=eps)
        per_mixture = snr_family_loss(
            remix.reshape(-1, length), mixtures.reshape(-1, length), config, fn=fn,
            check_finite=check_finite,
        ).reshape(batch, num_mixtures).to(dtype)
    else:
        with torch.autocast(estimates.device.type, enabled=False):
            hot = _one_hot(assignment, num_mixtures, dtype, estimates.device)  # (B, N, M)
            remix = torch.bmm(hot, estimates.to(dtype))
        per_mixture = call_loss_fn(loss_fn, remix, mixtures, fn)
    loss = reduce(per_mixture.sum(-1), reduction)
    return (loss, assignment) if return_assignment else loss
