"""torchlass.masks: the baseline's mask math against docs/baseline.md#mask-and-phase (numpy,
and the reference forward's outputs), identities, coincidences between families, bounds,
gradients, heads' layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import strategies as sts
import torch
from helpers import assert_batch_equals_items, randn, random_spec
from hypothesis import given
from hypothesis import strategies as st

from torchlass.masks import (
    BOUNDS,
    ComplexRatioMaskHead,
    MagPhaseMaskHead,
    RealImagMaskHead,
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
    bound_mask,
)
from torchlass.stft import istft, stft

CROP = Path(__file__).parent / "fixtures" / "dcase2024_mask_crop.npz"  # see test_stft_features
INF = float("inf")


def np_sigmoid(z):
    return 1 / (1 + np.exp(-z))


def np_baseline_mask(y, z0, z1, z2):
    """docs/baseline.md#mask-and-phase written out in float64: floored magnitude, cos/sin
    products."""
    mag_x = np.sqrt(np.maximum(y.real**2 + y.imag**2, 1e-10))
    cos_x, sin_x = y.real / mag_x, y.imag / mag_x
    m = np_sigmoid(z0)
    p_r, p_i = np.tanh(z1), np.tanh(z2)
    rho = np.maximum(np.sqrt(p_r**2 + p_i**2), 1e-10)
    cos_m, sin_m = p_r / rho, p_i / rho
    mag_y = np.maximum(mag_x * m, 0)
    cos_y = cos_x * cos_m - sin_x * sin_m
    sin_y = sin_x * cos_m + cos_x * sin_m
    return mag_y * cos_y + 1j * mag_y * sin_y


# --- the baseline's mask -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mag_phase_reproduces_baseline_output(dtype):
    crop = np.load(CROP)
    n_fft, hop = 1024, 160
    spec = stft(torch.from_numpy(crop["mixture"]).to(dtype), n_fft=n_fft, hop_length=hop)
    logits = torch.zeros(3, *spec.shape, dtype=dtype)
    logits[:, :, 30:70] = torch.from_numpy(crop["net_out"]).to(dtype).transpose(-1, -2)
    masked = apply_mag_phase_mask(spec, *logits)
    y = istft(masked, n_fft=n_fft, hop_length=hop, length=16000)[5152:10688]
    # Tolerances with torch.stft/istft: docs/baseline.md#test-weights-and-parity-fixtures
    atol = 1e-7 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(y.numpy(), crop["waveform"], rtol=0, atol=atol)
    # The baseline's Nyquist column of Z is 0: m = 0.5, p = 0, so the bin is zeroed.
    assert torch.equal(masked[-1, 30:70], torch.zeros(40, dtype=masked.dtype))


@given(sts.spectra(shape=(3, 6, 5), scale=st.floats(1e-8, 1e3)), sts.logits((3, 3, 6, 5)))
def test_mag_phase_matches_spec_formula(spec, z):
    spec[0, 0, 0] = 0  # a silent bin
    spec[1, 2, 3] = complex(3e-6, -1e-6)  # below the magnitude floor
    z[1:, 2, 1, 1] = 0  # p_r = p_i = 0
    got = apply_mag_phase_mask(spec, *z).numpy()
    expected = np_baseline_mask(spec.numpy(), *z.numpy())
    scale = float(spec.abs().max())
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13 * scale)
    assert got[0, 0, 0] == 0 and got[2, 1, 1] == 0


def test_mag_phase_is_a_rotation_and_scaling():
    spec = random_spec(4, 5)
    z0, z1, z2 = randn(3, 4, 5, seed=3, scale=2.0)
    got = apply_mag_phase_mask(spec, z0, z1, z2).numpy()
    angle = np.arctan2(np.tanh(z2.numpy()), np.tanh(z1.numpy()))
    expected = np_sigmoid(z0.numpy()) * np.abs(spec.numpy()) * np.exp(
        1j * (np.angle(spec.numpy()) + angle))
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# --- identities and coincidences ---------------------------------------------------------

@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_identity_masks_are_exact(dtype):
    spec = random_spec(2, 9, 7).to(dtype)
    spec[0, 0, 0] = 0
    spec[1, 1, 1] = complex(1e-9, 1e-9)
    real = spec.real.dtype
    ones, zeros = torch.ones(9, 7, dtype=real), torch.zeros(9, 7, dtype=real)
    infs = torch.full((9, 7), INF, dtype=real)
    assert torch.equal(apply_real_imag_mask(spec, ones, ones), spec)
    assert torch.equal(apply_complex_ratio_mask(spec, ones, zeros), spec)
    assert torch.equal(apply_mag_phase_mask(spec, infs, infs, zeros), spec)


@given(sts.spectra(shape=(2, 4, 6)), sts.logits((4, 2, 4, 6)))
def test_families_coincide(spec, planes):
    a, b, z1, z2 = planes
    zeros = torch.zeros_like(a)
    # complex mask with zero imaginary part == real/imag masks with equal parts
    assert torch.equal(apply_complex_ratio_mask(spec, a, zeros), apply_real_imag_mask(spec, a, a))
    # real/imag masks with equal parts == a real mask times Y
    torch.testing.assert_close(apply_real_imag_mask(spec, a, a), a * spec, rtol=0, atol=0)
    # magnitude-phase with zero phase rotation (p_i = 0, p_r > 0) == a real magnitude mask
    m = torch.sigmoid(b)
    torch.testing.assert_close(apply_mag_phase_mask(spec, b, torch.ones_like(b), zeros),
                               apply_real_imag_mask(spec, m, m), rtol=1e-15, atol=0)
    # magnitude-phase == the complex ratio mask sigmoid(z0) p / max(|p|, 1e-10) with
    # p = tanh z1 + j tanh z2: a unit phasor, or less where |p| < 1e-10 (0 at p = 0)
    p_r, p_i = torch.tanh(z1), torch.tanh(z2)
    rho = torch.clamp(torch.hypot(p_r, p_i), min=1e-10)
    torch.testing.assert_close(apply_mag_phase_mask(spec, b, z1, z2),
                               apply_complex_ratio_mask(spec, m * p_r / rho, m * p_i / rho))


def test_real_imag_and_complex_formulas():
    spec = random_spec(3, 4)
    a, b = randn(2, 3, 4, seed=4)
    y, ma, mb = spec.numpy(), a.numpy(), b.numpy()
    np.testing.assert_allclose(apply_real_imag_mask(spec, a, b).numpy(),
                               ma * y.real + 1j * mb * y.imag, rtol=1e-15)
    np.testing.assert_allclose(apply_complex_ratio_mask(spec, a, b).numpy(),
                               (ma + 1j * mb) * y, rtol=1e-14)


def test_masks_broadcast_and_promote():
    spec = random_spec(2, 1, 5, 7).to(torch.complex64)
    # (sources, freq, 1) against (batch, 1, freq, frames)
    mask = randn(3, 5, 1, dtype=torch.float32, seed=0)
    out = apply_real_imag_mask(spec, mask, mask)
    assert out.shape == (2, 3, 5, 7) and out.dtype == torch.complex64
    torch.testing.assert_close(out[1, 2], mask[2] * spec[1, 0])
    assert apply_complex_ratio_mask(spec, mask.bfloat16(), mask.half()).dtype == torch.complex64
    assert apply_mag_phase_mask(spec, mask.double(), mask, mask).dtype == torch.complex128


def test_batch_equals_itemwise():
    spec = random_spec(3, 2, 5, 4)
    z = randn(3, 3, 2, 5, 4, seed=2)
    for fn, planes in [(apply_mag_phase_mask, z), (apply_real_imag_mask, z[:2]),
                       (apply_complex_ratio_mask, z[:2])]:
        assert_batch_equals_items(fn, spec, *planes)


# --- gradients -------------------------------------------------------------------------

def test_gradcheck_mask_functions():
    spec = random_spec(2, 3).requires_grad_(True)
    z = [randn(2, 3, seed=s).requires_grad_(True) for s in (1, 2, 3)]
    for fn, planes in [(apply_mag_phase_mask, z), (apply_real_imag_mask, z[:2]),
                       (apply_complex_ratio_mask, z[:2])]:
        assert torch.autograd.gradcheck(lambda s, *p, f=fn: torch.view_as_real(f(s, *p)),
                                        (spec, *planes))


def test_mag_phase_gradients_finite_at_singular_points():
    spec = random_spec(2, 3)
    spec[0, 0] = 0  # silent bin
    spec.requires_grad_(True)
    z0 = randn(2, 3, seed=1).requires_grad_(True)
    z1 = randn(2, 3, seed=2)
    z2 = randn(2, 3, seed=3)
    z1[1, 1] = z2[1, 1] = 0  # p_r = p_i = 0: the phasor is 0
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    out = apply_mag_phase_mask(spec, z0, z1, z2)
    torch.view_as_real(out).sum().backward()
    for t in (spec, z0, z1, z2):
        grad = torch.view_as_real(t.grad) if t.is_complex() else t.grad
        assert torch.isfinite(grad).all()
    assert spec.grad[0, 0] != 0  # the silent bin still receives a (finite) gradient
    # gradcheck around the silent bin (the function is smooth in Y there)
    zero_spec = torch.zeros(2, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda s: torch.view_as_real(apply_mag_phase_mask(s, z0.detach(), z1.detach() + 0.5,
                                                          z2.detach())), (zero_spec,))


# --- bounds ----------------------------------------------------------------------------

@given(st.lists(st.floats(-1e4, 1e4), min_size=2, max_size=8), st.sampled_from(BOUNDS))
def test_bounds_hold(values, bound):
    a = torch.tensor(values, dtype=torch.float32)
    b = a.flip(0)
    m_re, m_im = bound_mask(a, b, bound=bound)
    assert torch.isfinite(m_re).all() and torch.isfinite(m_im).all()
    if bound == "tanh":
        assert (m_re.abs() <= 1).all() and (m_im.abs() <= 1).all()
    elif bound == "sigmoid":
        assert ((m_re >= 0) & (m_re <= 1) & (m_im >= 0) & (m_im <= 1)).all()
    elif bound == "polar_tanh":
        assert (torch.sqrt(m_re.double()**2 + m_im.double()**2) <= 1 + 1e-6).all()
    elif bound == "cirm":
        assert (m_re.abs() <= 10).all() and (m_im.abs() <= 10).all()
    else:
        assert torch.equal(m_re, a) and torch.equal(m_im, b)


def test_bound_formulas():
    a, b = randn(2, 50, seed=6, scale=4.0)
    na, nb = a.numpy(), b.numpy()
    checks = {
        "tanh": (np.tanh(na), np.tanh(nb)),
        "sigmoid": (np_sigmoid(na), np_sigmoid(nb)),
        "cirm": tuple(10 * (1 - np.exp(-0.1 * v)) / (1 + np.exp(-0.1 * v)) for v in (na, nb)),
    }
    o = na + 1j * nb
    polar = np.tanh(np.abs(o)) * np.exp(1j * np.angle(o))
    checks["polar_tanh"] = (polar.real, polar.imag)
    for bound, (er, ei) in checks.items():
        m_re, m_im = bound_mask(a, b, bound=bound)
        np.testing.assert_allclose(m_re.numpy(), er, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(m_im.numpy(), ei, rtol=1e-12, atol=1e-14)
    m_re, _ = bound_mask(a, b, bound="cirm", cirm_k=2.0, cirm_c=0.5)
    np.testing.assert_allclose(m_re.numpy(), 2 * (1 - np.exp(-0.5 * na)) / (1 + np.exp(-0.5 * na)))


def test_bound_gradients():
    a, b = randn(2, 6, seed=8, scale=2.0)
    a[0] = b[0] = 0  # the polar bound's singular point
    a.requires_grad_(True)
    b.requires_grad_(True)
    for bound in BOUNDS:
        assert torch.autograd.gradcheck(lambda x, y, bd=bound: bound_mask(x, y, bound=bd), (a, b))
    m_re, m_im = bound_mask(a, b, bound="polar_tanh")
    (m_re.sum() + m_im.sum()).backward()
    assert torch.isfinite(a.grad).all() and a.grad[0] == 1  # d tanh(|O|)/|O| * a at O=0


# --- heads -----------------------------------------------------------------------------

HEADS = [
    (MagPhaseMaskHead, {}, apply_mag_phase_mask, None),
    (RealImagMaskHead, {"bound": "sigmoid"}, apply_real_imag_mask, "sigmoid"),
    (RealImagMaskHead, {}, apply_real_imag_mask, "tanh"),
    (ComplexRatioMaskHead, {}, apply_complex_ratio_mask, "polar_tanh"),
    (ComplexRatioMaskHead, {"bound": "cirm"}, apply_complex_ratio_mask, "cirm"),
]


@pytest.mark.parametrize(("head_cls", "kwargs", "fn", "bound"), HEADS)
@pytest.mark.parametrize(("sources", "channels"), [(1, 1), (2, 3)])
def test_head_layout_equals_function(head_cls, kwargs, fn, bound, sources, channels):
    head = head_cls(num_sources=sources, **kwargs)
    k = head.planes
    spec = random_spec(2, channels, 5, 4)
    net_out = randn(2, sources * channels * k, 5, 4, seed=3)
    out = head(net_out, spec)
    assert out.shape == (2, sources, channels, 5, 4)
    for s in range(sources):
        for c in range(channels):
            planes = [net_out[:, (s * channels + c) * k + i] for i in range(k)]
            if bound is not None:
                planes = list(bound_mask(*planes, bound=bound))
            torch.testing.assert_close(out[:, s, c], fn(spec[:, c], *planes), rtol=0, atol=0)
    # batch == item-wise
    torch.testing.assert_close(out[1:], head(net_out[1:], spec[1:]))


def test_head_planes_and_defaults():
    assert (MagPhaseMaskHead.planes, RealImagMaskHead.planes, ComplexRatioMaskHead.planes) == (
        3, 2, 2)
    assert RealImagMaskHead().bound == "tanh" and ComplexRatioMaskHead().bound == "polar_tanh"
    assert "bound='cirm'" in repr(ComplexRatioMaskHead(2, bound="cirm"))
    assert "num_sources=2" in repr(MagPhaseMaskHead(2))


def test_identity_through_heads():
    spec = random_spec(1, 2, 3, 4)
    big = torch.full((1, 2, 3, 4), INF, dtype=torch.float64)
    net_out = torch.stack([big, big, torch.zeros_like(big)], dim=2).reshape(1, 6, 3, 4)
    assert torch.equal(MagPhaseMaskHead()(net_out, spec)[:, 0], spec)
    ones = torch.ones(1, 2, 1, 3, 4, dtype=torch.float64)
    net_out = torch.cat([ones, 0 * ones], dim=2).reshape(1, 4, 3, 4)
    assert torch.equal(ComplexRatioMaskHead(bound="none")(net_out, spec)[:, 0], spec)
    net_out = torch.cat([ones, ones], dim=2).reshape(1, 4, 3, 4)
    assert torch.equal(RealImagMaskHead(bound="none")(net_out, spec)[:, 0], spec)


def test_head_gradcheck():
    spec = random_spec(1, 1, 2, 3)
    net_out = randn(1, 6, 2, 3, seed=1).requires_grad_(True)
    head = MagPhaseMaskHead(num_sources=2)
    assert torch.autograd.gradcheck(lambda z: torch.view_as_real(head(z, spec)), (net_out,))
    head = ComplexRatioMaskHead(num_sources=3)
    assert torch.autograd.gradcheck(lambda z: torch.view_as_real(head(z, spec)), (net_out,))
