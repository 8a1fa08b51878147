"""l1_loss, snr_loss, si_sdr_loss, sdr_loss and their Modules."""

from __future__ import annotations

import functools
import math

import metric_references as ref
import numpy as np
import pytest
import torch
from helpers import np64, pair
from hypothesis import given
from hypothesis import strategies as st
from torchmetrics.functional.audio import (
    scale_invariant_signal_noise_ratio as tm_si_snr,
)
from torchmetrics.functional.audio import signal_noise_ratio as tm_snr

import torchlass.losses._fused as fused
from torchlass.errors import DTypeError, NonFiniteError, ShapeError, ValueRangeError
from torchlass.losses import (
    L1Loss,
    SDRLoss,
    SISDRLoss,
    SNRLoss,
    l1_loss,
    sdr_loss,
    si_sdr_loss,
    snr_loss,
)
from torchlass.metrics import si_sdr, snr

EPS64 = float(np.finfo(np.float64).eps)


SNR_LOSSES = [
    functools.partial(snr_loss, zero_mean=False),
    functools.partial(snr_loss, zero_mean=True, snr_max=20.0),
    functools.partial(si_sdr_loss, zero_mean=True),
    functools.partial(si_sdr_loss, zero_mean=False, snr_max=30.0),
    functools.partial(sdr_loss, lam=0.9),
    functools.partial(sdr_loss, lam=0.3, zero_mean=False, snr_max=25.0),
]
ALL_LOSSES = [l1_loss, *SNR_LOSSES]


def loss_id(loss):
    if isinstance(loss, functools.partial):
        return f"{loss.func.__name__}-{'-'.join(f'{k}={v}' for k, v in loss.keywords.items())}"
    return loss.__name__


# --------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("snr_max", [None, 10.0, 40.0])
@pytest.mark.parametrize("zero_mean", [False, True])
def test_snr_losses_match_numpy(dtype, snr_max, zero_mean):
    estimate, target = pair((2, 3, 301), dtype=dtype)
    eps = float(torch.finfo(dtype).eps)
    tau = 0.0 if snr_max is None else 10 ** (-snr_max / 10)
    args = (np64(estimate), np64(target))
    cases = [
        (snr_loss, ref.rows(ref.snr_loss, *args, eps=eps, tau=tau, zero_mean=zero_mean)),
        (si_sdr_loss, ref.rows(ref.si_sdr_loss, *args, eps=eps, tau=tau, zero_mean=zero_mean)),
    ]
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    for loss, expected in cases:
        got = loss(estimate, target, zero_mean=zero_mean, snr_max=snr_max, reduction="none")
        assert got.shape == (2, 3)
        assert got.dtype == dtype
        np.testing.assert_allclose(got.double().numpy(), expected, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("zero_mean", [False, True])
def test_loss_is_minus_metric(zero_mean, tol):
    estimate, target = pair((4, 200), seed=1)
    torch.testing.assert_close(snr_loss(estimate, target, zero_mean=zero_mean, reduction="none"),
                               -snr(estimate, target, zero_mean=zero_mean), **tol(torch.float64))
    torch.testing.assert_close(
        si_sdr_loss(estimate, target, zero_mean=zero_mean, reduction="none"),
        -si_sdr(estimate, target, zero_mean=zero_mean), **tol(torch.float64))


def test_sdr_loss_is_clapsep_loss_from_torchmetrics(tol):
    """CLAPSep: 0.9 * torchmetrics SNR + 0.1 * torchmetrics SI-SNR, negated."""
    estimate, target = pair((3, 2, 500), seed=2)
    expected = -(0.9 * tm_snr(estimate, target) + 0.1 * tm_si_snr(estimate, target))
    torch.testing.assert_close(sdr_loss(estimate, target, reduction="none"), expected,
                               **tol(torch.float64))
    torch.testing.assert_close(sdr_loss(estimate, target), expected.mean(), **tol(torch.float64))
    torch.testing.assert_close(sdr_loss(estimate, target, lam=1.0),
                               snr_loss(estimate, target), **tol(torch.float64))


def test_l1_loss_is_the_baselines_mean_absolute_error():
    estimate, target = pair((2, 3, 100), seed=3, dtype=torch.float32)
    torch.testing.assert_close(l1_loss(estimate, target),
                               torch.mean(torch.abs(estimate - target)))
    per_signal = l1_loss(estimate, target, reduction="none")
    assert per_signal.shape == (2, 3)
    torch.testing.assert_close(per_signal, (estimate - target).abs().mean(-1))
    torch.testing.assert_close(l1_loss(estimate, target, reduction="sum"), per_signal.sum())


@pytest.mark.parametrize("loss", SNR_LOSSES, ids=loss_id)
def test_reductions(loss):
    estimate, target = pair((3, 4, 64), seed=4)
    values = loss(estimate, target, reduction="none")
    assert values.shape == (3, 4)
    torch.testing.assert_close(loss(estimate, target), values.mean())
    torch.testing.assert_close(loss(estimate, target, reduction="sum"), values.sum())


def test_float32_loss_does_not_saturate_at_high_si_sdr():
    """At ~90 dB the 1 - cos^2 form is useless in float32; the explicit error is not."""
    g = torch.Generator().manual_seed(5)
    target = torch.randn(4, 8000, generator=g)
    estimate = target + 3e-5 * torch.randn(4, 8000, generator=g)
    expected = ref.rows(ref.si_sdr_loss, np64(estimate), np64(target), eps=ref.F32_EPS)
    got = si_sdr_loss(estimate, target, reduction="none")
    np.testing.assert_allclose(got.double().numpy(), expected, atol=1e-4)
    cos2 = torch.linalg.vecdot(estimate, target) ** 2 / (
        torch.linalg.vecdot(estimate, estimate) * torch.linalg.vecdot(target, target))
    saturated = 10 * torch.log10((1 - cos2).clamp_min(1e-30) / cos2)
    assert (saturated.double().numpy() - expected).__abs__().max() > 1.0


# --------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=loss_id)
def test_gradcheck(loss):
    estimate, target = pair((2, 3, 12), seed=6)
    estimate.requires_grad_(True)
    target.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e, t: loss(e, t, reduction="none"),
                                    (estimate, target))


