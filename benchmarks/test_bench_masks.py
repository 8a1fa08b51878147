"""Mask application benchmarks: eager, ``torch.compile`` and the fused Triton kernels.

One group per mask family and pass (``mask-<family>-fwd``, ``mask-<family>-fwd+bwd``).
Inputs as a separator produces them: a spectrogram ``(batch, 1, 1, freq, frames)`` as
``torch.stft`` lays it out (frequency-fastest) and mask planes sliced from one network
output ``(batch, sources * planes, freq, frames)``. Sizes: ``smoke`` always; with
``--benchmark`` the issue's ``(16, 1, 1025, 1001)`` on CUDA and ``(2, 1, 1025, 201)`` on the
CPU. ``fused`` runs on CUDA only; ``compile`` is skipped in the smoke run (compilation
takes longer than every other smoke case together). ``extra_info`` holds the memory floor
(float32 planes read and written once) and the effective bandwidth.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from benchmarks.conftest import report_bandwidth, synchronize
from torchlass.masks import apply_complex_ratio_mask, apply_mag_phase_mask, apply_real_imag_mask

FAMILIES: dict[str, tuple[Callable[..., torch.Tensor], str, int]] = {
    "mag_phase": (apply_mag_phase_mask, "fused_apply_mag_phase_mask", 3),
    "real_imag": (apply_real_imag_mask, "fused_apply_real_imag_mask", 2),
    "complex_ratio": (apply_complex_ratio_mask, "fused_apply_complex_ratio_mask", 2),
}
SMOKE = (2, 65, 21)
FULL = {"cpu": (2, 1025, 201), "cuda": (16, 1025, 1001)}


def _inputs(request: pytest.FixtureRequest, device: torch.device, planes: int,
            requires_grad: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
    batch, freq, frames = FULL[device.type] if request.config.getoption("--benchmark") else SMOKE
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(batch, 1, 1, frames, freq, dtype=torch.complex64, generator=g)
    spec = spec.to(device).transpose(-1, -2)
    net_out = torch.randn(batch, planes, freq, frames, generator=g).to(device)
    net_out.requires_grad_(requires_grad)
    split = net_out.reshape(batch, 1, 1, planes, freq, frames).unbind(3)
    return spec, list(split)


def _implementation(request: pytest.FixtureRequest, device: torch.device, impl: str,
                    family: str):
    eager, fused_name, _ = FAMILIES[family]
    if impl == "eager":
        return eager
    if impl == "compile":
        if not request.config.getoption("--benchmark"):
            pytest.skip("torch.compile is timed with --benchmark only (slow to compile)")
        return torch.compile(eager, dynamic=False)
    if device.type != "cuda":
        pytest.skip("the fused kernels run on CUDA (the CPU interpreter is for tests only)")
    kernels = pytest.importorskip("torchlass.kernels")
    if not kernels.triton_importable():
        pytest.skip("triton is not installed")
    return getattr(kernels, fused_name)


@pytest.mark.parametrize("impl", ["eager", "compile", "fused"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_mask_forward(benchmark, request, device, family, impl):
    apply = _implementation(request, device, impl, family)
    planes = FAMILIES[family][2]
    spec, masks = _inputs(request, device, planes, requires_grad=False)
    benchmark.group = f"mask-{family}-fwd"

    def run() -> torch.Tensor:
        out = apply(spec, *masks)
        synchronize(device)
        return out

    out = benchmark(run)
    report_bandwidth(benchmark, spec.numel() * (16 + 4 * planes))
    assert out.shape == masks[0].shape and out.is_complex()


@pytest.mark.parametrize("impl", ["eager", "compile", "fused"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_mask_forward_backward(benchmark, request, device, family, impl):
    apply = _implementation(request, device, impl, family)
    planes = FAMILIES[family][2]
    spec, masks = _inputs(request, device, planes, requires_grad=True)
    cotangent = torch.ones_like(spec)
    benchmark.group = f"mask-{family}-fwd+bwd"

    def run() -> tuple[torch.Tensor, ...]:
        grads = torch.autograd.grad(apply(spec, *masks), masks, cotangent)
        synchronize(device)
        return grads

    grads = benchmark(run)
    # forward: spectrum + planes read, output written; backward: cotangent, spectrum and
    # planes read, plane gradients written
    report_bandwidth(benchmark, spec.numel() * (16 + 4 * planes + 16 + 8 * planes))
    assert all(g.shape == m.shape for g, m in zip(grads, masks, strict=True))
