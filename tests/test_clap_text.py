"""CLAP's text tower on transformers, from the weights in a checkpoint.

The weights are random, written by hand in LAION-CLAP's key layout (as an AudioSep/DCASE
Lightning checkpoint and as a LAION ``.pt``); the tokenizer folder is written here too.
The reference is RoBERTa's forward pass written out from its formulas in float64.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from text_tower_fixtures import DIM, HEADS, HIDDEN, LAYERS, VOCAB, tower_state, write_tokenizer

from torchlass.errors import CheckpointError, TorchlassError
from torchlass.query import (
    CachedTextEncoder,
    TextEncoder,
    load_clap_text_encoder,
)

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("roberta_tokenizer"))

def reference_embedding(state, ids: list[list[int]]) -> torch.Tensor:
    """LAION-CLAP's text embedding from RoBERTa's formulas, float64."""
    s = {k.split("text_branch.")[-1] if "text_branch." in k else k: v.double()
         for k, v in state.items()}
    ids_t = torch.tensor(ids)
    mask = (ids_t != 1).double()
    positions = (torch.cumsum(mask, 1) * mask).long() + 1  # padding_idx + 1 onwards
    d = HIDDEN // HEADS

    def ln(x, p):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        return (x - mu) / torch.sqrt(var + 1e-5) * s[f"{p}.weight"] + s[f"{p}.bias"]

    def lin(x, p):
        return x @ s[f"{p}.weight"].T + s[f"{p}.bias"]

    h = (s["embeddings.word_embeddings.weight"][ids_t]
         + s["embeddings.position_embeddings.weight"][positions]
         + s["embeddings.token_type_embeddings.weight"][0])
    h = ln(h, "embeddings.LayerNorm")
    n, t = ids_t.shape
    for i in range(LAYERS):
        p = f"encoder.layer.{i}."
        q, k, v = (lin(h, f"{p}attention.self.{x}").reshape(n, t, HEADS, d).transpose(1, 2)
                   for x in ("query", "key", "value"))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d)
        scores = scores.masked_fill(mask[:, None, None, :] == 0, -math.inf)
        context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(n, t, HIDDEN)
        h = ln(lin(context, f"{p}attention.output.dense") + h, f"{p}attention.output.LayerNorm")
        inner = lin(h, f"{p}intermediate.dense")
        inner = 0.5 * inner * (1 + torch.erf(inner / math.sqrt(2)))  # exact GELU
        h = ln(lin(inner, f"{p}output.dense") + h, f"{p}output.LayerNorm")
    pooled = torch.tanh(lin(h[:, 0], "pooler.dense"))
    x = lin(torch.relu(lin(pooled, "text_projection.0")), "text_projection.2")
    return x / x.norm(dim=-1, keepdim=True)


def padded(tokens: list[str], length: int) -> list[int]:
    ids = [0, *(VOCAB[t] for t in tokens), 2]
    return ids + [1] * (length - len(ids))


# "dog a dog" by byte-level BPE with the merges above: no prefix space on the first word
DOG_A_DOG = ["dog", "Ġ", "a", "Ġdog"]
RAIN = ["r", "a", "i", "n"]


def test_audiosep_layout_matches_the_formulas_with_512_tokens(tmp_path, tokenizer_dir):
    tower = tower_state(positions=514)
    checkpoint = {"state_dict": {"ss_model.base.bn0.weight": torch.ones(3),
                                 **{f"query_encoder.model.{k}": v for k, v in tower.items()}},
                  "epoch": 3}
    torch.save(checkpoint, tmp_path / "audiosep.ckpt")
    encoder = load_clap_text_encoder(tmp_path / "audiosep.ckpt", tokenizer=tokenizer_dir,
                                     num_heads=HEADS)
    assert isinstance(encoder, TextEncoder) and encoder.dim == DIM
    assert encoder.max_length == 512
    tokens = encoder.tokenize(["dog a dog", "rain"])
    assert tokens["input_ids"].tolist() == [padded(DOG_A_DOG, 512), padded(RAIN, 512)]
    got = encoder(["dog a dog", "rain"])
    expected = reference_embedding(tower, [padded(DOG_A_DOG, 512), padded(RAIN, 512)])
    assert got.dtype == torch.float32 and got.shape == (2, DIM)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)
    # the same tower from the already-loaded dict, behind the cache
    cached = CachedTextEncoder(load_clap_text_encoder(checkpoint, tokenizer=tokenizer_dir,
                                                      num_heads=HEADS))
    torch.testing.assert_close(cached(["rain", "dog a dog"]), got.flip(0))


@pytest.mark.parametrize("prefix", ["", "module."])
def test_laion_layout_defaults_to_77_tokens(tmp_path, tokenizer_dir, prefix):
    tower = tower_state(positions=79, seed=1)
    torch.save({"state_dict": {prefix + k: v for k, v in tower.items()}, "epoch": 15},
               tmp_path / "clap.pt")
    encoder = load_clap_text_encoder(tmp_path / "clap.pt", tokenizer=tokenizer_dir,
                                     num_heads=HEADS)
    assert encoder.max_length == 77
    got = encoder(["rain"])
    torch.testing.assert_close(got.double(), reference_embedding(tower, [padded(RAIN, 77)]),
                               rtol=1e-5, atol=1e-5)


def test_max_length_truncates_and_long_captions_differ(tmp_path, tokenizer_dir):
    tower = tower_state(positions=514, seed=2)
    state = {f"query_encoder.model.{k}": v for k, v in tower.items()}
    long_caption = " ".join(["dog"] * 100)  # 100 tokens: beyond 77, within 512
    short = load_clap_text_encoder(state, tokenizer=tokenizer_dir, num_heads=HEADS,
                                   max_length=77)
    full = load_clap_text_encoder(state, tokenizer=tokenizer_dir, num_heads=HEADS)
    ids = short.tokenize([long_caption])["input_ids"][0].tolist()
    assert len(ids) == 77 and ids[0] == 0 and ids[-1] == 2 and ids[1:-1] == (
        [VOCAB["dog"]] + [VOCAB["Ġdog"]] * 74)
    expected = reference_embedding(tower, [ids])
    torch.testing.assert_close(short([long_caption]).double(), expected, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(full([long_caption]), short([long_caption]), atol=1e-4)
    torch.testing.assert_close(full(["rain"]), short(["rain"]), rtol=1e-5, atol=1e-6)


def test_tokenizer_folder_without_vocabulary_is_rejected_at_load(tmp_path, tokenizer_dir):
    state = tower_state(positions=79)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TorchlassError, match=r"has no vocab\.json and no merges\.txt"):
        load_clap_text_encoder(state, tokenizer=empty, num_heads=HEADS)
    (empty / "vocab.json").write_text(json.dumps(VOCAB))
    with pytest.raises(TorchlassError, match=r"'tokenizer' expected a RoBERTa tokenizer "
                                             r"folder, .* has no merges\.txt"):
        load_clap_text_encoder(state, tokenizer=empty, num_heads=HEADS)
    with pytest.raises(FileNotFoundError, match=r"expected a folder holding vocab\.json"):
        load_clap_text_encoder(state, tokenizer=tmp_path / "nowhere", num_heads=HEADS)


def test_wrong_checkpoint_layouts(tmp_path, tokenizer_dir):
    tower = tower_state(positions=79)
    with pytest.raises(CheckpointError, match=r"expected one CLAP text tower .* found no"):
        load_clap_text_encoder({"state_dict": {"ss_model.x": torch.zeros(1)}},
                               tokenizer=tokenizer_dir)
    broken = dict(tower)
    del broken["text_branch.encoder.layer.1.output.dense.bias"]
    broken["text_projection.2.weight"] = torch.zeros(DIM, DIM + 1)
    with pytest.raises(CheckpointError, match=r"1 missing: text_branch\.encoder\.layer\.1\."
                                              r"output\.dense\.bias; 1 mis-shaped"):
        load_clap_text_encoder(broken, tokenizer=tokenizer_dir, num_heads=HEADS)
    with pytest.raises(CheckpointError, match="'num_heads' expected a divisor of the hidden "
                                              "size 16, got 3"):
        load_clap_text_encoder(tower, tokenizer=tokenizer_dir, num_heads=3)
    with pytest.raises(CheckpointError, match=r"'max_length' expected at most 77 tokens "
                                              r"\(the checkpoint's 79 positions\), got 512"):
        load_clap_text_encoder(tower, tokenizer=tokenizer_dir, num_heads=HEADS, max_length=512)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"cannot read .*junk\.ckpt.*: not a checkpoint "
                                              r"written by torch\.save"):
        load_clap_text_encoder(tmp_path / "junk.ckpt", tokenizer=tokenizer_dir)
    with pytest.raises(CheckpointError, match=r"none\.ckpt': file not found"):
        load_clap_text_encoder(tmp_path / "none.ckpt", tokenizer=tokenizer_dir)
