"""Mask heads: modules that turn a network's output channels into a masked spectrogram.

Every head reads the network output in one layout, ``net_out`` real ``(batch, sources *
channels * planes, freq, frames)`` with channel index ``(s * channels + c) * planes + k``
for source ``s``, mixture channel ``c`` and plane ``k`` (the DCASE 2024 baseline's
``after_conv`` layout), and returns the masked mixture ``spec`` complex ``(batch, sources,
channels, freq, frames)``. ``channels`` is read from ``spec``; ``planes`` is a class
attribute (3 for [`MagPhaseMaskHead`][torchlass.masks.MagPhaseMaskHead], 2 for the others).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from torchlass.checks import check_choice, check_dtype, check_ndim, check_positive_int
from torchlass.errors import ShapeError
from torchlass.masks.bounds import BOUNDS, bound_mask
from torchlass.masks.functional import (
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
)

__all__ = ["ComplexRatioMaskHead", "MagPhaseMaskHead", "RealImagMaskHead"]


class _MaskHead(nn.Module):
    """Shared layout checks and reshaping of the three heads."""

    planes: int

    def __init__(self, num_sources: int = 1) -> None:
        super().__init__()
        self.num_sources = check_positive_int(num_sources, type(self).__name__, "num_sources")

    def _split(self, net_out: torch.Tensor, spec: torch.Tensor) -> list[torch.Tensor]:
        """Check the layout; return the ``planes`` planes, each (batch, sources, channels, F, T)."""
        fn = f"{type(self).__name__}.forward"
        check_dtype(net_out, fn, "net_out", complex_=False)
        check_dtype(spec, fn, "spec", complex_=True)
        check_ndim(net_out, fn, "net_out", ndim=4,
                   layout="(batch, sources * channels * planes, freq, frames)")
        check_ndim(spec, fn, "spec", ndim=4, layout="(batch, channels, freq, frames)")
        batch, channels, freq, frames = spec.shape
        expected = (batch, self.num_sources * channels * self.planes, freq, frames)
        if tuple(net_out.shape) != expected:
            raise ShapeError(
                f"{fn}(): argument 'net_out' expected shape {expected} "
                f"(batch, sources={self.num_sources} * channels={channels} * "
                f"planes={self.planes}, freq, frames) to match 'spec' {tuple(spec.shape)}, "
                f"got {tuple(net_out.shape)}"
            )
        planes = net_out.reshape(batch, self.num_sources, channels, self.planes, freq, frames)
        return list(planes.unbind(dim=3))

    def extra_repr(self) -> str:
        return f"num_sources={self.num_sources}"


class MagPhaseMaskHead(_MaskHead):
    """The DCASE 2024 baseline's head: magnitude mask plus phase rotation, 3 planes.

    Planes ``k = 0, 1, 2`` are the magnitude logit and the two phase logits of
    [`apply_mag_phase_mask`][torchlass.masks.apply_mag_phase_mask], which this head calls.

    Args:
        num_sources: sources predicted per mixture channel.

    Shape:
        ``net_out``: ``(batch, sources * channels * 3, freq, frames)``; ``spec``:
        ``(batch, channels, freq, frames)``; output: ``(batch, sources, channels, freq,
        frames)``.

    Examples:
        >>> head = MagPhaseMaskHead(num_sources=2)
        >>> spec = torch.randn(4, 1, 257, 10, dtype=torch.complex64)
        >>> head(torch.randn(4, 2 * 1 * 3, 257, 10), spec).shape
        torch.Size([4, 2, 1, 257, 10])
    """

    planes = 3

    def forward(self, net_out: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Masked mixture for every source (see the class description)."""
        z0, z1, z2 = self._split(net_out, spec)
        return apply_mag_phase_mask(spec.unsqueeze(1), z0, z1, z2)


