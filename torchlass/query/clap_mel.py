"""CLAP's log-mel front-end at 48 kHz, written from the formulas.

LAION-CLAP's audio tower, HTSAT (Wu et al., "Large-scale contrastive language-audio
pretraining with feature fusion and keyword-to-caption augmentation", ICASSP 2023; Chen et
al., "HTS-AT: a hierarchical token-semantic audio transformer for sound classification and
detection", ICASSP 2022), computes its input with torchlibrosa: a centred STFT (reflect
padding of ``n_fft // 2``, periodic Hann window of 1024 samples, hop of 480 samples = 10 ms,
no normalisation), the power spectrum ``|X|^2``, librosa's Slaney mel filter bank (area
normalised triangles, 50-14000 Hz) and ``10 log10(max(mel, 1e-10))`` dB (``ref = 1``, no
``top_db`` clipping). A 10-s clip at 48 kHz (480000 samples) gives 1001 frames.
"""

from __future__ import annotations

import math

import torch

from torchlass.stft import stft

__all__ = ["CLAP_CLIP_SAMPLES", "CLAP_F_MAX", "CLAP_F_MIN", "CLAP_HOP_LENGTH", "CLAP_N_FFT",
           "CLAP_SAMPLE_RATE", "clap_log_mel", "slaney_mel_filterbank"]

#: CLAP's audio rate in Hz (every published HTSAT configuration).
CLAP_SAMPLE_RATE = 48000
#: Samples of one CLAP input clip: 10 s at 48 kHz.
CLAP_CLIP_SAMPLES = 480000
#: STFT size and window length in samples.
CLAP_N_FFT = 1024
#: STFT hop in samples (10 ms at 48 kHz).
CLAP_HOP_LENGTH = 480
#: Edges of the mel filter bank in Hz.
CLAP_F_MIN, CLAP_F_MAX = 50.0, 14000.0
_AMIN = 1e-10  # power floor of torchlibrosa's power_to_db (ref = 1, so no offset)
# Slaney's auditory-toolbox mel scale: linear below 1 kHz, logarithmic above.
_F_SP = 200.0 / 3  # Hz per mel in the linear part
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP  # 15 mel
_LOGSTEP = math.log(6.4) / 27.0  # natural-log step per mel above 1 kHz


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    log_part = _MIN_LOG_MEL + torch.log(hz.clamp(min=_MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return torch.where(hz >= _MIN_LOG_HZ, log_part, hz / _F_SP)


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    log_part = _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mel - _MIN_LOG_MEL))
    return torch.where(mel >= _MIN_LOG_MEL, log_part, _F_SP * mel)


def slaney_mel_filterbank(*, sample_rate: int, n_fft: int, n_mels: int, f_min: float,
                          f_max: float) -> torch.Tensor:
    """Slaney-scale, area-normalised triangular mel filters (librosa's ``filters.mel``).

    The ``n_mels + 2`` edges are equally spaced in Slaney mel between ``f_min`` and
    ``f_max``; filter ``m`` rises from edge ``m`` to ``m + 1`` and falls to ``m + 2``, and is
    scaled by ``2 / (f_{m+2} - f_m)`` so that every filter has the same area.

    Args:
        sample_rate: in Hz.
        n_fft: DFT size in samples (``n_fft // 2 + 1`` one-sided bins).
        n_mels: number of filters.
        f_min: lowest edge in Hz.
        f_max: highest edge in Hz.

    Returns:
        float64 weights; ``power @ weights`` is the mel power spectrum.

    Shape:
        Output: ``(n_fft // 2 + 1, n_mels)``.

    Examples:
        >>> fb = slaney_mel_filterbank(sample_rate=48000, n_fft=1024, n_mels=64,
        ...                            f_min=50.0, f_max=14000.0)
        >>> fb.shape, bool((fb >= 0).all())
        (torch.Size([513, 64]), True)
    """
    bins = torch.arange(n_fft // 2 + 1, dtype=torch.float64) * sample_rate / n_fft
    limits = _hz_to_mel(torch.tensor([f_min, f_max], dtype=torch.float64))
    edges = _mel_to_hz(torch.linspace(float(limits[0]), float(limits[1]), n_mels + 2,
                                      dtype=torch.float64))
    widths = edges.diff()
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = torch.minimum(rising, falling).clamp(min=0.0)
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).T.contiguous()


def clap_log_mel(audio: torch.Tensor, filterbank: torch.Tensor) -> torch.Tensor:
    """CLAP's log-mel spectrogram of 48-kHz audio, in dB (``10 log10`` of mel power).

    Args:
        audio: real signals at 48 kHz, at least 513 samples long (reflect padding).
        filterbank: mel weights from
            [`slaney_mel_filterbank`][torchlass.query.clap_mel.slaney_mel_filterbank]
            (cast to the STFT's dtype).

    Returns:
        Log-mel frames in dB, float32 for float32 input (float64 for float64).

    Shape:
        ``audio``: ``(..., time)``; ``filterbank``: ``(513, n_mels)``; output:
        ``(..., 1 + time // 480, n_mels)``.

    Examples:
        >>> fb = slaney_mel_filterbank(sample_rate=48000, n_fft=1024, n_mels=64,
        ...                            f_min=50.0, f_max=14000.0)
        >>> clap_log_mel(torch.zeros(2, 480000), fb).shape
        torch.Size([2, 1001, 64])
    """
    spec = stft(audio, n_fft=CLAP_N_FFT, hop_length=CLAP_HOP_LENGTH, window="hann",
                center=True, pad_mode="reflect")
    power = spec.real.square() + spec.imag.square()
    mel = power.transpose(-1, -2) @ filterbank.to(power.dtype)
    return 10.0 * torch.log10(mel.clamp(min=_AMIN))
