"""torchlass.metrics against float64 numpy references, torchmetrics and mir_eval."""

from __future__ import annotations

import math
import warnings

import metric_references as ref
import numpy as np
import pytest
import strategies as sts
import torch
from helpers import assert_batch_equals_items, np64, pair
from hypothesis import given
from hypothesis import strategies as st
from torchmetrics.functional.audio import (
    scale_invariant_signal_distortion_ratio as tm_si_sdr,
)
from torchmetrics.functional.audio import signal_distortion_ratio as _tm_sdr
from torchmetrics.functional.audio import signal_noise_ratio as tm_snr

from torchlass.errors import DTypeError, NonFiniteError, ShapeError, ValueRangeError
from torchlass.metrics import bss_sdr, dcase2024_scores, sdr, sdri, si_sdr, si_sdri, snr


def tm_sdr(estimate: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
    """torchmetrics' BSS-eval SDR, computed on one thread.

    torchmetrics solves its Toeplitz systems with a batched ``torch.linalg.solve``; with the
    CPU build of torch 2.13 and more than one thread, oneMKL rejects the 512-tap batch
    ("Parameter 6 was incorrect on entry to DLASWP") and the solve raises. One thread avoids
    the library bug without changing the reference's arithmetic.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _tm_sdr(estimate, target, **kwargs)
    finally:
        torch.set_num_threads(threads)

EPS64 = float(np.finfo(np.float64).eps)


def mir_eval_sdr(estimate: torch.Tensor, target: torch.Tensor) -> float:
    import mir_eval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = mir_eval.separation.bss_eval_sources(
            np64(target)[None], np64(estimate)[None], compute_permutation=False
        )[0][0]
    return float(value)


# --------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("zero_mean", [False, True])
def test_snr_and_si_sdr_match_numpy(dtype, zero_mean):
    estimate, target = pair((2, 3, 257), dtype=dtype)
    eps = float(torch.finfo(dtype).eps)
    args = (np64(estimate), np64(target))
    expected_snr = ref.rows(ref.snr, *args, eps=eps, zero_mean=zero_mean)
    expected_si = ref.rows(ref.si_sdr, *args, eps=eps, zero_mean=zero_mean)
    got_snr = snr(estimate, target, zero_mean=zero_mean)
    got_si = si_sdr(estimate, target, zero_mean=zero_mean)
    assert got_snr.dtype == got_si.dtype == dtype  # computed in float64, returned as input
    assert got_snr.shape == got_si.shape == (2, 3)
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(got_snr.double().numpy(), expected_snr, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(got_si.double().numpy(), expected_si, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_challenge_sdr_matches_numpy(dtype):
    estimate, target = pair((4, 300), dtype=dtype)
    expected = ref.rows(ref.challenge_sdr, np64(estimate), np64(target))
    got = sdr(estimate, target)
    assert got.dtype == dtype
    rtol = 1e-12 if dtype == torch.float64 else 1e-6
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=rtol)


@pytest.mark.parametrize("zero_mean", [False, True])
def test_agrees_with_torchmetrics(zero_mean, tol):
    estimate, target = pair((3, 2, 400))
    torch.testing.assert_close(si_sdr(estimate, target, zero_mean=zero_mean),
                               tm_si_sdr(estimate, target, zero_mean=zero_mean),
                               **tol(torch.float64))
    torch.testing.assert_close(snr(estimate, target, zero_mean=zero_mean),
                               tm_snr(estimate, target, zero_mean=zero_mean),
                               **tol(torch.float64))
    # float32 inputs: same eps; torchmetrics sums in float32, so compare loosely.
    e32, t32 = estimate.float(), target.float()
    torch.testing.assert_close(si_sdr(e32, t32, zero_mean=zero_mean).float(),
                               tm_si_sdr(e32, t32, zero_mean=zero_mean), rtol=0, atol=1e-3)


def test_improvements_are_differences():
    estimate, target = pair((3, 200))
    mixture = target + torch.randn(3, 200, dtype=torch.float64)
    e, t, m = np64(estimate), np64(target), np64(mixture)
    expected = ref.rows(ref.challenge_sdr, e, t) - ref.rows(ref.challenge_sdr, m, t)
    np.testing.assert_allclose(sdri(estimate, target, mixture).numpy(), expected, rtol=1e-12)
    for zero_mean in (False, True):
        expected = (ref.rows(ref.si_sdr, e, t, eps=EPS64, zero_mean=zero_mean)
                    - ref.rows(ref.si_sdr, m, t, eps=EPS64, zero_mean=zero_mean))
        got = si_sdri(estimate, target, mixture, zero_mean=zero_mean)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12)


def test_dcase2024_scores_match_the_evaluator_in_float32():
    """The evaluator works per clip on float32 numpy arrays and averages arithmetically."""
    estimate, target = pair((5, 1600), seed=3, dtype=torch.float32)
    mixture = (target + torch.randn(5, 1600)).float()
    scores = dcase2024_scores(estimate, target, mixture)
    sdrs, sdris, sisdrs = [], [], []
    for e, t, m in zip(estimate.numpy(), target.numpy(), mixture.numpy(), strict=True):
        s_sdr = ref.challenge_sdr(e, t)
        sdrs.append(s_sdr)
        sdris.append(s_sdr - ref.challenge_sdr(m, t))
        eps = np.finfo(t.dtype).eps
        alpha = (eps + np.dot(t, e)) / (np.dot(t, t) + eps)  # float32 arithmetic
        sisdrs.append(10 * np.log10((eps + np.sum((alpha * t) ** 2))
                                    / (eps + np.sum((e - alpha * t) ** 2))))
    assert set(scores) == {"sdr", "sdri", "si_sdr"}
    assert all(isinstance(v, float) for v in scores.values())
    assert scores["sdr"] == pytest.approx(np.mean(sdrs), abs=1e-4)
    assert scores["sdri"] == pytest.approx(np.mean(sdris), abs=1e-4)
    assert scores["si_sdr"] == pytest.approx(np.mean(sisdrs), abs=1e-4)


def test_dcase2024_scores_average_every_leading_dim():
    estimate, target = pair((2, 3, 100))
    scores = dcase2024_scores(estimate, target, target + 1.0)
    assert scores["sdr"] == pytest.approx(float(sdr(estimate, target).mean()), rel=1e-12)


@pytest.mark.parametrize("length", [16, 700, 2000])
def test_bss_sdr_matches_mir_eval(length):
    estimate, target = pair((length,), seed=length, noise=0.3)
    filtered = torch.nn.functional.conv1d(
        estimate.view(1, 1, -1), torch.tensor([[[0.2, 1.0, -0.3]]], dtype=torch.float64),
        padding=1,
    ).view(-1)
    for est in (estimate, filtered, estimate + 0.5):  # plain, filtered, DC offset
        assert abs(bss_sdr(est, target).item() - mir_eval_sdr(est, target)) < 1e-6


def test_bss_sdr_matches_torchmetrics_when_the_signal_is_longer_than_the_filter():
    estimate, target = pair((2, 3, 600), seed=4)
    for taps in (8, 64, 512):
        torch.testing.assert_close(bss_sdr(estimate, target, filter_length=taps),
                                   tm_sdr(estimate, target, filter_length=taps),
                                   rtol=0, atol=1e-6)


def test_bss_sdr_batch_equals_items_and_float32_inputs():
    estimate, target = pair((2, 2, 300), seed=5)
    batch = bss_sdr(estimate, target, filter_length=32)
    for i in range(2):
        for j in range(2):
            single = bss_sdr(estimate[i, j], target[i, j], filter_length=32)
            torch.testing.assert_close(batch[i, j], single, rtol=1e-12, atol=1e-12)
    got32 = bss_sdr(estimate.float(), target.float(), filter_length=32)
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), batch, rtol=0, atol=1e-4)


def test_bss_sdr_is_not_differentiable_and_scale_invariant():
    estimate, target = pair((300,), seed=6)
    estimate.requires_grad_(True)
    value = bss_sdr(estimate, target, filter_length=16)
    assert not value.requires_grad
    scaled = bss_sdr(-1e3 * estimate.detach(), 1e-3 * target, filter_length=16)
    torch.testing.assert_close(scaled, value, rtol=0, atol=1e-9)


# --------------------------------------------------------------- where conventions differ

T = 400
_t = torch.arange(T, dtype=torch.float64)
SINE = torch.sin(0.05 * _t) + 0.5 * torch.sin(0.31 * _t)
NOISY = SINE + 0.1 * torch.cos(1.3 * _t + 0.2) * torch.sin(0.011 * _t)
ZERO = torch.zeros(T, dtype=torch.float64)


def test_silent_target():
    """sdr floors the target power at 1e-10; snr and si_sdr add eps; bss_sdr gives NaN."""
    power = float(NOISY.square().mean())
    assert sdr(NOISY, ZERO).item() == pytest.approx(10 * math.log10(1e-10 / power))
    energy = float(NOISY.square().sum())
    expected = 10 * math.log10(EPS64 / (energy + EPS64))
    assert snr(NOISY, ZERO).item() == pytest.approx(expected)
    assert si_sdr(NOISY, ZERO).item() == pytest.approx(expected)  # alpha = 1, projection 0
    assert math.isnan(bss_sdr(NOISY, ZERO).item())
    with pytest.raises(ValueError):  # mir_eval refuses a silent reference outright
        mir_eval_sdr(NOISY, ZERO)


def test_silent_estimate():
    """The error is the target: sdr and snr give 0 dB, si_sdr exactly 0 dB, bss_sdr NaN."""
    assert sdr(ZERO, SINE).item() == pytest.approx(0.0, abs=1e-12)
    assert snr(ZERO, SINE).item() == pytest.approx(0.0, abs=1e-12)
    assert si_sdr(ZERO, SINE).item() == 0.0
    assert si_sdr(ZERO, SINE, zero_mean=True).item() == 0.0
    assert math.isnan(bss_sdr(ZERO, SINE).item())
    assert torch.isneginf(tm_sdr(ZERO, SINE))  # torchmetrics reads it as -inf instead


def test_both_silent():
    for metric in (sdr, snr, si_sdr):
        assert metric(ZERO, ZERO).item() == 0.0
    assert math.isnan(bss_sdr(ZERO, ZERO).item())


def test_dc_offset():
    """A DC offset is error for sdr/snr/si_sdr; zero_mean removes it; BSS-eval absorbs it."""
    target = SINE + 1.0
    e, t = np64(SINE), np64(target)
    assert sdr(SINE, target).item() == pytest.approx(ref.challenge_sdr(e, t), rel=1e-12)
    assert snr(SINE, target).item() == pytest.approx(ref.snr(e, t, EPS64), rel=1e-12)
    assert si_sdr(SINE, target).item() == pytest.approx(ref.si_sdr(e, t, EPS64), rel=1e-12)
    assert si_sdr(SINE, target).item() < 10
    assert si_sdr(SINE, target, zero_mean=True).item() > 100
    assert snr(SINE, target, zero_mean=True).item() > 100
    assert bss_sdr(SINE, target).item() == pytest.approx(mir_eval_sdr(SINE, target), abs=1e-6)


@pytest.mark.parametrize("scale", [1e-20, 1e30])
def test_tiny_and_huge_amplitudes(scale):
    """Absolute floors make quiet signals read as silence; float64 sums never overflow."""
    est, tgt = (NOISY * scale).float(), (SINE * scale).float()
    e, t = np64(est), np64(tgt)
    eps = ref.F32_EPS
    assert sdr(est, tgt).item() == pytest.approx(ref.challenge_sdr(e, t), rel=1e-6, abs=1e-9)
    assert snr(est, tgt).item() == pytest.approx(ref.snr(e, t, eps), rel=1e-6, abs=1e-9)
    assert si_sdr(est, tgt).item() == pytest.approx(ref.si_sdr(e, t, eps), rel=1e-6, abs=1e-9)
    unit = si_sdr(NOISY.float(), SINE.float()).item()
    if scale < 1:
        assert sdr(est, tgt).item() == 0.0  # both mean powers under the 1e-10 floor
        assert abs(si_sdr(est, tgt).item()) < 1e-6  # eps dominates both energies
    else:
        assert si_sdr(est, tgt).item() == pytest.approx(unit, abs=1e-5)  # float32 rounding
    assert bss_sdr(est, tgt).item() == pytest.approx(bss_sdr(NOISY, SINE).item(), abs=1e-5)


def test_negated_estimate():
    """-target is -6.02 dB for sdr/snr but perfect for the sign-blind si_sdr and bss_sdr."""
    minus_six = 20 * math.log10(0.5)
    assert sdr(-SINE, SINE).item() == pytest.approx(minus_six)
    assert snr(-SINE, SINE).item() == pytest.approx(minus_six)
    perfect = 10 * math.log10(float(SINE.square().sum()) / EPS64)
    assert si_sdr(-SINE, SINE).item() == pytest.approx(perfect, abs=0.1)
    assert bss_sdr(-SINE, SINE).item() > 200


def test_sixteen_samples():
    """T = 16 < filter_length: torchlass pads the FFT to T + 511 like mir_eval;
    torchmetrics' FFT (2T - 1 rounded up) wraps around: a wrong value or NaN."""
    estimate, target = pair((16,), seed=16, noise=1.0)
    expected = mir_eval_sdr(estimate, target)
    assert bss_sdr(estimate, target).item() == pytest.approx(expected, abs=1e-6)
    assert not abs(tm_sdr(estimate, target).item() - expected) < 1.0
    e, t = np64(estimate), np64(target)
    assert sdr(estimate, target).item() == pytest.approx(ref.challenge_sdr(e, t), rel=1e-12)
    assert si_sdr(estimate, target).item() == pytest.approx(ref.si_sdr(e, t, EPS64), rel=1e-12)


def test_perfect_estimate_caps():
    power = float(SINE.square().mean())
    assert sdr(SINE, SINE).item() == pytest.approx(10 * math.log10(power / 1e-10))
    energy = float(SINE.square().sum())
    assert snr(SINE, SINE).item() == pytest.approx(10 * math.log10((energy + EPS64) / EPS64))
    assert math.isinf(bss_sdr(SINE, SINE).item()) or bss_sdr(SINE, SINE).item() > 200


# ------------------------------------------------------------- batches, rows, autocast


@pytest.mark.parametrize("metric", [sdr, snr, si_sdr])
def test_batch_equals_items_and_rows_do_not_contaminate(metric):
    estimate, target = pair((4, 250), seed=8)
    estimate[1] = 0.0
    target[2] = 0.0
    estimate[3] *= 1e25
    assert_batch_equals_items(metric, estimate, target, rtol=1e-14, atol=1e-12)
    assert bool(torch.isfinite(metric(estimate, target)).all())


def test_half_precision_inputs_and_autocast():
    estimate, target = pair((2, 300), seed=9, dtype=torch.bfloat16)
    eps = ref.F32_EPS  # half types use float32's eps
    expected = ref.rows(ref.si_sdr, np64(estimate), np64(target), eps=eps)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = si_sdr(estimate, target)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), expected, rtol=1e-6)