class _BoundedMaskHead(_MaskHead):
    """Two planes bounded by [`bound_mask`][torchlass.masks.bound_mask], then applied by
    ``_mask_fn``."""

    planes = 2
    default_bound: str  # the subclass's documented default
    _mask_fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

    def __init__(self, num_sources: int = 1, bound: str | None = None) -> None:
        super().__init__(num_sources)
        bound = self.default_bound if bound is None else bound
        self.bound = check_choice(bound, type(self).__name__, "bound", BOUNDS)

    def forward(self, net_out: torch.Tensor, spec: torch.Tensor) -> torch.Tensor:
        """Masked mixture for every source (see the class description)."""
        a, b = self._split(net_out, spec)
        m_re, m_im = bound_mask(a, b, bound=self.bound)
        return self._mask_fn(spec.unsqueeze(1), m_re, m_im)

    def extra_repr(self) -> str:
        return f"num_sources={self.num_sources}, bound={self.bound!r}"


class RealImagMaskHead(_BoundedMaskHead):
    """Separate real and imaginary ratio masks (SRPOL "system 1", eq. 1), 2 planes.

    Planes ``k = 0, 1`` are bounded by [`bound_mask`][torchlass.masks.bound_mask] into ``(M_re,
    M_im)`` and applied by [`apply_real_imag_mask`][torchlass.masks.apply_real_imag_mask]. The
    default ``bound="tanh"`` keeps each part in (-1, 1): like the baseline's magnitude mask it
    cannot amplify a part, yet it can flip a part's sign, which a per-part mask needs to
    move the phase (a (0, 1) sigmoid could not).

    Args:
        num_sources: sources predicted per mixture channel.
        bound: one of [`BOUNDS`][torchlass.masks.BOUNDS]; ``None`` (the default) is ``"tanh"``.

    Shape:
        ``net_out``: ``(batch, sources * channels * 2, freq, frames)``; ``spec``:
        ``(batch, channels, freq, frames)``; output: ``(batch, sources, channels, freq,
        frames)``.

    Examples:
        >>> head = RealImagMaskHead()
        >>> spec = torch.randn(4, 2, 257, 10, dtype=torch.complex64)
        >>> head(torch.randn(4, 1 * 2 * 2, 257, 10), spec).shape
        torch.Size([4, 1, 2, 257, 10])
    """

    default_bound = "tanh"
    _mask_fn = staticmethod(apply_real_imag_mask)


class ComplexRatioMaskHead(_BoundedMaskHead):
    """True complex ratio mask (SRPOL eq. 2), 2 planes.

    Planes ``k = 0, 1`` are bounded by [`bound_mask`][torchlass.masks.bound_mask] into the real
    and imaginary parts of ``M`` and applied by
    [`apply_complex_ratio_mask`][torchlass.masks.apply_complex_ratio_mask]. The default
    ``bound="polar_tanh"`` (Choi et al., ICLR 2019) keeps ``|M| < 1`` like the baseline's
    sigmoid magnitude mask while leaving the phase free, so the only change from the
    baseline is the parametrisation of the rotation; Choi et al. found it the best of their
    bounded masks.

    Args:
        num_sources: sources predicted per mixture channel.
        bound: one of [`BOUNDS`][torchlass.masks.BOUNDS]; ``None`` (the default) is
            ``"polar_tanh"``.

    Shape:
        ``net_out``: ``(batch, sources * channels * 2, freq, frames)``; ``spec``:
        ``(batch, channels, freq, frames)``; output: ``(batch, sources, channels, freq,
        frames)``.

    Examples:
        >>> head = ComplexRatioMaskHead(num_sources=3, bound="cirm")
        >>> spec = torch.randn(1, 1, 257, 10, dtype=torch.complex64)
        >>> head(torch.randn(1, 3 * 1 * 2, 257, 10), spec).shape
        torch.Size([1, 3, 1, 257, 10])
    """

    default_bound = "polar_tanh"
    _mask_fn = staticmethod(apply_complex_ratio_mask)
