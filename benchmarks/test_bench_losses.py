"""Benchmarks of the losses, forward + backward, against the implementations users pick.

Groups (float32, sizes with ``--benchmark``; tiny sizes in the smoke run):

* ``si-sdr``: negative zero-mean SI-SDR on 16 x 4 x 160000 (16 examples, 4 sources,
  10 s at 16 kHz): torchlass, torchmetrics, asteroid, and the closed form on float64
  sums (``||x||^2 - <x,s>^2/||s||^2``, the fast but saturating alternative).
* ``mixit-M4`` / ``mixit-M8``: MixIT with 2 mixtures on batch 8 x 32000: torchlass,
  asteroid's ``MixITLossWrapper`` and every assignment's remix scored in one einsum.
* ``pit-4``: PIT with 4 sources on 8 x 4 x 160000: torchlass, torchmetrics (speaker-wise)
  and asteroid's ``PITLossWrapper`` on its pairwise SI-SDR matrix.

asteroid is optional (``pip install asteroid --no-deps`` plus ``huggingface_hub``, which
its package ``__init__`` imports); its cases are skipped when it does not import.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
import torch
from torchmetrics.functional.audio import (
    permutation_invariant_training,
    scale_invariant_signal_distortion_ratio,
    scale_invariant_signal_noise_ratio,
)

from benchmarks.conftest import synchronize
from torchlass.losses import mixit_loss, pit_loss, si_sdr_loss

pytestmark = pytest.mark.filterwarnings("ignore:Creating a tensor from a list")

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

SI_SDR_SIZE = {"smoke": (2, 2, 1000), "full": (16, 4, 160000)}
MIXIT_SIZE = {"smoke": (2, 1000), "full": (8, 32000)}
PIT_SIZE = {"smoke": (2, 4, 1000), "full": (8, 4, 160000)}
ROUNDS = 5


def _size(request: pytest.FixtureRequest, sizes: dict[str, tuple[int, ...]]
          ) -> tuple[int, ...]:
    return sizes["full" if request.config.getoption("--benchmark") else "smoke"]


def _asteroid() -> object:
    return pytest.importorskip("asteroid.losses", reason="asteroid is not installed")


def _fwd_bwd(benchmark: object, loss: Loss, estimate: torch.Tensor, target: torch.Tensor,
             device: torch.device, rounds: int = ROUNDS) -> torch.Tensor:
    """Time loss + gradient (``autograd.grad``, so nothing accumulates between rounds)."""
    estimate = estimate.requires_grad_(True)

    def run() -> torch.Tensor:
        value = loss(estimate, target)
        (grad,) = torch.autograd.grad(value, estimate)
        synchronize(device)
        return grad

    grad = benchmark.pedantic(run, rounds=rounds, warmup_rounds=1)  # type: ignore[attr-defined]
    assert bool(torch.isfinite(grad).all())
    return grad


# ------------------------------------------------------------------------------ SI-SDR


def si_sdr_float64_sums(estimate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Negative SI-SNR from float64 sums in closed form (saturates: reference only)."""
    x, s = estimate.double(), target.double()
    length = x.shape[-1]
    mean_x, mean_s = x.mean(-1), s.mean(-1)
    inner = (x * s).sum(-1) - length * mean_x * mean_s
    energy_s = s.square().sum(-1) - length * mean_s.square()
    energy_x = x.square().sum(-1) - length * mean_x.square()
    projection = inner.square() / energy_s
    return (10 * torch.log10((energy_x - projection) / projection)).mean().float()


def _si_sdr_impl(name: str) -> Loss:
    if name == "torchlass":
        return si_sdr_loss
    if name == "torchmetrics":
        return lambda e, t: -scale_invariant_signal_distortion_ratio(e, t, zero_mean=True).mean()
    if name == "asteroid":
        asteroid = _asteroid()
        return lambda e, t: asteroid.singlesrc_neg_sisdr(  # type: ignore[attr-defined]
            e.reshape(-1, e.shape[-1]), t.reshape(-1, t.shape[-1])).mean()
    return si_sdr_float64_sums


