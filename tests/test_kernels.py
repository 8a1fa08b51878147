"""Fused Triton kernels against the eager torchlass functions and torch references.

On a machine without CUDA the kernels run on CPU tensors under Triton's interpreter
(``TRITON_INTERPRET=1``, set by ``kernel_interpreter`` before the kernel modules are
imported), so shapes are tiny: odd sizes, broadcasting, non-contiguous layouts,
float32/bfloat16/float16 inputs, forward and backward. With CUDA the same tests run the
compiled kernels on the GPU; the public functions, the references here, are then kept on
their eager path with ``TORCHLASS_KERNELS=0`` (they would otherwise dispatch to the very
kernels under test).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import np64, randn
from kernel_interpreter import DEVICE, import_kernels

kernels = import_kernels()

from torchlass.errors import DeviceError, DTypeError, ShapeError, ValueRangeError  # noqa: E402
from torchlass.kernels._layout import plan_tiles  # noqa: E402
from torchlass.masks import (  # noqa: E402
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
)
from torchlass.metrics import si_sdr, snr  # noqa: E402
from torchlass.stft import magnitude_phase  # noqa: E402

FAMILIES = {
    "mag_phase": (kernels.fused_apply_mag_phase_mask, apply_mag_phase_mask, 3),
    "real_imag": (kernels.fused_apply_real_imag_mask, apply_real_imag_mask, 2),
    "complex_ratio": (kernels.fused_apply_complex_ratio_mask, apply_complex_ratio_mask, 2),
}
HALF_TOL = {torch.bfloat16: 1e-2, torch.float16: 2e-3}


@pytest.fixture(autouse=True)
def _eager_references(monkeypatch):
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")


def _randn(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return randn(*shape, dtype=dtype, device=DEVICE)


def _freq_fastest_spec(batch: int, freq: int, frames: int) -> torch.Tensor:
    """A complex spectrogram stored frequency-fastest, as torch.stft returns it."""
    return _randn(batch, 1, 1, frames, freq, dtype=torch.complex64).transpose(-1, -2)


def _grads(out: torch.Tensor, inputs: list[torch.Tensor], cotangent: torch.Tensor):
    return torch.autograd.grad(out, inputs, cotangent)


# ----------------------------------------------------------------------------- masks


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_mask_matches_eager_forward_backward(family, dtype, tol):
    fused, eager, n = FAMILIES[family]
    spec = _freq_fastest_spec(2, 9, 7).requires_grad_(True)  # broadcast over 3 sources
    # planes sliced out of one network output: non-contiguous, like the mask heads do
    net_out = _randn(2, 3, 1, n + 1, 9, 7, dtype=dtype)
    planes = [net_out[:, :, :, k].requires_grad_(True) for k in range(n)]
    out, ref = fused(spec, *planes), eager(spec, *planes)
    assert out.shape == ref.shape == (2, 3, 1, 9, 7)
    assert out.dtype == ref.dtype == torch.complex64
    torch.testing.assert_close(out, ref, **tol(torch.float32))
    cotangent = _randn(*ref.shape, dtype=torch.complex64)
    got, want = _grads(out, [spec, *planes], cotangent), _grads(ref, [spec, *planes], cotangent)
    torch.testing.assert_close(got[0], want[0], rtol=1e-4, atol=1e-4)
    for g, w in zip(got[1:], want[1:], strict=True):
        assert g.dtype == dtype
        scale = float(w.float().abs().max())
        rtol = HALF_TOL.get(dtype, 1e-5)
        torch.testing.assert_close(g.float(), w.float(), rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_mask_float64_against_numpy(family):
    fused, _, n = FAMILIES[family]
    spec = _randn(1, 5, 3, dtype=torch.complex128)
    planes = [_randn(2, 5, 3, dtype=torch.float64) for _ in range(n)]
    y = np64(spec)
    z = [np64(p) for p in planes]
    if family == "real_imag":
        want = z[0] * y.real + 1j * z[1] * y.imag
    elif family == "complex_ratio":
        want = (z[0] + 1j * z[1]) * y
    else:
        phasor = np.tanh(z[1]) + 1j * np.tanh(z[2])
        want = y * phasor / np.abs(phasor) / (1 + np.exp(-z[0]))
    got = fused(spec, *planes)
    assert got.dtype == torch.complex128
    np.testing.assert_allclose(np64(got), want, rtol=1e-12, atol=1e-12)


def test_mag_phase_gradcheck_float64():
    spec = _randn(1, 2, dtype=torch.complex128).requires_grad_(True)
    planes = [_randn(1, 2, dtype=torch.float64).requires_grad_(True) for _ in range(3)]
    assert torch.autograd.gradcheck(kernels.fused_apply_mag_phase_mask, (spec, *planes))


def test_mag_phase_zero_phase_logits_finite_gradient():
    # the baseline's zero-padded Nyquist column: p_r = p_i = 0 gives a zeroed bin
    spec = _randn(1, 4, 3, dtype=torch.complex128).requires_grad_(True)
    z0 = _randn(1, 4, 3, dtype=torch.float64).requires_grad_(True)
    z1 = _randn(1, 4, 3, dtype=torch.float64)
    z2 = _randn(1, 4, 3, dtype=torch.float64)
    z1[:, -1], z2[:, -1] = 0.0, 0.0
    z1.requires_grad_(True)
    z2.requires_grad_(True)
    out = kernels.fused_apply_mag_phase_mask(spec, z0, z1, z2)
    ref = apply_mag_phase_mask(spec, z0, z1, z2)
    assert bool((out[:, -1] == 0).all())
    cot = torch.ones_like(ref)
    got = _grads(out, [spec, z0, z1, z2], cot)
    want = _grads(ref, [spec, z0, z1, z2], cot)
    for g, w in zip(got, want, strict=True):
        assert bool(torch.isfinite(g).all())
        torch.testing.assert_close(g, w, rtol=1e-9, atol=1e-9)


def test_mag_phase_identity_mask_is_exact():
    # sigmoid(+inf) = 1 and tanh(+inf) = 1: the output is the input bit for bit
    spec = _randn(2, 3, 5, dtype=torch.complex64)
    inf = torch.full((2, 3, 5), float("inf"), device=DEVICE, requires_grad=True)
    zero = torch.zeros(2, 3, 5, device=DEVICE, requires_grad=True)
    out = kernels.fused_apply_mag_phase_mask(spec, inf, inf, zero)
    assert torch.equal(out, spec)
    cotangent = _randn(2, 3, 5, dtype=torch.complex64)
    got = torch.autograd.grad(out, [inf, zero], cotangent)
    want = torch.autograd.grad(apply_mag_phase_mask(spec, inf, inf, zero), [inf, zero],
                               cotangent)
    assert bool((got[0] == 0).all())  # saturated sigmoid and tanh
    torch.testing.assert_close(got[1], want[1])  # the phase still turns


def test_mask_broadcast_gradients_are_summed():
    spec = _randn(3, 4, 5, dtype=torch.complex64).requires_grad_(True)
    mask_real = _randn(4, 1).requires_grad_(True)  # broadcast over batch and frames
    mask_imag = _randn(1, 1, 5).requires_grad_(True)
    out = kernels.fused_apply_complex_ratio_mask(spec, mask_real, mask_imag)
    ref = apply_complex_ratio_mask(spec, mask_real, mask_imag)
    out.abs().sum().backward()
    got = [t.grad.clone() for t in (spec, mask_real, mask_imag)]
    for t in (spec, mask_real, mask_imag):
        t.grad = None
    ref.abs().sum().backward()  # expanded (stride-0) incoming gradient
    for g, t in zip(got, (spec, mask_real, mask_imag), strict=True):
        assert g.shape == t.shape
        torch.testing.assert_close(g, t.grad, rtol=1e-5, atol=1e-5)


def test_mask_unmergeable_layout_falls_back_to_contiguous():
    # dims alternate between broadcast and not for the two operands: 6 unmergeable dims
    spec = _randn(2, 1, 2, 1, 2, 3, dtype=torch.complex64)
    mask_real = _randn(1, 2, 1, 2, 1, 3)
    mask_imag = _randn(2, 2, 2, 2, 2, 3)
    assert plan_tiles((2, 2, 2, 2, 2, 3), ((12, 0, 6, 0, 3, 1), (0, 6, 0, 3, 0, 1),
                                           (48, 24, 12, 6, 3, 1)), (True, False, False)) is None
    torch.testing.assert_close(kernels.fused_apply_real_imag_mask(spec, mask_real, mask_imag),
                               apply_real_imag_mask(spec, mask_real, mask_imag))


def test_mask_only_requested_gradients_and_empty_input():
    spec = _randn(2, 3, dtype=torch.complex64)
    z = [_randn(2, 3) for _ in range(3)]
    z[1].requires_grad_(True)
    out = kernels.fused_apply_mag_phase_mask(spec, *z)
    (g,) = torch.autograd.grad(out.real.sum(), [z[1]])
    (w,) = torch.autograd.grad(apply_mag_phase_mask(spec, *z).real.sum(), [z[1]])
    torch.testing.assert_close(g, w)
    empty = torch.zeros(0, 3, dtype=torch.complex64, device=DEVICE)
    mask = _randn(1, 3).requires_grad_(True)
    out = kernels.fused_apply_real_imag_mask(empty, mask, mask)
    assert out.shape == (0, 3)
    (g,) = torch.autograd.grad(out.real.sum(), [mask])
    assert bool((g == 0).all())


def test_mask_errors():
    spec = _randn(2, 3, dtype=torch.complex64)
    with pytest.raises(DTypeError, match=r"fused_apply_real_imag_mask\(\): argument 'spec' "
                                         r"expected a complex tensor, got dtype torch.float32"):
        kernels.fused_apply_real_imag_mask(spec.real, spec.real, spec.real)
    with pytest.raises(DTypeError, match=r"argument 'mask_imag' expected a real"):
        kernels.fused_apply_complex_ratio_mask(spec, spec.real, spec)
    with pytest.raises(ShapeError, match=r"expected shapes that broadcast together, got spec "
                                         r"\(2, 3\) and mag_logit \(4,\)"):
        kernels.fused_apply_mag_phase_mask(spec, _randn(4), _randn(3), _randn(3))


# ----------------------------------------------------------------------------- STFT


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental")
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128, torch.complex32])
def test_magnitude_phase_matches_eager(dtype, tol):
    x = _randn(2, 200)
    spec = torch.stft(x, 32, 8, window=torch.hann_window(32, device=DEVICE),
                      return_complex=True)  # frequency-fastest
    spec[0, 3, 2], spec[1, 4, 5] = 0, 1e-7  # silent and floored bins
    spec = spec.to(dtype).requires_grad_(True)
    got, want = kernels.fused_magnitude_phase(spec), magnitude_phase(spec)
    real = torch.float16 if dtype == torch.complex32 else spec.real.dtype
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype == real and g.is_contiguous()
        torch.testing.assert_close(g, w, **tol(real))
    if dtype == torch.complex32:
        return
    cotangents = [torch.randn_like(w) for w in want]
    (g,) = torch.autograd.grad(got, spec, cotangents)
    (w,) = torch.autograd.grad(want, spec, cotangents)
    torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-4 * float(w.abs().max()))
    # one feature only (the others' gradients are None inside the kernel)
    mag, _, _ = kernels.fused_magnitude_phase(spec)
    (g,) = torch.autograd.grad(mag.sum(), spec)
    (w,) = torch.autograd.grad(magnitude_phase(spec)[0].sum(), spec)
    torch.testing.assert_close(g, w, **tol(real))


def test_magnitude_phase_gradcheck_and_errors():
    spec = _randn(2, 2, dtype=torch.complex128)
    spec[0, 0] = 0
    spec.requires_grad_(True)
    assert torch.autograd.gradcheck(kernels.fused_magnitude_phase, (spec,))
    with pytest.raises(DTypeError, match=r"fused_magnitude_phase\(\): argument 'spec' expected "
                                         r"a complex tensor"):
        kernels.fused_magnitude_phase(spec.real)
    with pytest.raises(ValueRangeError, match=r"argument 'eps' expected a positive float, "
                                              r"got 0.0"):
        kernels.fused_magnitude_phase(spec, eps=0.0)


@pytest.mark.filterwarnings("ignore:The length of signal is shorter than the length parameter")
@pytest.mark.parametrize(
    ("n_fft", "hop", "win", "center", "length", "dtype"),
    [
        (32, 8, 32, True, 250, torch.float32),
        (31, 10, 24, True, None, torch.float64),  # odd n_fft, short window
        (16, 4, 16, False, None, torch.float32),
        (32, 8, 32, True, 300, torch.float64),  # zero-padded beyond the signal
    ],
)
def test_istft_matches_torch(n_fft, hop, win, center, length, dtype, tol):
    x = _randn(2, 250, dtype=dtype)
    window = (torch.hann_window if center else torch.hamming_window)(win, dtype=dtype,
                                                                      device=DEVICE)
    spec = torch.stft(x, n_fft, hop, win, window=window, center=center, return_complex=True)
    spec = spec.unsqueeze(1).requires_grad_(True)  # (batch, channels, freq, frames)
    got = kernels.fused_istft(spec, n_fft=n_fft, hop_length=hop, window=window, center=center,
                              length=length)
    want = torch.istft(spec.flatten(0, 1), n_fft, hop, win, window, center=center,
                       length=length).unflatten(0, (2, 1))
    assert got.shape == want.shape and got.dtype == want.dtype
    torch.testing.assert_close(got, want, **tol(dtype))
    cotangent = torch.randn_like(want)
    (g,) = torch.autograd.grad(got, spec, cotangent)
    (w,) = torch.autograd.grad(want, spec, cotangent)
    torch.testing.assert_close(g, w, **tol(dtype))


def test_istft_errors_and_window_with_grad():
    spec = _randn(1, 17, 5, dtype=torch.complex64)
    window = torch.hann_window(32, device=DEVICE)
    with pytest.raises(ShapeError, match=r"fused_istft\(\): argument 'spec' expected "
                                         r"n_fft // 2 \+ 1 = 9 bins"):
        kernels.fused_istft(spec, n_fft=16, hop_length=4, window=window)
    with pytest.raises(ShapeError, match=r"argument 'window' expected a 1-d tensor of at most "
                                         r"n_fft = 32 samples, got shape \(40,\)"):
        kernels.fused_istft(spec, n_fft=32, hop_length=8, window=_randn(40))
    with pytest.raises(ValueRangeError, match=r"argument 'hop_length' expected an int >= 1"):
        kernels.fused_istft(spec, n_fft=32, hop_length=0, window=window)
    with pytest.raises(DTypeError, match=r"argument 'spec' expected complex64 or complex128, "
                                         r"got dtype torch.complex32"):
        kernels.fused_istft(spec.to(torch.complex32), n_fft=32, hop_length=8, window=window)
    trainable = window.clone().requires_grad_(True)  # takes the torch.istft path
    y = kernels.fused_istft(spec, n_fft=32, hop_length=8, window=trainable)
    (g,) = torch.autograd.grad(y.sum(), trainable)
    assert g.shape == (32,)


# ----------------------------------------------------------------------------- losses


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("zero_mean", [False, True])
def test_si_sdr_snr_match_eager(dtype, zero_mean):
    target = _randn(3, 2, 2500).to(dtype)
    noise = 0.05 * _randn(2, 3, 2500).transpose(0, 1)  # non-contiguous estimate
    estimate = (target.float() + noise + 0.3).to(dtype)
    estimate.requires_grad_(True)
    target.requires_grad_(True)
    for fused, eager in ((kernels.fused_si_sdr, si_sdr), (kernels.fused_snr, snr)):
        got = fused(estimate, target, zero_mean=zero_mean)
        want = eager(estimate, target, zero_mean=zero_mean)  # float32: the inputs' precision
        assert got.dtype == torch.float64 and got.shape == (3, 2)
        torch.testing.assert_close(got.to(want.dtype), want, rtol=1e-6, atol=1e-5)
        g = torch.autograd.grad(got.sum(), [estimate, target])
        w = torch.autograd.grad(want.sum(), [estimate, target])
        for a, b in zip(g, w, strict=True):
            assert a.dtype == dtype
            rtol = HALF_TOL.get(dtype, 1e-5)
            torch.testing.assert_close(a.float(), b.float(), rtol=rtol,
                                       atol=rtol * float(b.float().abs().max()))


def test_si_sdr_float64_numpy_reference_and_high_sdr():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((2, 3000))
    x = 0.7 * s + 1e-4 * rng.standard_normal((2, 3000))  # about 77 dB
    eps = np.finfo(np.float64).eps
    alpha = ((x * s).sum(-1, keepdims=True) + eps) / ((s * s).sum(-1, keepdims=True) + eps)
    want = 10 * np.log10(((alpha * s) ** 2).sum(-1) + eps) - 10 * np.log10(
        ((alpha * s - x) ** 2).sum(-1) + eps)
    got = kernels.fused_si_sdr(torch.from_numpy(x).to(DEVICE), torch.from_numpy(s).to(DEVICE))
    np.testing.assert_allclose(np64(got), want, rtol=0, atol=1e-6)


def test_si_sdr_snr_near_perfect_and_silent_estimates():
    # about 111 dB, where the eps of float32 bounds the ratio: moments keep 1e-3 dB
    target = _randn(3, 16000)
    for estimate in (target, target + 1e-6 * _randn(3, 16000), torch.zeros_like(target)):
        for fused, eager in ((kernels.fused_si_sdr, si_sdr), (kernels.fused_snr, snr)):
            torch.testing.assert_close(fused(estimate, target).float(), eager(estimate, target),
                                       rtol=0, atol=1e-3)


def test_row_moments_gradcheck_and_errors():
    x = _randn(2, 5, dtype=torch.float64).requires_grad_(True)
    s = _randn(2, 5, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(kernels.fused_row_moments, (x, s))
    with pytest.raises(ShapeError, match=r"fused_si_sdr\(\): arguments 'estimate' and "
                                         r"'target' must have the same shape"):
        kernels.fused_si_sdr(x, s[:, :4])
    with pytest.raises(ShapeError, match=r"expected at least 1 samples"):
        kernels.fused_snr(x[:, :0], s[:, :0])
    with pytest.raises(DTypeError, match=r"fused_row_moments\(\): argument 'target' expected "
                                         r"a real floating-point tensor"):
        kernels.fused_row_moments(x, s.to(torch.complex128))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_mixture_gram_matches_float64(dtype):
    estimates = _randn(2, 5, 4200).to(dtype)  # two chunks of 4096 samples
    mixtures = _randn(2, 3, 4200).transpose(1, 2).contiguous().transpose(1, 2).to(dtype)
    gram, cross, power = kernels.fused_mixture_gram(estimates, mixtures)
    e, x = estimates.double(), mixtures.double()
    torch.testing.assert_close(gram, e @ e.transpose(1, 2), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(cross, x @ e.transpose(1, 2), rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(power, (x * x).sum(-1), rtol=1e-5, atol=1e-3)
    with pytest.raises(ShapeError, match=r"fused_mixture_gram\(\): arguments 'estimates' and "
                                         r"'mixtures' must agree in batch and time"):
        kernels.fused_mixture_gram(estimates, mixtures[:, :, :10])


# ----------------------------------------------------------------------------- dispatch


def test_is_available(monkeypatch):
    monkeypatch.delenv(kernels.ENV_SWITCH)
    assert not kernels.is_available(torch.zeros(2))
    assert not kernels.is_available()
    assert not kernels.is_available([1.0], "x")  # not tensors: the eager path reports them
    assert kernels.triton_importable()
    if torch.cuda.is_available():
        assert kernels.is_available(torch.zeros(2, device="cuda"))
        monkeypatch.setenv(kernels.ENV_SWITCH, "0")
        assert not kernels.is_available(torch.zeros(2, device="cuda"))


def test_cpu_tensors_without_interpreter_raise(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    spec = torch.zeros(2, 3, dtype=torch.complex64)
    with pytest.raises(DeviceError, match=r"fused_apply_real_imag_mask\(\): argument "
                                                  r"'spec' expected a CUDA tensor .* got device "
                                                  r"cpu"):
        kernels.fused_apply_real_imag_mask(spec, spec.real, spec.imag)
    with pytest.raises(DeviceError, match=r"fused_si_sdr\(\): argument 'estimate'"):
        kernels.fused_si_sdr(spec.real, spec.imag)
    assert issubclass(DeviceError, ValueError)


def test_api_page_example_runs(capsys):
    page = Path(__file__).resolve().parents[1] / "docs" / "api" / "kernels.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, str(page), "exec"), {})
    assert capsys.readouterr().out.strip() == "False"  # a CPU tensor: the eager path
