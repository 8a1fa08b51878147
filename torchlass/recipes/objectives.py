"""Training objectives for a query-conditioned separator: L1, SDR-based, query-anchored MixIT.

``"l1"`` is the baseline's waveform L1 (mean absolute error over samples and batch).
``"sdr"`` is SRPOL's eq. 4, ``-lam * SDR - (1 - lam) * SI-SDR`` with ``lam = 0.9``
([`sdr_loss`][torchlass.losses.sdr_loss]). ``"mixit"`` is mixture invariant training
(Wisdom et al., NeurIPS 2020) adapted to a query: the separator predicts ``M >= 2``
sources for the caption of the first clip of a mixture of two clips. The first estimate
is the query's and always goes to that clip; the other ``M - 1`` go to whichever clip
gives the lowest loss. This is [`mixit_loss`][torchlass.losses.mixit_loss] with
``anchored=True`` on the two clips, each remix scored by the thresholded negative SNR.
"""

from __future__ import annotations

from typing import cast

import torch

from torchlass.checks import check_choice
from torchlass.data.mixing import Mixture
from torchlass.errors import ShapeError
from torchlass.losses import l1_loss, mixit_loss, sdr_loss

__all__ = ["LOSSES", "separation_loss"]

LOSSES = ("l1", "sdr", "mixit")


def separation_loss(name: str, estimate: torch.Tensor, batch: Mixture, *,
                    sdr_lambda: float = 0.9, mixit_snr_max: float = 30.0) -> torch.Tensor:
    """The training loss ``name`` of a separator's output on a mixed batch.

    Args:
        name: ``"l1"``, ``"sdr"`` or ``"mixit"``.
        estimate: the separator's output ``(batch, sources, 1, time)``: one source for
            ``"l1"`` and ``"sdr"``, ``M >= 2`` for ``"mixit"``.
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
    target = batch.target
    if name == "mixit":
        if estimate.dim() != 4 or estimate.shape[2] != 1:
            raise ShapeError(
                "separation_loss(): 'mixit' expected an estimate of shape (batch, M, 1, time) "
                f"(a separator with num_sources >= 2), got {tuple(estimate.shape)}"
            )
        clips = torch.cat([target, batch.interferer], dim=1)  # (batch, 2, time)
        # without return_assignment, mixit_loss returns the loss alone
        return cast(torch.Tensor, mixit_loss(estimate[:, :, 0], clips, anchored=True,
                                             snr_max=mixit_snr_max))
    if estimate.shape != (target.shape[0], 1, *target.shape[1:]):
        raise ShapeError(
            f"separation_loss(): {name!r} expected an estimate of shape (batch, 1, 1, time) "
            f"{(target.shape[0], 1, *target.shape[1:])}, got {tuple(estimate.shape)}"
        )
    estimate = estimate[:, 0]
    if name == "l1":
        return l1_loss(estimate, target)
    return sdr_loss(estimate[:, 0], target[:, 0], lam=sdr_lambda)
