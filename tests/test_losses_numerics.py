"""The losses near perfect estimates, at DC offsets and at the ends of the float64 range.

The references are the formula in float64 on the very same samples
(``loss_references``: complex-step gradients, exact even at an exact copy;
``metric_references``: brute-force MixIT and PIT). Estimates are drawn near perfect
(40 to 150 dB), at scales over many decades and with DC offsets up to 1e4 times their
RMS. These are the places where a loss stops training a model that is nearly done.
"""

from __future__ import annotations

import functools
import math

import metric_references as ref
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from loss_references import F32_EPS, F64_EPS, snr_family_gradient, snr_family_loss
from torchmetrics.functional.audio import (
    scale_invariant_signal_noise_ratio as tm_si_snr,
)
from torchmetrics.functional.audio import signal_noise_ratio as tm_snr

from torchlass.errors import ValueRangeError
from torchlass.losses import mixit_loss, pit_loss, sdr_loss, si_sdr_loss, snr_loss

EPS = {torch.float32: F32_EPS, torch.float64: F64_EPS}
GRAD_RTOL = {torch.float32: 1e-3, torch.float64: 1e-8}  # the float32 bound


def _case(name: str, zero_mean: bool, snr_max: float | None):
    """``(torchlass loss, [(weight, reference options)])``: sdr_loss is two terms."""
    tau = 0.0 if snr_max is None else 10 ** (-snr_max / 10)
    snr = {"scale_invariant": False, "zero_mean": False, "tau": tau}
    si = {"scale_invariant": True, "zero_mean": zero_mean, "tau": tau}
    if name == "snr_loss":
        return (functools.partial(snr_loss, zero_mean=zero_mean, snr_max=snr_max),
                [(1.0, {**snr, "zero_mean": zero_mean})])
    if name == "si_sdr_loss":
        return functools.partial(si_sdr_loss, zero_mean=zero_mean, snr_max=snr_max), [(1.0, si)]
    return (functools.partial(sdr_loss, zero_mean=zero_mean, snr_max=snr_max),
            [(0.9, snr), (0.1, si)])


def _reference(terms, x: np.ndarray, s: np.ndarray, eps: float
               ) -> tuple[np.ndarray, np.ndarray]:
    value = sum(w * snr_family_loss(x, s, eps=eps, **o) for w, o in terms)
    grad = sum(w * snr_family_gradient(x, s, eps=eps, **o) for w, o in terms)
    return value, grad


def _grad_error(grad: torch.Tensor, want: np.ndarray, target: np.ndarray) -> float:
    """Worst row of ``||g - g_ref|| / ||g_ref||``, floored at a 0 dB estimate's gradient.

    At an exact copy the SNR gradient is 0; the floor ``20 / (ln 10 ||s||)`` then makes
    the measure absolute, on the scale of the loss's ordinary gradients.
    """
    floor = 20 / math.log(10) / np.maximum(np.linalg.norm(target, axis=-1), 1e-300)
    scale = np.maximum(np.linalg.norm(want, axis=-1), floor)
    return float((np.linalg.norm(grad.double().numpy() - want, axis=-1) / scale).max())


def near_copy(rows: int, length: int, level: float | None, *, scale: float = 1.0,
              dc: float = 0.0, seed: int = 0, dtype=torch.float32):
    """float ``(estimate, target)``: the estimate ``level`` dB from the target (None: equal)."""
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(rows, length, generator=g, dtype=torch.float64)
    estimate = target.clone()
    if level is not None:
        noise = torch.randn(rows, length, generator=g, dtype=torch.float64)
        estimate += 10 ** (-level / 20) * noise * target.norm(dim=-1, keepdim=True) / noise.norm(
            dim=-1, keepdim=True)
    offset = dc * torch.randn(rows, 1, generator=g, dtype=torch.float64)
    return (scale * (estimate + offset)).to(dtype), (scale * (target + offset)).to(dtype)


# ------------------------------------------------------------------ exact copies: zero


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("zero_mean", [False, True])
@pytest.mark.parametrize("snr_max", [None, 60.0])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_snr_loss_gradient_is_exactly_zero_at_an_exact_copy(dtype, zero_mean, snr_max, scale):
    estimate, target = near_copy(3, 200, None, scale=scale, dc=5.0, dtype=dtype)
    estimate.requires_grad_(True)
    snr_loss(estimate, target, zero_mean=zero_mean, snr_max=snr_max).backward()
    assert torch.equal(estimate.grad, torch.zeros_like(estimate))


