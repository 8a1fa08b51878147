"""Permutation-invariant training (PIT) loss (Yu et al. 2017), utterance level.

The estimates of each example are matched one-to-one to the targets by the permutation
with the lowest mean loss. The default loss, negative zero-mean SI-SDR (SI-SNR), is
scored for every (estimate, target) pair from one batched float64 product of the centred
estimates with the centred targets, the centring done in float64 first; the best
permutation is found exhaustively up to 8 sources and by the Hungarian algorithm beyond;
the loss and its gradient are then computed exactly through the chosen pairs only.
"""

from __future__ import annotations

import itertools
from functools import lru_cache

import torch

from torchlass.checks import check_finite as _check_finite
from torchlass.checks import (
    check_ndim,
    check_overflow,
    check_reduction,
    check_signals,
    common_dtype,
    machine_eps,
    reduce,
)
from torchlass.losses._fused import LossConfig, chunk_rows, snr_family_loss
from torchlass.losses._loss_fn import LossFn, call_loss_fn

__all__ = ["pit_loss"]

MAX_EXHAUSTIVE_SOURCES = 8


@lru_cache(maxsize=16)
def _permutation_table(num_sources: int) -> torch.Tensor:
    """``(S!, S)`` int64 in ``itertools.permutations`` (lexicographic) order."""
    return torch.tensor(list(itertools.permutations(range(num_sources))), dtype=torch.int64)


def _pairwise_si_snr(estimates: torch.Tensor, targets: torch.Tensor, eps: float,
                     check_finite: bool) -> torch.Tensor:
    """``(B, S, S)`` negative SI-SNR in dB, entry ``[b, i, j]`` for estimate i vs target j.

    The signals are centred in float64 *before* the products: centring a float32 product
    afterwards (``<x, y> - T mx my``) cancels when the DC offsets dwarf the signals.
    """
    batch, sources, length = estimates.shape
    cross = estimates.new_empty(batch, sources, sources, dtype=torch.float64)
    est_energy = estimates.new_empty(batch, sources, 1, dtype=torch.float64)
    tgt_energy = estimates.new_empty(batch, 1, sources, dtype=torch.float64)
    chunks = chunk_rows(batch, sources * length, estimates.device)
    x, y = (estimates.new_empty(chunks[0].stop, sources, length, dtype=torch.float64)
            for _ in range(2))
    for chunk in chunks:
        n = chunk.stop - chunk.start
        xc, yc = x[:n].copy_(estimates[chunk]), y[:n].copy_(targets[chunk])
        xc.sub_(xc.mean(-1, keepdim=True))
        yc.sub_(yc.mean(-1, keepdim=True))
        torch.bmm(xc, yc.transpose(1, 2), out=cross[chunk])
        est_energy[chunk] = torch.linalg.vector_norm(xc, dim=-1).square().unsqueeze(-1)
        tgt_energy[chunk] = torch.linalg.vector_norm(yc, dim=-1).square().unsqueeze(-2)
    if check_finite and not all(bool(torch.isfinite(t).all())
                                for t in (cross, est_energy, tgt_energy)):
        _check_finite(estimates, "pit_loss", "estimates")
        _check_finite(targets, "pit_loss", "targets")
        check_overflow(cross, "pit_loss")
        check_overflow(est_energy * tgt_energy, "pit_loss")
    alpha = (cross + eps) / (tgt_energy + eps)
    reference = alpha.square() * tgt_energy
    error = (est_energy - 2 * alpha * cross + reference).clamp_min(0.0)
    return 10.0 * (torch.log10(error + eps) - torch.log10(reference + eps))


def _pairwise_loss_fn(estimates: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn
                      ) -> torch.Tensor:
    batch, sources, length = estimates.shape
    shape = (batch, sources, sources, length)
    values = call_loss_fn(loss_fn, estimates.unsqueeze(2).expand(shape),
                          targets.unsqueeze(1).expand(shape), "pit_loss")
    return values.double()


def best_permutation(pairwise: torch.Tensor) -> torch.Tensor:
    """``(B, S)`` permutations minimising ``sum_j pairwise[b, perm[b, j], j]``.

    Exhaustive (ties: first in ``itertools.permutations`` order) up to
    ``MAX_EXHAUSTIVE_SOURCES`` sources, scipy's ``linear_sum_assignment`` beyond.
    """
    batch, sources, _ = pairwise.shape
    if sources <= MAX_EXHAUSTIVE_SOURCES:
        table = _permutation_table(sources).to(pairwise.device)
        costs = pairwise[:, table, torch.arange(sources, device=pairwise.device)].sum(-1)
        return table[costs.argmin(dim=1)]
    from scipy.optimize import linear_sum_assignment

    perm = torch.empty(batch, sources, dtype=torch.int64)
    for b, matrix in enumerate(pairwise.cpu().numpy()):
        rows, cols = linear_sum_assignment(matrix)
        perm[b, torch.from_numpy(cols)] = torch.from_numpy(rows)
    return perm.to(pairwise.device)


