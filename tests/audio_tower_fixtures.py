"""A tiny CLAP audio tower (HTSAT) in LAION-CLAP's key layout, and a whole tiny CLAP checkpoint.

The front-end buffers a LAION checkpoint stores (torchlibrosa's STFT kernels and mel filter
bank) and the Swin buffers (relative-position indices, shifted-window masks) are written
here from their formulas in float64 numpy, independently of torchlass, so that loading a
fixture cross-checks the two implementations.

``write_clap_checkpoint`` writes text and audio towers together in the AudioSep / DCASE
layout (``query_encoder.model.``), as a separator checkpoint holds them; use it with
``text_tower_fixtures.write_tokenizer`` for the tokenizer folder.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from text_tower_fixtures import tower_state

EMBED, DEPTHS, HEADS, WINDOW, PATCH = 8, (2, 2, 1, 1), (1, 2, 2, 4), 8, 4
SPEC, MELS, MLP_RATIO, CLASSES, DIM = 256, 64, 2, 3, 8
SR, N_FFT, HOP, F_MIN, F_MAX = 48000, 1024, 480, 50.0, 14000.0


def hann(n: int) -> np.ndarray:
    """Periodic Hann window."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)


def slaney_filterbank(n_mels: int = MELS) -> np.ndarray:
    """librosa.filters.mel(sr=48000, n_fft=1024, fmin=50, fmax=14000), Slaney scale and
    norm, from Slaney's auditory toolbox formulas; shape (513, n_mels)."""
    f_sp, min_log_hz, logstep = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
    min_log_mel = min_log_hz / f_sp

    def to_mel(f):
        return min_log_mel + math.log(f / min_log_hz) / logstep if f >= min_log_hz else f / f_sp

    def to_hz(m):
        return min_log_hz * math.exp(logstep * (m - min_log_mel)) if m >= min_log_mel else f_sp * m

    edges = np.array([to_hz(m) for m in np.linspace(to_mel(F_MIN), to_mel(F_MAX), n_mels + 2)])
    freqs = np.arange(N_FFT // 2 + 1) * SR / N_FFT
    fb = np.zeros((n_mels, freqs.size))
    for m in range(n_mels):
        lo, mid, hi = edges[m:m + 3]
        tri = np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid))
        fb[m] = np.maximum(tri, 0.0) * 2.0 / (hi - lo)
    return fb.T


def relative_position_index(w: int) -> np.ndarray:
    """Swin's index into the (2w-1)^2 bias table for every pair of tokens of a w x w window."""
    rows, cols = np.divmod(np.arange(w * w), w)
    return (rows[:, None] - rows[None, :] + w - 1) * (2 * w - 1) + (cols[:, None] - cols[None, :]
                                                                     + w - 1)


def shift_labels(size: int, window: int, shift: int) -> np.ndarray:
    """Region labels of the rolled map (LAION's three slices per axis)."""
    axis = np.zeros(size, dtype=np.int64)
    axis[size - window:size - shift] = 1
    axis[size - shift:] = 2
    return axis[:, None] * 3 + axis[None, :]


