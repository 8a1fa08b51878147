"""mixit_loss, plain and query-anchored, against a brute-force float64 MixIT."""

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

from torchlass.data import Mixture
from torchlass.errors import DTypeError, NonFiniteError, ShapeError, ValueRangeError
from torchlass.losses import MixITLoss, l1_loss, mixit_loss, si_sdr_loss, snr_loss
from torchlass.recipes import separation_loss

EPS64 = float(np.finfo(np.float64).eps)


def problem(batch, num_est, num_mix, length=64, seed=0, dtype=torch.float64):
    """Mixtures of random sources, and noisy estimates of those sources in random order."""
    g = torch.Generator().manual_seed(seed)
    sources = torch.randn(batch, num_est, length, generator=g, dtype=torch.float64)
    owner = torch.randint(0, num_mix, (batch, num_est), generator=g)
    owner[:, :num_mix] = torch.arange(num_mix)  # every mixture gets a source
    mixtures = torch.zeros(batch, num_mix, length, dtype=torch.float64)
    mixtures.scatter_add_(1, owner.unsqueeze(-1).expand_as(sources), sources)
    order = torch.stack([torch.randperm(num_est, generator=g) for _ in range(batch)])
    estimates = sources.gather(1, order.unsqueeze(-1).expand_as(sources))
    estimates = estimates + 0.3 * torch.randn(estimates.shape, generator=g, dtype=torch.float64)
    return estimates.to(dtype), mixtures.to(dtype)


@pytest.mark.parametrize(("num_est", "num_mix"), [(2, 2), (3, 2), (4, 2), (4, 3), (5, 2)])
@pytest.mark.parametrize("snr_max", [30.0, None])
def test_matches_brute_force(num_est, num_mix, snr_max):
    estimates, mixtures = problem(3, num_est, num_mix, seed=num_est * 10 + num_mix)
    tau = 0.0 if snr_max is None else 10 ** (-snr_max / 10)
    expected, expected_assign = ref.mixit_brute_force(np64(estimates), np64(mixtures),
                                                      EPS64, tau)
    loss, assign = mixit_loss(estimates, mixtures, snr_max=snr_max, reduction="none",
                              return_assignment=True)
    assert loss.shape == (3,) and loss.dtype == torch.float64
    assert assign.shape == (3, num_est) and assign.dtype == torch.int64
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(assign.numpy(), expected_assign)


