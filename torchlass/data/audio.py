"""Reading, resampling, trimming and writing audio files (soundfile + scipy).

[`read_audio`][torchlass.data.read_audio] reads any format libsndfile reads (WAV, FLAC, OGG, ...),
down-mixes to mono by averaging all channels (the baseline averages the first two only,
docs/baseline.md#training-clips) and resamples with `scipy.signal.resample_poly` (a polyphase
filter; the baseline
uses torchaudio's sinc resampler, so resampled clips differ slightly).
[`fit_length`][torchlass.data.fit_length] crops or pads a clip to a fixed segment. ``soundfile`` and
``scipy.signal`` are imported when first needed, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch

from torchlass.checks import check_ndim, check_positive_int, check_real_floating
from torchlass.errors import ShapeError, TorchlassError

__all__ = ["AudioFileError", "audio_info", "fit_length", "import_soundfile", "read_audio",
           "resample", "write_audio"]


class AudioFileError(TorchlassError, OSError):
    """An audio file exists but cannot be read (corrupt or unsupported format)."""


def import_soundfile() -> Any:
    """The ``soundfile`` module (an optional dependency), or a one-line install hint."""
    try:
        import soundfile
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise TorchlassError(
            "reading and writing audio needs soundfile: pip install 'torchlass[recipes]'"
        ) from err
    return soundfile


def audio_info(path: str | Path) -> tuple[int, int]:
    """Return ``(num_frames, sample_rate)`` of an audio file from its header.

    Raises:
        FileNotFoundError: if the file does not exist.
        AudioFileError: if it cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio_info(): audio file not found: {str(path)!r}")
    try:
        info = import_soundfile().info(str(path))
    except RuntimeError as err:
        raise AudioFileError(f"audio_info(): cannot read {str(path)!r}: {err}") from err
    return int(info.frames), int(info.samplerate)


def resample(x: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """Resample along the last axis with a polyphase filter (``scipy.signal.resample_poly``).

    The ratio is reduced by the greatest common divisor (44100 -> 16000 is up 160, down 441).
    Computed in float64 on the CPU, returned in ``x``'s dtype and device.

    Args:
        x: signals.
        orig_rate: their sample rate in Hz.
        new_rate: the wanted sample rate in Hz.

    Returns:
        The resampled signals, ``ceil(time * new_rate / orig_rate)`` samples long.

    Shape:
        ``(..., time)`` -> ``(..., ceil(time * new_rate / orig_rate))``.

    Examples:
        >>> resample(torch.zeros(2, 441), 44100, 16000).shape
        torch.Size([2, 160])
    """
    check_real_floating(x, "resample", "x")
    check_positive_int(orig_rate, "resample", "orig_rate")
    check_positive_int(new_rate, "resample", "new_rate")
    if orig_rate == new_rate:
        return x
    from scipy.signal import resample_poly

    g = math.gcd(orig_rate, new_rate)
    y = resample_poly(x.detach().cpu().double().numpy(), new_rate // g, orig_rate // g, axis=-1)
    return torch.from_numpy(y).to(device=x.device, dtype=x.dtype)


def read_audio(path: str | Path, *, sample_rate: int, mono: bool = True,
               min_seconds: float = 0.0) -> torch.Tensor:
    """Read an audio file as float32, down-mixed to mono and resampled to ``sample_rate``.

    Args:
        path: the file.
        sample_rate: rate to return, in Hz (resampled when the file's differs).
        mono: average all channels into one.
        min_seconds: reject clips shorter than this at ``sample_rate`` (the baseline
            trains on clips of at least 0.5 s).

    Returns:
        The audio in [-1, 1] for integer formats.

    Shape:
        ``(channels, time)``, ``channels == 1`` when ``mono``.

    Raises:
        FileNotFoundError: if the file does not exist.
        AudioFileError: if it cannot be read.
        ShapeError: if it is shorter than ``min_seconds``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"read_audio(): audio file not found: {str(path)!r}")
    try:
        data, rate = import_soundfile().read(str(path), dtype="float32", always_2d=True)
    except RuntimeError as err:
        raise AudioFileError(f"read_audio(): cannot read {str(path)!r}: {err}") from err
    audio = torch.from_numpy(data.T.copy())
    if mono:
        audio = audio.mean(dim=0, keepdim=True)
    audio = resample(audio, int(rate), sample_rate)
    if audio.shape[-1] < min_seconds * sample_rate:
        raise ShapeError(
            f"read_audio(): {str(path)!r} expected at least {min_seconds} s "
            f"({math.ceil(min_seconds * sample_rate)} samples at {sample_rate} Hz), "
            f"got {audio.shape[-1]} samples"
        )
    return audio


def fit_length(x: torch.Tensor, length: int, *, generator: torch.Generator | None = None
               ) -> torch.Tensor:
    """Crop or zero-pad the last axis to ``length`` samples, as the baseline's loader does.

    A longer clip is cropped at an offset drawn uniformly from ``[0, time - length]``
    (from ``generator``); a shorter one is zero-padded at the end.

    Args:
        x: signals.
        length: wanted length in samples.
        generator: CPU generator for the crop offset.

    Returns:
        ``x`` cropped or padded.

    Shape:
        ``(..., time)`` -> ``(..., length)``.

    Examples:
        >>> fit_length(torch.ones(1, 3), 5)
        tensor([[1., 1., 1., 0., 0.]])
    """
    check_ndim(x, "fit_length", "x", min_ndim=1, layout="(..., time)")
    check_positive_int(length, "fit_length", "length")
    time = x.shape[-1]
    if time >= length:
        start = int(torch.randint(0, time - length + 1, (1,), generator=generator))
        return x[..., start:start + length]
    return torch.nn.functional.pad(x, (0, length - time))


def write_audio(path: str | Path, x: torch.Tensor, sample_rate: int) -> None:
    """Write ``(channels, time)`` audio as a 32-bit float WAV (no clipping, exact round trip).

    Raises:
        ShapeError: if ``x`` is not ``(channels, time)`` or ``(time,)``.
    """
    check_real_floating(x, "write_audio", "x")
    if x.dim() not in (1, 2):
        raise ShapeError(
            f"write_audio(): argument 'x' expected a 1-d (time,) or 2-d (channels, time) "
            f"tensor, got shape {tuple(x.shape)}"
        )
    data = x.detach().cpu().float().reshape(-1 if x.dim() == 1 else x.shape[0], x.shape[-1])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    import_soundfile().write(str(path), data.T.numpy(), sample_rate, subtype="FLOAT")
