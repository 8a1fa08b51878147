"""Benchmarks of the DCASE 2024 baseline separator (ResUNet30): train step and inference.

Train step: AdamW (amsgrad, lr 1e-3), L1 loss on the waveform, as the baseline trains;
float32 or bfloat16 autocast, contiguous or channels_last. Smoke mode (always; each case run
once) uses batch 1 x 0.3 s and the ResUNet30 layout at 1/8 of its widths, to exercise the
code in seconds. With ``--benchmark``: the full preset, batch 2 x 1 s on the CPU (SPEC.md
section 4.5 times the original there) and batch 16 x 10 s on CUDA (the issue's setting);
inference of one clip of 1 s (CPU) or 10 s (CUDA).
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.conftest import synchronize
from torchlass import Separator

pytestmark = pytest.mark.benchmark(group="resunet")

SMOKE = (1, 4800)
FULL = {"cpu": (2, 16000), "cuda": (16, 160000)}
ROUNDS = {"cpu": 2, "cuda": 20}
SMOKE_WIDTHS = {"stem_width": 4, "widths": (4, 8, 16, 32, 48, 48)}


def _size(request: pytest.FixtureRequest, device: torch.device) -> tuple[int, int]:
    return FULL[device.type] if request.config.getoption("--benchmark") else SMOKE


def _time(benchmark, request: pytest.FixtureRequest, device: torch.device, fn):
    """Smoke mode: one call; ``--benchmark``: fixed rounds after a warm-up (cuDNN autotuning)."""
    if not request.config.getoption("--benchmark"):
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=ROUNDS[device.type], warmup_rounds=1)


def _separator(request: pytest.FixtureRequest, device: torch.device,
               channels_last: bool) -> Separator:
    torch.manual_seed(0)
    options = {} if request.config.getoption("--benchmark") else SMOKE_WIDTHS
    sep = Separator.dcase2024_baseline(check_finite=False, **options).to(device)
    return sep.to(memory_format=torch.channels_last) if channels_last else sep


@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_train_step(benchmark, request, device, dtype, channels_last):
    batch, length = _size(request, device)
    sep = _separator(request, device, channels_last).train()
    optimizer = torch.optim.AdamW(sep.parameters(), lr=1e-3, amsgrad=True)
    g = torch.Generator().manual_seed(0)
    mixture = (0.1 * torch.randn(batch, 1, length, generator=g)).to(device)
    target = (0.1 * torch.randn(batch, 1, length, generator=g)).to(device)
    condition = torch.nn.functional.normalize(torch.randn(batch, 512, generator=g)).to(device)

    def step() -> float:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = (sep(mixture, condition)[:, 0] - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        synchronize(device)
        return float(loss.detach())

    loss = _time(benchmark, request, device, step)
    assert loss == loss  # finite: not NaN


@pytest.mark.parametrize("dtype", ["fp32", "bf16"])
def test_inference(benchmark, request, device, dtype):
    full = request.config.getoption("--benchmark")
    length = (160000 if device.type == "cuda" else 16000) if full else SMOKE[1]
    sep = _separator(request, device, channels_last=device.type == "cuda").eval()
    mixture = (0.1 * torch.randn(1, 1, length, generator=torch.Generator().manual_seed(0)))
    mixture, condition = mixture.to(device), torch.ones(1, 512, device=device) / 512**0.5

    def run() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16,
                                                    enabled=dtype == "bf16"):
            out = sep(mixture, condition)
        synchronize(device)
        return out

    out = _time(benchmark, request, device, run)
    assert out.shape == (1, 1, 1, length)  # (batch, sources, channels, time)
