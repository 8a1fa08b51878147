"""Building blocks of the FiLM-conditioned ResUNet: residual, encoder and decoder blocks.

Every block is pre-activation: BatchNorm, then FiLM from the condition, then LeakyReLU
(slope 0.01), then a convolution, as in AudioSep's ResUNet30 (docs/baseline.md#resunet30). The
three element-wise steps are written back to back with an in-place activation, so that
eager mode keeps one saved tensor per step and ``torch.compile`` fuses them into one kernel.
BatchNorm momentum is 0.01 throughout, as in the baseline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from torchlass.nn.film import FiLM

__all__ = ["LEAKY_SLOPE", "DecoderBlock", "EncoderBlock", "ResidualBlock", "norm_film_act"]

LEAKY_SLOPE = 0.01
BN_MOMENTUM = 0.01


def norm_film_act(x: torch.Tensor, norm: nn.BatchNorm2d, modulation: FiLM,
                  condition: torch.Tensor) -> torch.Tensor:
    """``LeakyReLU(FiLM(BatchNorm(x), condition))`` with slope 0.01.

    Shape:
        - x: ``(batch, channels, freq, frames)``
        - condition: ``(batch, condition_size)``
        - output: same as ``x``
    """
    return F.leaky_relu(modulation(norm(x), condition), LEAKY_SLOPE, inplace=True)


class ResidualBlock(nn.Module):
    """Two pre-activation 3x3 convolutions with a residual connection.

    ``h = conv1(act(film1(bn1(x))))``, ``y = conv2(act(film2(bn2(h)))) + s(x)`` where ``s``
    is the identity when the widths match and a 1x1 convolution with bias otherwise
    (AudioSep's ``ConvBlockRes``). The 3x3 convolutions have no bias: a BatchNorm follows.

    Args:
        in_channels: input width.
        out_channels: output width.
        condition_size: size of the FiLM condition.
        film_scale: use full FiLM (scale and shift) instead of shift only.

    Shape:
        - x: ``(batch, in_channels, freq, frames)``
        - condition: ``(batch, condition_size)``
        - output: ``(batch, out_channels, freq, frames)``
    """

    def __init__(self, in_channels: int, out_channels: int, *, condition_size: int,
                 film_scale: bool = False) -> None:
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.film1 = FiLM(condition_size, in_channels, scale=film_scale)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = nn.BatchNorm2d(out_channels, momentum=BN_MOMENTUM)
        self.film2 = FiLM(condition_size, out_channels, scale=film_scale)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut: nn.Module = (
            nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Apply the block to ``x`` conditioned on ``condition``."""
        h = self.conv1(norm_film_act(x, self.norm1, self.film1, condition))
        h = self.conv2(norm_film_act(h, self.norm2, self.film2, condition))
        return h + self.shortcut(x)


class EncoderBlock(nn.Module):
    """A [`ResidualBlock`][torchlass.nn.ResidualBlock] followed by average pooling; returns the
    pooled and skip maps.

    Args:
        in_channels: input width.
        out_channels: output width.
        pool: pooling factor ``(freq, frames)``; kernel = stride, no padding.
        condition_size: size of the FiLM condition.
        film_scale: use full FiLM.

    Shape:
        - x: ``(batch, in_channels, freq, frames)``
        - output: ``(pooled, skip)``, ``(batch, out_channels, freq / pool[0], frames / pool[1])``
          and ``(batch, out_channels, freq, frames)``
    """

    def __init__(self, in_channels: int, out_channels: int, pool: tuple[int, int], *,
                 condition_size: int, film_scale: bool = False) -> None:
        super().__init__()
        self.pool = (int(pool[0]), int(pool[1]))
        self.block = ResidualBlock(in_channels, out_channels, condition_size=condition_size,
                                   film_scale=film_scale)

    def forward(self, x: torch.Tensor,
                condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(pooled, skip)``."""
        skip = self.block(x, condition)
        return F.avg_pool2d(skip, self.pool), skip


class DecoderBlock(nn.Module):
    """Pre-activation transposed-convolution upsampling, skip concatenation, residual block.

    ``u = ConvT(act(film(bn(x))))`` with kernel = stride = ``upsample`` and no bias, then
    ``ResidualBlock(2 * out_channels -> out_channels)`` on ``concat([u, skip])``
    (upsampled maps first), as AudioSep's ``DecoderBlockRes1B`` computes it. The original's
    second BatchNorm (and its FiLM layer), created but never used, is left out.

    Args:
        in_channels: input width.
        out_channels: output width, equal to the skip's width.
        upsample: upsampling factor ``(freq, frames)``.
        condition_size: size of the FiLM condition.
        film_scale: use full FiLM.

    Shape:
        - x: ``(batch, in_channels, freq, frames)``
        - skip: ``(batch, out_channels, freq * upsample[0], frames * upsample[1])``
        - output: same as ``skip``
    """

    def __init__(self, in_channels: int, out_channels: int, upsample: tuple[int, int], *,
                 condition_size: int, film_scale: bool = False) -> None:
        super().__init__()
        factor = (int(upsample[0]), int(upsample[1]))
        self.norm = nn.BatchNorm2d(in_channels, momentum=BN_MOMENTUM)
        self.film = FiLM(condition_size, in_channels, scale=film_scale)
        self.up = nn.ConvTranspose2d(in_channels, out_channels, factor, stride=factor,
                                     bias=False)
        self.block = ResidualBlock(2 * out_channels, out_channels,
                                   condition_size=condition_size, film_scale=film_scale)

    def forward(self, x: torch.Tensor, skip: torch.Tensor,
                condition: torch.Tensor) -> torch.Tensor:
        """Upsample ``x``, join it with ``skip`` and refine."""
        u = self.up(norm_film_act(x, self.norm, self.film, condition))
        return self.block(torch.cat([u, skip], dim=1), condition)