def test_gradcheck_through_the_eps_terms():
    """Near silence the eps terms dominate; the analytic gradient must still be exact."""
    estimate, target = pair((2, 6), seed=7)
    estimate = (estimate * 1e-8).requires_grad_(True)
    target = (target * 1e-8).requires_grad_(True)
    for loss in SNR_LOSSES:
        assert torch.autograd.gradcheck(
            lambda e, t, loss=loss: loss(e, t, reduction="none"), (estimate, target),
            eps=1e-12, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("loss", SNR_LOSSES, ids=loss_id)
def test_float32_gradient_matches_float64_autograd_reference(loss):
    estimate, target = pair((3, 400), seed=8, dtype=torch.float32)
    x = estimate.clone().requires_grad_(True)
    loss(x, target).backward()
    # Independent reference: autograd through the float64 numpy-style formula.
    x64 = estimate.double().requires_grad_(True)
    eps, kw = ref.F32_EPS, loss.keywords
    tau = 0.0 if kw.get("snr_max") is None else 10 ** (-kw["snr_max"] / 10)

    def snr_term(e, t, zero_mean):
        if zero_mean:
            e, t = e - e.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
        power = t.square().sum(-1)
        return 10 * torch.log10(((t - e).square().sum(-1) + tau * power + eps) / (power + eps))

    def si_term(e, t, zero_mean):
        if zero_mean:
            e, t = e - e.mean(-1, keepdim=True), t - t.mean(-1, keepdim=True)
        alpha = ((e * t).sum(-1, keepdim=True) + eps) / (t.square().sum(-1, keepdim=True) + eps)
        p = alpha * t
        power = p.square().sum(-1)
        return 10 * torch.log10(((p - e).square().sum(-1) + tau * power + eps) / (power + eps))

    t64 = target.double()
    if loss.func is snr_loss:
        value = snr_term(x64, t64, kw["zero_mean"])
    elif loss.func is si_sdr_loss:
        value = si_term(x64, t64, kw["zero_mean"])
    else:
        lam = kw["lam"]
        value = lam * snr_term(x64, t64, False) + (1 - lam) * si_term(
            x64, t64, kw.get("zero_mean", True))
    value.mean().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", ["silent estimate", "silent target", "both silent",
                                  "perfect", "negated"])
def test_finite_loss_and_gradient_at_the_edges(dtype, case):
    _, target = pair((2, 50), seed=9, dtype=dtype)
    zero = torch.zeros_like(target)
    estimate, target = {
        "silent estimate": (zero, target),
        "silent target": (target, zero),
        "both silent": (zero, zero),
        "perfect": (target, target),
        "negated": (-target, target),
    }[case]
    for loss in ALL_LOSSES:
        x = estimate.clone().requires_grad_(True)
        t = target.clone().requires_grad_(True)
        value = loss(x, t)
        value.backward()
        assert bool(torch.isfinite(value)), (loss_id(loss), case)
        assert bool(torch.isfinite(x.grad).all()) and bool(torch.isfinite(t.grad).all())


