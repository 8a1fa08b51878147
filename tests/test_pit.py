"""pit_loss against torchmetrics' permutation_invariant_training and a brute force."""

from __future__ import annotations

import functools
import itertools

import metric_references as ref
import numpy as np
import pytest
import torch
from helpers import np64
from hypothesis import given
from hypothesis import strategies as st
from torchmetrics.functional.audio import (
    permutation_invariant_training,
    scale_invariant_signal_noise_ratio,
)

from torchlass.errors import DTypeError, NonFiniteError, ShapeError, ValueRangeError
from torchlass.losses import PITLoss, l1_loss, pit_loss, snr_loss

EPS64 = float(np.finfo(np.float64).eps)


def problem(batch, sources, length=64, seed=0, noise=0.5, dtype=torch.float64):
    """Targets, and noisy estimates of them in a random order per example."""
    g = torch.Generator().manual_seed(seed)
    targets = torch.randn(batch, sources, length, generator=g, dtype=torch.float64)
    order = torch.stack([torch.randperm(sources, generator=g) for _ in range(batch)])
    estimates = targets.gather(1, order.unsqueeze(-1).expand_as(targets))
    estimates = estimates + noise * torch.randn(targets.shape, generator=g, dtype=torch.float64)
    return estimates.to(dtype), targets.to(dtype)


def si_snr_pair(eps):
    return functools.partial(ref.si_sdr_loss, eps=eps, zero_mean=True)


@pytest.mark.parametrize("sources", [1, 2, 3, 4])
def test_matches_torchmetrics(sources, tol):
    estimates, targets = problem(3, sources, seed=sources)
    best, perm_tm = permutation_invariant_training(
        estimates, targets, scale_invariant_signal_noise_ratio, mode="speaker-wise",
        eval_func="max")
    loss, perm = pit_loss(estimates, targets, reduction="none", return_permutation=True)
    torch.testing.assert_close(loss, -best, **tol(torch.float64))
    assert torch.equal(perm, perm_tm)
    assert perm.dtype == torch.int64 and perm.shape == (3, sources)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_brute_force(dtype):
    estimates, targets = problem(4, 3, length=300, seed=7, dtype=dtype)
    eps = float(torch.finfo(dtype).eps)
    expected, expected_perm = ref.pit_brute_force(np64(estimates), np64(targets),
                                                  si_snr_pair(eps))
    loss, perm = pit_loss(estimates, targets, reduction="none", return_permutation=True)
    assert loss.dtype == dtype
    rtol = 1e-10 if dtype == torch.float64 else 1e-5
    np.testing.assert_allclose(loss.double().numpy(), expected, rtol=rtol, atol=rtol)
    np.testing.assert_array_equal(perm.numpy(), expected_perm)
    # estimates[b, perm[b]] lines up with targets[b]
    aligned = estimates[torch.arange(4).unsqueeze(-1), perm]
    assert bool(((aligned - targets).abs().mean(-1) < 0.6).all())


def test_hungarian_beyond_eight_sources_finds_the_optimum():
    estimates, targets = problem(1, 9, length=40, seed=9, noise=2.0)
    loss, perm = pit_loss(estimates, targets, reduction="none", return_permutation=True)
    e, t = np64(estimates)[0], np64(targets)[0]
    pair = np.array([[ref.si_sdr_loss(e[i], t[j], EPS64) for j in range(9)] for i in range(9)])
    perms = np.array(list(itertools.permutations(range(9))))
    costs = pair[perms, np.arange(9)].mean(-1)
    assert loss.item() == pytest.approx(costs.min(), rel=1e-10, abs=1e-10)
    assert pair[perm[0].numpy(), np.arange(9)].mean() == pytest.approx(costs.min(), rel=1e-12)


def test_hungarian_recovers_a_known_permutation():
    estimates, targets = problem(2, 12, length=200, seed=10, noise=0.05)
    _, perm = pit_loss(estimates, targets, return_permutation=True)
    aligned = estimates[torch.arange(2).unsqueeze(-1), perm]
    assert bool(((aligned - targets).abs().max(-1).values < 0.5).all())


