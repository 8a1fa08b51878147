"""Adapter between torchlass spectrograms and asteroid-filterbanks' layout.

asteroid-filterbanks encoders return real tensors whose frequency axis holds the real parts
of all bins followed by the imaginary parts, ``(..., 2 * freq, frames)``.
[`to_asteroid`][torchlass.stft.to_asteroid] and [`from_asteroid`][torchlass.stft.from_asteroid]
convert from and to a native complex ``(..., freq, frames)`` tensor, so an asteroid
``Encoder``/``Decoder`` (for example a learnable ``free`` or ``param_sinc`` bank) can stand in for
[`stft`][torchlass.stft.stft] in a separator. The package itself is only needed by the caller who
builds such a bank.
"""

from __future__ import annotations

import torch

from torchlass.checks import check_dtype, check_ndim, compute_dtype
from torchlass.errors import ShapeError

__all__ = ["from_asteroid", "to_asteroid"]


def to_asteroid(spec: torch.Tensor) -> torch.Tensor:
    """Complex spectrogram to asteroid's layout: real half, then imaginary half.

    Args:
        spec: complex spectrogram.

    Returns:
        Real tensor ``cat([spec.real, spec.imag], dim=-2)``.

    Shape:
        ``spec``: ``(..., freq, frames)``; output: ``(..., 2 * freq, frames)``.

    Raises:
        DTypeError: ``spec`` is not complex.
        ShapeError: ``spec`` has fewer than 2 dimensions.

    Examples:
        >>> to_asteroid(torch.tensor([[1 + 2j], [3 + 4j]])).flatten()
        tensor([1., 3., 2., 4.])
    """
    check_dtype(spec, "to_asteroid", "spec", complex_=True)
    check_ndim(spec, "to_asteroid", "spec", min_ndim=2, layout="(..., freq, frames)")
    if spec.dtype == torch.complex32:
        spec = spec.to(torch.complex64)
    return torch.cat([spec.real, spec.imag], dim=-2)


def from_asteroid(x: torch.Tensor) -> torch.Tensor:
    """Asteroid's layout (real half, then imaginary half on dim -2) to a complex tensor.

    Args:
        x: real tensor, e.g. the output of an asteroid-filterbanks ``Encoder``.

    Returns:
        Complex tensor (complex64 for float32 and half input, complex128 for float64).

    Shape:
        ``x``: ``(..., 2 * freq, frames)``; output: ``(..., freq, frames)``.

    Raises:
        DTypeError: ``x`` is not a real floating-point tensor.
        ShapeError: ``x`` has fewer than 2 dimensions or an odd size along dim -2.

    Examples:
        >>> from_asteroid(torch.tensor([[1.0], [3.0], [2.0], [4.0]]))
        tensor([[1.+2.j],
                [3.+4.j]])
    """
    check_dtype(x, "from_asteroid", "x", complex_=False)
    check_ndim(x, "from_asteroid", "x", min_ndim=2, layout="(..., 2 * freq, frames)")
    if x.shape[-2] % 2:
        raise ShapeError(
            f"from_asteroid(): argument 'x' expected an even size along dim -2 (real half, "
            f"then imaginary half), got {x.shape[-2]} (shape {tuple(x.shape)})"
        )
    x = x.to(compute_dtype(x.dtype))
    re, im = x.chunk(2, dim=-2)
    return torch.complex(re, im)
