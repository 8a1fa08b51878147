"""Separation losses, lower is better, with ``reduction="mean" | "sum" | "none"``.

A loss built from a metric is minus that metric, with the same convention (see
[`torchlass.metrics`][torchlass.metrics.snr]): [`snr_loss`][torchlass.losses.snr_loss],
[`si_sdr_loss`][torchlass.losses.si_sdr_loss], SRPOL's [`sdr_loss`][torchlass.losses.sdr_loss], the
baseline's [`l1_loss`][torchlass.losses.l1_loss], and the assignment-invariant
[`mixit_loss`][torchlass.losses.mixit_loss] and [`pit_loss`][torchlass.losses.pit_loss]. Every
function has a thin ``nn.Module`` twin.
"""

from torchlass.losses.mixit import mixit_loss
from torchlass.losses.modules import L1Loss, MixITLoss, PITLoss, SDRLoss, SISDRLoss, SNRLoss
from torchlass.losses.pit import pit_loss
from torchlass.losses.snr import sdr_loss, si_sdr_loss, snr_loss
from torchlass.losses.waveform import l1_loss

__all__ = [
    "L1Loss",
    "MixITLoss",
    "PITLoss",
    "SDRLoss",
    "SISDRLoss",
    "SNRLoss",
    "l1_loss",
    "mixit_loss",
    "pit_loss",
    "sdr_loss",
    "si_sdr_loss",
    "snr_loss",
]
