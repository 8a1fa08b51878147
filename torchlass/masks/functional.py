"""Apply a time-frequency mask to a complex mixture spectrogram: three mask families.

Pure functions, one per family compared in the DCASE 2024 Task 9 SRPOL report:
the baseline's magnitude mask with a phase rotation
([`apply_mag_phase_mask`][torchlass.masks.apply_mag_phase_mask]), separate ratio masks on the real
and imaginary parts ([`apply_real_imag_mask`][torchlass.masks.apply_real_imag_mask], SRPOL eq. 1)
and the complex ratio mask ([`apply_complex_ratio_mask`][torchlass.masks.apply_complex_ratio_mask],
SRPOL eq. 2). Masks broadcast against the spectrogram. They do not scan for NaN (they run inside the
training step; [`torchlass.stft.stft`][torchlass.stft.stft] and
[`torchlass.stft.istft`][torchlass.stft.istft] check the signal at both ends) and infinite logits
are valid (``sigmoid(+inf) = 1``). On CUDA tensors each function hands its (checked) inputs to the
fused kernel of [`torchlass.kernels`][torchlass.kernels] when
[`torchlass.kernels.is_available`][torchlass.kernels.is_available] says so: the same values and
gradients in one pass over memory; the code below is the reference and the CPU path.
"""

from __future__ import annotations

import torch

from torchlass import kernels
from torchlass.checks import check_mask_inputs, compute_dtype

__all__ = ["apply_complex_ratio_mask", "apply_mag_phase_mask", "apply_real_imag_mask"]

# dtype.to_complex() as a lookup, which torch.compile traces without a graph break
_COMPLEX_OF = {torch.float32: torch.complex64, torch.float64: torch.complex128}
# Floor on the length of the phase vector (p_r, p_i), as in the baseline.
_PHASOR_FLOOR = 1e-10


def _complex_product(spec: torch.Tensor, m_re: torch.Tensor, m_im: torch.Tensor) -> torch.Tensor:
    """``(m_re + j m_im) * spec`` from real parts (an exact identity for ``m = 1 + 0j``)."""
    re, im = spec.real, spec.imag
    return torch.complex(m_re * re - m_im * im, m_re * im + m_im * re)


