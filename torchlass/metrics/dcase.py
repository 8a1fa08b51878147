"""The three numbers the DCASE 2024 Task 9 evaluator reports: SDR, SDRi and SI-SDR.

The evaluator (``dcase_evaluator.py``) scores each 10 s clip with the challenge SDR
([`sdr`][torchlass.metrics.sdr]), its improvement over the mixture
([`sdri`][torchlass.metrics.sdri]) and SI-SDR without mean removal
([`si_sdr`][torchlass.metrics.si_sdr]), then reports the plain arithmetic mean of each over
all clips.
"""

from __future__ import annotations

import torch

from torchlass.checks import check_overflow, check_signals
from torchlass.metrics.si_sdr import si_sdr64
from torchlass.metrics.snr import challenge_sdr64

__all__ = ["dcase2024_scores"]


def dcase2024_scores(
    estimate: torch.Tensor,
    target: torch.Tensor,
    mixture: torch.Tensor,
    *,
    check_finite: bool = True,
) -> dict[str, float]:
    """Mean SDR, SDRi and SI-SDR (dB) over every clip, as the DCASE 2024 evaluator reports.

    Each signal (every index of the leading dimensions) is one clip. Per clip the
    evaluator computes ``sdr(estimate, target)``, ``sdr(estimate, target) -
    sdr(mixture, target)`` and ``si_sdr(estimate, target)`` (eps of the input dtype, no
    mean removal; the evaluator loads float32 audio); the reported numbers are the
    arithmetic means over clips, taken in float64. The baseline's published scores are
    SDR 5.708, SDRi 5.673 and SI-SDR 3.862 dB.

    Args:
        estimate: Separated clips, real floating point.
        target: Reference clips, same shape.
        mixture: Input mixtures, same shape.
        check_finite: Reject NaN/Inf inputs (synchronises a GPU).

    Returns:
        ``{"sdr": ..., "sdri": ..., "si_sdr": ...}``, Python floats in dB.

    Shape:
        ``(..., time)`` for every input, at least one clip.

    Raises:
        DTypeError: If an input is not a real floating-point tensor.
        ShapeError: If the shapes differ, the time axis is empty or there is no clip.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).

    Examples:
        >>> target = torch.tensor([[1.0, -1.0, 1.0, -1.0], [2.0, 0.0, -2.0, 0.0]])
        >>> scores = dcase2024_scores(0.9 * target, target, 0.5 * target)
        >>> {k: round(v, 3) for k, v in scores.items()}
        {'sdr': 20.0, 'sdri': 13.979, 'si_sdr': 75.847}
    """
    check_signals(
        "dcase2024_scores", finite=check_finite, items=True, estimate=estimate,
        target=target, mixture=mixture,
    )
    sdr_est = challenge_sdr64(estimate, target)
    sdr_mix = challenge_sdr64(mixture, target)
    si = si_sdr64(estimate, target, zero_mean=False)
    if check_finite:
        check_overflow(torch.stack([sdr_est, sdr_mix, si]), "dcase2024_scores")
    return {
        "sdr": float(sdr_est.mean()),
        "sdri": float((sdr_est - sdr_mix).mean()),
        "si_sdr": float(si.mean()),
    }