def window_tokens(grid: np.ndarray, w: int) -> np.ndarray:
    """(H, W, ...) -> (windows, w * w, ...), windows row-major, tokens row-major inside."""
    h, wd = grid.shape[:2]
    rest = grid.shape[2:]
    out = grid.reshape(h // w, w, wd // w, w, *rest).swapaxes(1, 2)
    return out.reshape((h // w) * (wd // w), w * w, *rest)


def shift_mask(size: int, window: int, shift: int) -> np.ndarray:
    labels = window_tokens(shift_labels(size, window, shift), window)
    return np.where(labels[:, None, :] != labels[:, :, None], -100.0, 0.0)


def audio_tower_state(*, dim: int = DIM, seed: int = 0, mels: int = MELS,
                      embed: int = EMBED) -> dict[str, torch.Tensor]:
    """Random weights (and LAION's stored buffers) under LAION-CLAP's names."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.3):
        return scale * torch.randn(*shape, generator=g)

    def norm(prefix, n):
        return {f"{prefix}.weight": 1 + rand(n, scale=0.1), f"{prefix}.bias": rand(n, scale=0.1)}

    def linear(prefix, n_out, n_in, bias=True):
        out = {f"{prefix}.weight": rand(n_out, n_in, scale=1 / math.sqrt(n_in))}
        if bias:
            out[f"{prefix}.bias"] = rand(n_out, scale=0.1)
        return out

    b = "audio_branch."
    window = hann(N_FFT)
    angle = 2 * np.pi * np.outer(np.arange(N_FFT // 2 + 1), np.arange(N_FFT)) / N_FFT
    state = {
        f"{b}spectrogram_extractor.stft.conv_real.weight":
            torch.from_numpy(np.cos(angle) * window)[:, None].float(),
        f"{b}spectrogram_extractor.stft.conv_imag.weight":
            torch.from_numpy(-np.sin(angle) * window)[:, None].float(),
        f"{b}logmel_extractor.melW": torch.from_numpy(slaney_filterbank(mels)).float(),
        f"{b}bn0.weight": 1 + rand(mels, scale=0.1), f"{b}bn0.bias": rand(mels, scale=0.1),
        f"{b}bn0.running_mean": -10 + rand(mels, scale=3.0),
        f"{b}bn0.running_var": 20 + 10 * torch.rand(mels, generator=g),
        f"{b}bn0.num_batches_tracked": torch.tensor(7),
        f"{b}patch_embed.proj.weight": rand(embed, 1, PATCH, PATCH, scale=0.05),
        f"{b}patch_embed.proj.bias": rand(embed, scale=0.1),
        **norm(f"{b}patch_embed.norm", embed),
    }
    size = SPEC // PATCH
    for i, (depth, heads) in enumerate(zip(DEPTHS, HEADS, strict=True)):
        c = embed * 2 ** i
        for j in range(depth):
            p = f"{b}layers.{i}.blocks.{j}."
            state.update(norm(f"{p}norm1", c))
            state[f"{p}attn.relative_position_bias_table"] = rand((2 * WINDOW - 1) ** 2, heads,
                                                                  scale=0.5)
            state[f"{p}attn.relative_position_index"] = torch.from_numpy(
                relative_position_index(WINDOW))
            state.update(linear(f"{p}attn.qkv", 3 * c, c))
            state.update(linear(f"{p}attn.proj", c, c))
            state.update(norm(f"{p}norm2", c))
            state.update(linear(f"{p}mlp.fc1", MLP_RATIO * c, c))
            state.update(linear(f"{p}mlp.fc2", c, MLP_RATIO * c))
            if j % 2 and size > WINDOW:
                state[f"{p}attn_mask"] = torch.from_numpy(
                    shift_mask(size, WINDOW, WINDOW // 2)).float()
        if i < len(DEPTHS) - 1:
            state.update(norm(f"{b}layers.{i}.downsample.norm", 4 * c))
            state.update(linear(f"{b}layers.{i}.downsample.reduction", 2 * c, 4 * c, bias=False))
            size //= 2
    features = embed * 2 ** (len(DEPTHS) - 1)
    state.update(norm(f"{b}norm", features))
    # LAION's AudioSet head (unused by the embedding): tscam_conv over (SF, 3), then head
    sf = SPEC // 2 ** (len(DEPTHS) - 1) // PATCH // (SPEC // mels)
    state[f"{b}tscam_conv.weight"] = rand(CLASSES, features, sf, 3)
    state[f"{b}tscam_conv.bias"] = rand(CLASSES)
    state.update(linear(f"{b}head", CLASSES, CLASSES))
    state.update(linear("audio_projection.0", dim, features))
    state.update(linear("audio_projection.2", dim, dim))
    return state


def clap_model_state(*, dim: int = DIM, hidden: int = 24, positions: int = 514,
                     seed: int = 0) -> dict[str, torch.Tensor]:
    """A whole tiny CLAP model under LAION's names: both towers, the training-only
    ``*_transform`` MLPs and the logit scales (which the towers do not use)."""
    state = {**tower_state(positions, seed=seed, dim=dim, hidden=hidden),
             **audio_tower_state(dim=dim, seed=seed + 1)}
    g = torch.Generator().manual_seed(seed + 2)
    for branch in ("audio_transform", "text_transform"):
        for k in (0, 3):
            state[f"{branch}.sequential.{k}.weight"] = torch.randn(dim, dim, generator=g)
            state[f"{branch}.sequential.{k}.bias"] = torch.randn(dim, generator=g)
    state["logit_scale_a"] = torch.tensor(math.log(1 / 0.07))
    state["logit_scale_t"] = torch.tensor(math.log(1 / 0.07))
    return state


def write_clap_checkpoint(path: Path, *, dim: int = DIM, hidden: int = 24, seed: int = 0,
                          extra: dict | None = None) -> Path:
    """Write a tiny CLAP (text + audio towers) in the AudioSep/DCASE checkpoint layout.

    The text tower's hidden size 24 works with the loaders' default 12 heads. ``extra``
    entries (e.g. a separator's ``export_dcase2024_baseline(...)["state_dict"]``) are added
    to ``state_dict``. Load with ``load_clap_encoder(path, tokenizer=write_tokenizer(dir))``.
    """
    state = {f"query_encoder.model.{k}": v
             for k, v in clap_model_state(dim=dim, hidden=hidden, seed=seed).items()}
    state.update(extra or {})
    torch.save({"state_dict": state, "epoch": 0}, path)
    return path
