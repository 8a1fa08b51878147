"""torchlass.query: the hashed encoder against a transcription of its documented rule, the
protocol checks, the cache, and the CLAP adapter against a stand-in laion_clap module."""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
import types

import numpy as np
import pytest
import strategies as sts
import torch
from helpers import np64
from hypothesis import assume, given
from hypothesis import strategies as st

from torchlass.errors import DTypeError, ShapeError, TorchlassError, ValueRangeError
from torchlass.query import (
    CachedTextEncoder,
    ClapTextEncoder,
    HashedTextEncoder,
    TextEncoder,
    content_words,
    embed_captions,
)
from torchlass.query.hashed import FUNCTION_WORDS


def reference_embedding(caption: str, dim: int, seed: int = 0, hashes: int = 4) -> np.ndarray:
    """The documented rule, written out: words 1.0, word pairs 0.5, 3-grams 0.5/sqrt(count)."""
    words = [w for w in re.findall(r"[a-z0-9']+", caption.lower()) if w not in FUNCTION_WORDS]
    features: list[tuple[str, float]] = []
    for w in words:
        features.append(("w:" + w, 1.0))
        marked = f"<{w}>"
        grams = [marked[i:i + 3] for i in range(len(marked) - 2)]
        features += [("c:" + g, 0.5 / np.sqrt(len(grams))) for g in grams]
    features += [(f"p:{a} {b}", 0.5) for a, b in itertools.pairwise(words)]
    v = np.zeros(dim)
    for name, weight in features:
        digest = hashlib.blake2b(f"{seed}|{name}".encode(), digest_size=32).digest()
        for k in range(hashes):
            word = int.from_bytes(digest[4 * k:4 * k + 4], "little")
            v[word % dim] += weight * (1.0 if (word >> 31) & 1 else -1.0)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("caption", ["a dog barking", "The sound of rain, falling on a roof",
                                     "bells bells bells", "x"])
@pytest.mark.parametrize("dim", [512, 7])
def test_hashed_matches_the_documented_rule(caption, dim):
    out = HashedTextEncoder(dim=dim)([caption])
    assert out.shape == (1, dim) and out.dtype == torch.float32
    np.testing.assert_allclose(np64(out[0]), reference_embedding(caption, dim), atol=1e-6)


@given(st.lists(sts.captions(), min_size=1, max_size=4), st.sampled_from([7, 512]))
def test_hashed_rule_and_batch_equals_items_on_drawn_captions(captions, dim):
    assume(all(set(c.lower().replace(",", " ").split()) - FUNCTION_WORDS for c in captions))
    enc = HashedTextEncoder(dim=dim)
    out = enc(captions)
    for i, caption in enumerate(captions):
        np.testing.assert_allclose(np64(out[i]), reference_embedding(caption, dim), atol=1e-6)
        assert torch.equal(out[i], enc([caption])[0])


def test_hashed_properties():
    enc = HashedTextEncoder()
    e = enc(["a dog barking", "the dog barks", "rain falling", "A DOG, barking!"])
    torch.testing.assert_close(e.norm(dim=1), torch.ones(4))
    assert e[0] @ e[1] > 0.3 > abs(float(e[0] @ e[2]))
    assert torch.equal(e[0], e[3])  # case and punctuation do not matter
    assert torch.equal(enc(["a dog"]), HashedTextEncoder()(["the dog"]))  # function words
    assert not torch.equal(enc(["dog"]), HashedTextEncoder(seed=1)(["dog"]))
    assert torch.equal(enc(["dog", "rain"])[1], enc(["rain"])[0])  # batch == item-wise
    assert isinstance(enc, TextEncoder)


def test_hashed_errors():
    enc = HashedTextEncoder(dim=8)
    with pytest.raises(ValueRangeError, match="at least one content word, got 'the of a'"):
        enc(["dog", "the of a"])
    with pytest.raises(DTypeError, match="expected a list of strings, got str"):
        enc("a dog")
    with pytest.raises(DTypeError, match="got an item of type int"):
        enc(["dog", 3])
    with pytest.raises(ShapeError, match="at least one caption, got 0"):
        enc([])
    with pytest.raises(ValueRangeError, match="'dim' expected an int >= 2, got 1"):
        HashedTextEncoder(dim=1)


def test_content_words():
    assert content_words("Someone knocks on the DOOR.") == ["knocks", "door"]
    assert content_words("") == []


class Counting:
    """A stand-in encoder that records every call."""

    dim = 3

    def __init__(self):
        self.calls: list[list[str]] = []

    def __call__(self, captions):
        self.calls.append(list(captions))
        return torch.tensor([[len(c), c.count("a"), 1.0] for c in captions])


