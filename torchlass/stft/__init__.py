"""STFT front-end: transform, inverse, separator features and the asteroid adapter.

``stft``/``istft`` (and the ``STFT``/``ISTFT`` modules) follow the DCASE 2024 baseline's
conventions (periodic Hann, centred frames, reflect padding, no scaling) on ``(..., time)``
signals and complex ``(..., freq, frames)`` spectrograms.
"""

from torchlass.stft.asteroid import from_asteroid, to_asteroid
from torchlass.stft.features import from_real_imag_channels, magnitude_phase, real_imag_channels
from torchlass.stft.transform import ISTFT, STFT, WINDOWS, istft, make_window, stft

__all__ = [
    "ISTFT",
    "STFT",
    "WINDOWS",
    "from_asteroid",
    "from_real_imag_channels",
    "istft",
    "magnitude_phase",
    "make_window",
    "real_imag_channels",
    "stft",
    "to_asteroid",
]
