"""Load a trained separator and its text encoder from a checkpoint, for inference.

Three kinds of checkpoint are accepted: a torchlass training checkpoint (its configuration
says how to rebuild the separator and which text encoder it was trained with), a pretrained
folder ([`save_pretrained`][torchlass.pretrained.save_pretrained]), and the published
AudioSep (32 kHz) and DCASE 2024 baseline (16 kHz) checkpoints (through
[`load_audiosep`][torchlass.checkpoints.load_audiosep]); the last two need LAION-CLAP's
text tower. All are read by
[`read_checkpoint`][torchlass.checkpoints.read_checkpoint], which never runs code from a
file. [`resolve_device`][torchlass.recipes.inference.resolve_device] checks a device name
before anything is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from torchlass.errors import TorchlassError, ValueRangeError
from torchlass.query import CachedTextEncoder, ClapTextEncoder
from torchlass.recipes.config import config_from_dict
from torchlass.recipes.model import build_separator, build_text_encoder
from torchlass.recipes.trainer import checkpoint_kind, load_weights_into
from torchlass.separator import Separator

__all__ = ["LoadedSeparator", "load_for_inference", "resolve_device"]

_DEVICE_TYPES = ("cpu", "cuda", "mps")


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


def resolve_device(device: str | torch.device, *, fn: str = "resolve_device",
                   name: str = "device") -> torch.device:
    """Parse a device name and check that this machine has that device.

    Args:
        device: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"`` (or a ``torch.device``).
        fn: the function the message names (``""``: none, for a command-line option).
        name: the argument (or option) the message names.

    Returns:
        The ``torch.device``.

    Raises:
        ValueRangeError: for a name torch does not parse, a device type torchlass does not
            run on, CUDA (or MPS) absent on this machine, or a CUDA index past the last GPU.

    Examples:
        >>> resolve_device("cpu")
        device(type='cpu')
        >>> resolve_device("gpu")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        torchlass.errors.ValueRangeError: resolve_device(): argument 'device' ... got 'gpu'
    """
    where = f"{fn}(): argument '{name}'" if fn else name  # fn="": a command-line option
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        parsed = None
    if parsed is None or parsed.type not in _DEVICE_TYPES:
        raise ValueRangeError(f"{where} expected cpu, cuda, cuda:N or mps, got {str(device)!r}")
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueRangeError(f"{where} is {str(device)!r} but CUDA is not available on "
                                  f"this machine (torch {torch.__version__}); use cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ValueRangeError(f"{where} is {str(device)!r} but this machine has {count} "
                                  f"CUDA device(s): cuda:0 to cuda:{count - 1}")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueRangeError(f"{where} is {str(device)!r} but MPS is not available on this "
                              "machine; use cpu")
    return parsed


def load_for_inference(path: str | Path, *, clap_checkpoint: str | Path | None = None,
                       device: str | torch.device = "cpu") -> LoadedSeparator:
    """Load a separator and its text encoder from a checkpoint file.

    Args:
        path: a torchlass training checkpoint, a pretrained folder
            ([`save_pretrained`][torchlass.pretrained.save_pretrained]), or an
            AudioSep/DCASE 2024 baseline checkpoint (16 or 32 kHz, through
            [`load_audiosep`][torchlass.checkpoints.load_audiosep]).
        clap_checkpoint: LAION-CLAP checkpoint file; required for a pretrained folder, for
            the AudioSep/DCASE checkpoints and for training checkpoints of CLAP-conditioned
            models (overrides the path stored in their configuration).
        device: where the separator runs (checked by
            [`resolve_device`][torchlass.recipes.inference.resolve_device] first).

    Returns:
        A [`LoadedSeparator`][torchlass.recipes.inference.LoadedSeparator].

    Raises:
        ValueRangeError: if ``device`` is not a device of this machine.
        CheckpointError: in one line naming the file and the reason: unreadable (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), of neither kind,
            or weights that do not fit the separator the checkpoint describes.
        TorchlassError: if a pretrained folder or an AudioSep/DCASE checkpoint is given
            without ``clap_checkpoint``.
    """
    from torchlass.checkpoints import load_audiosep, read_checkpoint

    fn = "load_for_inference"
    target = resolve_device(device, fn=fn)
    data = read_checkpoint(path, map_location="cpu")
    where = repr(str(path))
    kind = checkpoint_kind(data, where=where, fn=fn)
    if kind == "training":
        config = config_from_dict(data["config"])
        if clap_checkpoint is not None:
            config.query.clap_checkpoint = str(clap_checkpoint)
        separator = build_separator(config.model)
        load_weights_into(separator, data["model"], where=where, fn=fn)
        encoder = build_text_encoder(config.query, dim=config.model.condition_size)
    else:
        separator = data["separator"] if kind == "pretrained" else load_audiosep(data)
        if clap_checkpoint is None:
            raise TorchlassError(
                f"{fn}(): {where} holds a separator conditioned on LAION-CLAP and no text "
                "encoder: pass clap_checkpoint (the CLAP checkpoint file, e.g. "
                "music_speech_audioset_epoch_15_esc_89.98.pt), or a tokenizer folder to use "
                "the text tower inside an AudioSep/DCASE checkpoint"
            )
        encoder = CachedTextEncoder(ClapTextEncoder(clap_checkpoint))
    return LoadedSeparator(separator.to(target).eval(), encoder, separator.sample_rate)
