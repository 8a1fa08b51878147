"""CLAP's text tower on ``transformers``, built from the weights stored in a checkpoint.

LAION-CLAP embeds a caption with a RoBERTa encoder (``text_branch``) whose pooler output
(``tanh(W h_<s> + b)``) goes through ``text_projection`` (Linear -> ReLU -> Linear) and is
L2-normalised to 512 values. The DCASE 2024 baseline and AudioSep keep that tower, frozen,
inside their own checkpoint (``query_encoder.model.text_branch.*`` and
``query_encoder.model.text_projection.*``), so one file is enough to run them. A
standalone LAION-CLAP ``.pt`` has the same tower under ``text_branch.*`` (``module.``
prefixed when it was saved from a data-parallel run).
[`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder] rebuilds the tower from either
with ``transformers``' ``RobertaModel`` -- no ``laion_clap``, no download -- and reads every size
from the weight shapes.

Tokenisation follows the code each checkpoint was used with: AudioSep's and the
baseline's ``clap_encoder.py`` pad and truncate to 512 RoBERTa tokens (the separator was
trained on those embeddings), LAION-CLAP's own hook to 77. The two differ only for
captions longer than 75 tokens. ``transformers`` is an optional dependency
(``pip install "torchlass[text]"``).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchlass.checks import check_positive_int
from torchlass.errors import CheckpointError, TorchlassError
from torchlass.query.clap_checkpoint import AUDIOSEP_PREFIX, read_tower
from torchlass.query.protocol import check_captions

__all__ = ["AUDIOSEP_MAX_LENGTH", "LAION_MAX_LENGTH", "ClapTextTower",
           "load_clap_text_encoder", "read_text_tower_state"]

#: Tokens per caption in AudioSep's / the DCASE baseline's ``clap_encoder.py``.
AUDIOSEP_MAX_LENGTH = 512
#: Tokens per caption in LAION-CLAP's ``CLAP_Module.tokenizer``.
LAION_MAX_LENGTH = 77
_ANCHOR = "text_branch.embeddings.word_embeddings.weight"
_VOCAB_FILES = ("vocab.json", "merges.txt")
# Buffers some transformers versions save and others rebuild; never weights.
_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
_LAYER = re.compile(r"encoder\.layer\.(\d+)\.")
_FN = "load_clap_text_encoder"


def import_transformers(fn: str = _FN) -> Any:
    """The ``transformers`` module, or a clear error naming ``fn`` if it is not installed."""
    try:
        return importlib.import_module("transformers")
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise TorchlassError(f"{fn}() needs the optional dependency transformers: "
                             "pip install 'torchlass[text]'") from err


def read_text_tower_state(source: str | os.PathLike | Mapping) -> tuple[dict, int]:
    """Find CLAP's text tower in a checkpoint and return its weights and token count.

    Args:
        source: path of an AudioSep/DCASE Lightning checkpoint or a LAION-CLAP ``.pt``
            (read by [`read_checkpoint`][torchlass.checkpoints.read_checkpoint], tensors
            only), or such a checkpoint already loaded (a dict, with or without
            ``state_dict``).

    Returns:
        ``(state, max_length)``: the tower's tensors keyed ``text_branch.*`` and
        ``text_projection.*``, and the tokens per caption of the layout found
        (`AUDIOSEP_MAX_LENGTH` or `LAION_MAX_LENGTH`).

    Raises:
        CheckpointError: if the file is missing or cannot be read safely (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), or holds no (or
            several) text towers.
    """
    tower, prefix = read_tower(source, anchor=_ANCHOR, what="CLAP text tower", fn=_FN,
                               branches=("text_branch.", "text_projection."))
    max_length = AUDIOSEP_MAX_LENGTH if prefix.endswith(AUDIOSEP_PREFIX) else LAION_MAX_LENGTH
    return tower, max_length


def _shape(state: Mapping, key: str) -> tuple[int, ...]:
    value = state.get(key)
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{_FN}(): the text tower has no tensor {key!r}")
    return tuple(value.shape)


def _roberta_config(state: Mapping, num_heads: int) -> Any:
    """RoBERTa-base's settings with every size read from the weights."""
    emb = "text_branch.embeddings."
    vocab, hidden = _shape(state, f"{emb}word_embeddings.weight")
    layers = {int(m.group(1)) for k in state if (m := _LAYER.search(k))}
    if not layers or layers != set(range(len(layers))):
        raise CheckpointError(f"{_FN}(): the text tower's encoder layers expected to be "
                              f"numbered 0..n-1, got {sorted(layers)}")
    if hidden % num_heads:
        raise CheckpointError(f"{_FN}(): argument 'num_heads' expected a divisor of the hidden "
                              f"size {hidden}, got {num_heads}")
    # transformers 5.x defaults are not RoBERTa-base's (eps 1e-12, two token types, 512
    # positions): set everything the weights or the original model fix.
    return import_transformers().RobertaConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=len(layers),
        num_attention_heads=num_heads,
        intermediate_size=_shape(state, "text_branch.encoder.layer.0.intermediate.dense.weight")[0],
        max_position_embeddings=_shape(state, f"{emb}position_embeddings.weight")[0],
        type_vocab_size=_shape(state, f"{emb}token_type_embeddings.weight")[0],
        hidden_act="gelu", layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def _check_tokenizer_folder(folder: str | os.PathLike) -> Path:
    path = Path(folder)
    if not path.is_dir():
        raise FileNotFoundError(f"{_FN}(): argument 'tokenizer' expected a folder holding "
                                f"{' and '.join(_VOCAB_FILES)}, got {str(path)!r}")
    absent = [name for name in _VOCAB_FILES if not (path / name).is_file()]
    if absent:  # transformers 5.x builds an empty tokenizer from such a folder, silently
        raise TorchlassError(f"{_FN}(): argument 'tokenizer' expected a RoBERTa tokenizer "
                             f"folder, {str(path)!r} has no {' and no '.join(absent)}")
    return path