def test_float32_matches_float64_brute_force():
    estimates, mixtures = problem(4, 4, 2, length=500, seed=1, dtype=torch.float32)
    expected, expected_assign = ref.mixit_brute_force(np64(estimates), np64(mixtures),
                                                      ref.F32_EPS, 1e-3)
    loss, assign = mixit_loss(estimates, mixtures, reduction="none", return_assignment=True)
    assert loss.dtype == torch.float32
    np.testing.assert_allclose(loss.double().numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(assign.numpy(), expected_assign)


def test_reductions():
    estimates, mixtures = problem(3, 3, 2, seed=2)
    values = mixit_loss(estimates, mixtures, reduction="none")
    torch.testing.assert_close(mixit_loss(estimates, mixtures), values.mean())
    torch.testing.assert_close(mixit_loss(estimates, mixtures, reduction="sum"), values.sum())


def test_ties_go_to_the_first_assignment_in_product_order():
    """Integer-valued signals make every inner product exact, so the ties are exact."""
    g = torch.Generator().manual_seed(3)
    a = torch.randint(-3, 4, (1, 1, 32), generator=g).double()
    b = torch.randint(-3, 4, (1, 1, 32), generator=g).double()
    silent = torch.zeros_like(a)
    # a silent estimate may go anywhere: (0, 1, 0) comes before (0, 1, 1)
    _, assign = mixit_loss(torch.cat([a, b, silent], 1), torch.cat([a, b], 1),
                           return_assignment=True)
    assert assign.tolist() == [[0, 1, 0]]
    # two identical estimates of two identical mixtures: (0, 1) before (1, 0)
    _, assign = mixit_loss(torch.cat([a, a], 1), torch.cat([a, a], 1), return_assignment=True)
    assert assign.tolist() == [[0, 1]]
    # with loss_fn the same order holds
    _, assign = mixit_loss(torch.cat([a, b, silent], 1), torch.cat([a, b], 1),
                           loss_fn=functools.partial(l1_loss, reduction="none"),
                           return_assignment=True)
    assert assign.tolist() == [[0, 1, 0]]


def test_silent_reference_mixture_gives_finite_loss_and_gradients():
    estimates, mixtures = problem(2, 3, 2, seed=4)
    mixtures[0, 1] = 0.0
    for dtype in (torch.float32, torch.float64):
        x = estimates.to(dtype).requires_grad_(True)
        loss = mixit_loss(x, mixtures.to(dtype), reduction="none")
        loss.sum().backward()
        assert bool(torch.isfinite(loss).all()) and bool(torch.isfinite(x.grad).all())
        eps = float(torch.finfo(dtype).eps)
        expected, _ = ref.mixit_brute_force(np64(x), np64(mixtures.to(dtype)), eps, 1e-3)
        np.testing.assert_allclose(loss.detach().double().numpy(), expected, rtol=1e-5)
    silent = torch.zeros(1, 2, 16, requires_grad=True)
    loss = mixit_loss(silent, torch.zeros(1, 2, 16))
    loss.backward()
    assert loss.item() == 0.0 and bool(torch.isfinite(silent.grad).all())


def test_gradcheck():
    estimates, mixtures = problem(2, 3, 2, length=10, seed=5)
    estimates.requires_grad_(True)
    mixtures.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e, m: mixit_loss(e, m, reduction="none"), (estimates, mixtures))
    assert torch.autograd.gradcheck(
        lambda e, m: mixit_loss(e, m, snr_max=None, reduction="none"), (estimates, mixtures))
    custom = functools.partial(si_sdr_loss, reduction="none")
    assert torch.autograd.gradcheck(
        lambda e, m: mixit_loss(e, m, loss_fn=custom, reduction="none"), (estimates, mixtures))


def test_gradient_flows_through_the_chosen_remix_only():
    estimates, mixtures = problem(2, 4, 2, length=100, seed=6, dtype=torch.float32)
    x = estimates.clone().requires_grad_(True)
    _, assign = mixit_loss(x, mixtures, return_assignment=True)
    mixit_loss(x, mixtures).backward()
    # Independent: remix by the assignment with plain indexing, autograd through the formula.
    x64 = estimates.double().requires_grad_(True)
    onehot = torch.nn.functional.one_hot(assign, 2).transpose(1, 2).double()
    remix = onehot @ x64
    m64 = mixtures.double()
    power = m64.square().sum(-1)
    eps = ref.F32_EPS
    per_mix = 10 * torch.log10(((m64 - remix).square().sum(-1) + 1e-3 * power + eps)
                               / (power + eps))
    per_mix.sum(-1).mean().backward()
    torch.testing.assert_close(x.grad.double(), x64.grad, rtol=1e-4, atol=1e-7)


def test_loss_fn_option():
    estimates, mixtures = problem(3, 4, 2, seed=7)
    default = mixit_loss(estimates, mixtures, reduction="none", return_assignment=True)
    same = mixit_loss(estimates, mixtures, reduction="none", return_assignment=True,
                      loss_fn=functools.partial(snr_loss, snr_max=30.0, reduction="none"))
    torch.testing.assert_close(same[0], default[0])
    assert torch.equal(same[1], default[1])

    def l1(remix, mixture):
        return np.mean(np.abs(remix - mixture))

    expected, expected_assign = ref.mixit_brute_force(np64(estimates), np64(mixtures), 0, 0,
                                                      pair_loss=l1)
    loss, assign = mixit_loss(estimates, mixtures, reduction="none", return_assignment=True,
                              loss_fn=functools.partial(l1_loss, reduction="none"))
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-12)
    np.testing.assert_array_equal(assign.numpy(), expected_assign)