@pytest.mark.parametrize("snr_max", [None, 80.0, 60.0])
def test_mixit_gradient_is_exactly_zero_at_an_exact_remix(snr_max):
    # dyadic samples: the float32 mixtures are the exact sums of the sources
    g = torch.Generator().manual_seed(1)
    sources = torch.round(torch.randn(2, 4, 300, generator=g) * 256) / 256
    mixtures = torch.stack([sources[:, 0] + sources[:, 3], sources[:, 1] + sources[:, 2]], 1)
    estimates = sources.clone().requires_grad_(True)
    loss, assignment = mixit_loss(estimates, mixtures, snr_max=snr_max, return_assignment=True)
    loss.backward()
    assert assignment.tolist() == [[0, 1, 1, 0]] * 2
    assert torch.equal(estimates.grad, torch.zeros_like(estimates))


# ------------------------------------------- near perfect: the float64 formula's gradient


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("level", [60.0, 80.0, None], ids=["60dB", "80dB", "exact"])
@pytest.mark.parametrize(("name", "zero_mean", "snr_max"), [
    ("si_sdr_loss", True, None), ("si_sdr_loss", False, None), ("si_sdr_loss", True, 60.0),
    ("snr_loss", False, None), ("snr_loss", True, 80.0), ("sdr_loss", True, None),
])
def test_gradient_near_perfect_matches_the_float64_formula(dtype, level, name, zero_mean,
                                                           snr_max):
    loss_fn, terms = _case(name, zero_mean, snr_max)
    estimate, target = near_copy(3, 128, level, scale=30.0, dc=2.0, dtype=dtype)
    estimate.requires_grad_(True)
    value = loss_fn(estimate, target, reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), estimate)
    x, s = estimate.detach().double().numpy(), target.double().numpy()
    want, want_grad = _reference(terms, x, s, EPS[dtype])
    assert _grad_error(grad, want_grad, s) < GRAD_RTOL[dtype]
    np.testing.assert_allclose(value.detach().double().numpy(), want, rtol=1e-6, atol=0)


@pytest.mark.parametrize("level", [60.0, 80.0, None], ids=["60dB", "80dB", "exact"])
def test_pit_gradient_near_perfect_matches_the_float64_formula(level):
    estimate, target = near_copy(6, 96, level, scale=30.0, dc=3.0)
    estimates = estimate.view(2, 3, 96)[:, [2, 0, 1]].clone().requires_grad_(True)
    loss = pit_loss(estimates, target.view(2, 3, 96), reduction="sum")
    (grad,) = torch.autograd.grad(loss, estimates)
    x, s = estimate.double().numpy(), target.double().numpy()
    options = {"scale_invariant": True, "zero_mean": True}
    want = snr_family_gradient(x, s, eps=F32_EPS, **options) / 3  # mean over the sources
    got = grad[:, [1, 2, 0]].reshape(6, 96)  # back in target order
    assert _grad_error(got, want, s) < 1e-3
    want_loss = snr_family_loss(x, s, eps=F32_EPS, **options).sum() / 3
    np.testing.assert_allclose(float(loss.detach()), want_loss, rtol=1e-6)


@pytest.mark.parametrize(("name", "metric"), [("si_sdr_loss", tm_si_snr), ("snr_loss", tm_snr)])
@pytest.mark.parametrize("level", [60.0, 100.0])
def test_float32_at_least_as_accurate_as_torchmetrics(name, metric, level):
    loss_fn, terms = _case(name, name == "si_sdr_loss", None)
    # rms 60 over 256 samples: the float32 eps floor caps the SNR near 129 dB
    estimate, target = near_copy(4, 256, level, scale=60.0)
    ours = estimate.clone().requires_grad_(True)
    theirs = estimate.clone().requires_grad_(True)
    value = loss_fn(ours, target, reduction="none")
    their_value = -metric(theirs, target)
    grads = [torch.autograd.grad(v.sum(), t)[0] for v, t in ((value, ours), (their_value, theirs))]
    x, s = estimate.double().numpy(), target.double().numpy()
    want, want_grad = _reference(terms, x, s, F32_EPS)
    value_error = np.abs(value.detach().double().numpy() - want).max()
    their_value_error = np.abs(their_value.detach().double().numpy() - want).max()
    assert value_error < 1e-2 and value_error <= their_value_error + 1e-5
    grad_error, their_grad_error = (_grad_error(g, want_grad, s) for g in grads)
    assert grad_error < 1e-3 and grad_error <= max(their_grad_error, 1e-6)