def test_ties_go_to_the_first_permutation():
    silent = torch.zeros(1, 3, 16)
    _, perm = pit_loss(silent, torch.randn(1, 3, 16), return_permutation=True)
    assert perm.tolist() == [[0, 1, 2]]


def test_dc_offsets_are_removed():
    """Offsets thousands of times the RMS: centring after float32 products would cancel."""
    estimates, targets = problem(2, 3, length=500, seed=11, dtype=torch.float32)
    estimates = estimates + 5000.0
    targets = targets - 2000.0
    expected, expected_perm = ref.pit_brute_force(np64(estimates), np64(targets),
                                                  si_snr_pair(ref.F32_EPS))
    loss, perm = pit_loss(estimates, targets, reduction="none", return_permutation=True)
    np.testing.assert_allclose(loss.double().numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(perm.numpy(), expected_perm)


def test_loss_fn_option():
    estimates, targets = problem(3, 3, seed=12)

    def l1(e, t):
        return np.mean(np.abs(e - t))

    expected, expected_perm = ref.pit_brute_force(np64(estimates), np64(targets), l1)
    loss, perm = pit_loss(estimates, targets, loss_fn=functools.partial(l1_loss,
                                                                        reduction="none"),
                          reduction="none", return_permutation=True)
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(perm.numpy(), expected_perm)


def test_reductions():
    estimates, targets = problem(3, 2, seed=13)
    values = pit_loss(estimates, targets, reduction="none")
    torch.testing.assert_close(pit_loss(estimates, targets), values.mean())
    torch.testing.assert_close(pit_loss(estimates, targets, reduction="sum"), values.sum())


def test_gradcheck():
    estimates, targets = problem(2, 3, length=10, seed=14)
    estimates.requires_grad_(True)
    targets.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda e, t: pit_loss(e, t, reduction="none"),
                                    (estimates, targets))
    custom = functools.partial(snr_loss, reduction="none")
    assert torch.autograd.gradcheck(lambda e, t: pit_loss(e, t, loss_fn=custom,
                                                          reduction="none"),
                                    (estimates, targets))


def test_gradient_flows_through_the_chosen_pairs_only():
    estimates, targets = problem(2, 4, length=120, seed=15, dtype=torch.float32)
    x = estimates.clone().requires_grad_(True)
    _, perm = pit_loss(x, targets, return_permutation=True)
    pit_loss(x, targets).backward()
    x64 = estimates.double().requires_grad_(True)
    e = x64[torch.arange(2).unsqueeze(-1), perm]
    e = e - e.mean(-1, keepdim=True)
    t = targets.double() - targets.double().mean(-1, keepdim=True)
    eps = ref.F32_EPS
    alpha = ((e * t).sum(-1, keepdim=True) + eps) / (t.square().sum(-1, keepdim=True) + eps)
    p = alpha * t
    value = 10 * torch.log10(((p - e).square().sum(-1) + eps) / (p.square().sum(-1) + eps))
    value.mean(-1).mean().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-7)


def test_cpu_chunks_follow_the_permutation(monkeypatch):
    import torchlass.losses._fused as fused

    estimates, targets = problem(2, 3, length=50, seed=19, dtype=torch.float32)
    results = []
    for chunk in (1 << 30, 100, 50):  # one chunk, two rows per chunk, one row per chunk
        monkeypatch.setattr(fused, "_CHUNK_ELEMENTS", chunk)
        monkeypatch.setattr(fused, "_THREADED_CHUNK_ELEMENTS", chunk)
        x = estimates.clone().requires_grad_(True)
        t = targets.clone().requires_grad_(True)
        loss = pit_loss(x, t, reduction="none")
        loss.square().sum().backward()
        results.append((loss, x.grad, t.grad))
    for loss, gx, gt in results[1:]:
        torch.testing.assert_close(loss, results[0][0])
        torch.testing.assert_close(gx, results[0][1])
        torch.testing.assert_close(gt, results[0][2])