def test_float64_overflow_raises_instead_of_nan():
    big = SINE * 1e200
    with pytest.raises(ValueRangeError, match=r"si_sdr\(\): the signal energies overflow"):
        si_sdr(big, big)
    assert not bool(torch.isfinite(snr(big, big, check_finite=False)).all())


# ---------------------------------------------------------------------- hypothesis

@given(sts.signal_pairs(lead=(), scale=st.floats(0.1, 10.0)), st.floats(1e-3, 1e3))
def test_si_sdr_is_scale_invariant(case, scale):
    estimate, target, _ = case
    base = si_sdr(estimate, target).item()
    # eps (2.2e-16 here) breaks exact invariance only when scaled energies approach it.
    assert si_sdr(scale * estimate, target).item() == pytest.approx(base, abs=1e-4)
    assert si_sdr(-estimate, target).item() == pytest.approx(base, abs=1e-6)
    assert si_sdr(estimate, scale * target).item() == pytest.approx(base, abs=1e-4)


@given(sts.signal_pairs(snr_db=st.floats(10.0, 40.0)))
def test_sign_conventions(case):
    # A worse estimate (ten times the error) scores lower; the drawn SNR is what they see.
    estimate, target, snr_db = case
    worse = target + 10 * (estimate - target)
    for metric in (sdr, snr, si_sdr):
        assert bool((metric(estimate, target) > metric(worse, target) - 1e-9).all())
    # sdr adds eps (2.2e-16 in float64) to both energies, snr does not: at the smallest drawn
    # error energies (about 1e-8: a 3-sample target of 1e-3 at 22 dB) that is
    # 10 / ln(10) * eps / 1e-8, about 1e-7 dB.
    torch.testing.assert_close(sdr(estimate, target), snr(estimate, target), rtol=0, atol=1e-6)
    expected = torch.full_like(target[..., 0], snr_db)  # the noise is orthogonal to the target
    torch.testing.assert_close(snr(estimate, target), expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(si_sdr(estimate, target), expected, rtol=0, atol=1e-6)


# ------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("metric", [sdr, snr, si_sdr, bss_sdr])
def test_bad_input_messages(metric):
    name = metric.__name__
    good = torch.randn(2, 8)
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'estimate' expected a real "
                                         r"floating-point tensor, got dtype torch.complex64"):
        metric(torch.randn(2, 8, dtype=torch.complex64), good)
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'target' expected a "
                                         r"floating-point tensor, got dtype torch.int64"):
        metric(good, torch.ones(2, 8, dtype=torch.int64))
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'estimate' expected a "
                                         r"torch.Tensor, got list"):
        metric([1.0, 2.0], good)
    with pytest.raises(ShapeError, match=rf"{name}\(\): arguments 'estimate' and 'target' "
                                         r"must have the same shape, got \(2, 8\) and \(2, 9\)"):
        metric(good, torch.randn(2, 9))
    with pytest.raises(ShapeError, match=rf"{name}\(\): argument 'estimate' expected at least "
                                         r"1 samples along dim -1 \(the time axis must not"):
        metric(torch.zeros(2, 0), torch.zeros(2, 0))
    with pytest.raises(ShapeError, match=rf"{name}\(\): argument 'estimate' expected at least "
                                         r"1 dimension"):
        metric(torch.tensor(1.0), torch.tensor(1.0))
    bad = good.clone()
    bad[1, 3] = float("nan")
    with pytest.raises(NonFiniteError, match=rf"{name}\(\): argument 'target' expected finite "
                                             r"values, got 1 NaN/Inf"):
        metric(good, bad)
    bad[1, 3] = float("inf")
    with pytest.raises(NonFiniteError, match=rf"{name}\(\): argument 'estimate'"):
        metric(bad, good)


