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
from collections.abc import Callable
from functools import lru_cache

import torch

from torchlass import kernels
from torchlass.errors import (
    ShapeError,
    ValueRangeError,
    check_min_length,
    check_ndim,
    check_real_floating,
)
from torchlass.errors import check_finite as _check_finite
from torchlass.losses._fused import LossConfig, snr_family_loss
from torchlass.losses.snr import threshold_tau
from torchlass.metrics._validation import (
    check_reduction,
    common_dtype,
    loss_dtype,
    machine_eps,
    reduce,
)

__all__ = ["mixit_loss"]

MAX_ASSIGNMENTS = 1 << 20
_SEARCH_BLOCK = 1 << 12  # assignments ranked at once by the Gram-matrix search
_REMIX_BLOCK_ELEMENTS = 1 << 24  # remix samples held at once when loss_fn is given

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


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


def _search_gram(estimates: torch.Tensor, mixtures: torch.Tensor, tau: float, eps: float,
                 check_finite: bool) -> torch.Tensor:
    """Best assignment per example for the thresholded SNR loss, from inner products."""
    num_mixtures, num_estimates = mixtures.shape[1], estimates.shape[1]
    dtype = loss_dtype(common_dtype(estimates, mixtures))
    gram, cross, power = _inner_products(estimates, mixtures, dtype)
    if check_finite and not all(bool(torch.isfinite(t).all()) for t in (gram, cross, power)):
        _check_finite(estimates, "mixit_loss", "estimates")
        _check_finite(mixtures, "mixit_loss", "mixtures")
        gram, cross, power = _inner_products(estimates, mixtures, torch.float64)  # overflow
    floor = tau * power + eps  # the -10 log10(||x||^2 + eps) term does not depend on k
    table = _assignment_table(num_mixtures, num_estimates)
    costs = []
    for start in range(0, table.shape[0], _SEARCH_BLOCK):
        hot = _one_hot(table[start:start + _SEARCH_BLOCK], num_mixtures, torch.float64,
                       gram.device)
        # ||x_n - sum_m a_nm s_m||^2 = ||x_n||^2 - 2 sum_m a_nm <x_n, s_m> + a_n^T G a_n
        linear = torch.einsum("knm,bnm->bkn", hot, cross)
        quadratic = torch.einsum("knm,bmp,knp->bkn", hot, gram, hot)
        error = (power.unsqueeze(1) - 2 * linear + quadratic).clamp_min(0.0)
        costs.append(torch.log10(error + floor.unsqueeze(1)).sum(-1))
    return _first_argmin(costs)


def _search_loss_fn(estimates: torch.Tensor, mixtures: torch.Tensor, loss_fn: LossFn
                    ) -> torch.Tensor:
    """Best assignment per example for an arbitrary per-mixture loss (every remix scored)."""
    batch, num_estimates, length = estimates.shape
    num_mixtures = mixtures.shape[1]
    table = _assignment_table(num_mixtures, num_estimates)
    block = max(1, _REMIX_BLOCK_ELEMENTS // (batch * num_mixtures * length))
    costs = []
    for start in range(0, table.shape[0], block):
        hot = _one_hot(table[start:start + block], num_mixtures, estimates.dtype,
                       estimates.device)
        remix = torch.einsum("knm,bmt->bknt", hot, estimates)
        target = mixtures.unsqueeze(1).expand_as(remix)
        costs.append(_call_loss_fn(loss_fn, remix, target).sum(-1).double())
    return _first_argmin(costs)


def _call_loss_fn(loss_fn: LossFn, remix: torch.Tensor, mixtures: torch.Tensor
                  ) -> torch.Tensor:
    values = loss_fn(remix, mixtures)
    expected = tuple(remix.shape[:-1])
    if not isinstance(values, torch.Tensor) or tuple(values.shape) != expected:
        got = tuple(values.shape) if isinstance(values, torch.Tensor) else type(values).__name__
        raise ShapeError(
            "mixit_loss(): argument 'loss_fn' expected to return one loss per signal, "
            f"shape {expected}, got {got}"
        )
    return values


def _check_inputs(estimates: torch.Tensor, mixtures: torch.Tensor) -> None:
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
    if num_mixtures ** num_estimates > MAX_ASSIGNMENTS:
        raise ValueRangeError(
            f"{fn}(): arguments 'estimates' and 'mixtures' give N**M = "
            f"{num_mixtures}**{num_estimates} assignments, more than the "
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

    The assignments are ranked in float64 from the estimates' Gram matrix and their inner
    products with the mixtures; the loss and its gradient then go through the chosen remix
    only (the choice itself is not differentiated). Ties go to the first assignment in
    ``itertools.product(range(N), repeat=M)`` order. With ``loss_fn``, every remix is
    evaluated with it (in blocks, without gradient), then the chosen one again with
    gradient; ``snr_max`` is then unused.

    Args:
        estimates: The model's ``M`` separated signals per example, real floating point.
        mixtures: The ``N >= 2`` reference mixtures per example.
        snr_max: Soft ceiling of the default per-mixture loss in dB (``None``: plain
            negative SNR).
        loss_fn: Optional per-mixture loss ``loss_fn(remix, mixture) -> loss``, mapping
            ``(..., time)`` tensors to ``(...)`` losses (lower is better), e.g.
            ``functools.partial(si_sdr_loss, reduction="none")``.
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
        ValueRangeError: If ``N**M`` exceeds ``MAX_ASSIGNMENTS`` (2**20), or ``reduction``
            or ``snr_max`` is invalid.

    Examples:
        >>> sources = torch.randn(1, 4, 1000)
        >>> mixtures = torch.stack([sources[:, 0] + sources[:, 2],
        ...                         sources[:, 1] + sources[:, 3]], dim=1)
        >>> loss, assignment = mixit_loss(sources, mixtures, return_assignment=True)
        >>> assignment
        tensor([[0, 1, 0, 1]])
        >>> round(loss.item(), 2)
        -60.0
    """
    fn = "mixit_loss"
    _check_inputs(estimates, mixtures)
    check_reduction(reduction, fn)
    tau = threshold_tau(snr_max, fn)
    eps = machine_eps(common_dtype(estimates, mixtures))
    if check_finite and loss_fn is not None:
        _check_finite(estimates, fn, "estimates")
        _check_finite(mixtures, fn, "mixtures")
    batch, num_estimates, length = estimates.shape
    num_mixtures = mixtures.shape[1]
    with torch.no_grad(), torch.autocast(estimates.device.type, enabled=False):
        if loss_fn is None:
            best = _search_gram(estimates, mixtures, tau, eps, check_finite)
        else:
            best = _search_loss_fn(estimates, mixtures, loss_fn)
        assignment = _assignment_table(num_mixtures, num_estimates).to(best.device)[best]
    dtype = loss_dtype(common_dtype(estimates, mixtures))
    with torch.autocast(estimates.device.type, enabled=False):
        hot = _one_hot(assignment, num_mixtures, dtype, estimates.device)  # (B, N, M)
        remix = torch.bmm(hot, estimates.to(dtype))
    if loss_fn is None:
        config = LossConfig(scale_invariant=False, zero_mean=False, tau=tau, eps=eps)
        per_mixture = snr_family_loss(
            remix.reshape(-1, length), mixtures.reshape(-1, length), config, fn=fn,
            check_finite=check_finite,
        ).reshape(batch, num_mixtures)
    else:
        per_mixture = _call_loss_fn(loss_fn, remix, mixtures)
    loss = reduce(per_mixture.sum(-1), reduction)
    return (loss, assignment) if return_assignment else loss
