"""Separation metrics, higher is better, never reduced: ``(..., time) -> (...)``.

Each function computes one named convention exactly and says so: [`sdr`][torchlass.metrics.sdr] is
the DCASE 2024 challenge's mean-power SDR, [`snr`][torchlass.metrics.snr] and
[`si_sdr`][torchlass.metrics.si_sdr] follow torchmetrics and the challenge evaluator,
[`bss_sdr`][torchlass.metrics.bss_sdr] is BSS-eval v3 (mir_eval). Sums are taken in float64. See the
conventions table in the documentation for how each reads silence.
[`clap_score`][torchlass.metrics.clap_score] needs no reference: the CLAP similarity of audio
and its text query (Xiao et al., DCASE 2024 Workshop).
"""

from torchlass.metrics.bss import bss_sdr
from torchlass.metrics.clap_score import (
    CLAP_CONVENTIONS,
    clap_score,
    clap_score_audio,
    clap_similarity,
)
from torchlass.metrics.dcase import dcase2024_scores
from torchlass.metrics.si_sdr import si_sdr, si_sdri
from torchlass.metrics.snr import sdr, sdri, snr

__all__ = ["CLAP_CONVENTIONS", "bss_sdr", "clap_score", "clap_score_audio", "clap_similarity",
           "dcase2024_scores", "sdr", "sdri", "si_sdr", "si_sdri", "snr"]
