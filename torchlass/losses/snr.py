"""SNR-family losses: minus SNR, minus SI-SDR, and the SDR-based loss of SRPOL / CLAPSep.

Each loss is minus the matching metric of [`torchlass.metrics`][torchlass.metrics.snr] (same ``eps``
convention), lower is better. An optional soft ceiling ``snr_max`` (dB) adds a relative
floor ``tau = 10^(-snr_max/10)`` times the reference energy to the error energy, so the
loss of a perfect estimate is about ``-snr_max`` and well-fitted examples stop dominating
the batch. The forward and backward passes are fused (see the engine in
``torchlass/losses/_fused.py``). They work in float64 from the error itself, also under
autocast, so values and gradients stay those of the float64 formula up to an exact copy.
With ``zero_mean=True`` a one-sample signal is centred to zero: the loss is the constant
0 and its gradient exactly 0.
"""

from __future__ import annotations

import math

import torch

from torchlass.checks import check_reduction, check_signals, common_dtype, machine_eps, reduce
from torchlass.errors import DTypeError, ValueRangeError
from torchlass.losses._fused import LossConfig, snr_family_loss

__all__ = ["sdr_loss", "si_sdr_loss", "snr_loss"]


def threshold_tau(snr_max: float | None, fn: str) -> float:
    """``tau = 10^(-snr_max/10)`` for a finite ``snr_max`` in dB, 0 for ``None``."""
    if snr_max is None:
        return 0.0
    if isinstance(snr_max, bool) or not isinstance(snr_max, (int, float)):
        raise DTypeError(
            f"{fn}(): argument 'snr_max' expected a float (dB) or None, "
            f"got {type(snr_max).__name__}"
        )
    if not math.isfinite(snr_max):
        raise ValueRangeError(
            f"{fn}(): argument 'snr_max' expected a finite float (dB) or None, got {snr_max}"
        )
    return 10.0 ** (-snr_max / 10.0)


def _snr_family(fn: str, estimate: torch.Tensor, target: torch.Tensor, *,
                scale_invariant: bool, zero_mean: bool, snr_max: float | None,
                reduction: str, check_finite: bool) -> torch.Tensor:
    check_signals(fn, finite=False, items=True, estimate=estimate, target=target)
    check_reduction(reduction, fn)
    config = LossConfig(
        scale_invariant=scale_invariant,
        zero_mean=zero_mean,
        tau=threshold_tau(snr_max, fn),
        eps=machine_eps(common_dtype(estimate, target)),
    )
    *batch, length = target.shape
    values = snr_family_loss(
        estimate.reshape(-1, length), target.reshape(-1, length), config,
        fn=fn, check_finite=check_finite,
    )
    return reduce(values.reshape(batch), reduction)


def snr_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    zero_mean: bool = False,
    snr_max: float | None = None,
    reduction: str = "mean",
    check_finite: bool = True,
) -> torch.Tensor:
    """Negative SNR (dB), torchmetrics' ``signal_noise_ratio`` convention, with a soft ceiling.

    ``loss = 10 log10(||s - s_hat||^2 + tau ||s||^2 + eps) - 10 log10(||s||^2 + eps)``
    with ``tau = 10^(-snr_max/10)`` (0 when ``snr_max is None``, then ``loss = -snr``)
    and ``eps`` the machine epsilon of the input dtype (float32's for half types). A
    silent target and estimate give 0; the loss and its gradient are finite everywhere.

    Args:
        estimate: Estimated signal ``s_hat``, real floating point.
        target: Reference signal ``s``, same shape.
        zero_mean: Subtract each signal's mean over time first.
        snr_max: Soft ceiling on the SNR in dB, or ``None`` for none.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs and on energies that overflow float64 (one
            cheap check on per-signal sums).

    Returns:
        The loss in dB: a scalar, or one value per signal for ``reduction="none"``;
        float32 (float64 for float64 inputs).

    Shape:
        ``(..., time)`` for both inputs; ``()`` or ``(...)`` out.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ, the time axis is empty or there is no signal.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``reduction`` or ``snr_max`` is invalid, or the energies
            overflow float64 (amplitudes above about 1e150, ``check_finite=True``).

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> round(snr_loss(torch.tensor([2.5, 0.0, 2.0, 8.0]), target).item(), 4)
        -16.1805
        >>> round(snr_loss(target, target, snr_max=30.0).item(), 4)
        -30.0
    """
    return _snr_family("snr_loss", estimate, target, scale_invariant=False,
                       zero_mean=zero_mean, snr_max=snr_max, reduction=reduction,
                       check_finite=check_finite)