def pit_loss(
    estimates: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss_fn: LossFn | None = None,
    reduction: str = "mean",
    return_permutation: bool = False,
    check_finite: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Permutation-invariant loss: the mean pair loss under the best estimate-target matching.

    ``loss_b = min over permutations p of mean_j loss(estimates[b, p[j]], targets[b, j])``,
    with negative zero-mean SI-SDR (SI-SNR,
    [`torchlass.losses.si_sdr_loss`][torchlass.losses.si_sdr_loss]) as the default pair loss. The
    pairwise matrix comes from one batched float64 product of the estimates and targets, each
    centred in float64 first (so DC offsets thousands of times the signal do not cancel), and ranks
    pairs down to errors of about 1e-15 of the signal energies (150 dB). The loss and its gradient
    are then computed from the chosen pairs only (the error formed explicitly, see
    [`si_sdr_loss`][torchlass.losses.si_sdr_loss]); the choice itself is not differentiated. Up to 8
    sources every permutation is tried (ties: first in ``itertools.permutations`` order);
    beyond, scipy's Hungarian ``linear_sum_assignment`` is used.

    Args:
        estimates: The model's separated signals, real floating point.
        targets: The reference signals, same shape.
        loss_fn: Optional pair loss ``loss_fn(estimate, target) -> loss`` mapping
            broadcastable ``(..., time)`` tensors to ``(...)`` (lower is better), e.g.
            ``functools.partial(snr_loss, reduction="none")``.
        reduction: ``"mean"`` or ``"sum"`` over examples, or ``"none"``.
        return_permutation: Also return ``perm``: ``perm[b, j]`` is the estimate assigned
            to target ``j``, so ``estimates[b, perm[b]]`` lines up with ``targets[b]``.
        check_finite: Raise on NaN/Inf inputs (one cheap check on per-signal sums).

    Returns:
        The loss (a scalar, or ``(batch,)`` for ``reduction="none"``), and with
        ``return_permutation=True`` also ``(batch, sources)`` int64 indices.

    Shape:
        ``(batch, sources, time)`` for both inputs.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If an input is not 3-d, the shapes differ, the time axis is empty or
            ``loss_fn`` returns the wrong shape.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``reduction`` is invalid, or the signal energies overflow
            float64 (amplitudes above about 1e150, ``check_finite=True``).

    Examples:
        >>> targets = torch.randn(2, 3, 800)
        >>> loss, perm = pit_loss(targets[:, [2, 0, 1]], targets, return_permutation=True)
        >>> perm
        tensor([[1, 2, 0],
                [1, 2, 0]])
        >>> loss.item() < -60
        True
    """
    fn = "pit_loss"
    check_signals(fn, finite=False, items=True, estimates=estimates, targets=targets)
    check_ndim(estimates, fn, "estimates", ndim=3, layout="(batch, sources, time)")
    check_reduction(reduction, fn)
    batch, sources, length = estimates.shape
    eps = machine_eps(common_dtype(estimates, targets))
    if check_finite and loss_fn is not None:
        _check_finite(estimates, fn, "estimates")
        _check_finite(targets, fn, "targets")
    with torch.no_grad(), torch.autocast(estimates.device.type, enabled=False):
        if loss_fn is None:
            pairwise = _pairwise_si_snr(estimates, targets, eps, check_finite)
        else:
            pairwise = _pairwise_loss_fn(estimates, targets, loss_fn)
        perm = best_permutation(pairwise)
    if loss_fn is None:
        offsets = torch.arange(batch, device=perm.device).unsqueeze(-1) * sources
        config = LossConfig(scale_invariant=True, zero_mean=True, tau=0.0, eps=eps)
        per_source = snr_family_loss(
            estimates.reshape(-1, length), targets.reshape(-1, length), config, fn=fn,
            check_finite=check_finite, index=(perm + offsets).reshape(-1),
        ).reshape(batch, sources)
    else:
        chosen = estimates[torch.arange(batch, device=perm.device).unsqueeze(-1), perm]
        per_source = call_loss_fn(loss_fn, chosen, targets, fn)
    loss = reduce(per_source.mean(-1), reduction)
    return (loss, perm) if return_permutation else loss
