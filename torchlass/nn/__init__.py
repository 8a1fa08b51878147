"""Network parts: FiLM conditioning, the ResUNet backbone and its blocks, feature stages.

:class:`FiLM` and :func:`film` modulate feature maps by a condition; :class:`ResUNet` is
the configurable FiLM-conditioned U-Net and :func:`resunet30` its DCASE 2024 baseline
preset; :class:`MagnitudeFeatures` and :class:`RealImagFeatures` turn a complex
spectrogram into the network's input channels.
"""

from torchlass.nn.blocks import DecoderBlock, EncoderBlock, ResidualBlock, norm_film_act
from torchlass.nn.features import FrequencyBatchNorm, MagnitudeFeatures, RealImagFeatures
from torchlass.nn.film import FiLM, film
from torchlass.nn.resunet import RESUNET30_POOLS, RESUNET30_WIDTHS, ResUNet, resunet30

__all__ = [
    "RESUNET30_POOLS",
    "RESUNET30_WIDTHS",
    "DecoderBlock",
    "EncoderBlock",
    "FiLM",
    "FrequencyBatchNorm",
    "MagnitudeFeatures",
    "RealImagFeatures",
    "ResUNet",
    "ResidualBlock",
    "film",
    "norm_film_act",
    "resunet30",
]