def test_loss_fn_blocks_cover_every_assignment(monkeypatch):
    import torchlass.losses.mixit as mixit

    estimates, mixtures = problem(2, 5, 2, seed=8)
    l1 = functools.partial(l1_loss, reduction="none")
    whole = mixit_loss(estimates, mixtures, loss_fn=l1, return_assignment=True)
    monkeypatch.setattr(mixit, "_REMIX_BLOCK_ELEMENTS", 3 * 2 * 2 * 64)  # 3 remixes a block
    monkeypatch.setattr(mixit, "_SEARCH_BLOCK", 5)
    blocked = mixit_loss(estimates, mixtures, loss_fn=l1, return_assignment=True)
    torch.testing.assert_close(blocked[0], whole[0])
    assert torch.equal(blocked[1], whole[1])
    gram = mixit_loss(estimates, mixtures, return_assignment=True)
    monkeypatch.undo()
    torch.testing.assert_close(gram[0], mixit_loss(estimates, mixtures))


def test_batch_equals_items():
    estimates, mixtures = problem(4, 3, 2, seed=9, dtype=torch.float32)
    mixtures[1] = 0.0
    batch = mixit_loss(estimates, mixtures, reduction="none")
    for b in range(4):
        torch.testing.assert_close(batch[b:b + 1], mixit_loss(estimates[b:b + 1],
                                                              mixtures[b:b + 1],
                                                              reduction="none"))


def test_huge_float32_amplitudes_fall_back_to_float64():
    estimates, mixtures = problem(2, 3, 2, length=200, seed=10, dtype=torch.float32)
    unit = mixit_loss(estimates, mixtures, reduction="none", return_assignment=True)
    huge = mixit_loss(estimates * 1e20, mixtures * 1e20, reduction="none",
                      return_assignment=True)
    torch.testing.assert_close(huge[0], unit[0], rtol=1e-5, atol=1e-5)
    assert torch.equal(huge[1], unit[1])


def test_autocast_bfloat16():
    estimates, mixtures = problem(2, 4, 2, length=300, seed=11, dtype=torch.bfloat16)
    x = estimates.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = mixit_loss(x, mixtures, reduction="none")
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, mixit_loss(estimates.float(), mixtures.float(),
                                                reduction="none"))
    loss.sum().backward()
    assert x.grad.dtype == torch.bfloat16


def test_module_equals_function():
    estimates, mixtures = problem(2, 4, 2, seed=12)
    torch.testing.assert_close(MixITLoss(snr_max=20.0)(estimates, mixtures),
                               mixit_loss(estimates, mixtures, snr_max=20.0))
    loss, assign = MixITLoss(return_assignment=True, reduction="none")(estimates, mixtures)
    assert loss.shape == (2,) and assign.shape == (2, 4)


# -------------------------------------------------------------- query-anchored MixIT


def anchored_brute_force(estimates, mixtures, tau, pair_loss=None):
    """Best loss and first best assignment among those sending estimate 0 to mixture 0."""
    e, m = np64(estimates), np64(mixtures)
    (batch, num_est, _), num_mix = e.shape, m.shape[1]
    pair_loss = pair_loss or functools.partial(ref.snr_loss, eps=EPS64, tau=tau)
    best_loss, best_assign = [], []
    for b in range(batch):
        options = []
        for rest in itertools.product(range(num_mix), repeat=num_est - 1):
            assign = (0, *rest)
            options.append((sum(pair_loss(sum((e[b, k] for k in range(num_est)
                                               if assign[k] == n), np.zeros_like(m[b, n])),
                                          m[b, n]) for n in range(num_mix)), assign))
        loss, assign = min(options, key=lambda option: option[0])  # min keeps the first
        best_loss.append(loss)
        best_assign.append(assign)
    return np.array(best_loss), np.array(best_assign)


