"""torchlass.metrics.clap_score: CLAPScore against the published formula in float64 numpy.

The reference is ``cos(E_audio, E_text)`` (Xiao et al. 2024's released code), and the
CLIPScore-style conventions ``w * max(cos, 0)`` (Hessel et al. 2021, ``w = 2.5``;
torchmetrics, ``w = 100``), computed from a stand-in CLAP's embeddings written in numpy.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from clap_standins import (
    StandInClap,
    TextOnly,
    np_audio_embedding,
    np_cosines,
    np_text_embedding,
)
from helpers import np64
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from torchlass.errors import (
    DTypeError,
    NonFiniteError,
    ShapeError,
    TorchlassError,
    ValueRangeError,
)
from torchlass.metrics import CLAP_CONVENTIONS, clap_score, clap_score_audio, clap_similarity

CAPTIONS = ["a dog barking", "rain on a roof", "a church bell"]
RATES = [8000, 16000, 44100]


def np_convention(cos: np.ndarray, convention: str) -> np.ndarray:
    return {"cos": cos, "hessel": 2.5 * np.maximum(cos, 0),
            "percent": 100 * np.maximum(cos, 0)}[convention]


@pytest.mark.parametrize("convention", ["cos", "hessel", "percent"])
@pytest.mark.parametrize("shape", [(3, 400), (3, 2, 400)])
def test_matches_the_numpy_formula(convention, shape):
    g = torch.Generator().manual_seed(len(shape))
    audio = 0.3 * torch.randn(shape, generator=g) + torch.tensor([0.5, -0.5, 0.0]).reshape(
        3, *[1] * (len(shape) - 1))
    for rate in RATES:
        got = clap_score(audio, CAPTIONS, StandInClap(), sample_rate=rate,
                         convention=convention)
        cos = np_cosines(np_audio_embedding(np64(audio), rate),
                         np.stack([np_text_embedding(c) for c in CAPTIONS]))
        assert got.shape == (3,) and got.dtype == torch.float32
        np.testing.assert_allclose(np64(got), np_convention(cos, convention), rtol=1e-5,
                                   atol=1e-6)
    assert (cos < 0).any() and (cos > 0).any()  # both sides of the clipping are exercised


@pytest.mark.parametrize("convention", ["cos", "hessel"])
def test_audio_variant_matches_the_numpy_formula(convention):
    g = torch.Generator().manual_seed(3)
    reference = torch.randn(4, 1, 300, generator=g) + torch.tensor([1.0, -1, 0.2, 0])[:, None,
                                                                                     None]
    audio = reference + 0.5 * torch.randn(4, 1, 300, generator=g)
    got = clap_score_audio(audio, reference, StandInClap(), sample_rate=16000,
                           convention=convention)
    cos = np_cosines(np_audio_embedding(np64(audio), 16000),
                     np_audio_embedding(np64(reference), 16000))
    np.testing.assert_allclose(np64(got), np_convention(cos, convention), rtol=1e-5, atol=1e-6)
    same = clap_score_audio(reference, reference, StandInClap(), sample_rate=16000)
    np.testing.assert_allclose(np64(same), 1.0, rtol=1e-6)


def test_audio_goes_to_the_encoder_at_its_own_rate_and_channels():
    clap = StandInClap()
    clap_score(torch.randn(2, 3, 50), ["a", "b"], clap, sample_rate=22050)
    assert clap.calls == [((2, 3, 50), 22050)]


def test_float64_embeddings_give_float64_scores():
    got = clap_score(torch.randn(2, 50, dtype=torch.float64), ["a", "b"],
                     StandInClap(dtype=torch.float64), sample_rate=16000)
    assert got.dtype == torch.float64


def test_silence_is_scored_not_nan():
    silence = torch.zeros(2, 1, 800)
    got = clap_score(silence, CAPTIONS[:2], StandInClap(), sample_rate=16000)
    cos = np_cosines(np_audio_embedding(np.zeros((2, 1, 800)), 16000),
                     np.stack([np_text_embedding(c) for c in CAPTIONS[:2]]))
    assert torch.isfinite(got).all()
    np.testing.assert_allclose(np64(got), cos, rtol=1e-5, atol=1e-6)


unit = st.floats(-1, 1, allow_nan=False, width=64)
positive = st.floats(1e-6, 1e6, allow_nan=False)


@given(a=arrays(np.float64, (3, 5), elements=unit), b=arrays(np.float64, (3, 5), elements=unit),
       ka=positive, kb=positive, convention=st.sampled_from(sorted(CLAP_CONVENTIONS)))
def test_similarity_is_scale_invariant_and_follows_the_clipping_rule(a, b, ka, kb,
                                                                     convention):
    a[:, 0] += 2.0  # keep every row away from zero norm
    b[:, 1] -= 2.0
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    cos = clap_similarity(ta, tb)
    np.testing.assert_allclose(np64(cos), np_cosines(a, b), rtol=1e-12, atol=1e-12)
    assert bool((cos.abs() <= 1 + 1e-12).all())
    got = clap_similarity(ka * ta, kb * tb, convention=convention)
    factor, clipped = CLAP_CONVENTIONS[convention]
    expected = factor * (np.maximum(np_cosines(a, b), 0) if clipped else np_cosines(a, b))
    np.testing.assert_allclose(np64(got), expected, rtol=1e-9, atol=1e-9)


@given(gain_audio=positive, gain_text=positive)
def test_score_ignores_the_embeddings_scale(gain_audio, gain_text):
    audio = torch.linspace(-1, 1, 120).reshape(2, 60)
    base = clap_score(audio, ["a", "b"], StandInClap(dtype=torch.float64), sample_rate=8000)
    scaled = clap_score(audio, ["a", "b"], StandInClap(audio_gain=gain_audio,
                                                       text_gain=gain_text,
                                                       dtype=torch.float64),
                        sample_rate=8000)
    # the text embeddings pass through float32 (embed_captions)
    np.testing.assert_allclose(np64(scaled), np64(base), rtol=1e-6, atol=1e-7)


class ZeroForSilence(StandInClap):
    """An encoder that (wrongly) returns a zero embedding for silent clips."""

    def embed_audio(self, audio, sample_rate):
        out = super().embed_audio(audio, sample_rate)
        silent = audio.reshape(audio.shape[0], -1).abs().amax(-1) == 0
        return out * (~silent)[:, None]


class WrongShape(StandInClap):
    def embed_audio(self, audio, sample_rate):
        return super().embed_audio(audio, sample_rate)[:, :3]


def test_errors_name_the_argument_and_the_value():
    audio = torch.randn(2, 100)
    clap = StandInClap()
    with pytest.raises(TorchlassError, match=r"^clap_score\(\): argument 'encoder' expected an "
                       r"audio encoder \(dim and embed_audio\(audio, sample_rate\): a CLAP "
                       r"model with its audio tower\), got TextOnly, which embeds text only$"):
        clap_score(audio, ["a", "b"], TextOnly(), sample_rate=16000)
    with pytest.raises(ShapeError, match=r"^clap_score\(\): arguments 'audio' and 'captions' "
                       r"expected one caption per clip, got 2 clip\(s\) and 3 caption\(s\)$"):
        clap_score(audio, CAPTIONS, clap, sample_rate=16000)
    with pytest.raises(ShapeError, match=r"expected at least 1 samples along dim -1 \(the time "
                       r"axis must not be empty\), got 0"):
        clap_score(torch.zeros(2, 0), ["a", "b"], clap, sample_rate=16000)
    with pytest.raises(ShapeError, match=r"^clap_score\(\): argument 'audio' expected at least "
                       r"one clip, got shape \(0, 10\)$"):
        clap_score(torch.zeros(0, 10), [], clap, sample_rate=16000)
    with pytest.raises(ShapeError, match=r"^clap_score\(\): argument 'audio' expected a 2-d "
                       r"\(batch, time\) or 3-d \(batch, channels, time\) tensor, got shape "
                       r"\(100,\)$"):
        clap_score(torch.zeros(100), ["a"], clap, sample_rate=16000)
    bad = audio.clone()
    bad[1, 7] = float("nan")
    with pytest.raises(NonFiniteError, match=r"^clap_score\(\): argument 'audio' expected "
                       r"finite values, got 1 NaN/Inf element\(s\)"):
        clap_score(bad, ["a", "b"], clap, sample_rate=16000)
    with pytest.raises(DTypeError, match=r"^clap_score\(\): argument 'audio' expected a "
                       r"floating-point tensor, got dtype torch.int64$"):
        clap_score(torch.zeros(2, 10, dtype=torch.long), ["a", "b"], clap, sample_rate=16000)
    with pytest.raises(ValueRangeError, match=r"^clap_score\(\): argument 'sample_rate' "
                       r"expected an int >= 1, got 0$"):
        clap_score(audio, ["a", "b"], clap, sample_rate=0)
    with pytest.raises(ValueRangeError, match=r"^clap_score\(\): argument 'convention' expected "
                       r"one of 'cos', 'hessel', 'percent', got 'clip'$"):
        clap_score(audio, ["a", "b"], clap, sample_rate=16000, convention="clip")
    with pytest.raises(ShapeError, match=r"^clap_score\(\): the encoder's embed_audio expected "
                       r"to return shape \(2, 6\), got \(2, 3\)$"):
        clap_score(audio, ["a", "b"], WrongShape(), sample_rate=16000)
    with pytest.raises(DTypeError, match=r"^clap_score\(\): argument 'captions' expected a "
                       r"list of strings, got str$"):
        clap_score(audio[:1], "a", clap, sample_rate=16000)


def test_zero_norm_embedding_is_an_error_not_nan():
    audio = torch.randn(3, 100)
    audio[2] = 0
    with pytest.raises(ValueRangeError, match=r"^clap_score\(\): row 2 of the embeddings has "
                       r"zero norm, so its cosine is undefined \(an encoder should return "
                       r"unit-norm embeddings\)$"):
        clap_score(audio, CAPTIONS, ZeroForSilence(), sample_rate=16000)
    with pytest.raises(ValueRangeError, match=r"^clap_score_audio\(\): row 2 of the embeddings"):
        clap_score_audio(torch.randn(3, 100), audio, ZeroForSilence(), sample_rate=16000)


def test_audio_variant_errors():
    with pytest.raises(ShapeError, match=r"^clap_score_audio\(\): arguments 'audio' and "
                       r"'reference' must have the same shape, got \(2, 100\) and \(2, 90\)$"):
        clap_score_audio(torch.randn(2, 100), torch.randn(2, 90), StandInClap(),
                         sample_rate=16000)
    with pytest.raises(TorchlassError, match=r"^clap_score_audio\(\): argument 'encoder' "
                       r"expected an audio encoder"):
        clap_score_audio(torch.randn(2, 100), torch.randn(2, 100), TextOnly(),
                         sample_rate=16000)
    with pytest.raises(NonFiniteError, match=r"^clap_score_audio\(\): argument 'reference'"):
        clap_score_audio(torch.randn(1, 10), torch.full((1, 10), float("inf")), StandInClap(),
                         sample_rate=16000)


def test_a_cache_around_a_text_encoder_has_no_audio_tower():
    from torchlass.query import CachedTextEncoder, HashedTextEncoder, embeds_audio

    assert embeds_audio(CachedTextEncoder(StandInClap()))
    assert not embeds_audio(CachedTextEncoder(HashedTextEncoder(dim=6)))
    with pytest.raises(TorchlassError, match=r"expected an audio encoder .* got "
                                             r"HashedTextEncoder, which embeds text only$"):
        clap_score(torch.ones(1, 9), ["a"], CachedTextEncoder(HashedTextEncoder(dim=6)),
                   sample_rate=16000)
    got = clap_score(torch.ones(1, 9), ["a"], CachedTextEncoder(StandInClap()),
                     sample_rate=16000)
    assert got.shape == (1,)


def test_similarity_gradcheck_in_float64():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    b = torch.randn(3, 4, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: clap_similarity(x, y), (a, b))


def test_batch_equals_items():
    g = torch.Generator().manual_seed(5)
    audio = torch.randn(3, 2, 120, generator=g)
    batch = clap_score(audio, CAPTIONS, StandInClap(), sample_rate=16000, convention="hessel")
    items = torch.cat([clap_score(audio[k:k + 1], CAPTIONS[k:k + 1], StandInClap(),
                                  sample_rate=16000, convention="hessel") for k in range(3)])
    torch.testing.assert_close(batch, items)


def test_an_audio_only_encoder_cannot_score_captions():
    class AudioOnly:
        dim = 6
        embed_audio = StandInClap().embed_audio

    with pytest.raises(TorchlassError, match=r"^clap_score\(\): argument 'encoder' expected "
                       r"CLAP's text tower too \(callable on captions\), got AudioOnly, which "
                       r"embeds audio only$"):
        clap_score(torch.ones(1, 9), ["a"], AudioOnly(), sample_rate=16000)
    assert clap_score_audio(torch.ones(1, 9), torch.ones(1, 9), AudioOnly(),
                            sample_rate=16000).item() == pytest.approx(1.0)