@st.composite
def near_perfect_pairs(draw, zero_mean: bool):
    """Drawn targets, an estimate 40-150 dB away (or equal), scale and DC offset drawn."""
    rows, length = draw(st.integers(1, 3)), draw(st.integers(2, 48))
    samples = st.floats(-1.0, 1.0, allow_subnormal=False, width=32)
    target = np.array(draw(st.lists(samples, min_size=rows * length, max_size=rows * length))
                      ).reshape(rows, length)
    direction = np.array(draw(st.lists(samples, min_size=rows * length,
                                       max_size=rows * length))).reshape(rows, length)
    level = draw(st.one_of(st.none(), st.floats(40.0, 150.0)))
    scale = 10.0 ** draw(st.floats(-4.0, 4.0))
    dc = draw(st.sampled_from([0.0, 1.0, 1e2, 1e4])) if zero_mean else 0.0
    centred = target - target.mean(-1, keepdims=True)
    rms = np.sqrt((centred**2).mean(-1, keepdims=True))
    if np.any(rms < 1e-3) or np.any(np.abs(direction).sum(-1) == 0):
        target = target + np.linspace(-0.5, 0.5, length)  # a silent row is not near-perfect
        rms = np.sqrt(((target - target.mean(-1, keepdims=True)) ** 2).mean(-1, keepdims=True))
        direction = direction + np.cos(np.arange(length))
    estimate = target.copy()
    if level is not None:
        norm = np.linalg.norm(direction, axis=-1, keepdims=True)
        estimate += 10 ** (-level / 20) * direction / norm * rms * np.sqrt(length)
    offset = dc * rms * np.sign(np.cos(np.arange(rows)))[:, None]
    return (torch.from_numpy(scale * (estimate + offset)).float(),
            torch.from_numpy(scale * (target + offset)).float())


@pytest.mark.parametrize(("name", "zero_mean", "snr_max"), [
    ("si_sdr_loss", True, None), ("snr_loss", False, None), ("sdr_loss", True, 80.0),
])
@given(data=st.data())
def test_float32_near_perfect_property(name, zero_mean, snr_max, data):
    estimate, target = data.draw(near_perfect_pairs(zero_mean))
    loss_fn, terms = _case(name, zero_mean, snr_max)
    estimate.requires_grad_(True)
    value = loss_fn(estimate, target, reduction="none")
    (grad,) = torch.autograd.grad(value.sum(), estimate)
    x, s = estimate.detach().double().numpy(), target.double().numpy()
    want, want_grad = _reference(terms, x, s, F32_EPS)
    np.testing.assert_allclose(value.detach().double().numpy(), want, rtol=1e-6, atol=1e-5)
    assert _grad_error(grad, want_grad, s) < 1e-3


# -------------------------------------------------------------- one sample, zero mean


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("loss", [
    functools.partial(snr_loss, zero_mean=True), functools.partial(si_sdr_loss, zero_mean=True),
    functools.partial(si_sdr_loss, zero_mean=True, snr_max=20.0),
    lambda x, s: pit_loss(x.unsqueeze(0), s.unsqueeze(0)),
])
def test_zero_mean_one_sample_is_constant_zero_with_zero_gradient(dtype, loss):
    estimate = torch.tensor([[3.0], [-2.0]], dtype=dtype, requires_grad=True)
    target = torch.tensor([[0.5], [7.0]], dtype=dtype, requires_grad=True)
    value = loss(estimate, target)
    value.backward()
    assert value.item() == 0.0
    assert torch.equal(estimate.grad, torch.zeros_like(estimate))
    assert torch.equal(target.grad, torch.zeros_like(target))


# ----------------------------------------------------------- the top of the float64 range


@pytest.mark.parametrize(("fn", "loss"), [
    ("snr_loss", snr_loss), ("si_sdr_loss", si_sdr_loss), ("sdr_loss", sdr_loss),
    ("pit_loss", pit_loss), ("mixit_loss", functools.partial(mixit_loss, snr_max=None)),
], ids=["snr", "si_sdr", "sdr", "pit", "mixit"])
def test_float64_overflow_raises_instead_of_nan(fn, loss):
    estimate, target = near_copy(4, 32, 20.0, scale=1e200, dtype=torch.float64)
    with pytest.raises(ValueRangeError, match=rf"{fn}\(\): the signal energies overflow "
                                               r"float64 \(amplitudes above about 1e150\)"):
        loss(estimate.view(2, 2, 32), target.view(2, 2, 32))


@pytest.mark.parametrize("scale", [1e-150, 1e140])
@pytest.mark.parametrize("level", [30.0, None])
def test_float64_extremes_below_overflow_are_finite_and_exact(scale, level):
    estimate, target = near_copy(2, 32, level, scale=scale, dtype=torch.float64)
    for name in ("si_sdr_loss", "snr_loss"):
        loss_fn, terms = _case(name, True, None)
        x = estimate.clone().requires_grad_(True)
        value = loss_fn(x, target, reduction="none")
        (grad,) = torch.autograd.grad(value.sum(), x)
        assert torch.isfinite(value).all() and torch.isfinite(grad).all()
        want, _ = _reference(terms, estimate.numpy(), target.numpy(), F64_EPS)
        np.testing.assert_allclose(value.detach().numpy(), want, rtol=1e-9)


