"""Features a separator consumes, computed from a complex spectrogram.

[`magnitude_phase`][torchlass.stft.magnitude_phase] gives the DCASE 2024 baseline's network input (a
floored magnitude) and the unit phasor it re-applies after masking;
[`real_imag_channels`][torchlass.stft.real_imag_channels] stacks real and imaginary parts as
channels, the input of the SRPOL "system 1" variant, and
[`from_real_imag_channels`][torchlass.stft.from_real_imag_channels] undoes it. On CUDA tensors
[`magnitude_phase`][torchlass.stft.magnitude_phase] runs the fused kernel of
[`torchlass.kernels`][torchlass.kernels] (one read of the spectrum, same values and gradients).
"""

from __future__ import annotations

import torch

from torchlass import kernels
from torchlass.checks import check_dtype, check_ndim, compute_dtype
from torchlass.errors import ShapeError, ValueRangeError

__all__ = ["from_real_imag_channels", "magnitude_phase", "real_imag_channels"]


def _real_parts(spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.dtype]:
    """Real and imaginary parts in float32 or better, and the real dtype to return."""
    out_dtype = spec.real.dtype if spec.dtype != torch.complex32 else torch.float16
    if spec.dtype == torch.complex32:
        spec = spec.to(torch.complex64)
    return spec.real, spec.imag, out_dtype


def magnitude_phase(
    spec: torch.Tensor, *, eps: float = 1e-10
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Floored magnitude and phase cosine/sine of a complex spectrogram (baseline convention).

    ``mag = sqrt(max(Re^2 + Im^2, eps))``, ``cos = Re / mag``, ``sin = Im / mag``. The floor
    (``sqrt(1e-10) = 1e-5`` by default, as in the DCASE 2024 baseline) makes a silent bin
    give ``mag = 1e-5`` and ``cos = sin = 0``: never NaN, and finite gradients everywhere.

    Args:
        spec: complex spectrogram.
        eps: floor on the squared magnitude, > 0.

    Returns:
        ``(mag, cos, sin)``, real tensors of the precision of ``spec`` (float16 for
        complex32, computed in float32).

    Shape:
        ``spec``: ``(..., freq, frames)``; each output: the same shape.

    Raises:
        DTypeError: ``spec`` is not complex.
        ValueRangeError: ``eps`` is not positive.

    Examples:
        >>> mag, cos, sin = magnitude_phase(torch.tensor([[3 + 4j, 0j]]))
        >>> mag, cos, sin
        (tensor([[5.0000e+00, 1.0000e-05]]), tensor([[0.6000, 0.0000]]), tensor([[0.8000, 0.0000]]))
    """
    fn = "magnitude_phase"
    check_dtype(spec, fn, "spec", complex_=True)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
        raise ValueRangeError(f"{fn}(): argument 'eps' expected a positive float, got {eps!r}")
    if kernels.is_available(spec):
        return kernels.fused_magnitude_phase(spec, eps=eps)
    re, im, out_dtype = _real_parts(spec)
    mag = torch.sqrt(torch.clamp(re * re + im * im, min=eps))
    return mag.to(out_dtype), (re / mag).to(out_dtype), (im / mag).to(out_dtype)


def real_imag_channels(spec: torch.Tensor) -> torch.Tensor:
    """Stack real and imaginary parts as channels, interleaved per input channel.

    Output channel ``2 c`` is ``Re spec[:, c]`` and ``2 c + 1`` is ``Im spec[:, c]``
    (``Re c0, Im c0, Re c1, Im c1, ...``).

    Args:
        spec: complex spectrogram.

    Returns:
        Real tensor of the precision of ``spec``.

    Shape:
        ``spec``: ``(..., channels, freq, frames)`` (typically ``(batch, channels, freq,
        frames)``); output: ``(..., 2 * channels, freq, frames)``.

    Raises:
        DTypeError: ``spec`` is not complex.
        ShapeError: ``spec`` has fewer than 3 dimensions.

    Examples:
        >>> real_imag_channels(torch.tensor([[[[1 + 2j]], [[3 + 4j]]]])).flatten()
        tensor([1., 2., 3., 4.])
    """
    fn = "real_imag_channels"
    check_dtype(spec, fn, "spec", complex_=True)
    check_ndim(spec, fn, "spec", min_ndim=3, layout="(..., channels, freq, frames)")
    *lead, channels, freq, frames = spec.shape
    if spec.dtype == torch.complex32:
        return real_imag_channels(spec.to(torch.complex64)).to(torch.float16)
    pairs = torch.view_as_real(spec).movedim(-1, -3)  # (..., channels, 2, freq, frames)
    return pairs.reshape(*lead, 2 * channels, freq, frames)


def from_real_imag_channels(x: torch.Tensor) -> torch.Tensor:
    """Inverse of [`real_imag_channels`][torchlass.stft.real_imag_channels]: pair channels
    ``(2 c, 2 c + 1)`` into complex.

    Args:
        x: real tensor with interleaved real/imaginary channels.

    Returns:
        Complex tensor (complex64 for float32 and half input, complex128 for float64).

    Shape:
        ``x``: ``(..., 2 * channels, freq, frames)``; output ``(..., channels, freq, frames)``.

    Raises:
        DTypeError: ``x`` is not a real floating-point tensor.
        ShapeError: ``x`` has fewer than 3 dimensions or an odd number of channels.

    Examples:
        >>> from_real_imag_channels(torch.tensor([[[[1.0]], [[2.0]]]]))
        tensor([[[[1.+2.j]]]])
    """
    fn = "from_real_imag_channels"
    check_dtype(x, fn, "x", complex_=False)
    check_ndim(x, fn, "x", min_ndim=3, layout="(..., 2 * channels, freq, frames)")
    *lead, channels2, freq, frames = x.shape
    if channels2 % 2:
        raise ShapeError(
            f"{fn}(): argument 'x' expected an even number of channels along dim -3 "
            f"(real, imaginary pairs), got {channels2} (shape {tuple(x.shape)})"
        )
    x = x.to(compute_dtype(x.dtype))
    pairs = x.reshape(*lead, channels2 // 2, 2, freq, frames).movedim(-3, -1)
    return torch.view_as_complex(pairs.contiguous())