def test_batch_equals_items_and_silent_rows():
    estimates, targets = problem(3, 3, seed=16, dtype=torch.float32)
    estimates[1] = 0.0
    targets[2, 1] = 0.0
    batch = pit_loss(estimates, targets, reduction="none")
    assert bool(torch.isfinite(batch).all())
    for b in range(3):
        torch.testing.assert_close(batch[b:b + 1], pit_loss(estimates[b:b + 1],
                                                            targets[b:b + 1],
                                                            reduction="none"))


def test_huge_float32_amplitudes_and_autocast():
    estimates, targets = problem(2, 3, length=200, seed=17, dtype=torch.float32)
    unit = pit_loss(estimates, targets, reduction="none")
    torch.testing.assert_close(pit_loss(estimates * 1e21, targets * 1e21, reduction="none"),
                               unit, rtol=1e-5, atol=1e-5)
    half = estimates.bfloat16().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = pit_loss(half, targets.bfloat16(), reduction="none")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, pit_loss(half.detach().float(), targets.bfloat16().float(),
                                              reduction="none"))
    loss.sum().backward()
    assert half.grad.dtype == torch.bfloat16


def test_module_equals_function():
    estimates, targets = problem(2, 3, seed=18)
    torch.testing.assert_close(PITLoss()(estimates, targets), pit_loss(estimates, targets))
    loss, perm = PITLoss(return_permutation=True, reduction="none")(estimates, targets)
    assert loss.shape == (2,) and perm.shape == (2, 3)


# ---------------------------------------------------------------------- hypothesis


@given(seed=st.integers(0, 2**31 - 1), sources=st.integers(1, 4),
       length=st.integers(1, 24))
def test_equals_the_best_of_all_permutations(seed, sources, length):
    estimates, targets = problem(2, sources, length=length, seed=seed, noise=2.0)
    expected, _ = ref.pit_brute_force(np64(estimates), np64(targets), si_snr_pair(EPS64))
    loss = pit_loss(estimates, targets, reduction="none")
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------------ bad input


def test_bad_input_messages():
    good = torch.randn(2, 3, 16)
    with pytest.raises(ShapeError, match=r"pit_loss\(\): arguments 'estimates' and 'targets' "
                                         r"must have the same shape, got \(2, 3, 16\) and "
                                         r"\(2, 2, 16\)"):
        pit_loss(good, torch.randn(2, 2, 16))
    with pytest.raises(ShapeError, match=r"pit_loss\(\): argument 'estimates' expected a 3-d "
                                         r"tensor \(batch, sources, time\), got shape \(3, 16\)"):
        pit_loss(torch.randn(3, 16), torch.randn(3, 16))
    with pytest.raises(ShapeError, match=r"pit_loss\(\): argument 'estimates' expected at least "
                                         r"1 samples along dim -1"):
        pit_loss(torch.zeros(2, 3, 0), torch.zeros(2, 3, 0))
    with pytest.raises(DTypeError, match=r"pit_loss\(\): argument 'targets' expected a "
                                         r"floating-point tensor, got dtype torch.int64"):
        pit_loss(good, torch.ones(2, 3, 16, dtype=torch.int64))
    with pytest.raises(ValueRangeError, match=r"pit_loss\(\): argument 'reduction'"):
        pit_loss(good, good, reduction="min")
    with pytest.raises(ShapeError, match=r"pit_loss\(\): argument 'loss_fn' expected to return "
                                         r"one loss per signal, shape \(2, 3, 3\), got \(\)"):
        pit_loss(good, good, loss_fn=snr_loss)


@pytest.mark.parametrize("use_loss_fn", [False, True])
def test_non_finite_inputs_name_the_argument(use_loss_fn):
    options = {"loss_fn": functools.partial(l1_loss, reduction="none")} if use_loss_fn else {}
    good = torch.randn(2, 3, 16)
    bad = good.clone()
    bad[0, 2, 3] = float("nan")
    with pytest.raises(NonFiniteError, match=r"pit_loss\(\): argument 'estimates' expected "
                                             r"finite values, got 1 NaN/Inf"):
        pit_loss(bad, good, **options)
    with pytest.raises(NonFiniteError, match=r"pit_loss\(\): argument 'targets' expected finite"):
        pit_loss(good, bad, **options)
