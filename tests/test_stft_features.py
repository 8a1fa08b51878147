"""torchlass.stft features and the asteroid-filterbanks adapter: numpy formulas, the DCASE 2024
baseline's network input, real asteroid-filterbanks encoders and decoders, gradients."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import strategies as sts
import torch
from helpers import random_spec
from hypothesis import given

from torchlass.stft import (
    from_asteroid,
    from_real_imag_channels,
    istft,
    magnitude_phase,
    real_imag_channels,
    stft,
    to_asteroid,
)

# Written by fixtures/make_fixtures.py from the reference forward (item 0 of the parity
# fixture): the mixture, frames 30..69 of the network input `mag` and of the logits
# `net_out` (time before frequency, the baseline's layout), and the output samples
# 5152..10687, which depend on those frames only.
CROP = Path(__file__).parent / "fixtures" / "dcase2024_mask_crop.npz"


def test_magnitude_phase_formula_and_silent_bins():
    spec = random_spec(2, 5, 7)
    spec[0, 1, 2] = 0
    spec[1, 3, 4] = complex(1e-7, -2e-7)  # below the floor
    mag, cos, sin = magnitude_phase(spec)
    s = spec.numpy()
    ref = np.sqrt(np.maximum(s.real**2 + s.imag**2, 1e-10))
    np.testing.assert_allclose(mag.numpy(), ref, rtol=1e-14)
    np.testing.assert_allclose(cos.numpy(), s.real / ref, rtol=1e-14)
    np.testing.assert_allclose(sin.numpy(), s.imag / ref, rtol=1e-14)
    assert mag[0, 1, 2] == 1e-5 and cos[0, 1, 2] == 0 and sin[0, 1, 2] == 0
    assert mag[1, 3, 4] == 1e-5
    mag2, _, _ = magnitude_phase(spec, eps=1e-4)
    assert mag2[0, 1, 2] == 1e-2


def test_magnitude_phase_matches_baseline_network_input():
    crop = np.load(CROP)
    spec = stft(torch.from_numpy(crop["mixture"]), n_fft=1024, hop_length=160)
    mag, _, _ = magnitude_phase(spec[:, 30:70])
    # A float32 STFT against the float64 reference: error relative to the largest bin.
    np.testing.assert_allclose(mag.T.numpy(), crop["mag"], rtol=0, atol=1e-6 * crop["mag"].max())


def test_magnitude_phase_gradients_finite_at_zero():
    spec = random_spec(3, 4)
    spec[1, 2] = 0
    spec.requires_grad_(True)
    mag, cos, sin = magnitude_phase(spec)
    (mag.sum() + cos.sum() + sin.sum()).backward()
    assert torch.isfinite(torch.view_as_real(spec.grad)).all()
    spec_nz = random_spec(3, 4, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda s: magnitude_phase(s), (spec_nz,))
    zero = torch.zeros(2, 2, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: magnitude_phase(s), (zero,))


def test_magnitude_phase_dtypes():
    spec = random_spec(3, 4, dtype=torch.complex64)
    assert all(t.dtype == torch.float32 for t in magnitude_phase(spec))
    assert all(t.dtype == torch.float64 for t in magnitude_phase(spec.to(torch.complex128)))


def test_real_imag_channels_order_and_inverse():
    spec = random_spec(2, 3, 4, 5)
    x = real_imag_channels(spec)
    assert x.shape == (2, 6, 4, 5) and x.dtype == torch.float64
    expected = np.stack([spec.numpy().real, spec.numpy().imag], axis=2).reshape(2, 6, 4, 5)
    np.testing.assert_array_equal(x.numpy(), expected)
    for c in range(3):
        assert torch.equal(x[:, 2 * c], spec[:, c].real)
        assert torch.equal(x[:, 2 * c + 1], spec[:, c].imag)
    assert torch.equal(from_real_imag_channels(x), spec)
    assert real_imag_channels(spec[0]).shape == (6, 4, 5)  # leading dims are optional
    assert from_real_imag_channels(x.half()).dtype == torch.complex64


def test_real_imag_channels_gradcheck():
    spec = random_spec(1, 2, 3, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(real_imag_channels, (spec,))
    x = torch.randn(1, 4, 3, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(from_real_imag_channels(t)), (x,))


@given(sts.spectra(min_dims=2, max_dims=5))
def test_asteroid_layout_matches_asteroid_transforms(spec):
    from asteroid_filterbanks import transforms

    *lead, freq, frames = spec.shape
    x = to_asteroid(spec)
    assert x.shape == (*lead, 2 * freq, frames)
    assert torch.equal(x, transforms.from_torch_complex(spec, dim=-2))
    assert torch.equal(from_asteroid(x), transforms.to_torch_complex(x, dim=-2))
    assert torch.equal(from_asteroid(x), spec)


@pytest.mark.parametrize(("n_fft", "hop"), [(64, 16), (32, 8)])
def test_real_asteroid_torch_stft_encoder_and_decoder(n_fft, hop):
    from asteroid_filterbanks import Decoder, Encoder, TorchSTFTFB

    window = torch.hann_window(n_fft, periodic=True)
    bank = TorchSTFTFB.from_torch_args(n_fft, hop_length=hop, win_length=n_fft,
                                       window=window.numpy())
    encoder, decoder = Encoder(bank), Decoder(bank)
    x = torch.randn(3, 400)
    ours = stft(x, n_fft=n_fft, hop_length=hop)
    theirs = encoder(x[:, None])  # (batch, 2 * freq, frames): real half, then imaginary half
    assert theirs.shape == (3, 2 * (n_fft // 2 + 1), ours.shape[-1])
    torch.testing.assert_close(from_asteroid(theirs), ours, rtol=1e-4, atol=1e-4)
    # Our spectrogram through asteroid's decoder reconstructs the signal.
    y = decoder(to_asteroid(ours), length=400)
    torch.testing.assert_close(y.reshape(x.shape), x, rtol=1e-4, atol=1e-4)
    # And asteroid's spectrogram through our inverse.
    torch.testing.assert_close(istft(from_asteroid(theirs), n_fft=n_fft, hop_length=hop,
                                     length=400), x, rtol=1e-4, atol=1e-4)


def test_real_asteroid_stftfb_encoder_scaling():
    # Plain STFTFB: uncentred frames, each bin scaled by 1 / (0.5 sqrt(n_fft^2 / hop)) and the
    # DC/Nyquist bins further by 1 / sqrt(2) (asteroid's normalisation).
    from asteroid_filterbanks import STFTFB, Encoder

    n_fft, hop = 32, 8
    window = torch.hann_window(n_fft, periodic=True)
    encoder = Encoder(STFTFB(n_fft, n_fft, stride=hop, window=window.numpy()))
    x = torch.randn(2, 300)
    theirs = from_asteroid(encoder(x[:, None]))
    ours = stft(x, n_fft=n_fft, hop_length=hop, center=False)
    scale = torch.full((n_fft // 2 + 1, 1), 1 / (0.5 * (n_fft * n_fft / hop) ** 0.5))
    scale[[0, -1]] /= 2**0.5
    torch.testing.assert_close(theirs, ours * scale, rtol=1e-4, atol=1e-5)


def test_learnable_asteroid_bank_feeds_our_features():
    # A learnable free filterbank standing in for the STFT: its output is a complex
    # spectrogram for torchlass' feature helpers, and gradients reach its filters.
    from asteroid_filterbanks import Encoder, FreeFB

    encoder = Encoder(FreeFB(n_filters=64, kernel_size=32, stride=8))
    spec = from_asteroid(encoder(torch.randn(2, 1, 200)))
    assert spec.shape == (2, 32, 1 + (200 - 32) // 8) and spec.is_complex()
    mag, _, _ = magnitude_phase(spec)
    mag.sum().backward()
    grad = encoder.filterbank._filters.grad
    assert grad is not None and torch.isfinite(grad).all() and bool(grad.abs().sum() > 0)