@pytest.mark.parametrize(("num_est", "num_mix"), [(2, 2), (3, 2), (4, 2), (4, 3)])
@pytest.mark.parametrize("snr_max", [25.0, None])
def test_anchored_matches_brute_force_over_anchored_assignments(num_est, num_mix, snr_max):
    estimates, mixtures = problem(3, num_est, num_mix, seed=num_est + 7 * num_mix)
    estimates = estimates.flip(1)  # the unanchored best rarely sends estimate 0 to mixture 0
    tau = 0.0 if snr_max is None else 10 ** (-snr_max / 10)
    want, want_assign = anchored_brute_force(estimates, mixtures, tau)
    loss, assign = mixit_loss(estimates, mixtures, snr_max=snr_max, anchored=True,
                              reduction="none", return_assignment=True)
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(assign.numpy(), want_assign)
    free = mixit_loss(estimates, mixtures, snr_max=snr_max, reduction="none")
    assert bool((free <= loss + 1e-12).all())
    torch.testing.assert_close(mixit_loss(estimates, mixtures, snr_max=snr_max, anchored=True,
                                          reduction="sum"), loss.sum())


def test_anchored_with_loss_fn():
    estimates, mixtures = problem(2, 3, 2, seed=21)
    pair = functools.partial(l1_loss, reduction="none")
    want, want_assign = anchored_brute_force(
        estimates, mixtures, 0.0, pair_loss=lambda x, y: float(np.mean(np.abs(x - y))))
    loss, assign = mixit_loss(estimates, mixtures, loss_fn=pair, anchored=True,
                              reduction="none", return_assignment=True)
    np.testing.assert_allclose(loss.numpy(), want, rtol=1e-12)
    np.testing.assert_array_equal(assign.numpy(), want_assign)


def test_anchored_gradcheck_batch_equals_items_and_module():
    estimates, mixtures = problem(2, 3, 2, length=16, seed=3)
    estimates.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda e: mixit_loss(e, mixtures, snr_max=20.0, anchored=True), (estimates,))
    whole = mixit_loss(estimates, mixtures, anchored=True, reduction="none")
    items = [mixit_loss(estimates[i:i + 1], mixtures[i:i + 1], anchored=True)
             for i in range(2)]
    torch.testing.assert_close(whole, torch.stack(items))
    torch.testing.assert_close(MixITLoss(anchored=True, reduction="none")(estimates, mixtures),
                               whole)


def test_the_mixit_training_objective_is_anchored_mixit():
    rng = np.random.default_rng(0)
    est = rng.standard_normal((3, 3, 1, 50))
    target, other = rng.standard_normal((2, 3, 1, 50))
    batch = Mixture(torch.from_numpy(target + other), torch.from_numpy(target),
                    torch.from_numpy(other), torch.zeros(3))
    got = separation_loss("mixit", torch.from_numpy(est), batch, mixit_snr_max=25.0)
    clips = torch.from_numpy(np.concatenate([target, other], axis=1))
    want, _ = anchored_brute_force(torch.from_numpy(est[:, :, 0]), clips, 10 ** -2.5)
    np.testing.assert_allclose(float(got), want.mean(), rtol=1e-10)


# ---------------------------------------------------------------------- hypothesis


@st.composite
def mixit_problems(draw):
    num_mix = draw(st.integers(2, 3))
    num_est = draw(st.integers(num_mix, 4))
    seed = draw(st.integers(0, 2**31 - 1))
    length = draw(st.integers(1, 24))
    return problem(2, num_est, num_mix, length=length, seed=seed)


@given(data=mixit_problems(), perm_seed=st.integers(0, 2**31 - 1))
def test_invariant_to_permuting_the_estimates(data, perm_seed):
    estimates, mixtures = data
    perm = torch.randperm(estimates.shape[1], generator=torch.Generator().manual_seed(perm_seed))
    torch.testing.assert_close(mixit_loss(estimates[:, perm], mixtures, reduction="none"),
                               mixit_loss(estimates, mixtures, reduction="none"),
                               rtol=1e-9, atol=1e-9)


@given(data=mixit_problems(), pick=st.integers(0, 2**31 - 1))
def test_never_above_any_fixed_assignment(data, pick):
    estimates, mixtures = data
    num_est, num_mix = estimates.shape[1], mixtures.shape[1]
    assignments = list(itertools.product(range(num_mix), repeat=num_est))
    fixed = assignments[pick % len(assignments)]
    loss = mixit_loss(estimates, mixtures, reduction="none")
    e, m = np64(estimates), np64(mixtures)
    for b in range(estimates.shape[0]):
        fixed_loss = sum(
            ref.snr_loss(sum((e[b, k] for k in range(num_est) if fixed[k] == n),
                             np.zeros_like(m[b, n])), m[b, n], EPS64, 1e-3)
            for n in range(num_mix))
        assert loss[b].item() <= fixed_loss + 1e-9