def test_documented_edge_values():
    _, target = pair((50,), seed=10, dtype=torch.float32)
    zero = torch.zeros_like(target)
    assert si_sdr_loss(zero, target).item() == 0.0
    assert snr_loss(zero, zero).item() == 0.0
    assert snr_loss(target, target, snr_max=30.0).item() == pytest.approx(-30.0, abs=1e-4)
    assert si_sdr_loss(target, target, snr_max=30.0).item() == pytest.approx(-30.0, abs=1e-4)
    assert snr_loss(-target, target).item() == pytest.approx(-20 * math.log10(0.5), abs=1e-5)


@pytest.mark.parametrize("scale", [1e-20, 1e25])
def test_tiny_and_huge_float32_amplitudes(scale):
    """Energies are summed in float64, so huge float32 ones do not overflow, gradients too."""
    estimate, target = pair((3, 100), seed=11, dtype=torch.float32)
    x = (estimate * scale).requires_grad_(True)
    t = target * scale
    for loss in (snr_loss, si_sdr_loss):
        value = loss(x, t, reduction="none")
        expected_fn = ref.snr_loss if loss is snr_loss else ref.si_sdr_loss
        expected = ref.rows(expected_fn, np64(x), np64(t), eps=ref.F32_EPS)
        np.testing.assert_allclose(value.detach().double().numpy(), expected, rtol=1e-5,
                                   atol=1e-5)
        x.grad = None
        value.sum().backward()
        assert bool(torch.isfinite(x.grad).all())
    if scale > 1:
        unit = si_sdr_loss(estimate, target, reduction="none")
        torch.testing.assert_close(si_sdr_loss(x, t, reduction="none"), unit, rtol=1e-5,
                                   atol=1e-5)


def test_chunked_cpu_path_equals_one_chunk(monkeypatch):
    estimate, target = pair((7, 50), seed=12, dtype=torch.float32)
    results = {}
    for chunk in (1 << 30, 120, 10):  # one chunk; two rows per chunk; one row per chunk
        monkeypatch.setattr(fused, "_CHUNK_ELEMENTS", chunk)
        monkeypatch.setattr(fused, "_THREADED_CHUNK_ELEMENTS", chunk)
        for loss in SNR_LOSSES:
            x = estimate.clone().requires_grad_(True)
            t = target.clone().requires_grad_(True)
            value = loss(x, t, reduction="none")
            value.pow(2).sum().backward()
            results.setdefault(loss_id(loss), []).append((value, x.grad, t.grad))
    for runs in results.values():
        for value, gx, gt in runs[1:]:
            torch.testing.assert_close(value, runs[0][0])
            torch.testing.assert_close(gx, runs[0][1])
            torch.testing.assert_close(gt, runs[0][2])


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=loss_id)
def test_autocast_bfloat16_gives_float32_losses(loss):
    estimate, target = pair((2, 300), seed=13, dtype=torch.bfloat16)
    x = estimate.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        value = loss(x, target, reduction="none")
    assert value.dtype == torch.float32
    expected = loss(estimate.float(), target.float(), reduction="none")
    torch.testing.assert_close(value, expected, rtol=1e-6, atol=1e-6)
    value.sum().backward()
    assert x.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("loss", ALL_LOSSES, ids=loss_id)
def test_batch_equals_items_and_rows_do_not_contaminate(loss):
    estimate, target = pair((4, 80), seed=14, dtype=torch.float32)
    estimate[1] = 0.0
    target[2] = 0.0
    batch = loss(estimate, target, reduction="none")
    for i in range(4):
        torch.testing.assert_close(batch[i], loss(estimate[i:i + 1], target[i:i + 1],
                                                  reduction="none")[0])


# ---------------------------------------------------------------------- hypothesis

seeds = st.integers(0, 2**31 - 1)


@given(seed=seeds, length=st.integers(2, 48), snr_max=st.floats(0.0, 60.0))
def test_snr_max_is_a_soft_ceiling(seed, length, snr_max):
    estimate, target = pair((2, length), seed=seed, noise=0.01)
    for loss in (snr_loss, si_sdr_loss):
        capped = loss(estimate, target, snr_max=snr_max, reduction="none")
        plain = loss(estimate, target, reduction="none")
        assert bool((capped >= -snr_max - 1e-9).all())
        assert bool((capped >= plain - 1e-9).all())


