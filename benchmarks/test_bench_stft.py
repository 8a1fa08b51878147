"""STFT front-end benchmarks: forward transform, separator features, inverse transform.

Groups ``stft``, ``features`` and ``istft``. ``torchlass`` / ``eager`` is the public
torchlass function on its eager path (``TORCHLASS_KERNELS=0``); ``fused`` is the same public
function where it dispatches to the fused kernels of :mod:`torchlass.kernels` (CUDA only:
features from one read of the spectrum; overlap-add, envelope and trim in one kernel);
``torch`` is plain ``torch.stft`` / ``torch.istft`` and ``asteroid`` asteroid-filterbanks'
``Encoder`` / ``Decoder`` (a strided conv1d). Upstream AudioSep settings: 32 kHz, n_fft 2048,
hop 320. Sizes: ``smoke`` (2 x 0.25 s) always; with ``--benchmark`` 16 x 10 s on CUDA
(spectrogram ``(16, 1025, 1001)``, the issue's size) and 2 x 2 s on the CPU. ``extra_info``
holds the memory floor and the effective bandwidth.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import time_call
from torchlass.stft import istft, magnitude_phase, stft

N_FFT, HOP = 2048, 320
SMOKE = (2, 8000)
FULL = {"cpu": (2, 64000), "cuda": (16, 320000)}


def _signal(request: pytest.FixtureRequest, device: torch.device) -> torch.Tensor:
    batch, length = FULL[device.type] if request.config.getoption("--benchmark") else SMOKE
    g = torch.Generator().manual_seed(0)
    return (0.1 * torch.randn(batch, length, generator=g)).to(device)


def _spec_bytes(x: torch.Tensor) -> int:
    frames = 1 + x.shape[-1] // HOP
    return x.shape[0] * (N_FFT // 2 + 1) * frames * 8


def _asteroid(kind: str, device: torch.device) -> torch.nn.Module:
    filterbanks = pytest.importorskip("asteroid_filterbanks")
    bank = filterbanks.STFTFB(n_filters=N_FFT, kernel_size=N_FFT, stride=HOP)
    module = filterbanks.Encoder(bank) if kind == "encoder" else filterbanks.Decoder(bank)
    return module.to(device)


@pytest.mark.benchmark(group="stft")
@pytest.mark.parametrize("impl", ["torchlass", "torch", "asteroid"])
def test_stft(benchmark, request, device, impl):
    x = _signal(request, device)
    window = torch.hann_window(N_FFT, device=device)
    if impl == "torchlass":
        fn = lambda: stft(x, n_fft=N_FFT, hop_length=HOP, check_finite=False)  # noqa: E731
    elif impl == "torch":
        fn = lambda: torch.stft(x, N_FFT, HOP, window=window, return_complex=True)  # noqa: E731
    else:
        encoder = _asteroid("encoder", device)
        fn = lambda: encoder(x.unsqueeze(1))  # noqa: E731
    with torch.no_grad():
        out = time_call(benchmark, device, fn, x.numel() * 4 + _spec_bytes(x))
    assert out.shape[0] == x.shape[0]


@pytest.mark.benchmark(group="features")
@pytest.mark.parametrize("impl", ["eager", "fused"])
def test_stft_features(benchmark, request, device, kernel_path, impl):
    """STFT plus the baseline's features (floored magnitude, phase cosine and sine)."""
    kernel_path(impl)
    x = _signal(request, device)

    def fn() -> tuple[torch.Tensor, ...]:
        return magnitude_phase(stft(x, n_fft=N_FFT, hop_length=HOP, check_finite=False))

    # spectrum written and read once, three feature planes written
    floor = x.numel() * 4 + 2 * _spec_bytes(x) + 3 * _spec_bytes(x) // 2
    with torch.no_grad():
        mag, _, _ = time_call(benchmark, device, fn, floor)
    assert mag.shape == (x.shape[0], N_FFT // 2 + 1, 1 + x.shape[-1] // HOP)


@pytest.mark.benchmark(group="istft")
@pytest.mark.parametrize("impl", ["torchlass", "fused", "torch", "asteroid"])
def test_istft(benchmark, request, device, kernel_path, impl):
    kernel_path("fused" if impl == "fused" else "eager")
    x = _signal(request, device)
    window = torch.hann_window(N_FFT, device=device)
    length = x.shape[-1]
    spec = torch.stft(x, N_FFT, HOP, window=window, return_complex=True)
    if impl in ("torchlass", "fused"):
        fn = lambda: istft(spec, n_fft=N_FFT, hop_length=HOP, length=length,  # noqa: E731
                           check_finite=False)
    elif impl == "torch":
        fn = lambda: torch.istft(spec, N_FFT, HOP, window=window, length=length)  # noqa: E731
    else:
        decoder = _asteroid("decoder", device)
        encoded = _asteroid("encoder", device)(x.unsqueeze(1)).detach()
        fn = lambda: decoder(encoded)  # noqa: E731
    with torch.no_grad():
        out = time_call(benchmark, device, fn, _spec_bytes(x) + x.numel() * 4)
    assert out.shape[0] == x.shape[0]
