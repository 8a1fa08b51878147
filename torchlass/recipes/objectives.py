"""Training objectives for a query-conditioned separator: L1, SDR-based, query-anchored MixIT.

``"l1"`` is the baseline's waveform L1 (mean absolute error over samples and batch).
``"sdr"`` is SRPOL's eq. 4, ``-lam * SDR - (1 - lam) * SI-SDR`` with ``lam = 0.9``
([`torchlass.losses.sdr_loss`][torchlass.losses.sdr_loss]). ``"mixit"`` is mixture invariant
training (Wisdom et al., NeurIPS 2020) adapted to a query: the separator predicts ``M >= 2`` sources
for the caption of the first clip of a mixture of two clips; the first estimate is the query's
and is always assigned to that clip, the other ``M - 1`` are assigned to either clip,
whichever assignment gives the lowest loss (the "noise heads" of CLIPSep's noise-invariant
training, Dong et al., ICLR 2023). Each clip's remix is scored by the thresholded negative
SNR of [`torchlass.losses.snr_loss`][torchlass.losses.snr_loss] (``snr_max`` ceiling), and the two
are summed.
"""

from __future__ import annotations

import itertools

import torch

from torchlass.data.mixing import Mixture
from torchlass.errors import ShapeError, check_choice

__all__ = ["LOSSES", "anchored_mixit_loss", "separation_loss"]

LOSSES = ("l1", "sdr", "mixit")


def anchored_mixit_loss(estimates: torch.Tensor, target: torch.Tensor,
                        interferer: torch.Tensor, *, snr_max: float = 30.0) -> torch.Tensor:
    """MixIT with the first estimate tied to the query's clip (see the module docstring).

    ``min over a in {0,1}^(M-1)`` of ``L(e_0 + sum_{a_j=0} e_j, target) +
    L(sum_{a_j=1} e_j, interferer)``, ``L`` the thresholded negative SNR in dB.

    Args:
        estimates: ``M >= 2`` estimates per mixture, the query's first.
        target: the clip the caption describes.
        interferer: the other clip.
        snr_max: soft SNR ceiling in dB of each term.

    Returns:
        Mean over the batch of the best assignment's loss (dB).

    Shape:
        estimates: ``(batch, M, time)``; target, interferer: ``(batch, time)``.

    Raises:
        ShapeError: if ``M < 2`` or the shapes disagree.
    """
    from torchlass.losses import snr_loss

    if estimates.dim() != 3 or estimates.shape[1] < 2:
        raise ShapeError(
            "anchored_mixit_loss(): argument 'estimates' expected (batch, M >= 2, time), "
            f"got shape {tuple(estimates.shape)}"
        )
    if target.shape != interferer.shape or target.shape != (estimates.shape[0],
                                                             estimates.shape[-1]):
        raise ShapeError(
            "anchored_mixit_loss(): arguments 'target' and 'interferer' expected shape "
            f"{(estimates.shape[0], estimates.shape[-1])}, got {tuple(target.shape)} and "
            f"{tuple(interferer.shape)}"
        )
    free = estimates.shape[1] - 1
    candidates = []
    for assignment in itertools.product((0, 1), repeat=free):
        to_target = torch.tensor([1.0, *(1.0 - a for a in assignment)], device=estimates.device,
                                 dtype=estimates.dtype)
        remix_target = torch.einsum("bmt,m->bt", estimates, to_target)
        remix_other = torch.einsum("bmt,m->bt", estimates, 1.0 - to_target)
        candidates.append(snr_loss(remix_target, target, snr_max=snr_max, reduction="none")
                          + snr_loss(remix_other, interferer, snr_max=snr_max,
                                     reduction="none"))
    return torch.stack(candidates).amin(dim=0).mean()


def separation_loss(name: str, estimate: torch.Tensor, batch: Mixture, *,
                    sdr_lambda: float = 0.9, mixit_snr_max: float = 30.0) -> torch.Tensor:
    """The training loss ``name`` of a separator's output on a mixed batch.

    Args:
        name: ``"l1"``, ``"sdr"`` or ``"mixit"``.
        estimate: the separator's output: ``(batch, 1, time)`` for one source,
            ``(batch, M, 1, time)`` for ``"mixit"``.
        batch: the mixtures with their target and interferer (mono).
        sdr_lambda: weight of the SDR term of ``"sdr"``.
        mixit_snr_max: SNR ceiling (dB) of ``"mixit"``.

    Returns:
        A scalar loss (lower is better).

    Raises:
        ValueRangeError: for an unknown loss name.
        ShapeError: if ``estimate`` does not fit the loss.
    """
    check_choice(name, "separation_loss", "name", LOSSES)
    from torchlass.losses import l1_loss, sdr_loss

    target = batch.target
    if name == "mixit":
        if estimate.dim() != 4 or estimate.shape[2] != 1:
            raise ShapeError(
                "separation_loss(): 'mixit' expected an estimate of shape (batch, M, 1, time) "
                f"(a separator with num_sources >= 2), got {tuple(estimate.shape)}"
            )
        return anchored_mixit_loss(estimate[:, :, 0], target[:, 0], batch.interferer[:, 0],
                                   snr_max=mixit_snr_max)
    if estimate.shape != target.shape:
        raise ShapeError(
            f"separation_loss(): {name!r} expected an estimate of the target's shape "
            f"{tuple(target.shape)}, got {tuple(estimate.shape)}"
        )
    if name == "l1":
        return l1_loss(estimate, target)
    return sdr_loss(estimate[:, 0], target[:, 0], lam=sdr_lambda)
