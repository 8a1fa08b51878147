"""Mask benchmarks: eager, ``torch.compile``, the fused Triton kernels and the mask heads.

One group per mask family and pass (``mask-<family>-fwd``, ``mask-<family>-fwd+bwd``).
Inputs as a separator produces them: a spectrogram ``(batch, 1, 1, freq, frames)`` as
``torch.stft`` lays it out (frequency-fastest) and mask planes sliced from one network
output ``(batch, planes, freq, frames)``. Implementations: ``eager`` is the public
``apply_*`` function on its eager path (``TORCHLASS_KERNELS=0``), ``compile`` that function
under ``torch.compile`` (timed with ``--benchmark`` only: compiling takes longer than every
other smoke case together), ``fused`` the public function dispatching to the fused kernel
(CUDA only), and ``head`` (forward+backward) the mask-head module on the network output as
it runs in a separator: bound activations, reshape and the mask, with the default dispatch.
Sizes: ``smoke`` always; with ``--benchmark`` the issue's ``(16, 1, 1025, 1001)`` on CUDA
and ``(2, 1, 1025, 201)`` on the CPU. ``extra_info`` holds the memory floor (float32 planes
read and written once) and the effective bandwidth.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from benchmarks.conftest import time_call
from torchlass.masks import (
    ComplexRatioMaskHead,
    MagPhaseMaskHead,
    RealImagMaskHead,
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
)

FAMILIES: dict[str, tuple[Callable[..., torch.Tensor], type[torch.nn.Module], int]] = {
    "mag_phase": (apply_mag_phase_mask, MagPhaseMaskHead, 3),
    "real_imag": (apply_real_imag_mask, RealImagMaskHead, 2),
    "complex_ratio": (apply_complex_ratio_mask, ComplexRatioMaskHead, 2),
}
SMOKE = (2, 65, 21)
FULL = {"cpu": (2, 1025, 201), "cuda": (16, 1025, 1001)}


def _inputs(request: pytest.FixtureRequest, device: torch.device, planes: int,
            requires_grad: bool) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Spectrogram, network output and the mask planes sliced from it."""
    batch, freq, frames = FULL[device.type] if request.config.getoption("--benchmark") else SMOKE
    g = torch.Generator().manual_seed(0)
    spec = torch.randn(batch, 1, 1, frames, freq, dtype=torch.complex64, generator=g)
    spec = spec.to(device).transpose(-1, -2)
    net_out = torch.randn(batch, planes, freq, frames, generator=g).to(device)
    net_out.requires_grad_(requires_grad)
    return spec, net_out, list(net_out.reshape(batch, 1, 1, planes, freq, frames).unbind(3))


def _apply(request: pytest.FixtureRequest, kernel_path: Callable[[str], None], impl: str,
           family: str) -> Callable[..., torch.Tensor]:
    kernel_path(impl)
    apply = FAMILIES[family][0]
    if impl != "compile":
        return apply
    if not request.config.getoption("--benchmark"):
        pytest.skip("torch.compile is timed with --benchmark only (slow to compile)")
    return torch.compile(apply, dynamic=False)


@pytest.mark.parametrize("impl", ["eager", "compile", "fused"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_mask_forward(benchmark, request, device, kernel_path, family, impl):
    apply = _apply(request, kernel_path, impl, family)
    planes = FAMILIES[family][2]
    spec, _, masks = _inputs(request, device, planes, requires_grad=False)
    benchmark.group = f"mask-{family}-fwd"
    out = time_call(benchmark, device, lambda: apply(spec, *masks),
                    spec.numel() * (16 + 4 * planes))
    assert out.shape == masks[0].shape and out.is_complex()


@pytest.mark.parametrize("impl", ["eager", "compile", "fused", "head"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_mask_forward_backward(benchmark, request, device, kernel_path, family, impl):
    _, head_type, planes = FAMILIES[family]
    spec, net_out, masks = _inputs(request, device, planes, requires_grad=True)
    cotangent = torch.ones_like(spec)
    benchmark.group = f"mask-{family}-fwd+bwd"
    if impl == "head":  # gradient with respect to the network output, as in training
        head = head_type()
        spec = spec.squeeze(1)

        def step() -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(head(net_out, spec), net_out, cotangent)
    else:
        apply = _apply(request, kernel_path, impl, family)

        def step() -> tuple[torch.Tensor, ...]:
            return torch.autograd.grad(apply(spec, *masks), masks, cotangent)

    # forward: spectrum + planes read, output written; backward: cotangent, spectrum and
    # planes read, plane gradients written
    grads = time_call(benchmark, device, step, spec.numel() * (32 + 12 * planes))
    assert all(g.shape[-2:] == spec.shape[-2:] for g in grads)
