"""``nn.Module`` wrappers of the losses: each holds its options and calls its function."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from torchlass.checks import check_reduction
from torchlass.losses._loss_fn import LossFn
from torchlass.losses.mixit import mixit_loss
from torchlass.losses.pit import pit_loss
from torchlass.losses.snr import sdr_loss, si_sdr_loss, snr_loss
from torchlass.losses.waveform import l1_loss

__all__ = ["L1Loss", "MixITLoss", "PITLoss", "SDRLoss", "SISDRLoss", "SNRLoss"]


class _Loss(nn.Module):
    """Stores the keyword options of a loss function and forwards them on every call."""

    _fn: Any

    def __init__(self, **options: Any) -> None:
        super().__init__()
        check_reduction(options["reduction"], type(self).__name__)
        self.options = options

    def forward(self, estimate: torch.Tensor, target: torch.Tensor) -> Any:
        return type(self)._fn(estimate, target, **self.options)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class L1Loss(_Loss):
    """Module form of [`l1_loss`][torchlass.losses.l1_loss] (the baseline's waveform L1).

    Args:
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs.

    Shape:
        ``forward(estimate, target)``: ``(..., time)`` each; ``()`` or ``(...)`` out.

    Examples:
        >>> L1Loss()(torch.ones(2, 8), torch.zeros(2, 8)).item()
        1.0
    """

    _fn = staticmethod(l1_loss)

    def __init__(self, *, reduction: str = "mean", check_finite: bool = True) -> None:
        super().__init__(reduction=reduction, check_finite=check_finite)


class SNRLoss(_Loss):
    """Module form of [`snr_loss`][torchlass.losses.snr_loss] (negative SNR, dB).

    Args:
        zero_mean: Subtract each signal's mean first.
        snr_max: Soft ceiling in dB, or ``None``.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs.

    Shape:
        ``forward(estimate, target)``: ``(..., time)`` each; ``()`` or ``(...)`` out.

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> round(SNRLoss()(torch.tensor([2.5, 0.0, 2.0, 8.0]), target).item(), 4)
        -16.1805
    """

    _fn = staticmethod(snr_loss)

    def __init__(self, *, zero_mean: bool = False, snr_max: float | None = None,
                 reduction: str = "mean", check_finite: bool = True) -> None:
        super().__init__(zero_mean=zero_mean, snr_max=snr_max, reduction=reduction,
                         check_finite=check_finite)


class SISDRLoss(_Loss):
    """Module form of [`si_sdr_loss`][torchlass.losses.si_sdr_loss] (negative SI-SDR, dB).

    Args:
        zero_mean: Subtract each signal's mean first (SI-SNR, the default).
        snr_max: Soft ceiling in dB, or ``None``.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs.

    Shape:
        ``forward(estimate, target)``: ``(..., time)`` each; ``()`` or ``(...)`` out.

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> round(SISDRLoss(zero_mean=False)(torch.tensor([2.5, 0.0, 2.0, 8.0]), target).item(), 3)
        -18.403
    """

    _fn = staticmethod(si_sdr_loss)

    def __init__(self, *, zero_mean: bool = True, snr_max: float | None = None,
                 reduction: str = "mean", check_finite: bool = True) -> None:
        super().__init__(zero_mean=zero_mean, snr_max=snr_max, reduction=reduction,
                         check_finite=check_finite)


class SDRLoss(_Loss):
    """Module form of [`sdr_loss`][torchlass.losses.sdr_loss] (SRPOL eq. 4).

    Args:
        lam: Weight of the SNR term, in ``[0, 1]``.
        zero_mean: Remove the means in the SI-SDR term.
        snr_max: Soft ceiling in dB applied to both terms, or ``None``.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs.

    Shape:
        ``forward(estimate, target)``: ``(..., time)`` each; ``()`` or ``(...)`` out.

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> round(SDRLoss()(torch.tensor([2.5, 0.0, 2.0, 8.0]), target).item(), 4)
        -16.0716
    """

    _fn = staticmethod(sdr_loss)

    def __init__(self, *, lam: float = 0.9, zero_mean: bool = True,
                 snr_max: float | None = None, reduction: str = "mean",
                 check_finite: bool = True) -> None:
        super().__init__(lam=lam, zero_mean=zero_mean, snr_max=snr_max,
                         reduction=reduction, check_finite=check_finite)


class MixITLoss(_Loss):
    """Module form of [`mixit_loss`][torchlass.losses.mixit_loss] (mixture invariant training).

    Args:
        snr_max: Soft ceiling of the default per-mixture loss in dB, or ``None``.
        loss_fn: Optional per-mixture loss ``loss_fn(remix, mixture) -> (...)``.
        anchored: Always assign estimate 0 to mixture 0 (query-anchored MixIT).
        reduction: ``"mean"`` or ``"sum"`` over examples, or ``"none"``.
        return_assignment: Also return the ``(batch, M)`` assignment.
        check_finite: Raise on NaN/Inf inputs.

    Shape:
        ``forward(estimates, mixtures)``: ``(batch, M, time)`` and ``(batch, N, time)``.

    Examples:
        >>> sources = torch.randn(2, 4, 500)
        >>> mixtures = sources.reshape(2, 2, 2, 500).sum(2)
        >>> round(MixITLoss()(sources, mixtures).item(), 2)
        -60.0
    """

    _fn = staticmethod(mixit_loss)

    def __init__(self, *, snr_max: float | None = 30.0, loss_fn: LossFn | None = None,
                 anchored: bool = False, reduction: str = "mean",
                 return_assignment: bool = False, check_finite: bool = True) -> None:
        super().__init__(snr_max=snr_max, loss_fn=loss_fn, anchored=anchored,
                         reduction=reduction, return_assignment=return_assignment,
                         check_finite=check_finite)


class PITLoss(_Loss):
    """Module form of [`pit_loss`][torchlass.losses.pit_loss] (permutation-invariant training).

    Args:
        loss_fn: Optional pair loss (default: negative zero-mean SI-SDR).
        reduction: ``"mean"`` or ``"sum"`` over examples, or ``"none"``.
        return_permutation: Also return the ``(batch, sources)`` permutation.
        check_finite: Raise on NaN/Inf inputs.

    Shape:
        ``forward(estimates, targets)``: ``(batch, sources, time)`` each.

    Examples:
        >>> targets = torch.randn(2, 3, 800)
        >>> PITLoss()(targets.flip(1), targets).item() < -60
        True
    """

    _fn = staticmethod(pit_loss)

    def __init__(self, *, loss_fn: LossFn | None = None, reduction: str = "mean",
                 return_permutation: bool = False, check_finite: bool = True) -> None:
        super().__init__(loss_fn=loss_fn, reduction=reduction,
                         return_permutation=return_permutation, check_finite=check_finite)