class ClapTextTower(nn.Module):
    """RoBERTa -> pooler -> projection -> L2 normalisation, as LAION-CLAP's text embedding.

    Built by [`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder]; follows the
    [`TextEncoder`][torchlass.query.TextEncoder] protocol (``dim`` and a call on captions).

    Args:
        roberta: a ``transformers.RobertaModel`` with its pooling layer.
        projection: ``Linear(hidden, dim) -> ReLU -> Linear(dim, dim)``.
        tokenizer: a ``transformers`` RoBERTa tokenizer.
        max_length: tokens per caption (padded and truncated to it).
        batch_size: captions per forward pass.

    Shape:
        Output: ``(len(captions), dim)``, float32, rows of unit L2 norm, on the CPU.
    """

    def __init__(self, roberta: nn.Module, projection: nn.Sequential, tokenizer: Any, *,
                 max_length: int, batch_size: int = 32) -> None:
        super().__init__()
        self.roberta = roberta
        self.projection = projection
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size
        self.dim = [m for m in projection if isinstance(m, nn.Linear)][-1].out_features

    def tokenize(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        """``input_ids`` and ``attention_mask``, ``(len(captions), max_length)`` int64."""
        out = self.tokenizer(list(captions), padding="max_length", truncation=True,
                             max_length=self.max_length, return_tensors="pt")
        return {"input_ids": out["input_ids"], "attention_mask": out["attention_mask"]}

    @torch.no_grad()
    def forward(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed ``captions``; see the class docstring."""
        captions = check_captions(captions, "ClapTextTower")
        device = next(self.parameters()).device
        rows = []
        for start in range(0, len(captions), self.batch_size):
            tokens = self.tokenize(captions[start:start + self.batch_size])
            pooled = self.roberta(**{k: v.to(device) for k, v in tokens.items()}).pooler_output
            rows.append(F.normalize(self.projection(pooled), dim=-1))
        return torch.cat(rows).to("cpu", torch.float32)


def load_clap_text_encoder(checkpoint: str | os.PathLike | Mapping, *,
                           tokenizer: str | os.PathLike, max_length: int | None = None,
                           num_heads: int = 12, device: str | torch.device = "cpu"
                           ) -> ClapTextTower:
    """Build CLAP's text tower from a checkpoint's weights and a local tokenizer folder.

    The tower's sizes (hidden size, layers, vocabulary, positions, feed-forward width,
    embedding size) come from the weight shapes; the attention head count cannot be read
    from them and is RoBERTa-base's 12 unless given. Loading is strict: a tower weight that
    is missing, unexpected or of another shape is an error.

    Args:
        checkpoint: an AudioSep / DCASE 2024 baseline Lightning checkpoint (the tower under
            ``query_encoder.model.``) or a LAION-CLAP ``.pt``, as a path or a loaded dict.
        tokenizer: a local folder with RoBERTa's ``vocab.json`` and ``merges.txt`` (e.g. a
            copy of ``roberta-base``'s); nothing is downloaded.
        max_length: tokens per caption; default 512 for the AudioSep/DCASE layout (what
            their separators were trained with) and 77 for a LAION-CLAP ``.pt``.
        num_heads: attention heads per layer.
        device: where the tower runs.

    Returns:
        A [`ClapTextTower`][torchlass.query.ClapTextTower] in eval mode.

    Raises:
        FileNotFoundError: if the tokenizer folder does not exist.
        TorchlassError: if the tokenizer folder has no ``vocab.json`` or ``merges.txt``.
        CheckpointError: if the checkpoint is missing or unreadable (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), holds no usable text
            tower, or ``max_length`` exceeds its position table.
    """
    folder = _check_tokenizer_folder(tokenizer)
    state, default_length = read_text_tower_state(checkpoint)
    num_heads = check_positive_int(num_heads, _FN, "num_heads")
    length = default_length if max_length is None else check_positive_int(
        max_length, _FN, "max_length", minimum=2)
    config = _roberta_config(state, num_heads)
    # RoBERTa numbers positions from pad_token_id + 1, so n tokens need n + 2 positions.
    if length + config.pad_token_id + 1 > config.max_position_embeddings:
        raise CheckpointError(
            f"{_FN}(): argument 'max_length' expected at most "
            f"{config.max_position_embeddings - config.pad_token_id - 1} tokens (the "
            f"checkpoint's {config.max_position_embeddings} positions), got {length}")
    transformers = import_transformers()
    roberta = transformers.RobertaModel(config, add_pooling_layer=True)
    hidden, out = config.hidden_size, _shape(state, "text_projection.2.weight")[0]
    projection = nn.Sequential(nn.Linear(hidden, out), nn.ReLU(), nn.Linear(out, out))
    ours = {f"text_branch.{k}": v for k, v in roberta.state_dict().items()}
    ours.update({f"text_projection.{k}": v for k, v in projection.state_dict().items()})
    theirs = {k: v for k, v in state.items() if not k.endswith(_BUFFERS)}
    ours = {k: v for k, v in ours.items() if not k.endswith(_BUFFERS)}
    missing = sorted(set(ours) - set(theirs))
    unexpected = sorted(set(theirs) - set(ours))
    mismatched = [f"{k} expected {tuple(ours[k].shape)}, got {tuple(theirs[k].shape)}"
                  for k in ours if k in theirs and tuple(theirs[k].shape) != tuple(ours[k].shape)]
    if missing or unexpected or mismatched:
        problems = [f"{len(items)} {label}: {', '.join(items[:8])}" for label, items in (
            ("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched))
            if items]
        raise CheckpointError(f"{_FN}(): the checkpoint's text tower does not match a RoBERTa "
                              f"+ projection layout: {'; '.join(problems)}")
    roberta.load_state_dict({k[len("text_branch."):]: v for k, v in theirs.items()
                             if k.startswith("text_branch.")}, strict=False)
    projection.load_state_dict({k[len("text_projection."):]: v for k, v in theirs.items()
                                if k.startswith("text_projection.")})
    tok = transformers.RobertaTokenizer.from_pretrained(str(folder))
    tower = ClapTextTower(roberta, projection, tok, max_length=length)
    tower.requires_grad_(False)
    return tower.to(device).eval()
