"""A separator and its text encoder from the files a user has, for ``torchlass separate``.

Without a tokenizer folder this is
[`load_for_inference`][torchlass.recipes.inference.load_for_inference] (a torchlass
training checkpoint, or the DCASE baseline's with a LAION-CLAP checkpoint for
``laion_clap``). With one, the AudioSep/DCASE checkpoint is read once and gives both the
separator and, through [`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder],
the CLAP text tower stored inside it (or in ``clap_checkpoint``): one file, no
``laion_clap``. When that file also holds CLAP's audio tower (AudioSep's and the DCASE
baseline's do), the encoder is [`load_clap_encoder`][torchlass.query.load_clap_encoder]'s,
which embeds example clips as well.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from torchlass.errors import CheckpointError
from torchlass.query import CachedTextEncoder, TextEncoder, load_clap_encoder
from torchlass.query.clap_audio import has_clap_audio_tower
from torchlass.query.clap_text import load_clap_text_encoder

__all__ = ["load_separator"]


def load_separator(checkpoint: str | os.PathLike, *, tokenizer: str | os.PathLike | None = None,
                   clap_checkpoint: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> tuple[nn.Module, TextEncoder]:
    """Load a separator (eval mode, on ``device``) and the text encoder it was trained with.

    Args:
        checkpoint: a torchlass training checkpoint, a pretrained folder
            ([`save_pretrained`][torchlass.pretrained.save_pretrained]), or an AudioSep/DCASE
            Lightning checkpoint (16 or 32 kHz).
        tokenizer: a RoBERTa tokenizer folder (``vocab.json``, ``merges.txt``): build the
            CLAP text tower on ``transformers`` from the checkpoint's own weights (or from
            ``clap_checkpoint``'s).
        clap_checkpoint: a LAION-CLAP ``.pt`` (with ``tokenizer``: the text tower's
            weights; without: loaded through ``laion_clap``).
        device: where the separator runs (the text encoder stays on the CPU).

    Returns:
        ``(separator, encoder)``, the encoder behind a
        [`CachedTextEncoder`][torchlass.query.CachedTextEncoder]; with a tokenizer and a
        CLAP checkpoint that holds the audio tower too, its ``embed_audio`` embeds clips
        ([`ClapEncoder`][torchlass.query.ClapEncoder]).

    Raises:
        FileNotFoundError: if the tokenizer folder does not exist.
        CheckpointError: if a checkpoint cannot be read or has another layout.
        TorchlassError: if the tokenizer folder has no vocabulary files.
    """
    if tokenizer is None:
        from torchlass.recipes.inference import load_for_inference

        loaded = load_for_inference(
            Path(checkpoint), device=device,
            clap_checkpoint=None if clap_checkpoint is None else Path(clap_checkpoint))
        return loaded.separator, loaded.encoder
    from torchlass.checkpoints import load_audiosep, read_checkpoint
    from torchlass.pretrained import FORMAT as PRETRAINED

    state = read_checkpoint(checkpoint)
    pretrained = state.get("format") == PRETRAINED  # a folder holds no text tower
    if pretrained and clap_checkpoint is None:
        raise CheckpointError(f"load_separator(): {str(checkpoint)!r} is a pretrained folder, "
                              "which holds no text tower: pass clap_checkpoint (a LAION-CLAP "
                              ".pt or an AudioSep/DCASE checkpoint) with the tokenizer")
    clap = state if clap_checkpoint is None else read_checkpoint(clap_checkpoint)
    encoder: TextEncoder
    if has_clap_audio_tower(clap):
        encoder = load_clap_encoder(clap, tokenizer=tokenizer)
    else:
        encoder = load_clap_text_encoder(clap, tokenizer=tokenizer)
    separator = state["separator"] if pretrained else load_audiosep(state)
    return separator.to(device).eval(), CachedTextEncoder(encoder)
