"""One loader for a separator and the query encoder it was trained with.

[`load_separator`][torchlass.inference.load_separator] takes every kind of checkpoint
torchlass reads -- a torchlass training checkpoint (its configuration says how to rebuild
the separator and which text encoder it was trained with), a pretrained folder
([`save_pretrained`][torchlass.pretrained.save_pretrained]), and the published AudioSep
(32 kHz) and DCASE 2024 baseline (16 kHz) checkpoints (through
[`load_audiosep`][torchlass.checkpoints.load_audiosep]) -- reads it once with
[`read_checkpoint`][torchlass.checkpoints.read_checkpoint], which never runs code from a
file, and returns the separator with its encoder.

A CLAP-conditioned separator needs CLAP's text tower. With a tokenizer folder it is built on
``transformers`` from the weights stored in the checkpoint itself (AudioSep's and the
baseline's keep the whole CLAP model) or in ``clap_checkpoint``: one file, no
``laion_clap``; when that file also holds the audio tower, the encoder is
[`load_clap_encoder`][torchlass.query.load_clap_encoder]'s and embeds example clips too.
Without a tokenizer, ``clap_checkpoint`` is loaded through ``laion_clap``
([`ClapTextEncoder`][torchlass.query.ClapTextEncoder]).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchlass.errors import CheckpointError, TorchlassError
from torchlass.query import CachedTextEncoder, ClapTextEncoder, TextEncoder, load_clap_encoder
from torchlass.query.clap_audio import has_clap_audio_tower
from torchlass.query.clap_text import load_clap_text_encoder

__all__ = ["load_separator"]

_FN = "load_separator"


def _clap_from_weights(source: Mapping[str, Any] | str | os.PathLike,
                       tokenizer: str | os.PathLike) -> TextEncoder:
    """CLAP on ``transformers`` from a checkpoint: both towers if it holds the audio one."""
    from torchlass.checkpoints import read_checkpoint

    state = source if isinstance(source, Mapping) else read_checkpoint(source)
    if has_clap_audio_tower(state):
        return load_clap_encoder(state, tokenizer=tokenizer)
    return load_clap_text_encoder(state, tokenizer=tokenizer)


def _training_encoder(config: Any, where: str, tokenizer: str | os.PathLike | None,
                      clap_checkpoint: str | os.PathLike | None) -> TextEncoder:
    """The encoder a torchlass training configuration names, CLAP's from the given files."""
    from torchlass.recipes.model import build_text_encoder

    if config.query.encoder == "hashed":
        if tokenizer is not None or clap_checkpoint is not None:
            raise TorchlassError(
                f"{_FN}(): {where} was trained with the hashed text encoder, which needs no "
                "file: leave out 'tokenizer' and 'clap_checkpoint' (they build CLAP's towers, "
                "which this separator does not read)")
        return build_text_encoder(config.query, dim=config.model.condition_size)
    clap = clap_checkpoint if clap_checkpoint is not None else config.query.clap_checkpoint
    if tokenizer is not None:
        return CachedTextEncoder(_clap_from_weights(clap, tokenizer))
    config.query.clap_checkpoint = str(clap)
    return build_text_encoder(config.query, dim=config.model.condition_size)


def load_separator(checkpoint: str | os.PathLike, *, tokenizer: str | os.PathLike | None = None,
                   clap_checkpoint: str | os.PathLike | None = None,
                   device: str | torch.device = "cpu") -> tuple[nn.Module, TextEncoder]:
    """Load a separator (eval mode, on ``device``) and the encoder it was trained with.

    Args:
        checkpoint: a torchlass training checkpoint, a pretrained folder
            ([`save_pretrained`][torchlass.pretrained.save_pretrained]), or an AudioSep/DCASE
            Lightning checkpoint (16 or 32 kHz).
        tokenizer: a RoBERTa tokenizer folder (``vocab.json``, ``merges.txt``): build CLAP
            on ``transformers`` from the weights in ``clap_checkpoint``, or else in
            ``checkpoint`` itself (or, for a training checkpoint, in the CLAP file its
            configuration names).
        clap_checkpoint: a CLAP checkpoint (a LAION-CLAP ``.pt`` or an AudioSep/DCASE
            file): with ``tokenizer``, the towers' weights; without, loaded through
            ``laion_clap``. Required for a pretrained folder, which holds no CLAP.
        device: where the separator runs (checked by
            [`resolve_device`][torchlass.recipes.inference.resolve_device] first; the
            encoder stays on the CPU).

    Returns:
        ``(separator, encoder)``, the encoder behind a
        [`CachedTextEncoder`][torchlass.query.CachedTextEncoder]; with CLAP's audio tower
        in the weights it is built from, its ``embed_audio`` embeds clips
        ([`ClapEncoder`][torchlass.query.ClapEncoder]).

    Raises:
        ValueRangeError: if ``device`` is not a device of this machine.
        FileNotFoundError: if the tokenizer folder does not exist.
        CheckpointError: in one line naming the file and the reason: unreadable (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), of no known kind,
            weights that do not fit the separator the checkpoint describes, no CLAP tower
            where one is needed, or a pretrained folder given a tokenizer without
            ``clap_checkpoint``.
        TorchlassError: if a CLAP-conditioned checkpoint comes with neither a tokenizer nor
            ``clap_checkpoint``, if CLAP files are given for a separator trained with the
            hashed encoder, or if the tokenizer folder has no vocabulary files.
    """
    from torchlass.checkpoints import load_audiosep, read_checkpoint
    from torchlass.recipes.config import config_from_dict
    from torchlass.recipes.inference import resolve_device
    from torchlass.recipes.model import build_separator
    from torchlass.recipes.trainer import checkpoint_kind, load_weights_into

    target = resolve_device(device, fn=_FN)
    data = read_checkpoint(checkpoint, map_location="cpu")
    where = repr(str(checkpoint))
    kind = checkpoint_kind(data, where=where, fn=_FN)
    encoder: TextEncoder
    if kind == "training":
        config = config_from_dict(data["config"])
        separator = build_separator(config.model)
        load_weights_into(separator, data["model"], where=where, fn=_FN)
        encoder = _training_encoder(config, where, tokenizer, clap_checkpoint)
        return separator.to(target).eval(), encoder
    pretrained = kind == "pretrained"
    separator = data["separator"] if pretrained else load_audiosep(data)
    if tokenizer is not None:
        if pretrained and clap_checkpoint is None:
            raise CheckpointError(f"{_FN}(): {where} is a pretrained folder, which holds no "
                                  "text tower: pass clap_checkpoint (a LAION-CLAP .pt or an "
                                  "AudioSep/DCASE checkpoint) with the tokenizer")
        source = data if clap_checkpoint is None else Path(clap_checkpoint)
        encoder = _clap_from_weights(source, tokenizer)
    elif clap_checkpoint is not None:
        encoder = ClapTextEncoder(Path(clap_checkpoint))
    else:
        raise TorchlassError(
            f"{_FN}(): {where} holds a separator conditioned on LAION-CLAP and no text "
            "encoder: pass clap_checkpoint (the CLAP checkpoint file, e.g. "
            "music_speech_audioset_epoch_15_esc_89.98.pt), or a tokenizer folder to use "
            "the text tower inside an AudioSep/DCASE checkpoint")
    return separator.to(target).eval(), CachedTextEncoder(encoder)
