"""Float64 numpy references of the SNR-family losses, with exact gradients.

The loss is the formula evaluated row by row in float64. Its gradient is the complex-step
derivative ``Im f(x + i h e_t) / h`` (Squire and Trapp 1998). Unlike finite differences,
this has no subtractive cancellation, so it stays exact to float64 rounding even at an
exact copy, where the error energy is zero. Nothing here imports torchlass.
"""

from __future__ import annotations

import numpy as np

F32_EPS = float(np.finfo(np.float32).eps)
F64_EPS = float(np.finfo(np.float64).eps)
_STEP = 1e-60  # complex step; the O(h^2) truncation error is far below float64 rounding


def _sum(a: np.ndarray) -> np.ndarray:
    """Sum over time, real and imaginary parts apart, each as a contiguous real array.

    The real part then takes the same summation path as a real input. An exact copy
    thus gives ``<x, s> == ||s||^2`` bit for bit, and ``alpha == 1`` exactly. Without
    that, float64 rounding of ``alpha`` alone would swamp the SI-SDR gradient at an exact
    copy, whose error energy is only ``eps``.
    """
    if not np.iscomplexobj(a):
        return np.ascontiguousarray(a).sum(-1)
    return _sum(a.real) + 1j * _sum(a.imag)


def _div(a: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """``a / b``, real and imaginary parts apart when ``b`` is real.

    numpy's complex division rounds the real part differently from a real division.
    """
    if np.iscomplexobj(a) and not np.iscomplexobj(b):
        return a.real / b + 1j * (a.imag / b)
    return a / b


def snr_family_loss(estimate: np.ndarray, target: np.ndarray, *, scale_invariant: bool,
                    zero_mean: bool, eps: float, tau: float = 0.0) -> np.ndarray:
    """Negative SNR or SI-SDR with soft ceiling ``tau`` (dB), ``(..., time) -> (...)``.

    ``10 log10(||ref - x||^2 + tau ||ref||^2 + eps) - 10 log10(||ref||^2 + eps)`` with
    ``ref = s`` (SNR) or ``ref = alpha s``, ``alpha = (<x, s> + eps) / (||s||^2 + eps)``
    (SI-SDR). Every product is written without conjugation, so complex inputs evaluate the
    analytic continuation that the complex step needs.
    """
    x, s = estimate, target
    length = x.shape[-1]
    if zero_mean:
        x = x - _div(_sum(x)[..., None], length)
        s = s - _div(_sum(s)[..., None], length)
    if scale_invariant:
        alpha = _div(_sum(x * s) + eps, _sum(s * s) + eps)
        s = alpha[..., None] * s
    reference = _sum(s * s)
    error = _sum((s - x) * (s - x))
    return 10 * np.log10(error + tau * reference + eps) - 10 * np.log10(reference + eps)


def snr_family_gradient(estimate: np.ndarray, target: np.ndarray, *, wrt: str = "estimate",
                        **options: object) -> np.ndarray:
    """Gradient of :func:`snr_family_loss` w.r.t. ``wrt``, by complex step, ``(rows, time)``."""
    x = np.asarray(estimate, dtype=np.float64)
    s = np.asarray(target, dtype=np.float64)
    length = x.shape[-1]
    step = _STEP * np.eye(length)[None] * 1j  # (1, time, time): one perturbed copy per sample
    x_, s_ = x[:, None, :], s[:, None, :]
    if wrt == "estimate":
        values = snr_family_loss(x_ + step, s_, **options)
    else:
        values = snr_family_loss(x_, s_ + step, **options)
    return values.imag / _STEP