# ------------------------------------------------------------------ PIT with DC offsets


@given(seed=st.integers(0, 2**31 - 1), sources=st.integers(2, 4), length=st.integers(8, 64),
       dc=st.sampled_from([1e3, 3e3, 1e4]), noise=st.floats(0.0, 1.0))
def test_pit_float32_picks_the_float64_permutation_under_dc_offsets(seed, sources, length, dc,
                                                                    noise):
    g = torch.Generator().manual_seed(seed)
    targets = torch.randn(2, sources, length, generator=g, dtype=torch.float64)
    order = torch.randperm(sources, generator=g)
    estimates = targets[:, order] + noise * torch.randn(2, sources, length, generator=g,
                                                        dtype=torch.float64)
    offsets = dc * torch.randn(2, 2 * sources, 1, generator=g, dtype=torch.float64)
    estimates = (estimates + offsets[:, :sources]).float()
    targets = (targets + offsets[:, sources:]).float()
    loss, perm = pit_loss(estimates, targets, reduction="none", return_permutation=True)
    pair = functools.partial(ref.si_sdr_loss, eps=F32_EPS)
    want, want_perm = ref.pit_brute_force(estimates.double().numpy(), targets.double().numpy(),
                                          pair)
    assert perm.tolist() == want_perm.tolist()
    np.testing.assert_allclose(loss.double().numpy(), want, rtol=1e-5, atol=1e-4)


# ---------------------------------------------------------- MixIT near perfect estimates


@st.composite
def near_perfect_mixit(draw):
    """float32 estimates 40-150 dB from the sources of two mixtures, one nearly silent."""
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    length = draw(st.integers(16, 64))
    scale = 10.0 ** draw(st.floats(-2.0, 3.0))
    sources = scale * torch.randn(1, 4, length, generator=g, dtype=torch.float64)
    sources[:, 3] *= 10.0 ** draw(st.floats(-6.0, -2.0))  # a near-silent extra source
    assign = draw(st.lists(st.integers(0, 1), min_size=4, max_size=4))
    mixtures = torch.zeros(1, 2, length, dtype=torch.float64)
    for m, n in enumerate(assign):
        mixtures[:, n] += sources[:, m]
    level = draw(st.floats(40.0, 150.0))
    noise = torch.randn(1, 4, length, generator=g, dtype=torch.float64)
    noise *= sources.norm(dim=-1, keepdim=True) / noise.norm(dim=-1, keepdim=True)
    estimates = sources + 10 ** (-level / 20) * noise
    return estimates.float(), mixtures.float()


def _mixit_check(estimates: torch.Tensor, mixtures: torch.Tensor, snr_max: float | None
                 ) -> None:
    tau = 0.0 if snr_max is None else 10 ** (-snr_max / 10)
    loss, assignment = mixit_loss(estimates, mixtures, snr_max=snr_max, reduction="none",
                                  return_assignment=True)
    e, x = estimates.double().numpy(), mixtures.double().numpy()
    want, _ = ref.mixit_brute_force(e, x, F32_EPS, tau)
    chosen = [sum(ref.snr_loss(e[b, assignment[b] == n].sum(0), x[b, n], F32_EPS, tau)
                  for n in range(x.shape[1])) for b in range(x.shape[0])]
    # the chosen assignment is a float64 minimum, and the value is its float64 loss
    np.testing.assert_allclose(chosen, want, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(loss.double().numpy(), want, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("snr_max", [None, 80.0, 60.0])
@given(problem=near_perfect_mixit())
def test_mixit_float32_chooses_the_float64_minimum_near_perfect(snr_max, problem):
    _mixit_check(*problem, snr_max)


@pytest.mark.parametrize("snr_max", [None, 80.0, 60.0])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_mixit_float32_near_perfect_with_a_silent_ish_estimate(snr_max, scale):
    # a loud exact-ish remix where moving a -100 dB estimate changes the loss by dB
    g = torch.Generator().manual_seed(7)
    sources = scale * torch.randn(3, 5, 4000, generator=g, dtype=torch.float64)
    sources[:, 4] *= 1e-5
    mixtures = torch.stack([sources[:, 0] + sources[:, 2], sources[:, 1] + sources[:, 3]], 1)
    estimates = sources + 1e-7 * scale * torch.randn(3, 5, 4000, generator=g,
                                                     dtype=torch.float64)
    _mixit_check(estimates.float(), mixtures.float(), snr_max)
