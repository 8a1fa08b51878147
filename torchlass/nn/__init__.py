"""Network parts: FiLM conditioning, the ResUNet backbone and its blocks, feature stages.

[`FiLM`][torchlass.nn.FiLM] and [`film`][torchlass.nn.film] modulate feature maps by a condition;
[`ResUNet`][torchlass.nn.ResUNet] is the configurable FiLM-conditioned U-Net and
[`resunet30`][torchlass.nn.resunet30] its DCASE 2024 baseline preset;
[`MagnitudeFeatures`][torchlass.nn.MagnitudeFeatures] and
[`RealImagFeatures`][torchlass.nn.RealImagFeatures] turn a complex spectrogram into the network's
input channels. [`QueryCondition`][torchlass.nn.QueryCondition] joins a positive and an
optional negative query into one condition.
"""

from torchlass.nn.blocks import DecoderBlock, EncoderBlock, ResidualBlock, norm_film_act
from torchlass.nn.features import FrequencyBatchNorm, MagnitudeFeatures, RealImagFeatures
from torchlass.nn.film import FiLM, film
from torchlass.nn.query_condition import QueryCondition, query_condition
from torchlass.nn.resunet import RESUNET30_POOLS, RESUNET30_WIDTHS, ResUNet, resunet30

__all__ = [
    "RESUNET30_POOLS",
    "RESUNET30_WIDTHS",
    "DecoderBlock",
    "EncoderBlock",
    "FiLM",
    "FrequencyBatchNorm",
    "MagnitudeFeatures",
    "QueryCondition",
    "RealImagFeatures",
    "ResUNet",
    "ResidualBlock",
    "film",
    "norm_film_act",
    "query_condition",
    "resunet30",
]
