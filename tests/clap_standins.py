"""Stand-in CLAP models for the CLAPScore tests: tiny, deterministic, and written twice.

[`StandInClap`] implements the query protocols (``dim``, ``__call__(captions)``,
``embed_audio(audio, sample_rate)``) in torch; ``np_audio_embedding`` and
``np_text_embedding`` are the same toy formulas in float64 numpy, so that a test's
reference score is computed from the published formula without the code under test.
A silent clip has a defined, non-zero embedding (its last features are constants), as CLAP
embeds silence to a defined vector.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

DIM = 6


def np_audio_embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(n, time)`` or ``(n, channels, time)`` -> ``(n, DIM)``: channel mean, then features."""
    x = audio.reshape(audio.shape[0], -1, audio.shape[-1]).mean(axis=1)
    rms = np.sqrt((x**2).mean(-1))
    half = x.shape[-1] // 2
    return np.stack([rms, x.mean(-1), np.abs(x[:, :half + 1]).mean(-1) - rms,
                     x[:, :-1].dot(np.ones(x.shape[-1] - 1)) / x.shape[-1] * 3.0,
                     np.full(len(x), sample_rate / 48000), np.full(len(x), -0.25)], -1)


def np_text_embedding(caption: str) -> np.ndarray:
    """A caption -> ``(DIM,)`` unit-variance values drawn from its CRC32."""
    return np.random.default_rng(zlib.crc32(caption.encode())).standard_normal(DIM)


class StandInClap:
    """Both towers of a toy CLAP: ``embed_audio`` and ``__call__`` (see the module docstring).

    ``audio_gain`` and ``text_gain`` rescale the embeddings (a cosine must not notice);
    ``calls`` records the ``(shape, sample_rate)`` of every ``embed_audio`` call.
    """

    dim = DIM

    def __init__(self, *, audio_gain: float = 1.0, text_gain: float = 1.0,
                 dtype: torch.dtype = torch.float32) -> None:
        self.audio_gain, self.text_gain, self.dtype = audio_gain, text_gain, dtype
        self.calls: list[tuple[tuple[int, ...], int]] = []

    def __call__(self, captions):
        rows = [self.text_gain * np_text_embedding(c) for c in captions]
        return torch.from_numpy(np.stack(rows)).to(self.dtype)

    def embed_audio(self, audio, sample_rate):
        self.calls.append((tuple(audio.shape), sample_rate))
        x = audio.double().reshape(audio.shape[0], -1, audio.shape[-1]).mean(1)
        rms = x.pow(2).mean(-1).sqrt()
        half = x.shape[-1] // 2
        features = [rms, x.mean(-1), x[:, :half + 1].abs().mean(-1) - rms,
                    x[:, :-1].sum(-1) / x.shape[-1] * 3.0,
                    torch.full_like(rms, sample_rate / 48000), torch.full_like(rms, -0.25)]
        return (self.audio_gain * torch.stack(features, -1)).to(self.dtype)


class TextOnly:
    """A text encoder with no audio tower."""

    dim = DIM

    def __call__(self, captions):
        return torch.ones(len(captions), DIM)


def np_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine of two ``(n, dim)`` arrays in float64."""
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
