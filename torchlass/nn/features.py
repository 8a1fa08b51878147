"""Feature stages: what a separator feeds its network from the complex mixture spectrogram.

A feature stage maps a complex ``(batch, channels, freq, frames)`` spectrogram to real
``(batch, channels * per_channel, freq, frames)`` network input.
[`MagnitudeFeatures`][torchlass.nn.MagnitudeFeatures] is the DCASE 2024 baseline's (the floored
magnitude, then BatchNorm over frequency bins, ``bn0``:
docs/baseline.md#network-input-padding-and-nyquist);
[`RealImagFeatures`][torchlass.nn.RealImagFeatures] stacks real and imaginary parts as SRPOL system
1 does. Both normalise each frequency bin with
[`FrequencyBatchNorm`][torchlass.nn.FrequencyBatchNorm] unless told not to.
"""

from __future__ import annotations

import torch
from torch import nn

from torchlass.checks import check_dtype, check_ndim, check_positive_int
from torchlass.errors import ShapeError
from torchlass.stft import magnitude_phase, real_imag_channels

__all__ = ["FrequencyBatchNorm", "MagnitudeFeatures", "RealImagFeatures"]

_LAYOUT = "(batch, channels, freq, frames)"


class FrequencyBatchNorm(nn.BatchNorm2d):
    """BatchNorm with the frequency bins as its channels (the baseline's ``bn0``).

    Each bin is normalised over batch, channels and frames, with momentum 0.01 as in the
    baseline. The state_dict is that of ``nn.BatchNorm2d(num_bins)``.

    Args:
        num_bins: number of frequency bins (513 for ``n_fft = 1024``).

    Shape:
        - x: ``(batch, channels, num_bins, frames)``
        - output: same as ``x``
    """

    def __init__(self, num_bins: int) -> None:
        super().__init__(check_positive_int(num_bins, "FrequencyBatchNorm", "num_bins"),
                         momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Normalise each frequency bin of ``x``."""
        check_ndim(x, "FrequencyBatchNorm.forward", "x", ndim=4, layout=_LAYOUT)
        if x.shape[2] != self.num_features:
            raise ShapeError(f"FrequencyBatchNorm.forward(): argument 'x' expected "
                             f"{self.num_features} frequency bins {_LAYOUT}, "
                             f"got shape {tuple(x.shape)}")
        # contiguous(): PyTorch 2.13's CPU batch_norm backward gets the weight, bias and input
        # gradients wrong for the strides (N, 1, C, C) with a size-1 dim that the transpose of
        # a one-channel magnitude has (the forward is right); a plain layout avoids that path.
        return super().forward(x.transpose(1, 2).contiguous()).transpose(1, 2)


class _Features(nn.Module):
    per_channel = 1

    def __init__(self, num_bins: int, *, normalize: bool = True) -> None:
        super().__init__()
        self.num_bins = check_positive_int(num_bins, type(self).__name__, "num_bins")
        self.norm = FrequencyBatchNorm(num_bins) if normalize else None

    def _finish(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.norm is None else self.norm(x)

    def _check(self, spec: torch.Tensor) -> None:
        fn = f"{type(self).__name__}.forward"
        check_dtype(spec, fn, "spec", complex_=True)
        check_ndim(spec, fn, "spec", ndim=4, layout=_LAYOUT)


class MagnitudeFeatures(_Features):
    """Floored magnitude ``sqrt(max(|Y|^2, eps))``, then per-bin BatchNorm (the baseline).

    Args:
        num_bins: number of frequency bins.
        normalize: apply [`FrequencyBatchNorm`][torchlass.nn.FrequencyBatchNorm] (the baseline's
            ``bn0``).
        eps: floor on ``|Y|^2``, 1e-10 as in the baseline.

    Shape:
        - spec: complex ``(batch, channels, num_bins, frames)``
        - output: real ``(batch, channels, num_bins, frames)``

    Examples:
        >>> feats = MagnitudeFeatures(5, normalize=False)
        >>> feats(torch.full((1, 1, 5, 2), 3 + 4j)).unique()
        tensor([5.])
    """

    def __init__(self, num_bins: int, *, normalize: bool = True, eps: float = 1e-10) -> None:
        super().__init__(num_bins, normalize=normalize)
        self.eps = eps

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Return the network input for ``spec``."""
        self._check(spec)
        return self._finish(magnitude_phase(spec, eps=self.eps)[0])


class RealImagFeatures(_Features):
    """Real and imaginary parts as channels ``(Re c0, Im c0, Re c1, ...)`` (SRPOL system 1).

    Args:
        num_bins: number of frequency bins.
        normalize: apply [`FrequencyBatchNorm`][torchlass.nn.FrequencyBatchNorm] to the stacked
            parts.

    Shape:
        - spec: complex ``(batch, channels, num_bins, frames)``
        - output: real ``(batch, 2 * channels, num_bins, frames)``

    Examples:
        >>> feats = RealImagFeatures(3, normalize=False)
        >>> feats(torch.full((1, 1, 3, 2), 1 - 2j)).shape
        torch.Size([1, 2, 3, 2])
    """

    per_channel = 2

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """Return the network input for ``spec``."""
        self._check(spec)
        return self._finish(real_imag_channels(spec))