@given(seed=seeds, length=st.integers(1, 48))
def test_loss_equals_minus_metric(seed, length):
    estimate, target = pair((3, length), seed=seed)
    torch.testing.assert_close(si_sdr_loss(estimate, target, reduction="none"),
                               -si_sdr(estimate, target, zero_mean=True), rtol=1e-9,
                               atol=1e-9)
    torch.testing.assert_close(snr_loss(estimate, target, reduction="none"),
                               -snr(estimate, target), rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------- modules


def test_modules_equal_functions():
    estimate, target = pair((2, 3, 40), seed=15)
    pairs = [
        (L1Loss(reduction="sum"), functools.partial(l1_loss, reduction="sum")),
        (SNRLoss(zero_mean=True, snr_max=20.0),
         functools.partial(snr_loss, zero_mean=True, snr_max=20.0)),
        (SISDRLoss(), si_sdr_loss),
        (SISDRLoss(zero_mean=False, reduction="none"),
         functools.partial(si_sdr_loss, zero_mean=False, reduction="none")),
        (SDRLoss(lam=0.5), functools.partial(sdr_loss, lam=0.5)),
    ]
    for module, function in pairs:
        torch.testing.assert_close(module(estimate, target), function(estimate, target))
    assert "snr_max=20.0" in repr(SNRLoss(zero_mean=True, snr_max=20.0))
    with pytest.raises(ValueRangeError, match=r"SISDRLoss\(\): argument 'reduction'"):
        SISDRLoss(reduction="max")


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("loss", [l1_loss, snr_loss, si_sdr_loss, sdr_loss])
def test_bad_input_messages(loss):
    name = loss.__name__
    good = torch.randn(2, 8)
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'estimate' expected a "
                                         r"floating-point tensor, got dtype torch.int32"):
        loss(torch.ones(2, 8, dtype=torch.int32), good)
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'target' expected a real "
                                         r"floating-point tensor, got dtype torch.complex128"):
        loss(good, torch.ones(2, 8, dtype=torch.complex128))
    with pytest.raises(ShapeError, match=rf"{name}\(\): arguments 'estimate' and 'target' must "
                                         r"have the same shape, got \(2, 8\) and \(8,\)"):
        loss(good, torch.randn(8))
    with pytest.raises(ShapeError, match=rf"{name}\(\): argument 'estimate' expected at least "
                                         r"1 samples along dim -1"):
        loss(torch.zeros(2, 0), torch.zeros(2, 0))
    with pytest.raises(ShapeError, match=rf"{name}\(\): argument 'estimate' expected at least "
                                         r"one signal, got shape \(0, 8\)"):
        loss(torch.zeros(0, 8), torch.zeros(0, 8))
    with pytest.raises(ValueRangeError, match=rf"{name}\(\): argument 'reduction' expected one "
                                              r"of 'mean', 'sum', 'none', got 'max'"):
        loss(good, good, reduction="max")
    bad = good.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(NonFiniteError, match=rf"{name}\(\): argument 'target' expected finite "
                                             r"values, got 1 NaN/Inf element"):
        loss(good, bad)
    bad[0, 1] = float("-inf")
    with pytest.raises(NonFiniteError, match=rf"{name}\(\): argument 'estimate' expected finite"):
        loss(bad, good)
    assert not bool(torch.isfinite(loss(bad, good, check_finite=False)))


def test_bad_options():
    x = torch.randn(8)
    with pytest.raises(ValueRangeError, match=r"snr_loss\(\): argument 'snr_max' expected a "
                                              r"finite float \(dB\) or None, got inf"):
        snr_loss(x, x, snr_max=float("inf"))
    with pytest.raises(DTypeError, match=r"si_sdr_loss\(\): argument 'snr_max' expected a float "
                                         r"\(dB\) or None, got str"):
        si_sdr_loss(x, x, snr_max="30")
    with pytest.raises(ValueRangeError, match=r"sdr_loss\(\): argument 'lam' expected a float "
                                              r"in \[0, 1\], got 1.5"):
        sdr_loss(x, x, lam=1.5)
    with pytest.raises(DTypeError, match=r"sdr_loss\(\): argument 'lam' expected a float, "
                                         r"got NoneType"):
        sdr_loss(x, x, lam=None)


@pytest.mark.filterwarnings("ignore:Dynamo detected a call to a `functools.lru_cache`")
def test_torch_compile_matches_eager():
    """Under torch.compile MixIT and the fused loss inside it run (with graph breaks around
    the custom autograd function and the search) and give the eager value and gradient."""
    from torchlass.losses import mixit_loss

    estimate, mixtures = pair((2, 3, 200), seed=16, dtype=torch.float32)
    mixtures = mixtures[:, :2]

    def fn(e, m):
        return mixit_loss(e, m, check_finite=False)

    x = estimate.clone().requires_grad_(True)
    value = torch.compile(fn, backend="eager")(x, mixtures)
    (grad,) = torch.autograd.grad(value, x)
    expected = fn(x, mixtures)
    (expected_grad,) = torch.autograd.grad(expected, x)
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(grad, expected_grad)
