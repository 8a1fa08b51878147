"""A configurable FiLM-conditioned residual U-Net over spectrogram features.

The network maps ``(batch, in_channels, freq, frames)`` features and a ``(batch,
condition_size)`` condition to ``(batch, out_channels, freq, frames)`` mask logits. It pads
the frames and fits the frequency axis to what its pooling needs, and undoes both at the
end, so any number of frames and bins goes in and the same comes out. With its defaults it
is the DCASE 2024 Task 9 baseline's ``ResUNet30`` (AudioSep; docs/baseline.md#resunet30): a 1x1
stem,
six encoder levels, a bottleneck, six decoder levels and a 1x1 output convolution, every
block conditioned by additive FiLM; [`resunet30`][torchlass.nn.resunet30] names that preset. It runs
on the ``(freq, frames)`` layout of [`torchlass.stft`][torchlass.stft.transform] directly; the
original's kernels, which are ``(frames, freq)``, are transposed by
[`torchlass.checkpoints`][torchlass.checkpoints].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from torchlass.checks import check_choice, check_ndim, check_positive_int, check_real_floating
from torchlass.errors import ShapeError, ValueRangeError
from torchlass.nn.blocks import DecoderBlock, EncoderBlock, ResidualBlock
from torchlass.nn.film import FiLM

__all__ = ["RESUNET30_POOLS", "RESUNET30_WIDTHS", "ResUNet", "resunet30"]

#: Encoder widths of ResUNet30, level 1 to 6 (the stem is 32 wide).
RESUNET30_WIDTHS = (32, 64, 128, 256, 384, 384)
#: Pooling factors ``(freq, frames)`` of ResUNet30, level 1 to 6: frames by 32 overall,
#: frequency by 64 (512 bins -> 8 at the bottleneck).
RESUNET30_POOLS = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (2, 1))


class ResUNet(nn.Module):
    """FiLM-conditioned residual U-Net with configurable depth, widths and pooling.

    Level ``i`` of the encoder is a [`ResidualBlock`][torchlass.nn.ResidualBlock] to
    ``widths[i]`` followed by average pooling by ``pools[i]``; the bottleneck is a
    residual block at ``widths[-1]``; decoder level ``i`` upsamples by the same factor
    with a transposed convolution and joins encoder level ``i``'s output. Every block is
    BatchNorm -> FiLM -> LeakyReLU -> conv.

    Frames are zero-padded at the end to a multiple of the product of the frame pooling
    factors and cropped back at the end. The frequency axis must be a multiple of the
    product of the frequency factors: ``freq_fit="crop"`` drops the top bins to get there
    and gives them zero logits at the output (the baseline drops the Nyquist bin of 513:
    docs/baseline.md#network-input-padding-and-nyquist), ``freq_fit="pad"`` zero-pads them instead.

    Args:
        in_channels: feature channels (1 for a magnitude, 2 for real and imaginary parts).
        out_channels: logit planes, ``sources * channels * planes`` of the mask head.
        condition_size: size of the conditioning vector (512 for CLAP).
        stem_width: width of the 1x1 input convolution.
        widths: encoder widths per level; the decoder mirrors them.
        pools: pooling factor ``(freq, frames)`` per level, same length as ``widths``.
        film_scale: full FiLM (scale and shift) instead of the baseline's shift only.
        freq_fit: ``"crop"`` or ``"pad"`` the frequency axis to the pooling multiple.

    Shape:
        - x: ``(batch, in_channels, freq, frames)``
        - condition: ``(batch, condition_size)``
        - output: ``(batch, out_channels, freq, frames)``

    Raises:
        ShapeError: on a wrong rank, channel count or condition size, or fewer frequency
            bins than the pooling needs.
        ValueRangeError: on non-positive widths or factors, or ``widths`` and ``pools``
            of different lengths.

    Examples:
        >>> net = ResUNet(2, 2, condition_size=16, stem_width=4, widths=(4, 8),
        ...               pools=((2, 2), (2, 2)))
        >>> net(torch.randn(3, 2, 33, 7), torch.randn(3, 16)).shape
        torch.Size([3, 2, 33, 7])
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 3, *,
                 condition_size: int = 512, stem_width: int = 32,
                 widths: Sequence[int] = RESUNET30_WIDTHS,
                 pools: Sequence[tuple[int, int]] = RESUNET30_POOLS,
                 film_scale: bool = False, freq_fit: str = "crop") -> None:
        super().__init__()
        fn = "ResUNet"
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("condition_size", condition_size),
                            ("stem_width", stem_width)):
            check_positive_int(value, fn, name)
        widths = [check_positive_int(c, fn, "widths") for c in widths]
        factors = [(check_positive_int(p[0], fn, "pools"), check_positive_int(p[1], fn, "pools"))
                   for p in pools]
        if not widths or len(widths) != len(factors):
            raise ValueRangeError(
                f"{fn}(): arguments 'widths' and 'pools' expected the same non-zero "
                f"length, got {len(widths)} and {len(factors)}"
            )
        self.freq_fit = check_choice(freq_fit, fn, "freq_fit", ("crop", "pad"))
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.condition_size = condition_size
        self.freq_factor = math.prod(f for f, _ in factors)
        self.frame_factor = math.prod(t for _, t in factors)

        self.stem = nn.Conv2d(in_channels, stem_width, 1)
        ins = [stem_width, *widths[:-1]]
        self.encoders = nn.ModuleList(
            EncoderBlock(i, o, p, condition_size=condition_size, film_scale=film_scale)
            for i, o, p in zip(ins, widths, factors, strict=True)
        )
        self.bottleneck = ResidualBlock(widths[-1], widths[-1], condition_size=condition_size,
                                        film_scale=film_scale)
        # Decoder level i joins encoder level i: its output width is that level's width.
        outs = widths[::-1]
        self.decoders = nn.ModuleList(
            DecoderBlock(i, o, p, condition_size=condition_size, film_scale=film_scale)
            for i, o, p in zip([widths[-1], *outs[:-1]], outs, factors[::-1], strict=True)
        )
        self.out_conv = nn.Conv2d(widths[0], out_channels, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise as the baseline trains from scratch, except FiLM, which starts at zero.

        Convolution weights are Xavier-uniform (gain 1) with zero biases, BatchNorm layers
        are reset (weight 1, bias 0, statistics 0 and 1), FiLM layers are zero (identity).
        """
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
            elif isinstance(module, FiLM):
                module.reset_parameters()

    def fitted_freq(self, freq: int) -> int:
        """Number of bins the U-Net runs on for ``freq`` input bins (see ``freq_fit``)."""
        if self.freq_fit == "crop":
            return freq - freq % self.freq_factor
        return -(-freq // self.freq_factor) * self.freq_factor

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Predict ``(batch, out_channels, freq, frames)`` logits from features and condition."""
        fn = "ResUNet.forward"
        check_real_floating(x, fn, "x")
        check_ndim(x, fn, "x", ndim=4, layout="(batch, in_channels, freq, frames)")
        check_real_floating(condition, fn, "condition")
        check_ndim(condition, fn, "condition", ndim=2, layout="(batch, condition_size)")
        batch, channels, freq, frames = x.shape
        if channels != self.in_channels:
            raise ShapeError(f"{fn}(): argument 'x' expected {self.in_channels} channel(s) "
                             f"(batch, in_channels, freq, frames), got shape {tuple(x.shape)}")
        if condition.shape != (batch, self.condition_size):
            raise ShapeError(f"{fn}(): argument 'condition' expected shape "
                             f"{(batch, self.condition_size)}, got {tuple(condition.shape)}")
        fit = self.fitted_freq(freq)
        if fit == 0:
            raise ShapeError(f"{fn}(): argument 'x' expected at least {self.freq_factor} "
                             f"frequency bins (the product of the pooling factors), got {freq}")
        padded = -(-frames // self.frame_factor) * self.frame_factor
        # Negative pads crop: one call fits both axes, and the same call undoes it below.
        h = self.stem(F.pad(x, (0, padded - frames, 0, fit - freq)))
        skips = []
        for encoder in self.encoders:
            h, skip = encoder(h, condition)
            skips.append(skip)
        h = self.bottleneck(h, condition)
        for decoder, skip in zip(self.decoders, reversed(skips), strict=True):
            h = decoder(h, skip, condition)
        return F.pad(self.out_conv(h), (0, frames - padded, 0, freq - fit))


def resunet30(in_channels: int = 1, out_channels: int = 3, *, condition_size: int = 512,
              film_scale: bool = False, freq_fit: str = "crop") -> ResUNet:
    """The DCASE 2024 Task 9 baseline's ResUNet30 (AudioSep), without its unused parameters.

    Widths 32 (stem), 32, 64, 128, 256, 384, 384; pooling ``(freq, frames)`` of 2x2 on five
    levels and 2x1 on the sixth. With the baseline's channels it has 25 621 891 parameters:
    the original's 26 446 917 trainable ones less the 824 000 it never uses and ``bn0``
    (which belongs to the features, [`MagnitudeFeatures`][torchlass.nn.MagnitudeFeatures]).
    ``in_channels=1, out_channels=3`` is the baseline (one magnitude in, the three
    magnitude/phase planes out); ``in_channels=2, out_channels=2`` is SRPOL system 1.

    Args:
        in_channels: feature channels.
        out_channels: logit planes.
        condition_size: size of the conditioning vector.
        film_scale: full FiLM instead of the baseline's shift only.
        freq_fit: ``"crop"`` (the baseline) or ``"pad"``.

    Returns:
        A freshly initialised [`ResUNet`][torchlass.nn.ResUNet].

    Examples:
        >>> net = resunet30()
        >>> net.freq_factor, net.frame_factor
        (64, 32)
    """
    return ResUNet(in_channels, out_channels, condition_size=condition_size, stem_width=32,
                   widths=RESUNET30_WIDTHS, pools=RESUNET30_POOLS, film_scale=film_scale,
                   freq_fit=freq_fit)
