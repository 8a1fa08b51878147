"""Mask heads: pure functions applying three mask families, bounds, and thin head modules.

``apply_mag_phase_mask`` (the DCASE 2024 baseline), ``apply_real_imag_mask`` (SRPOL eq. 1)
and ``apply_complex_ratio_mask`` (SRPOL eq. 2) act on a complex spectrogram; the heads turn
network output channels into those masks for any number of sources and channels.
"""

from torchlass.masks.bounds import BOUNDS, CIRM_C, CIRM_K, bound_mask
from torchlass.masks.functional import (
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
)
from torchlass.masks.heads import ComplexRatioMaskHead, MagPhaseMaskHead, RealImagMaskHead

__all__ = [
    "BOUNDS",
    "CIRM_C",
    "CIRM_K",
    "ComplexRatioMaskHead",
    "MagPhaseMaskHead",
    "RealImagMaskHead",
    "apply_complex_ratio_mask",
    "apply_mag_phase_mask",
    "apply_real_imag_mask",
    "bound_mask",
]