def test_bad_input_messages_with_a_mixture():
    good = torch.randn(3, 8)
    for metric in (sdri, si_sdri, dcase2024_scores):
        with pytest.raises(ShapeError, match=rf"{metric.__name__}\(\): arguments 'estimate' "
                                             r"and 'mixture' must have the same shape"):
            metric(good, good, torch.randn(3, 7))
        with pytest.raises(NonFiniteError, match=rf"{metric.__name__}\(\): argument 'mixture'"):
            metric(good, good, torch.full((3, 8), float("nan")))
    with pytest.raises(ShapeError, match=r"dcase2024_scores\(\): argument 'estimate' expected "
                                         r"at least one signal, got shape \(0, 8\)"):
        dcase2024_scores(torch.zeros(0, 8), torch.zeros(0, 8), torch.zeros(0, 8))


def test_bss_sdr_filter_length_is_checked():
    x = torch.randn(32)
    with pytest.raises(ValueRangeError, match=r"bss_sdr\(\): argument 'filter_length' expected "
                                              r"an int >= 1, got 0"):
        bss_sdr(x, x, filter_length=0)
    with pytest.raises(DTypeError, match=r"bss_sdr\(\): argument 'filter_length' expected an "
                                         r"int, got float"):
        bss_sdr(x, x, filter_length=4.0)


def test_check_finite_false_skips_the_check():
    x = torch.randn(8)
    bad = x.clone()
    bad[0] = float("nan")
    assert math.isnan(snr(bad, x, check_finite=False).item())