def _promote(spec: torch.Tensor, *masks: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Bring everything to one precision >= float32 (the eager path's arithmetic)."""
    dtype = torch.float32 if spec.dtype == torch.complex32 else spec.real.dtype
    for mask in masks:
        dtype = torch.promote_types(dtype, compute_dtype(mask.dtype))
    return spec.to(_COMPLEX_OF[dtype]), [m.to(dtype) for m in masks]


def apply_mag_phase_mask(
    spec: torch.Tensor,
    mag_logit: torch.Tensor,
    phase_real_logit: torch.Tensor,
    phase_imag_logit: torch.Tensor,
) -> torch.Tensor:
    """Magnitude mask plus phase rotation: the DCASE 2024 baseline's mask
    (docs/baseline.md#mask-and-phase).

    With ``m = sigmoid(mag_logit)``, ``(p_r, p_i) = (tanh(phase_real_logit),
    tanh(phase_imag_logit))`` and the unit phasor ``(cos_M, sin_M) = (p_r, p_i) / rho``,
    ``rho = max(sqrt(p_r^2 + p_i^2), 1e-10)``, the baseline computes::

        |X| = |Y|_eps * m,                  |Y|_eps = sqrt(max(|Y|^2, 1e-10))
        X   = |X| (cos_Y cos_M - sin_Y sin_M) + j |X| (sin_Y cos_M + cos_Y sin_M)

    with ``cos_Y = Re Y / |Y|_eps`` and ``sin_Y = Im Y / |Y|_eps``, i.e. ``X = m e^{j angle
    M} Y``. The floored magnitude cancels exactly (``|Y|_eps cos_Y = Re Y``, also in silent
    bins), so this function evaluates the equal product ``(m cos_M + j m sin_M) * Y``: the
    same values to rounding, an identity mask (``mag_logit = +inf``, ``phase_real_logit =
    +inf``, ``phase_imag_logit = 0``) returns ``Y`` bit for bit, and silent bins need no
    division. The floor matters only for the network *input*
    ([`torchlass.stft.magnitude_phase`][torchlass.stft.magnitude_phase]). It is a bounded complex
    mask: magnitude in (0, 1), phase set by the *direction* of ``(p_r, p_i)``; where
        ``p_r = p_i = 0`` the
    phasor is 0 and the bin is zeroed (the baseline's Nyquist bin). ``rho`` is evaluated as
    ``sqrt(max(p_r^2 + p_i^2, 1e-20))``, equal in value, so that the gradient at
    ``p_r = p_i = 0`` is finite (``1 / 1e-10`` per unit of ``p``).

    Args:
        spec: complex mixture spectrogram ``Y``.
        mag_logit: magnitude-mask logit ``z0``.
        phase_real_logit: phase logit ``z1``.
        phase_imag_logit: phase logit ``z2``.

    Returns:
        The masked complex spectrogram, complex64 or complex128 (the widest precision of
        the inputs, at least single).

    Shape:
        ``spec`` and the three logits broadcast together, e.g. ``spec``
        ``(batch, 1, channels, freq, frames)`` and logits ``(batch, sources, channels, freq,
        frames)``; the output has the broadcast shape.

    Raises:
        DTypeError: ``spec`` is not complex or a logit is not real floating-point.
        ShapeError: the shapes do not broadcast.

    Examples:
        >>> y = torch.tensor([3 + 4j])
        >>> apply_mag_phase_mask(y, torch.tensor([0.0]), torch.tensor([9.0]),
        ...                      torch.tensor([0.0]))
        tensor([1.5000+2.j])
    """
    check_mask_inputs("apply_mag_phase_mask", spec, mag_logit=mag_logit,
                      phase_real_logit=phase_real_logit, phase_imag_logit=phase_imag_logit)
    if kernels.is_available(spec, mag_logit, phase_real_logit, phase_imag_logit):
        return kernels.fused_apply_mag_phase_mask(spec, mag_logit, phase_real_logit,
                                                  phase_imag_logit)
    spec, (z0, z1, z2) = _promote(spec, mag_logit, phase_real_logit, phase_imag_logit)
    m = torch.sigmoid(z0)
    p_r, p_i = torch.tanh(z1), torch.tanh(z2)
    rho = torch.sqrt(torch.clamp(p_r * p_r + p_i * p_i, min=_PHASOR_FLOOR**2))
    return _complex_product(spec, m * (p_r / rho), m * (p_i / rho))


def apply_real_imag_mask(
    spec: torch.Tensor, mask_real: torch.Tensor, mask_imag: torch.Tensor
) -> torch.Tensor:
    """Separate real and imaginary ratio masks (SRPOL report, eq. 1).

    ``X = M_re * Re(Y) + j M_im * Im(Y)``: two real masks, one per Cartesian part. With
    ``M_re = M_im`` it is a real-valued mask on ``Y``.

    Args:
        spec: complex mixture spectrogram ``Y``.
        mask_real: ``M_re``, applied to ``Re Y``.
        mask_imag: ``M_im``, applied to ``Im Y``.

    Returns:
        The masked complex spectrogram (complex64 or complex128).

    Shape:
        all three broadcast together; the output has the broadcast shape.

    Raises:
        DTypeError: ``spec`` is not complex or a mask is not real floating-point.
        ShapeError: the shapes do not broadcast.

    Examples:
        >>> apply_real_imag_mask(torch.tensor([3 + 4j]), torch.tensor([0.5]),
        ...                      torch.tensor([-1.0]))
        tensor([1.5000-4.j])
    """
    check_mask_inputs("apply_real_imag_mask", spec, mask_real=mask_real, mask_imag=mask_imag)
    if kernels.is_available(spec, mask_real, mask_imag):
        return kernels.fused_apply_real_imag_mask(spec, mask_real, mask_imag)
    spec, (m_re, m_im) = _promote(spec, mask_real, mask_imag)
    return torch.complex(m_re * spec.real, m_im * spec.imag)


def apply_complex_ratio_mask(
    spec: torch.Tensor, mask_real: torch.Tensor, mask_imag: torch.Tensor
) -> torch.Tensor:
    """Complex ratio mask (SRPOL report, eq. 2; Williamson et al., 2016).

    ``X = M * Y`` with ``M = M_re + j M_im`` and complex multiplication:
    ``Re X = M_re Re Y - M_im Im Y``, ``Im X = M_re Im Y + M_im Re Y``. With ``M_im = 0`` it
    equals [`apply_real_imag_mask`][torchlass.masks.apply_real_imag_mask] with both masks ``M_re``.

    Args:
        spec: complex mixture spectrogram ``Y``.
        mask_real: real part of the mask.
        mask_imag: imaginary part of the mask.

    Returns:
        The masked complex spectrogram (complex64 or complex128).

    Shape:
        all three broadcast together; the output has the broadcast shape.

    Raises:
        DTypeError: ``spec`` is not complex or a mask is not real floating-point.
        ShapeError: the shapes do not broadcast.

    Examples:
        >>> apply_complex_ratio_mask(torch.tensor([3 + 4j]), torch.tensor([0.0]),
        ...                          torch.tensor([1.0]))
        tensor([-4.+3.j])
    """
    check_mask_inputs("apply_complex_ratio_mask", spec, mask_real=mask_real, mask_imag=mask_imag)
    if kernels.is_available(spec, mask_real, mask_imag):
        return kernels.fused_apply_complex_ratio_mask(spec, mask_real, mask_imag)
    spec, (m_re, m_im) = _promote(spec, mask_real, mask_imag)
    return _complex_product(spec, m_re, m_im)
