"""Separator presets, shapes, gradients, errors, torch.compile, and chunked separation."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torchlass import Separator
from torchlass.errors import (
    DTypeError,
    NonFiniteError,
    ShapeError,
    TorchlassError,
    ValueRangeError,
)
from torchlass.masks import ComplexRatioMaskHead, MagPhaseMaskHead, RealImagMaskHead
from torchlass.nn import FiLM, MagnitudeFeatures, RealImagFeatures
from torchlass.separator import separate
from torchlass.stft import make_window

SMALL = {"condition_size": 8, "n_fft": 128, "hop_length": 32, "stem_width": 4,
         "widths": (4, 8), "pools": ((2, 2), (2, 2))}
PRESETS = {"baseline": Separator.dcase2024_baseline, "srpol_system1": Separator.srpol_system1,
           "complex_ratio_mask": Separator.complex_ratio_mask}


def _small(preset="srpol_system1", **kw):
    sep = PRESETS[preset](**{**SMALL, **kw})
    for module in sep.modules():  # move FiLM off its identity start so the query matters
        if isinstance(module, FiLM):
            for p in module.parameters():
                torch.nn.init.normal_(p, std=0.3)
    return sep


@pytest.mark.parametrize(("preset", "features", "head", "in_ch", "out_ch"), [
    ("baseline", MagnitudeFeatures, MagPhaseMaskHead, 1, 3),
    ("srpol_system1", RealImagFeatures, RealImagMaskHead, 2, 2),
    ("complex_ratio_mask", RealImagFeatures, ComplexRatioMaskHead, 2, 2),
])
def test_presets_are_built_of_the_named_parts(preset, features, head, in_ch, out_ch):
    sep = PRESETS[preset](**SMALL)
    assert isinstance(sep.features, features) and isinstance(sep.head, head)
    assert (sep.backbone.in_channels, sep.backbone.out_channels) == (in_ch, out_ch)
    assert (sep.stft.n_fft, sep.stft.hop_length, sep.sample_rate) == (128, 32, 16000)
    full = PRESETS[preset]()
    assert (full.stft.n_fft, full.stft.hop_length, full.backbone.condition_size) == (1024, 160, 512)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_same_length_out_for_odd_lengths(preset):
    sep = _small(preset).eval()

    @settings(max_examples=15)
    @given(length=st.integers(65, 700))
    def check(length):
        with torch.no_grad():
            out = sep(torch.randn(2, 1, length), torch.randn(2, 8))
        assert out.shape == (2, 1, 1, length) and torch.isfinite(out).all()

    check()


def test_several_channels_and_sources():
    sep = _small("complex_ratio_mask", channels=2, num_sources=3).eval()
    assert sep.backbone.in_channels == 4 and sep.backbone.out_channels == 3 * 2 * 2
    with torch.no_grad():
        out = sep(torch.randn(2, 2, 999), torch.randn(2, 8))
    assert out.shape == (2, 3, 2, 999) and sep.num_sources == 3


@pytest.mark.parametrize("preset", list(PRESETS))
def test_gradients_reach_every_parameter(preset):
    sep = _small(preset).train()
    mixture, target = torch.randn(3, 1, 800), torch.randn(3, 1, 800)
    (sep(mixture, torch.randn(3, 8))[:, 0] - target).abs().mean().backward()
    dead = [n for n, p in sep.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


@pytest.mark.parametrize("preset", list(PRESETS))
def test_conditioning_changes_the_output(preset):
    sep = _small(preset).eval()
    mixture = torch.randn(1, 1, 1000)
    with torch.no_grad():
        a, b = sep(mixture, torch.randn(1, 8)), sep(mixture, torch.randn(1, 8))
    assert (a - b).abs().max() > 1e-3 * a.abs().max()


def test_batch_equals_itemwise():
    sep = _small().eval()
    mixture, condition = torch.randn(3, 1, 700), torch.randn(3, 8)
    with torch.no_grad():
        batch = sep(mixture, condition)
        items = torch.cat([sep(mixture[i:i + 1], condition[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(batch, items, rtol=1e-5, atol=1e-6)


def test_errors():
    sep = _small()
    with pytest.raises(ShapeError, match=r"Separator.forward\(\): argument 'mixture' expected "
                                         r"a 3-d tensor \(batch, channels, time\), got shape "
                                         r"\(2, 700\)"):
        sep(torch.randn(2, 700), torch.randn(2, 8))
    with pytest.raises(ShapeError, match=r"argument 'mixture' expected 1 channel\(s\)"):
        sep(torch.randn(2, 2, 700), torch.randn(2, 8))
    with pytest.raises(ShapeError, match=r"arguments 'mixture' and 'condition' expected the same "
                                         r"batch size, got 2 and 3"):
        sep(torch.randn(2, 1, 700), torch.randn(3, 8))
    with pytest.raises(ShapeError, match=r"argument 'condition' expected a 2-d tensor"):
        sep(torch.randn(2, 1, 700), torch.randn(8))

    def message(call):
        with pytest.raises(TorchlassError) as info:
            call()
        return type(info.value), str(info.value), type(info.value.__cause__)

    # Errors of the parts name the Separator and its argument, chained to the part's error.
    assert message(lambda: sep(torch.randn(2, 1, 40), torch.randn(2, 8))) == (
        ShapeError, "Separator.forward(): argument 'mixture' expected at least 65 samples along "
        "dim -1 (reflect padding of n_fft // 2 = 64 samples needs more samples), got 40 (shape "
        "(2, 1, 40))", ShapeError)
    mixture = torch.zeros(2, 1, 700)
    mixture[1, 0, 5] = float("nan")
    assert message(lambda: sep(mixture, torch.randn(2, 8))) == (
        NonFiniteError, "Separator.forward(): argument 'mixture' expected finite values, got 1 "
        "NaN/Inf element(s) in a tensor of shape (2, 1, 700)", NonFiniteError)
    condition = torch.randn(2, 8)
    condition[0, 3] = float("nan")
    assert message(lambda: sep(torch.randn(2, 1, 700), condition))[:2] == (
        NonFiniteError, "Separator.forward(): argument 'condition' expected finite values, got 1 "
        "NaN/Inf element(s) in a tensor of shape (2, 8)")
    assert message(lambda: sep(torch.randn(2, 1, 700), torch.randn(2, 5)))[:2] == (
        ShapeError, "Separator.forward(): argument 'condition' expected shape (2, 8), got (2, 5)")
    short = torch.randn(1, 40)
    assert message(lambda: sep.eval().separate(short, torch.randn(2, 8))) == (
        ShapeError, "Separator.separate(): argument 'mixture' expected at least 65 samples along "
        "dim -1 (reflect padding of n_fft // 2 = 64 samples needs more samples), got 40 (shape "
        "(2, 1, 40))", ShapeError)
    weights = copy.deepcopy(sep)
    torch.nn.init.constant_(weights.backbone.out_conv.weight, float("nan"))
    assert message(lambda: weights(torch.randn(2, 1, 700), torch.randn(2, 8)))[1].startswith(
        "Separator.forward(): a part failed on a valid 'mixture' and 'condition' (non-finite "
        "weights or an overflow?): ")


def test_float64_input_needs_a_float64_model():
    """A float64 mixture is refused by a float32 model with a typed error, and works in float64."""
    sep = _small().eval()
    mixture, condition = torch.randn(2, 1, 700, dtype=torch.float64), torch.randn(2, 8)
    with pytest.raises(DTypeError) as info:
        sep(mixture, condition)
    assert str(info.value) == (
        "Separator.forward(): argument 'mixture' expected the model's dtype torch.float32, got "
        "torch.float64 (convert the model, e.g. .to(torch.float64), or the input)")
    with pytest.raises(DTypeError, match=r"argument 'condition' expected the model's dtype "
                                         r"torch.float64, got torch.float32"):
        copy.deepcopy(sep).double()(mixture, condition)
    sep64 = copy.deepcopy(sep).double()
    with torch.no_grad():
        out64 = sep64(mixture, condition.double())
        out32 = sep(mixture.float(), condition)
    assert out64.dtype == torch.float64
    exact = make_window("hann", 128, dtype=torch.float64)  # not a float32 window cast up
    assert torch.equal(sep64.stft.window, exact) and torch.equal(sep64.istft.window, exact)
    torch.testing.assert_close(out64.float(), out32, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["baseline", "srpol_system1", "complex_ratio_mask"])
def test_compiles_without_graph_breaks(preset):
    sep = _small(preset, check_finite=False).eval()
    mixture, condition = torch.randn(2, 1, 900), torch.randn(2, 8)
    explanation = torch._dynamo.explain(sep)(mixture, condition)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    compiled = torch.compile(sep, backend="eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(mixture, condition), sep(mixture, condition))


@pytest.mark.slow
def test_backbone_and_features_compile_to_one_graph():
    sep = _small("complex_ratio_mask").train()
    spec = torch.randn(2, 1, 65, 30, dtype=torch.complex64)

    def step(spec, condition):
        return sep.backbone(sep.features(spec), condition).square().mean()

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    condition = torch.randn(2, 8)
    loss = compiled(spec, condition)
    loss.backward()
    assert all(p.grad is not None for p in sep.backbone.parameters())


# ---------------------------------------------------------------- chunked separation


def _pointwise(mixture, condition):
    """A one-source separator whose output at each sample depends on that sample only."""
    return (torch.tanh(mixture * condition[:, :1, None]) + condition[:, 1:2, None])[:, None]


@given(length=st.integers(1, 600), chunk=st.integers(2, 200), data=st.data())
def test_chunks_cross_fade_to_the_unchunked_result(length, chunk, data):
    overlap = data.draw(st.integers(0, chunk // 2))
    align = data.draw(st.integers(1, chunk - overlap))
    mixture, condition = torch.randn(2, length, dtype=torch.float64), torch.randn(3, 2).double()
    out = separate(_pointwise, mixture, condition, chunk_length=chunk, overlap=overlap,
                   align=align)
    expected = _pointwise(mixture.expand(3, 2, length), condition)
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


@given(length=st.integers(1, 5000), chunk=st.integers(2, 500), data=st.data())
def test_chunks_are_aligned_bounded_and_overlapping(length, chunk, data):
    overlap = data.draw(st.integers(0, chunk // 2))
    align = data.draw(st.integers(1, chunk - overlap))
    spans = []

    def model(mixture, condition):  # the mixture holds the sample index: record the span
        spans.append((int(mixture[0, 0, 0]), int(mixture[0, 0, -1]) + 1))
        return mixture[:, None]

    index = torch.arange(length, dtype=torch.float64)[None]
    separate(model, index, torch.zeros(1, 1), chunk_length=chunk, overlap=overlap, align=align)
    assert spans[0][0] == 0 and spans[-1][1] == length
    assert all(start % align == 0 for start, _ in spans)
    assert all(end - start <= chunk + chunk // 2 for start, end in spans)
    assert all(b[0] <= a[1] - overlap for a, b in itertools.pairwise(spans))


def test_one_chunk_is_exactly_the_unchunked_call():
    sep = _small().eval()
    mixture, condition = torch.randn(2, 1, 3000), torch.randn(2, 8)
    with torch.no_grad():
        expected = sep(mixture, condition)
    out = separate(sep, mixture, condition, chunk_length=3000, overlap=100)
    assert torch.equal(out, expected)
    assert torch.equal(separate(sep, mixture, condition, chunk_length=3000, residual=True),
                       mixture[:, None] - expected)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_chunked_separator_stays_close_to_unchunked(preset):
    sep = _small(preset).eval()
    mixture, condition = torch.randn(1, 9000), torch.randn(2, 8)  # one mixture, two queries
    with torch.no_grad():
        expected = sep(mixture.expand(2, 1, 9000), condition)
    # 2048-sample chunks sharing 512, starting on multiples of hop 32 x pooling 4 = 128
    out = sep.separate(mixture, condition, chunk_seconds=0.128, overlap_seconds=0.032)
    snr = 10 * torch.log10(expected.square().sum(-1) / (out - expected).square().sum(-1))
    assert out.shape == (2, 1, 1, 9000) and snr.min() > 30, snr


def test_method_uses_seconds_alignment_and_residual():
    sep = _small().eval()
    mixture, condition = torch.randn(1, 2000), torch.randn(2, 8)
    chunked = sep.separate(mixture, condition, chunk_seconds=0.05, overlap_seconds=0.01)
    direct = separate(sep, mixture, condition, chunk_length=800, overlap=160, align=128)
    torch.testing.assert_close(chunked, direct, rtol=0, atol=0)
    residual = sep.separate(mixture, condition, chunk_seconds=0.05, overlap_seconds=0.01,
                            residual=True)
    torch.testing.assert_close(residual, mixture - direct, rtol=0, atol=0)


def test_separate_errors():
    with pytest.raises(ValueRangeError, match=r"separate\(\): argument 'overlap' expected an int "
                                              r"in \[0, chunk_length // 2 = 50\], got 51"):
        separate(_pointwise, torch.randn(1, 300), torch.randn(1, 2), chunk_length=100, overlap=51)
    with pytest.raises(ValueRangeError, match=r"argument 'chunk_length' expected an int >= 1"):
        separate(_pointwise, torch.randn(1, 300), torch.randn(1, 2), chunk_length=0)
    with pytest.raises(ValueRangeError, match=r"argument 'align' expected at most chunk_length - "
                                              r"overlap = 80 samples, got 81"):
        separate(_pointwise, torch.randn(1, 300), torch.randn(1, 2), chunk_length=100,
                 overlap=20, align=81)
    with pytest.raises(ShapeError, match=r"arguments 'mixture' and 'condition' expected the same "
                                         r"number of queries, got 2 and 3"):
        separate(_pointwise, torch.randn(2, 1, 300), torch.randn(3, 2), chunk_length=100)
    with pytest.raises(ShapeError, match=r"argument 'mixture' expected a 3-d tensor"):
        separate(_pointwise, torch.randn(300), torch.randn(3, 2), chunk_length=100)
    with pytest.raises(ShapeError, match=r"separate\(\): argument 'model' expected to return "
                                         r"\(queries, sources, channels, time\) = \(3, sources, 1, "
                                         r"100\), got \(3, 1, 100\)"):
        separate(lambda x, c: x, torch.randn(1, 300), torch.randn(3, 2), chunk_length=100)