@pytest.mark.parametrize("impl", ["torchlass", "torchmetrics", "asteroid", "float64_sums"])
def test_si_sdr_forward_backward(benchmark, request, device, impl):
    benchmark.group = "si-sdr fwd+bwd"
    loss = _si_sdr_impl(impl)
    g = torch.Generator().manual_seed(0)
    target = torch.randn(_size(request, SI_SDR_SIZE), generator=g)
    estimate = target + 0.5 * torch.randn(target.shape, generator=g)
    _fwd_bwd(benchmark, loss, estimate.to(device), target.to(device), device)


# ------------------------------------------------------------------------------- MixIT


def mixit_all_assignments_einsum(estimates: torch.Tensor, mixtures: torch.Tensor,
                                 snr_max: float = 30.0) -> torch.Tensor:
    """Every remix at once by one einsum, thresholded negative SNR, min over assignments."""
    num_mix, num_est = mixtures.shape[1], estimates.shape[1]
    table = torch.tensor(list(itertools.product(range(num_mix), repeat=num_est)))
    hot = torch.nn.functional.one_hot(table, num_mix).transpose(1, 2).to(estimates)
    remix = torch.einsum("knm,bmt->bknt", hot, estimates)
    power = mixtures.square().sum(-1).unsqueeze(1)
    error = (mixtures.unsqueeze(1) - remix).square().sum(-1)
    tau, eps = 10 ** (-snr_max / 10), torch.finfo(estimates.dtype).eps
    per_mix = 10 * torch.log10(error + tau * power + eps) - 10 * torch.log10(power + eps)
    return per_mix.sum(-1).min(dim=1).values.mean()


def _mixit_impl(name: str) -> Loss:
    if name == "torchlass":
        return mixit_loss
    if name == "einsum":
        return mixit_all_assignments_einsum
    asteroid = _asteroid()
    return asteroid.MixITLossWrapper(  # type: ignore[attr-defined]
        asteroid.multisrc_neg_snr, generalized=True)  # type: ignore[attr-defined]


@pytest.mark.parametrize("num_estimates", [4, 8])
@pytest.mark.parametrize("impl", ["torchlass", "asteroid", "einsum"])
def test_mixit_forward_backward(benchmark, request, device, impl, num_estimates):
    benchmark.group = f"mixit fwd+bwd M={num_estimates}"
    loss = _mixit_impl(impl)
    batch, length = _size(request, MIXIT_SIZE)
    g = torch.Generator().manual_seed(0)
    estimates = torch.randn(batch, num_estimates, length, generator=g)
    mixtures = torch.randn(batch, 2, length, generator=g)
    slow = impl != "torchlass" and num_estimates == 8
    _fwd_bwd(benchmark, loss, estimates.to(device), mixtures.to(device), device,
             rounds=2 if slow else ROUNDS)


# --------------------------------------------------------------------------------- PIT


def _pit_impl(name: str) -> Loss:
    if name == "torchlass":
        return pit_loss
    if name == "torchmetrics":
        return lambda e, t: -permutation_invariant_training(
            e, t, scale_invariant_signal_noise_ratio, mode="speaker-wise",
            eval_func="max")[0].mean()
    asteroid = _asteroid()
    return asteroid.PITLossWrapper(  # type: ignore[attr-defined]
        asteroid.pairwise_neg_sisdr, pit_from="pw_mtx")  # type: ignore[attr-defined]


@pytest.mark.parametrize("impl", ["torchlass", "torchmetrics", "asteroid"])
def test_pit_forward_backward(benchmark, request, device, impl):
    benchmark.group = "pit fwd+bwd 4 sources"
    loss = _pit_impl(impl)
    g = torch.Generator().manual_seed(0)
    targets = torch.randn(_size(request, PIT_SIZE), generator=g)
    estimates = targets.flip(1) + 0.5 * torch.randn(targets.shape, generator=g)
    _fwd_bwd(benchmark, loss, estimates.to(device), targets.to(device), device)
