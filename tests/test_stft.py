"""torchlass.stft.stft/istft: float64 numpy DFT/OLA written from the formulas, torch.stft/istft,
perfect reconstruction (hypothesis), dtypes, batch == item-wise, Module == function, gradcheck."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torchlass.stft import ISTFT, STFT, istft, make_window, stft

NP_PAD = {"reflect": "reflect", "constant": "constant", "replicate": "edge", "circular": "wrap"}


def np_window(name: str, n: int) -> np.ndarray:
    """Periodic windows from their textbook formulas (float64)."""
    k = np.arange(n) / n
    return {
        "hann": 0.5 - 0.5 * np.cos(2 * np.pi * k),
        "hamming": 0.54 - 0.46 * np.cos(2 * np.pi * k),
        "blackman": 0.42 - 0.5 * np.cos(2 * np.pi * k) + 0.08 * np.cos(4 * np.pi * k),
        "rectangular": np.ones(n),
    }[name]


def padded_window(name: str, n_fft: int, win_length: int) -> np.ndarray:
    w = np.zeros(n_fft)
    left = (n_fft - win_length) // 2
    w[left:left + win_length] = np_window(name, win_length)
    return w


def np_stft(x, n_fft, hop, win_length, window, center, pad_mode):
    """X[k, t] = sum_n w[n] x[t hop + n] exp(-2j pi k n / n_fft), one signal, float64."""
    x = np.asarray(x, dtype=np.float64)
    if center:
        x = np.pad(x, n_fft // 2, mode=NP_PAD[pad_mode])
    w = padded_window(window, n_fft, win_length)
    frames = 1 + (len(x) - n_fft) // hop
    n = np.arange(n_fft)
    k = np.arange(n_fft // 2 + 1)[:, None]
    basis = np.exp(-2j * np.pi * k * n / n_fft)  # (freq, n_fft)
    segments = np.stack([x[t * hop:t * hop + n_fft] * w for t in range(frames)], axis=1)
    return basis @ segments  # (freq, frames)


def np_istft(spec, n_fft, hop, win_length, window, center, length):
    """Inverse DFT per frame, synthesis window, overlap-add, divide by sum of w^2; float64."""
    w = padded_window(window, n_fft, win_length)
    frames = spec.shape[1]
    total = n_fft + hop * (frames - 1)
    out, env = np.zeros(total), np.zeros(total)
    for t in range(frames):
        out[t * hop:t * hop + n_fft] += np.fft.irfft(spec[:, t], n=n_fft) * w
        env[t * hop:t * hop + n_fft] += w**2
    start = n_fft // 2 if center else 0
    stop = total - start if length is None else min(total, start + length)
    y = out[start:stop] / env[start:stop]
    return y if length is None else np.pad(y, (0, length - len(y)))


CONFIGS = [  # n_fft, hop, win_length, window, center, pad_mode
    (16, 4, None, "hann", True, "reflect"),
    (15, 5, None, "hamming", True, "constant"),
    (32, 8, 20, "blackman", True, "replicate"),
    (16, 16, None, "rectangular", False, "reflect"),
    (12, 3, 9, "hann", True, "circular"),
    (64, 16, None, "hann", False, "reflect"),
]


@pytest.mark.parametrize(("n_fft", "hop", "win", "window", "center", "pad_mode"), CONFIGS)
def test_stft_matches_numpy_dft(n_fft, hop, win, window, center, pad_mode):
    x = np.random.default_rng(1).standard_normal(203)
    expected = np_stft(x, n_fft, hop, win or n_fft, window, center, pad_mode)
    got = stft(torch.from_numpy(x), n_fft=n_fft, hop_length=hop, win_length=win,
               window=window, center=center, pad_mode=pad_mode)
    assert got.dtype == torch.complex128
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


INVERTIBLE = [c for c in CONFIGS if c[3] != "hann" or c[4]]  # NOLA holds (see test_stft_errors)


@pytest.mark.parametrize(("n_fft", "hop", "win", "window", "center", "pad_mode"), INVERTIBLE)
@pytest.mark.parametrize("length", [None, 41])
def test_istft_matches_numpy_ola(n_fft, hop, win, window, center, pad_mode, length):
    # An arbitrary (not necessarily consistent) spectrogram: the inverse is still defined.
    rng = np.random.default_rng(2)
    frames = 17
    spec = rng.standard_normal((n_fft // 2 + 1, frames)) + 1j * rng.standard_normal(
        (n_fft // 2 + 1, frames))
    expected = np_istft(spec, n_fft, hop, win or n_fft, window, center, length)
    got = istft(torch.from_numpy(spec), n_fft=n_fft, hop_length=hop, win_length=win,
                window=window, center=center, length=length)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "rectangular"])
def test_make_window_formula(name):
    np.testing.assert_allclose(make_window(name, 10, dtype=torch.float64).numpy(),
                               np_window(name, 10), atol=1e-15)


@pytest.mark.filterwarnings("ignore:The length of signal is shorter:UserWarning")
@pytest.mark.parametrize(("n_fft", "hop", "win", "window", "center", "pad_mode"), CONFIGS)
def test_agrees_with_torch(n_fft, hop, win, window, center, pad_mode):
    x = torch.randn(3, 300)
    w = make_window(window, win or n_fft)
    expected = torch.stft(x, n_fft, hop, win or n_fft, w, center=center, pad_mode=pad_mode,
                          return_complex=True)
    got = stft(x, n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=center,
               pad_mode=pad_mode)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
    if (n_fft, hop, win, window, center, pad_mode) not in INVERTIBLE:
        return
    back = torch.istft(expected, n_fft, hop, win or n_fft, w, center=center, length=300)
    torch.testing.assert_close(istft(got, n_fft=n_fft, hop_length=hop, win_length=win,
                                     window=window, center=center, length=300), back)


def test_baseline_settings_frames_and_bins():
    spec = stft(torch.randn(2, 1, 16000), n_fft=1024, hop_length=160)
    assert spec.shape == (2, 1, 513, 1 + 16000 // 160)
    spec = stft(torch.randn(32000), n_fft=2048, hop_length=320)  # upstream AudioSep
    assert spec.shape == (1025, 101)


@st.composite
def stft_cases(draw):
    n_fft = draw(st.integers(4, 48))
    hop = draw(st.integers(1, max(1, n_fft // 2)))
    length = draw(st.integers(n_fft // 2 + 1, 200))
    batch = draw(st.lists(st.integers(1, 3), min_size=0, max_size=2))
    window = draw(st.sampled_from(["hann", "hamming"]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**16))
    return n_fft, hop, length, tuple(batch), window, dtype, seed


@given(stft_cases())
def test_perfect_reconstruction(case):
    n_fft, hop, length, batch, window, dtype, seed = case
    x = torch.randn(*batch, length, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    spec = stft(x, n_fft=n_fft, hop_length=hop, window=window)
    assert spec.shape == (*batch, n_fft // 2 + 1, 1 + (length + 2 * (n_fft // 2) - n_fft) // hop)
    y = istft(spec, n_fft=n_fft, hop_length=hop, window=window, length=length)
    assert y.dtype == dtype and y.shape == x.shape
    scale = float(x.std()) if x.numel() > 1 else 1.0
    atol = (1e-12 if dtype == torch.float64 else 1e-5) * scale
    torch.testing.assert_close(y, x, rtol=0, atol=atol)


@given(st.integers(1, 4), st.integers(0, 2**16))
def test_batch_equals_itemwise(batch, seed):
    x = torch.randn(batch, 2, 120, generator=torch.Generator().manual_seed(seed))
    spec = stft(x, n_fft=32, hop_length=8)
    for b in range(batch):
        for c in range(2):
            torch.testing.assert_close(spec[b, c], stft(x[b, c], n_fft=32, hop_length=8))
    y = istft(spec, n_fft=32, hop_length=8, length=120)
    for b in range(batch):
        torch.testing.assert_close(y[b], istft(spec[b], n_fft=32, hop_length=8, length=120))


def test_custom_window_tensor_equals_name():
    x = torch.randn(2, 100)
    w = torch.hann_window(24, periodic=True)
    kwargs = {"n_fft": 32, "hop_length": 6, "win_length": 24}
    torch.testing.assert_close(stft(x, window=w, **kwargs), stft(x, window="hann", **kwargs))
    spec = stft(x, **kwargs)
    torch.testing.assert_close(istft(spec, window=w.double(), length=100, **kwargs),
                               istft(spec, length=100, **kwargs))


@pytest.mark.filterwarnings("ignore:ComplexHalf support is experimental:UserWarning")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computed_in_float32(dtype):
    x = torch.randn(2, 400).to(dtype)
    spec = stft(x, n_fft=64, hop_length=16)
    assert spec.dtype == torch.complex64
    torch.testing.assert_close(spec, stft(x.float(), n_fft=64, hop_length=16))
    half_spec = spec.to(torch.complex32)
    y = istft(half_spec, n_fft=64, hop_length=16, length=400)
    assert y.dtype == torch.float16
    torch.testing.assert_close(y, istft(half_spec.to(torch.complex64), n_fft=64, hop_length=16,
                                        length=400).half())


def test_istft_output_dtype_follows_spec():
    x = torch.randn(300, dtype=torch.float64)
    assert istft(stft(x, n_fft=32, hop_length=8), n_fft=32, hop_length=8).dtype == torch.float64
    spec = stft(x.float(), n_fft=32, hop_length=8)
    assert istft(spec, n_fft=32, hop_length=8).dtype == torch.float32


def test_istft_default_length_and_zero_padding():
    x = torch.randn(2, 163)
    spec = stft(x, n_fft=32, hop_length=8)  # 21 frames
    assert istft(spec, n_fft=32, hop_length=8).shape == (2, 8 * 20)
    y = istft(spec, n_fft=32, hop_length=8, length=200)  # the last frame ends at sample 176
    assert y.shape == (2, 200)
    torch.testing.assert_close(y[:, :163], x, atol=1e-5, rtol=0)
    assert torch.equal(y[:, 176:], torch.zeros(2, 24)) and bool(y[:, 170:176].abs().min() > 0)
    reference = torch.istft(spec, 32, 8, window=torch.hann_window(32), length=176)
    torch.testing.assert_close(y[:, :176], reference)
    odd = stft(x, n_fft=15, hop_length=5, center=False)  # 30 frames
    assert istft(odd, n_fft=15, hop_length=5, center=False, window="hamming").shape == (2, 160)


def test_empty_batch():
    assert stft(torch.zeros(0, 3, 100), n_fft=16, hop_length=4).shape == (0, 3, 9, 26)
    for n_fft, center in [(15, True), (15, False), (16, False)]:
        kwargs = {"n_fft": n_fft, "hop_length": 4, "center": center}
        full = stft(torch.zeros(1, 100), **kwargs)
        assert stft(torch.zeros(0, 100), **kwargs).shape == (0, *full.shape[1:])
    spec = torch.zeros(0, 9, 26, dtype=torch.complex64)
    assert istft(spec, n_fft=16, hop_length=4, length=100).shape == (0, 100)


def test_modules_equal_functions_and_hold_window_buffer():
    x = torch.randn(2, 1, 500)
    enc = STFT(64, 16, win_length=48, window="hamming", pad_mode="constant")
    dec = ISTFT(64, 16, win_length=48, window="hamming")
    spec = enc(x)
    kwargs = {"n_fft": 64, "hop_length": 16, "win_length": 48, "window": "hamming"}
    torch.testing.assert_close(spec, stft(x, pad_mode="constant", **kwargs))
    torch.testing.assert_close(dec(spec, length=500), istft(spec, length=500, **kwargs))
    assert "window" in dict(enc.named_buffers()) and "window" in dict(dec.named_buffers())
    assert enc.state_dict() == {} and dec.state_dict() == {}
    enc64 = enc.to(torch.float64)
    assert enc64.window.dtype == torch.float64
    assert enc64(x.double()).dtype == torch.complex128
    assert "n_fft=64" in repr(enc) and "hop_length=16" in repr(dec)


def test_modules_accept_a_window_tensor():
    w = torch.rand(32) + 0.5
    x = torch.randn(3, 200)
    spec = STFT(32, 8, window=w)(x)
    torch.testing.assert_close(spec, stft(x, n_fft=32, hop_length=8, window=w))
    torch.testing.assert_close(ISTFT(32, 8, window=w)(spec, length=200), x, atol=1e-5, rtol=0)


def test_gradcheck_stft_istft():
    x = torch.randn(2, 40, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch.view_as_real(
        stft(t, n_fft=16, hop_length=4)), (x,))
    spec = torch.randn(2, 9, 11, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: istft(s, n_fft=16, hop_length=4, length=40),
                                    (spec,))


def test_compile_stft_roundtrip():
    pytest.importorskip("torch._dynamo")
    fn = torch.compile(lambda t: istft(stft(t, n_fft=32, hop_length=8), n_fft=32,
                                       hop_length=8, length=128), backend="eager")
    x = torch.randn(2, 128)
    torch.testing.assert_close(fn(x), x, atol=1e-5, rtol=0)


def exact_hann(n: int) -> torch.Tensor:
    """The periodic Hann window from its formula, float64."""
    return torch.from_numpy(np_window("hann", n))


def test_make_window_is_correctly_rounded_in_float32():
    for name in ("hann", "hamming", "blackman"):
        exact = torch.from_numpy(np_window(name, 1024))
        error = (make_window(name, 1024, dtype=torch.float32).double() - exact).abs()
        assert bool((error <= 2.0**-24 * exact.abs() + 1e-15).all())  # half an ulp


@pytest.mark.parametrize("convert", ["to", "double", "float-double", "deepcopy", "state_dict",
                                     "compile"])
def test_float64_modules_compute_with_the_exact_window(convert):
    """A module converted to float64 uses the float64 window, not a float32 one cast up."""
    import copy

    def to64(module):
        if convert == "to":
            return module.to(torch.float64)
        if convert == "float-double":
            return module.float().double()
        if convert == "deepcopy":
            return copy.deepcopy(module.double())
        if convert == "state_dict":
            fresh = type(module)(1024, 160).double()
            fresh.load_state_dict(module.state_dict())
            return fresh
        if convert == "compile":
            return torch.compile(module.double(), backend="eager")
        return module.double()

    x = torch.randn(2, 4000, dtype=torch.float64)
    enc, dec = to64(STFT(1024, 160)), to64(ISTFT(1024, 160))
    expected = torch.stft(x, 1024, 160, window=exact_hann(1024), center=True,
                          pad_mode="reflect", return_complex=True)
    torch.testing.assert_close(enc(x), expected, rtol=0, atol=1e-12)
    spec = torch.randn_like(expected)
    back = torch.istft(spec, 1024, 160, window=exact_hann(1024), center=True, length=4000)
    torch.testing.assert_close(dec(spec, length=4000), back, rtol=0, atol=1e-12)


def test_float32_module_window_equals_the_function_window():
    enc = STFT(64, 16, window="blackman").double().float()
    assert enc.window.dtype == torch.float32
    assert torch.equal(enc.window, make_window("blackman", 64))


@pytest.mark.parametrize("n_fft", [64, 63])
def test_istft_of_a_single_frame(n_fft):
    """One centred frame: ``n_fft - 2 * (n_fft // 2)`` samples by default, its half with length."""
    x = torch.randn(3, 40, dtype=torch.float64)  # shorter than the hop: one frame
    spec = stft(x, n_fft=n_fft, hop_length=48)
    assert spec.shape[-1] == 1
    default = istft(spec, n_fft=n_fft, hop_length=48)
    assert default.shape == (3, n_fft % 2) and default.dtype == torch.float64
    torch.testing.assert_close(default, x[:, :n_fft % 2], rtol=0, atol=1e-12)
    y = istft(spec, n_fft=n_fft, hop_length=48, length=40)  # the frame ends at sample 32
    torch.testing.assert_close(y[:, :32], x[:, :32], rtol=0, atol=1e-12)
    assert torch.equal(y[:, 32:], torch.zeros(3, 8, dtype=torch.float64))
    np.testing.assert_allclose(y[0].numpy(), np_istft(spec[0].numpy(), n_fft, 48, n_fft, "hann",
                                                      True, 40), rtol=0, atol=1e-12)
