"""A tiny CLAP text tower in LAION-CLAP's key layout and a tokenizer folder, for tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

HIDDEN, LAYERS, HEADS, FFN, DIM = 16, 2, 2, 24, 8
SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]
TOKENS = [*SPECIAL, *"abcdefghijklmnopqrstuvwxyz", "Ġ", "do", "dog", "Ġdog", "<mask>"]
VOCAB = {t: i for i, t in enumerate(TOKENS)}


def write_tokenizer(folder: Path) -> Path:
    """A tiny byte-level BPE vocabulary in RoBERTa's files (letters, "dog" by two merges)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(VOCAB), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nd o\ndo g\nĠ dog\n", encoding="utf-8")
    return folder


def tower_state(positions: int, seed: int = 0, dim: int = DIM, hidden: int = HIDDEN
                ) -> dict[str, torch.Tensor]:
    """Random weights under LAION-CLAP's names (text_branch = RobertaModel)."""
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, scale=0.3):
        return scale * torch.randn(*shape, generator=g)

    def norm(prefix):
        return {f"{prefix}.weight": 1 + rand(hidden, scale=0.1),
                f"{prefix}.bias": rand(hidden, scale=0.1)}

    def linear(prefix, n_out, n_in):
        return {f"{prefix}.weight": rand(n_out, n_in), f"{prefix}.bias": rand(n_out, scale=0.1)}

    b = "text_branch."
    state = {f"{b}embeddings.word_embeddings.weight": rand(len(VOCAB), hidden, scale=1.0),
             f"{b}embeddings.position_embeddings.weight": rand(positions, hidden, scale=1.0),
             f"{b}embeddings.token_type_embeddings.weight": rand(1, hidden, scale=1.0),
             f"{b}embeddings.position_ids": torch.arange(positions)[None],  # older transformers
             **norm(f"{b}embeddings.LayerNorm")}
    for i in range(LAYERS):
        p = f"{b}encoder.layer.{i}."
        for name in ("query", "key", "value"):
            state.update(linear(f"{p}attention.self.{name}", hidden, hidden))
        state.update(linear(f"{p}attention.output.dense", hidden, hidden))
        state.update(norm(f"{p}attention.output.LayerNorm"))
        state.update(linear(f"{p}intermediate.dense", FFN, hidden))
        state.update(linear(f"{p}output.dense", hidden, FFN))
        state.update(norm(f"{p}output.LayerNorm"))
    state.update(linear(f"{b}pooler.dense", hidden, hidden))
    state.update(linear("text_projection.0", dim, hidden))
    state.update(linear("text_projection.2", dim, dim))
    return state
