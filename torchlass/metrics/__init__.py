"""Separation metrics, higher is better, never reduced: ``(..., time) -> (...)``.

Each function computes one named convention exactly and says so: [`sdr`][torchlass.metrics.sdr] is
the DCASE 2024 challenge's mean-power SDR, [`snr`][torchlass.metrics.snr] and
[`si_sdr`][torchlass.metrics.si_sdr] follow torchmetrics and the challenge evaluator,
[`bss_sdr`][torchlass.metrics.bss_sdr] is BSS-eval v3 (mir_eval). Sums are taken in float64. See the
conventions table in the documentation for how each reads silence.
"""

from torchlass.metrics.bss import bss_sdr
from torchlass.metrics.dcase import dcase2024_scores
from torchlass.metrics.si_sdr import si_sdr, si_sdri
from torchlass.metrics.snr import sdr, sdri, snr

__all__ = ["bss_sdr", "dcase2024_scores", "sdr", "sdri", "si_sdr", "si_sdri", "snr"]
