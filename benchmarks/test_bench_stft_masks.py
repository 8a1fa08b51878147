"""Benchmarks of the STFT front-end and the mask heads at the DCASE 2024 baseline's sizes.

Sizes: ``small`` (smoke, always) and ``baseline`` (batch 16 of 10 s at 16 kHz, n_fft 1024,
hop 160; only with ``--benchmark``).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import synchronize
from torchlass.masks import ComplexRatioMaskHead, MagPhaseMaskHead, RealImagMaskHead
from torchlass.stft import istft, stft

pytestmark = pytest.mark.benchmark(group="stft-masks")

SIZES = {"small": (2, 8000), "baseline": (16, 160000)}
HEADS = {"mag_phase": MagPhaseMaskHead, "real_imag": RealImagMaskHead,
         "complex_ratio": ComplexRatioMaskHead}


def _size(request: pytest.FixtureRequest, name: str) -> tuple[int, int]:
    if name != "small" and not request.config.getoption("--benchmark"):
        pytest.skip("large sizes run with --benchmark")
    return SIZES[name]


@pytest.mark.parametrize("size", list(SIZES))
def test_stft_istft_roundtrip(benchmark, request, device, size):
    batch, time = _size(request, size)
    x = torch.randn(batch, 1, time, generator=torch.Generator().manual_seed(0)).to(device)

    def run() -> torch.Tensor:
        y = istft(stft(x, n_fft=1024, hop_length=160), n_fft=1024, hop_length=160, length=time)
        synchronize(device)
        return y

    assert benchmark(run).shape == x.shape


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("head_name", list(HEADS))
def test_mask_head_forward_backward(benchmark, request, device, size, head_name):
    batch, time = _size(request, size)
    head = HEADS[head_name]()
    frames = 1 + time // 160
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(batch, 1, 513, frames, dtype=torch.complex64, generator=g).to(device)
    net_out = torch.randn(batch, head.planes, 513, frames, generator=g).to(device)
    net_out.requires_grad_(True)

    def run() -> torch.Tensor:
        out = head(net_out, spec)
        torch.view_as_real(out).square().sum().backward()
        synchronize(device)
        return out

    assert benchmark(run).shape == (batch, 1, 1, 513, frames)
