"""ResUNet: shapes for any size, internal padding, FiLM conditioning, gradients, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from torchlass.errors import DTypeError, ShapeError, ValueRangeError
from torchlass.nn import FiLM, ResUNet, resunet30

SMALL = {"condition_size": 6, "stem_width": 4, "widths": (4, 8, 8),
         "pools": ((2, 2), (2, 1), (2, 2))}


def _small(in_channels=2, out_channels=3, **kw):
    return ResUNet(in_channels, out_channels, **{**SMALL, **kw})


def _randomise_film(net, std=0.5):
    for module in net.modules():
        if isinstance(module, FiLM):
            for p in module.parameters():
                torch.nn.init.normal_(p, std=std)


@pytest.mark.parametrize("freq_fit", ["crop", "pad"])
def test_any_size_in_same_size_out(freq_fit):
    net = _small(freq_fit=freq_fit).eval()

    @settings(max_examples=15)
    @given(freq=st.integers(8, 40), frames=st.integers(1, 13))
    def check(freq, frames):
        with torch.no_grad():
            out = net(torch.randn(2, 2, freq, frames), torch.randn(2, 6))
        assert out.shape == (2, 3, freq, frames)
        assert net.fitted_freq(freq) % net.freq_factor == 0
        if freq_fit == "crop":  # the dropped top bins get zero logits (the baseline's Nyquist)
            assert not out[:, :, net.fitted_freq(freq):].any()

    check()


def test_frames_are_zero_padded_inside():
    net = _small().eval()
    _randomise_film(net)
    x, c = torch.randn(2, 2, 16, 5), torch.randn(2, 6)
    with torch.no_grad():
        direct = net(x, c)
        padded = net(F.pad(x, (0, 3)), c)[..., :5]  # 8 frames: a multiple of frame_factor 4
    torch.testing.assert_close(direct, padded, rtol=0, atol=0)


def test_crop_drops_only_the_top_bins():
    net = _small().eval()
    x, c = torch.randn(1, 2, 19, 4), torch.randn(1, 6)
    with torch.no_grad():
        out = net(x, c)
        ref = net(x[:, :, :16], c)
    torch.testing.assert_close(out[:, :, :16], ref, rtol=0, atol=0)


def test_film_identity_at_init_and_conditioning_changes_output():
    net = _small().eval()
    x = torch.randn(2, 2, 16, 8)
    c1, c2 = torch.randn(2, 6), torch.randn(2, 6)
    with torch.no_grad():
        assert torch.equal(net(x, c1), net(x, c2))  # FiLM starts at zero: no effect
        _randomise_film(net)
        a, b = net(x, c1), net(x, c2)
    assert (a - b).abs().max() > 1e-2 * a.abs().max()


@pytest.mark.parametrize("film_scale", [False, True])
def test_gradients_reach_every_parameter(film_scale):
    net = _small(film_scale=film_scale).train()
    _randomise_film(net, std=0.1)
    net(torch.randn(3, 2, 16, 8), torch.randn(3, 6)).square().mean().backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_resunet30_has_no_unused_parameters():
    net = resunet30().train()
    # The original's 26 446 917 trainable parameters, less its 824 000 unused ones and the
    # 1 026 of bn0 (part of the features here): docs/baseline.md#unused-decoder-batchnorm-and-film.
    assert sum(p.numel() for p in net.parameters()) == 26_446_917 - 824_000 - 1_026
    assert not any("bn2" in n for n, _ in net.named_parameters())
    _randomise_film(net, std=0.01)
    net(torch.randn(2, 1, 64, 32), torch.randn(2, 512)).mean().backward()
    assert [n for n, p in net.named_parameters() if p.grad is None] == []


def test_batch_equals_itemwise_and_channels_last():
    net = _small().eval()
    _randomise_film(net)
    x, c = torch.randn(3, 2, 16, 6), torch.randn(3, 6)
    with torch.no_grad():
        batch = net(x, c)
        items = torch.cat([net(x[i:i + 1], c[i:i + 1]) for i in range(3)])
        cl = net.to(memory_format=torch.channels_last)(x.contiguous(
            memory_format=torch.channels_last), c)
    torch.testing.assert_close(batch, items, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(batch, cl, rtol=1e-5, atol=1e-6)


def test_errors():
    net = _small()
    c = torch.randn(2, 6)
    with pytest.raises(ShapeError, match=r"ResUNet.forward\(\): argument 'x' expected 2 "
                                         r"channel\(s\) .* got shape \(2, 3, 16, 4\)"):
        net(torch.randn(2, 3, 16, 4), c)
    with pytest.raises(ShapeError, match=r"argument 'x' expected a 4-d tensor"):
        net(torch.randn(2, 16, 4), c)
    with pytest.raises(ShapeError, match=r"argument 'condition' expected shape \(2, 6\), "
                                         r"got \(3, 6\)"):
        net(torch.randn(2, 2, 16, 4), torch.randn(3, 6))
    with pytest.raises(ShapeError, match=r"expected at least 8 frequency bins .* got 7"):
        net(torch.randn(2, 2, 7, 4), c)
    with pytest.raises(DTypeError, match=r"argument 'x' expected a real floating-point"):
        net(torch.zeros(2, 2, 16, 4, dtype=torch.complex64), c)
    with pytest.raises(ValueRangeError, match=r"ResUNet\(\): arguments 'widths' and 'pools' "
                                              r"expected the same non-zero length, got 2 and 3"):
        ResUNet(widths=(4, 8), pools=((2, 2),) * 3)
    with pytest.raises(ValueRangeError, match=r"argument 'freq_fit' expected one of 'crop', "
                                              r"'pad', got 'trim'"):
        ResUNet(freq_fit="trim")
    with pytest.raises(ValueRangeError, match=r"argument 'pools' expected an int >= 1, got 0"):
        ResUNet(widths=(4,), pools=((0, 2),))
