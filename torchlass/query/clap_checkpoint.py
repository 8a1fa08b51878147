"""Where CLAP's towers sit in a checkpoint: one rule for the text and the audio tower.

AudioSep's and the DCASE 2024 baseline's Lightning checkpoints keep their frozen LAION-CLAP
model under ``query_encoder.model.`` in ``state_dict``; a LAION-CLAP ``.pt`` keeps it at the
top level of its ``state_dict``, under ``module.`` when it was saved from a data-parallel
run. A tower is found by a key only it has (its *anchor*); whatever stands in front of the
anchor is the prefix of the whole model, and the tower is every key under that prefix that
starts with one of the tower's branch names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from torchlass.errors import CheckpointError

__all__ = ["AUDIOSEP_PREFIX", "clap_state", "read_tower", "tower_prefixes"]

#: Prefix of the CLAP model inside AudioSep's / the DCASE 2024 baseline's checkpoints.
AUDIOSEP_PREFIX = "query_encoder.model."


def clap_state(source: str | os.PathLike | Mapping, fn: str) -> Mapping:
    """The ``state_dict`` of a checkpoint given as a path or as a loaded dict.

    A path is read by [`read_checkpoint`][torchlass.checkpoints.read_checkpoint] (tensors
    and plain containers only).

    Raises:
        CheckpointError: if the file cannot be read safely, or the checkpoint or its
            ``state_dict`` is not a mapping.
    """
    if isinstance(source, str | os.PathLike):
        from torchlass.checkpoints import read_checkpoint

        source = read_checkpoint(source)
    if not isinstance(source, Mapping):
        raise CheckpointError(f"{fn}(): argument 'checkpoint' expected a checkpoint dict, "
                              f"got {type(source).__name__}")
    state = source.get("state_dict", source)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{fn}(): argument 'checkpoint' expected 'state_dict' to be a "
                              f"mapping of tensors, got {type(state).__name__}")
    return state


def tower_prefixes(state: Mapping, anchor: str) -> list[str]:
    """The prefixes in front of every key of ``state`` that ends in ``anchor``."""
    return [str(k)[: -len(anchor)] for k in state if str(k).endswith(anchor)]


def read_tower(source: str | os.PathLike | Mapping, *, anchor: str, branches: tuple[str, ...],
               what: str, fn: str) -> tuple[dict, str]:
    """Find one CLAP tower in a checkpoint by its anchor key.

    Args:
        source: a checkpoint path or loaded dict (see
            [`clap_state`][torchlass.query.clap_checkpoint.clap_state]).
        anchor: a key (without prefix) that only this tower has.
        branches: the tower's key prefixes (e.g. ``("text_branch.", "text_projection.")``).
        what: the tower's name in messages ("CLAP text tower").
        fn: the public function, for messages.

    Returns:
        ``(tower, prefix)``: the tower's entries keyed without the prefix, and the prefix
        (``"query_encoder.model."``, ``"module."`` or ``""`` in the published layouts).

    Raises:
        CheckpointError: as [`clap_state`][torchlass.query.clap_checkpoint.clap_state], or
            if the checkpoint holds no (or several) such towers.
    """
    state = clap_state(source, fn)
    prefixes = tower_prefixes(state, anchor)
    if len(prefixes) != 1:
        found = "no" if not prefixes else f"{len(prefixes)} ({', '.join(map(repr, prefixes))})"
        raise CheckpointError(
            f"{fn}(): argument 'checkpoint' expected one {what} (a key ending in {anchor!r}, "
            f"as in AudioSep/DCASE or LAION-CLAP checkpoints), found {found}")
    prefix = prefixes[0]
    tower = {str(k)[len(prefix):]: v for k, v in state.items()
             if str(k).startswith(prefix) and str(k)[len(prefix):].startswith(branches)}
    return tower, prefix
