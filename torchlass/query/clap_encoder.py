"""CLAP's text and audio towers together, from one checkpoint file.

LAION-CLAP (Wu et al., ICASSP 2023) embeds captions and clips into one 512-d space, so a
separator conditioned on text embeddings can be queried with an example clip instead.
[`load_clap_encoder`][torchlass.query.load_clap_encoder] reads a checkpoint once and builds
both towers from it (see [`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder]
and [`load_clap_audio_encoder`][torchlass.query.load_clap_audio_encoder]); the result is a
[`TextEncoder`][torchlass.query.TextEncoder] and an
[`AudioEncoder`][torchlass.query.AudioEncoder], so
[`embed_queries`][torchlass.query.embed_queries] takes captions and clips in one list.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import torch
from torch import nn

from torchlass.errors import CheckpointError
from torchlass.query.clap_audio import ClapAudioTower, load_clap_audio_encoder
from torchlass.query.clap_checkpoint import clap_state
from torchlass.query.clap_text import ClapTextTower, load_clap_text_encoder

__all__ = ["ClapEncoder", "load_clap_encoder"]


class ClapEncoder(nn.Module):
    """CLAP's text tower and audio tower: captions and clips in one embedding space.

    Args:
        text: a [`ClapTextTower`][torchlass.query.ClapTextTower].
        audio: a [`ClapAudioTower`][torchlass.query.ClapAudioTower] of the same ``dim``.

    Shape:
        Calling it on ``n`` captions, or ``embed_audio`` on ``(n, time)`` or
        ``(n, channels, time)`` audio: ``(n, dim)``, float32, unit rows, on the CPU.

    Raises:
        CheckpointError: if the two towers embed into spaces of different sizes.
    """

    def __init__(self, text: ClapTextTower, audio: ClapAudioTower) -> None:
        super().__init__()
        if text.dim != audio.dim:
            raise CheckpointError(f"ClapEncoder(): the text tower embeds into {text.dim} values "
                                  f"and the audio tower into {audio.dim}: not one CLAP model")
        self.text = text
        self.audio = audio
        self.dim = text.dim

    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed captions with the text tower."""
        return self.text(captions)

    def embed_audio(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Embed clips at ``sample_rate`` Hz with the audio tower (resampled to 48 kHz)."""
        return self.audio(audio, sample_rate)


def load_clap_encoder(checkpoint: str | os.PathLike | Mapping, *, tokenizer: str | os.PathLike,
                      max_length: int | None = None, num_heads: int = 12, spec_size: int = 256,
                      device: str | torch.device = "cpu") -> ClapEncoder:
    """Build CLAP's text and audio towers from one checkpoint, read once.

    Args:
        checkpoint: an AudioSep / DCASE 2024 baseline Lightning checkpoint or a LAION-CLAP
            ``.pt`` (HTSAT, no feature fusion), as a path or a loaded dict.
        tokenizer: a local RoBERTa tokenizer folder (``vocab.json``, ``merges.txt``).
        max_length: tokens per caption (default: 512 for AudioSep/DCASE, 77 for LAION).
        num_heads: the text tower's attention heads (not stored in the weights).
        spec_size: HTSAT's spectrogram image side (not stored in the weights).
        device: where both towers run.

    Returns:
        A [`ClapEncoder`][torchlass.query.ClapEncoder] in eval mode.

    Raises:
        FileNotFoundError, TorchlassError: the tokenizer folder is missing or incomplete.
        CheckpointError: the checkpoint cannot be read, lacks either tower, or a tower does
            not match its layout (see the two loaders).
    """
    state = clap_state(checkpoint, "load_clap_encoder")
    text = load_clap_text_encoder(state, tokenizer=tokenizer, max_length=max_length,
                                  num_heads=num_heads, device=device)
    audio = load_clap_audio_encoder(state, spec_size=spec_size, device=device)
    return ClapEncoder(text, audio).eval()
