"""Energy-ratio metrics: the DCASE 2024 challenge SDR, its improvement, and plain SNR.

Both are ratios of the target's energy to the error's energy, in dB, computed in float64,
returned in the inputs' precision (float32 for float32 and half inputs) and never reduced:
``(..., time) -> (...)``. They differ only in how they keep the ratio finite:
[`sdr`][torchlass.metrics.sdr] (the challenge evaluator's) floors each *mean power* at ``1e-10``,
[`snr`][torchlass.metrics.snr.snr] (torchmetrics' ``signal_noise_ratio``) adds the machine epsilon
to each *energy*. Neither removes the mean, so a DC offset counts as signal or as error. On CUDA
tensors [`snr`][torchlass.metrics.snr.snr] takes its sums from one fused pass over both signals
([`torchlass.kernels`][torchlass.kernels]).
"""

from __future__ import annotations

import torch

from torchlass import kernels
from torchlass.checks import check_overflow, check_signals, common_dtype, machine_eps, result_dtype

__all__ = ["sdr", "sdri", "snr"]

_POWER_FLOOR = 1e-10


def sdr(estimate: torch.Tensor, target: torch.Tensor, *, check_finite: bool = True) -> torch.Tensor:
    """Signal-to-distortion ratio as the DCASE 2024 Task 9 evaluator computes it (dB).

    ``SDR = 10 log10( max(mean(s^2), 1e-10) / max(mean((s_hat - s)^2), 1e-10) )``
    (SRPOL eq. 5): a plain SNR on mean powers, not BSS-eval. The floors are absolute, so
    the value is not scale invariant: a silent target and a silent estimate give 0 dB, a
    perfect estimate gives ``100 + 10 log10(mean(s^2))`` dB, and signals quieter than
    ``1e-5`` RMS read as silence. Computed in float64.

    Args:
        estimate: Estimated signal ``s_hat``, real floating point.
        target: Reference signal ``s``, same shape.
        check_finite: Reject NaN/Inf inputs (synchronises a GPU).

    Returns:
        SDR in dB, one value per signal.

    Shape:
        ``(..., time)`` for both inputs; the result is ``(...)``.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ or the time axis is empty.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).

    Examples:
        >>> target = torch.tensor([1.0, -1.0, 1.0, -1.0])
        >>> round(sdr(0.5 * target, target).item(), 4)
        6.0206
        >>> sdr(torch.zeros(4), torch.zeros(4)).item()
        0.0
    """
    check_signals("sdr", finite=check_finite, estimate=estimate, target=target)
    value = challenge_sdr64(estimate, target)
    if check_finite:
        check_overflow(value, "sdr")
    return value.to(result_dtype(estimate, target))


def challenge_sdr64(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[`sdr`][torchlass.metrics.sdr] in float64 without the input checks."""
    s = target.double()
    signal_power = s.square().mean(-1).clamp_min(_POWER_FLOOR)
    error_power = (estimate.double() - s).square().mean(-1).clamp_min(_POWER_FLOOR)
    return 10.0 * torch.log10(signal_power / error_power)


def sdri(
    estimate: torch.Tensor,
    target: torch.Tensor,
    mixture: torch.Tensor,
    *,
    check_finite: bool = True,
) -> torch.Tensor:
    """SDR improvement over the mixture, as the DCASE 2024 evaluator reports it (dB).

    ``SDRi = sdr(estimate, target) - sdr(mixture, target)``, both with the floors of
    [`sdr`][torchlass.metrics.sdr].

    Args:
        estimate: Estimated signal, real floating point.
        target: Reference signal, same shape.
        mixture: The input mixture the estimate was separated from, same shape.
        check_finite: Reject NaN/Inf inputs (synchronises a GPU).

    Returns:
        SDRi in dB, one value per signal.

    Shape:
        ``(..., time)`` for every input; the result is ``(...)``.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ or the time axis is empty.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).

    Examples:
        >>> target = torch.tensor([1.0, -1.0, 1.0, -1.0])
        >>> round(sdri(target * 0.9, target, target * 0.5).item(), 4)
        13.9794
    """
    check_signals(
        "sdri", finite=check_finite, estimate=estimate, target=target, mixture=mixture
    )
    value = challenge_sdr64(estimate, target) - challenge_sdr64(mixture, target)
    if check_finite:
        check_overflow(value, "sdri")
    return value.to(result_dtype(estimate, target, mixture))


def snr(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    zero_mean: bool = False,
    check_finite: bool = True,
) -> torch.Tensor:
    """Signal-to-noise ratio with torchmetrics' ``signal_noise_ratio`` convention (dB).

    ``SNR = 10 log10( (||s||^2 + eps) / (||s - s_hat||^2 + eps) )`` with ``eps`` the
    machine epsilon of the input dtype (float32's for float16/bfloat16 inputs), summed in
    float64. Both silent gives 0 dB; a silent target gives ``10 log10(eps / (||s_hat||^2 +
    eps))``, about -69 dB for a unit-energy float32 estimate; a perfect estimate gives
    ``10 log10((||s||^2 + eps) / eps)``. ``zero_mean=True`` removes each signal's mean
    first.

    Args:
        estimate: Estimated signal ``s_hat``, real floating point.
        target: Reference signal ``s``, same shape.
        zero_mean: Subtract each signal's mean over time first.
        check_finite: Reject NaN/Inf inputs (synchronises a GPU).

    Returns:
        SNR in dB, one value per signal.

    Shape:
        ``(..., time)`` for both inputs; the result is ``(...)``.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ or the time axis is empty.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).

    Examples:
        >>> target = torch.tensor([3.0, -0.5, 2.0, 7.0])
        >>> round(snr(torch.tensor([2.5, 0.0, 2.0, 8.0]), target).item(), 4)
        16.1805
    """
    check_signals("snr", finite=check_finite, estimate=estimate, target=target)
    value = snr64(estimate, target, zero_mean=zero_mean)
    if check_finite:
        check_overflow(value, "snr")
    return value.to(result_dtype(estimate, target))


def snr64(estimate: torch.Tensor, target: torch.Tensor, *, zero_mean: bool) -> torch.Tensor:
    """[`snr`][torchlass.metrics.snr.snr] in float64 without the input checks (eps of the input
    dtype).

    On CUDA tensors the fused one-pass kernel computes it
    ([`torchlass.kernels.fused_snr`][torchlass.kernels.reductions.fused_snr]).
    """
    if kernels.is_available(estimate, target):
        return kernels.fused_snr(estimate, target, zero_mean=zero_mean)
    eps = machine_eps(common_dtype(estimate, target))
    x, s = estimate.double(), target.double()
    if zero_mean:
        x = x - x.mean(-1, keepdim=True)
        s = s - s.mean(-1, keepdim=True)
    return 10.0 * torch.log10((s.square().sum(-1) + eps) / ((s - x).square().sum(-1) + eps))