def si_sdr_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    zero_mean: bool = True,
    snr_max: float | None = None,
    reduction: str = "mean",
    check_finite: bool = True,
) -> torch.Tensor:
    """Negative SI-SDR (dB), challenge / torchmetrics convention, zero-mean (SI-SNR) by default.

    With ``alpha = (<s_hat, s> + eps) / (||s||^2 + eps)``,
    ``loss = 10 log10(||alpha s - s_hat||^2 + tau ||alpha s||^2 + eps)
    - 10 log10(||alpha s||^2 + eps)``, ``tau = 10^(-snr_max/10)`` (0 when ``snr_max`` is
    ``None``, then ``loss = -si_sdr(..., zero_mean=zero_mean)``). A silent estimate gives
    0 and a finite gradient. The error ``alpha s - s_hat`` is formed explicitly in float64,
    so value and gradient keep the float64 formula's accuracy beyond 100 dB in float32
    (measured by ``benchmarks/loss_accuracy.py``).

    Args:
        estimate: Estimated signal ``s_hat``, real floating point.
        target: Reference signal ``s``, same shape.
        zero_mean: Subtract each signal's mean over time first (SI-SNR, the default).
        snr_max: Soft ceiling on the SI-SDR in dB, or ``None`` for none.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs and on energies that overflow float64 (one
            cheap check on per-signal sums).

    Returns:
        The loss in dB: a scalar, or one value per signal for ``reduction="none"``;
        float32 (float64 for float64 inputs).

    Shape:
        ``(..., time)`` for both inputs; ``()`` or ``(...)`` out.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ, the time axis is empty or there is no signal.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``reduction`` or ``snr_max`` is invalid, or the energies
            overflow float64 (amplitudes above about 1e150, ``check_finite=True``).

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> estimate = torch.tensor([2.5, 0.0, 2.0, 8.0])
        >>> round(si_sdr_loss(estimate, target, zero_mean=False).item(), 4)
        -18.403
        >>> si_sdr_loss(torch.zeros(4), target).item()
        0.0
    """
    return _snr_family("si_sdr_loss", estimate, target, scale_invariant=True,
                       zero_mean=zero_mean, snr_max=snr_max, reduction=reduction,
                       check_finite=check_finite)


def sdr_loss(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    lam: float = 0.9,
    zero_mean: bool = True,
    snr_max: float | None = None,
    reduction: str = "mean",
    check_finite: bool = True,
) -> torch.Tensor:
    """SRPOL's SDR-based loss (eq. 4), from CLAPSep: ``-lam SDR - (1 - lam) SI-SDR`` in dB.

    As in CLAPSep's code, the "SDR" term is torchmetrics' ``signal_noise_ratio`` (no mean
    removal: [`snr_loss`][torchlass.losses.snr_loss]) and the "SI-SDR" term is zero-mean SI-SDR,
        i.e. SI-SNR
    ([`si_sdr_loss`][torchlass.losses.si_sdr_loss] with ``zero_mean=True``):
    ``loss = lam * snr_loss(...) + (1 - lam) * si_sdr_loss(..., zero_mean=zero_mean)``.
    The "SDR" here is therefore *not* the challenge's
    [`torchlass.metrics.sdr`][torchlass.metrics.sdr], which floors mean powers at ``1e-10`` instead
    of adding ``eps`` to the energies.

    Args:
        estimate: Estimated signal, real floating point.
        target: Reference signal, same shape.
        lam: Weight of the SNR term, in ``[0, 1]``.
        zero_mean: Remove the means in the SI-SDR term (CLAPSep: ``True``).
        snr_max: Soft ceiling (dB) applied to both terms, or ``None``.
        reduction: ``"mean"`` or ``"sum"`` over signals, or ``"none"``.
        check_finite: Raise on NaN/Inf inputs and on energies that overflow float64 (one
            cheap check on per-signal sums).

    Returns:
        The loss in dB: a scalar, or one value per signal for ``reduction="none"``.

    Shape:
        ``(..., time)`` for both inputs; ``()`` or ``(...)`` out.

    Raises:
        DTypeError: If an input is not a real floating-point tensor or ``lam`` not a float.
        ShapeError: If the shapes differ, the time axis is empty or there is no signal.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``lam`` is outside ``[0, 1]``, ``reduction``/``snr_max`` is
            invalid, or the energies overflow float64 (``check_finite=True``).

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> estimate = torch.tensor([2.5, 0.0, 2.0, 8.0])
        >>> round(sdr_loss(estimate, target).item(), 4)
        -16.0716
    """
    if isinstance(lam, bool) or not isinstance(lam, (int, float)):
        raise DTypeError(f"sdr_loss(): argument 'lam' expected a float, got {type(lam).__name__}")
    if not 0.0 <= lam <= 1.0:
        raise ValueRangeError(f"sdr_loss(): argument 'lam' expected a float in [0, 1], got {lam}")
    snr_term = _snr_family("sdr_loss", estimate, target, scale_invariant=False,
                           zero_mean=False, snr_max=snr_max, reduction=reduction,
                           check_finite=check_finite)
    si_term = _snr_family("sdr_loss", estimate, target, scale_invariant=True,
                          zero_mean=zero_mean, snr_max=snr_max, reduction=reduction,
                          check_finite=check_finite)
    return lam * snr_term + (1.0 - lam) * si_term