# ------------------------------------------------------------------------ bad input


def test_bad_input_messages():
    good_est, good_mix = torch.randn(2, 4, 16), torch.randn(2, 2, 16)
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): argument 'estimates' expected at "
                                         r"least as many estimates as mixtures \(M >= N = 3\), "
                                         r"got M = 2"):
        mixit_loss(torch.randn(2, 2, 16), torch.randn(2, 3, 16))
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): argument 'mixtures' expected at "
                                         r"least 2 mixtures \(dim 1\), got shape \(2, 1, 16\)"):
        mixit_loss(good_est, torch.randn(2, 1, 16))
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): argument 'estimates' expected a "
                                         r"3-d tensor \(batch, estimates, time\), got shape "
                                         r"\(4, 16\)"):
        mixit_loss(torch.randn(4, 16), good_mix)
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): arguments 'estimates' and 'mixtures' "
                                         r"must agree in batch and time, got \(2, 4, 16\) and "
                                         r"\(2, 2, 15\)"):
        mixit_loss(good_est, torch.randn(2, 2, 15))
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): arguments 'estimates' and 'mixtures' "
                                         r"must agree in batch"):
        mixit_loss(good_est, torch.randn(3, 2, 16))
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): argument 'estimates' expected at "
                                         r"least 1 samples along dim -1"):
        mixit_loss(torch.randn(2, 4, 0), torch.randn(2, 2, 0))
    with pytest.raises(DTypeError, match=r"mixit_loss\(\): argument 'mixtures' expected a "
                                         r"floating-point tensor, got dtype torch.int64"):
        mixit_loss(good_est, torch.ones(2, 2, 16, dtype=torch.int64))
    with pytest.raises(DTypeError, match=r"mixit_loss\(\): argument 'estimates' expected a real"):
        mixit_loss(good_est.to(torch.complex64), good_mix)
    with pytest.raises(ValueRangeError, match=r"mixit_loss\(\): arguments 'estimates' and "
                                              r"'mixtures' give N\*\*M = 2\*\*21 assignments"):
        mixit_loss(torch.randn(1, 21, 4), torch.randn(1, 2, 4))
    with pytest.raises(ValueRangeError, match=r"mixit_loss\(\): arguments 'estimates' and "
                                              r"'mixtures' give N\*\*\(M-1\) = 2\*\*21 "):
        mixit_loss(torch.randn(1, 22, 4), torch.randn(1, 2, 4), anchored=True)
    with pytest.raises(ValueRangeError, match=r"mixit_loss\(\): argument 'reduction'"):
        mixit_loss(good_est, good_mix, reduction="avg")
    with pytest.raises(ValueRangeError, match=r"mixit_loss\(\): argument 'snr_max'"):
        mixit_loss(good_est, good_mix, snr_max=float("nan"))
    with pytest.raises(ShapeError, match=r"mixit_loss\(\): argument 'loss_fn' expected to return "
                                         r"one loss per signal, shape \(2, 16, 2\), got \(\)"):
        mixit_loss(good_est, good_mix, loss_fn=snr_loss)


@pytest.mark.parametrize("use_loss_fn", [False, True])
def test_non_finite_inputs_name_the_argument(use_loss_fn):
    options = {"loss_fn": functools.partial(l1_loss, reduction="none")} if use_loss_fn else {}
    est, mix = torch.randn(2, 3, 16), torch.randn(2, 2, 16)
    bad = est.clone()
    bad[1, 2, 5] = float("nan")
    with pytest.raises(NonFiniteError, match=r"mixit_loss\(\): argument 'estimates' expected "
                                             r"finite values, got 1 NaN/Inf"):
        mixit_loss(bad, mix, **options)
    bad = mix.clone()
    bad[0, 0, 0] = float("inf")
    with pytest.raises(NonFiniteError, match=r"mixit_loss\(\): argument 'mixtures' expected "
                                             r"finite values"):
        mixit_loss(est, bad, **options)
