"""Load a trained separator and its text encoder from a checkpoint, for inference.

Two kinds of checkpoint are accepted: a torchlass training checkpoint (its configuration
says how to rebuild the separator and which text encoder it was trained with), and the
official DCASE 2024 baseline checkpoint (through
[`torchlass.checkpoints.load_dcase2024_baseline`][torchlass.checkpoints.load_dcase2024_baseline]; it
needs LAION-CLAP's text tower).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from torchlass.errors import TorchlassError
from torchlass.query import CachedTextEncoder, ClapTextEncoder
from torchlass.recipes.config import config_from_dict
from torchlass.recipes.model import build_separator, build_text_encoder
from torchlass.recipes.trainer import CHECKPOINT_FORMAT
from torchlass.separator import Separator

__all__ = ["LoadedSeparator", "load_for_inference"]


@dataclass
class LoadedSeparator:
    """A separator in eval mode with the text encoder it expects.

    Attributes:
        separator: the model (``Separator``).
        encoder: the text encoder, cached.
        sample_rate: the rate the separator works at, in Hz.
    """

    separator: Separator
    encoder: CachedTextEncoder
    sample_rate: int


def load_for_inference(path: str | Path, *, clap_checkpoint: str | Path | None = None,
                       device: str | torch.device = "cpu") -> LoadedSeparator:
    """Load a separator and its text encoder from a checkpoint file.

    Args:
        path: a torchlass training checkpoint or the DCASE 2024 baseline checkpoint.
        clap_checkpoint: LAION-CLAP checkpoint file; required for the baseline's
            checkpoint and for training checkpoints of CLAP-conditioned models (overrides
            the path stored in their configuration).
        device: where the separator runs.

    Returns:
        A [`LoadedSeparator`][torchlass.recipes.inference.LoadedSeparator].

    Raises:
        FileNotFoundError: if a file does not exist.
        TorchlassError: if the baseline checkpoint is given without ``clap_checkpoint``.
        CheckpointError: if the checkpoint cannot be read as either kind.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"load_for_inference(): checkpoint not found: {str(file)!r}")
    state = torch.load(file, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT:
        config = config_from_dict(state["config"])
        if clap_checkpoint is not None:
            config.query.clap_checkpoint = str(clap_checkpoint)
        separator = build_separator(config.model)
        separator.load_state_dict(state["model"])
        encoder = build_text_encoder(config.query, dim=config.model.condition_size)
        rate = config.model.sample_rate
    else:
        from torchlass.checkpoints import load_dcase2024_baseline

        separator = load_dcase2024_baseline(state)
        if clap_checkpoint is None:
            raise TorchlassError(
                f"load_for_inference(): {str(file)!r} is the DCASE baseline's checkpoint, "
                "which is conditioned on LAION-CLAP: pass clap_checkpoint (the CLAP "
                "checkpoint file, e.g. music_speech_audioset_epoch_15_esc_89.98.pt)"
            )
        encoder = CachedTextEncoder(ClapTextEncoder(clap_checkpoint))
        rate = 16000
    return LoadedSeparator(separator.to(device).eval(), encoder, rate)
