"""Accuracy of the SNR-family losses near perfect estimates, against float64 references.

Run ``python benchmarks/loss_accuracy.py`` (CPU, a few seconds). For estimates at 60 to
120 dB and for an exact copy, it prints the error of each loss value (dB) and the
relative error of its gradient with respect to the estimate,
``||g - g_ref|| / ||g_ref||`` (floored at a 0 dB estimate's gradient norm). Both are the
worst over the rows, for torchlass in float32 and float64 and for torchmetrics in
float32. The reference is the same formula evaluated in float64 on the very same
(float32-rounded) samples. Its gradient is the complex-step derivative of
``tests/loss_references.py``, exact to float64 rounding even at an exact copy. The rows
have an RMS of 60 over 256 samples, so the energy is about 1e6. The float32 ``eps``
floor then caps the SNR near 129 dB, and 120 dB is still resolved.

``python benchmarks/loss_accuracy.py --timing`` also times forward plus backward of the
losses at the full sizes of ``benchmarks/test_bench_losses.py`` (one thread, best of 5).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torchmetrics.functional.audio import (
    scale_invariant_signal_noise_ratio,
    signal_noise_ratio,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from loss_references import F32_EPS, F64_EPS, snr_family_gradient, snr_family_loss

from torchlass.losses import mixit_loss, pit_loss, si_sdr_loss, snr_loss

LEVELS = (60.0, 80.0, 100.0, 120.0, None)  # SNR of the estimate in dB; None: exact copy
ROWS, LENGTH, RMS = 4, 256, 60.0

# name -> (torchlass loss, torchmetrics metric, reference options)
LOSSES = {
    "si_sdr_loss": (si_sdr_loss, scale_invariant_signal_noise_ratio,
                    {"scale_invariant": True, "zero_mean": True}),
    "snr_loss": (snr_loss, signal_noise_ratio, {"scale_invariant": False, "zero_mean": False}),
}


def signals(level: float | None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 ``(estimate, target)`` rows, the estimate ``level`` dB from the target."""
    g = torch.Generator().manual_seed(seed)
    target = RMS * torch.randn(ROWS, LENGTH, generator=g, dtype=torch.float64)
    if level is None:
        return target.float(), target.float()
    noise = torch.randn(ROWS, LENGTH, generator=g, dtype=torch.float64)
    noise *= target.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True)
    return (target + 10 ** (-level / 20) * noise).float(), target.float()


def _errors(loss: torch.Tensor, estimate: torch.Tensor, target: torch.Tensor,
            want: np.ndarray, want_grad: np.ndarray) -> tuple[float, float]:
    # Relative to ||g_ref||, floored at the gradient norm of a 0 dB estimate, 20 / (ln 10 ||s||):
    # at an exact copy the gradient of snr_loss is exactly zero.
    floor = 20 / np.log(10) / target.double().norm(dim=-1).numpy()
    scale = np.maximum(np.linalg.norm(want_grad, axis=-1), floor)
    (grad,) = torch.autograd.grad(loss.sum(), estimate)
    value_error = np.abs(loss.detach().double().numpy() - want).max()
    diff = np.linalg.norm(grad.double().numpy() - want_grad, axis=-1)
    return float(value_error), float((diff / scale).max())


def measure(name: str, level: float | None) -> dict[str, tuple[float, float]]:
    """``{implementation: (value error dB, gradient relative error)}`` at one level."""
    loss_fn, metric, options = LOSSES[name]
    estimate32, target32 = signals(level)
    x, s = estimate32.double().numpy(), target32.double().numpy()
    out = {}
    for label, dtype, eps in (("torchlass float32", torch.float32, F32_EPS),
                              ("torchlass float64", torch.float64, F64_EPS),
                              ("torchmetrics float32", torch.float32, F32_EPS)):
        want = snr_family_loss(x, s, eps=eps, **options)
        want_grad = snr_family_gradient(x, s, eps=eps, **options)
        estimate = estimate32.to(dtype).requires_grad_(True)
        target = target32.to(dtype)
        if label.startswith("torchlass"):
            loss = loss_fn(estimate, target, reduction="none")
        else:
            loss = -metric(estimate, target)
        out[label] = _errors(loss, estimate, target, want, want_grad)
    return out


def table() -> str:
    """The markdown table of ``docs/api/losses.md``."""
    labels = ("torchlass float32", "torchlass float64", "torchmetrics float32")
    short = ("torchlass f32", "torchlass f64", "torchmetrics f32")
    head = " | ".join([f"value error (dB), {k}" for k in short]
                      + [f"gradient rel. error, {k}" for k in short])
    lines = [f"| loss | estimate | {head} |", "|---|---" + "|--:" * 6 + "|"]
    for name in LOSSES:
        for level in LEVELS:
            result = measure(name, level)
            values = " | ".join(f"{result[k][0]:.1e}" for k in labels)
            grads = " | ".join(f"{result[k][1]:.1e}" for k in labels)
            where = "exact copy" if level is None else f"{level:.0f} dB"
            lines.append(f"| `{name}` | {where} | {values} | {grads} |")
    return "\n".join(lines)


def _time(loss_fn, estimate: torch.Tensor, target: torch.Tensor, rounds: int = 5) -> float:
    """Best wall time (ms) of loss + gradient with respect to the estimate."""
    estimate = estimate.clone().requires_grad_(True)
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        torch.autograd.grad(loss_fn(estimate, target), estimate)
        best = min(best, time.perf_counter() - start)
    return 1e3 * best


def timings() -> str:
    """Markdown rows ``| call | ms |`` at the benchmark's full sizes."""
    g = torch.Generator().manual_seed(0)
    cases = []
    s = torch.randn(16, 4, 160000, generator=g)
    for fn in (si_sdr_loss, snr_loss):
        cases.append((f"{fn.__name__} 16x4x160000", fn,
                      s + 0.1 * torch.randn(s.shape, generator=g), s))
    s = torch.randn(8, 4, 160000, generator=g)
    cases.append(("pit_loss 8x4x160000", pit_loss,
                  s.flip(1) + 0.1 * torch.randn(s.shape, generator=g), s))
    for m in (4, 8):
        sources = torch.randn(8, m, 32000, generator=g)
        mixtures = torch.stack([sources[:, 0::2].sum(1), sources[:, 1::2].sum(1)], 1)
        cases.append((f"mixit_loss M={m} 8x32000", mixit_loss,
                      sources + 0.1 * torch.randn(sources.shape, generator=g), mixtures))
    return "\n".join(f"| `{name}` | {_time(fn, x, y):.0f} ms |" for name, fn, x, y in cases)


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(table())
    if "--timing" in sys.argv[1:]:
        print(timings())