def test_cache_embeds_each_caption_once():
    inner = Counting()
    cache = CachedTextEncoder(inner)
    first = cache(["dog", "rain", "dog"])
    second = cache(["rain", "bell"])
    assert inner.calls == [["dog", "rain"], ["bell"]]
    assert torch.equal(first, inner(["dog", "rain", "dog"]))
    assert torch.equal(second, inner(["rain", "bell"]))
    assert len(cache) == 3
    cache.clear()
    assert len(cache) == 0


def test_cache_eviction_keeps_results_right():
    inner = Counting()
    cache = CachedTextEncoder(inner, max_items=2)
    out = cache(["aa", "b", "ccc"])
    assert len(cache) == 2
    assert torch.equal(out, inner(["aa", "b", "ccc"]))


def test_embed_captions_checks_the_encoder():
    class Wrong:
        dim = 4

        def __call__(self, captions):
            return torch.zeros(len(captions), 3)

    class Integer:
        dim = 2

        def __call__(self, captions):
            return torch.zeros(len(captions), 2, dtype=torch.int64)

    with pytest.raises(ShapeError, match=r"expected to return shape \(2, 4\), got \(2, 3\)"):
        embed_captions(Wrong(), ["a", "b"])
    with pytest.raises(DTypeError, match=r"floating-point tensor, got torch\.int64"):
        embed_captions(Integer(), ["a"])
    out = embed_captions(HashedTextEncoder(dim=4), ["a dog"], device="cpu")
    assert out.shape == (1, 4)


@pytest.fixture
def fake_laion_clap(monkeypatch):
    """A minimal stand-in for laion_clap's CLAP_Module that records how it is used."""
    log: dict[str, object] = {}

    class CLAPModule(torch.nn.Module):
        def __init__(self, enable_fusion=False, device=None, amodel="HTSAT-tiny"):
            super().__init__()
            self.proj = torch.nn.Linear(2, 512)
            log["init"] = {"enable_fusion": enable_fusion, "amodel": amodel, "device": device}

        def load_ckpt(self, ckpt=None, verbose=True):
            log["ckpt"] = ckpt

        def tokenize(self, text, **options):  # stands for RobertaTokenizer's __call__
            log["tokenize"] = options
            n = options["max_length"]
            return {"input_ids": torch.tensor([[len(t)] * n for t in text])}

        def get_text_embedding(self, x, tokenizer=None, use_tensor=False):
            log.setdefault("batches", []).append(list(x))
            ids = tokenizer(x)["input_ids"]  # laion_clap tokenises with 77 tokens without it
            feats = torch.stack([ids[:, 0].float(), torch.ones(len(x))], dim=1)
            return torch.nn.functional.normalize(self.proj(feats), dim=-1)

    module = types.ModuleType("laion_clap")
    module.CLAP_Module = CLAPModule
    monkeypatch.setitem(sys.modules, "laion_clap", module)
    return log


def test_clap_adapter_loads_the_given_checkpoint(tmp_path, fake_laion_clap):
    ckpt = tmp_path / "clap.pt"
    ckpt.write_bytes(b"weights")
    enc = ClapTextEncoder(ckpt)
    assert fake_laion_clap["ckpt"] == str(ckpt)
    assert fake_laion_clap["init"]["amodel"] == "HTSAT-base"
    one = enc(["a dog"])
    assert fake_laion_clap["batches"][-1] == ["a dog", "a dog"]  # the baseline's duplication
    two = enc(["a dog", "rain"])
    assert one.shape == (1, 512) and two.shape == (2, 512) and one.dtype == torch.float32
    torch.testing.assert_close(one[0], two[0])
    assert not any(p.requires_grad for p in enc.model.parameters())
    assert not enc.model.training


@pytest.mark.parametrize(("max_length", "expected"), [(None, 512), (77, 77)])
def test_clap_adapter_tokenises_as_the_baseline(tmp_path, fake_laion_clap, max_length,
                                                expected):
    (tmp_path / "clap.pt").write_bytes(b"weights")
    options = {} if max_length is None else {"max_length": max_length}
    ClapTextEncoder(tmp_path / "clap.pt", **options)(["a dog", "rain"])
    assert fake_laion_clap["tokenize"] == {"padding": "max_length", "truncation": True,
                                           "max_length": expected, "return_tensors": "pt"}


def test_clap_adapter_errors(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="'checkpoint' expected an existing file"):
        ClapTextEncoder(tmp_path / "none.pt")
    (tmp_path / "c.pt").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "laion_clap", None)  # import fails
    with pytest.raises(TorchlassError, match=r"pip install 'torchlass\[clap\]'"):
        ClapTextEncoder(tmp_path / "c.pt")


def test_query_import_is_cheap():
    code = ("import sys, torchlass.query, torchlass.data; "
            "print(any(m in sys.modules for m in ('laion_clap', 'transformers', 'soundfile', "
            "'scipy.signal')))")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
