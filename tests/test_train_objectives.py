"""torchlass.recipes.objectives: query-anchored MixIT and the training losses."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from torchlass.data import Mixture
from torchlass.errors import ShapeError, ValueRangeError
from torchlass.recipes import anchored_mixit_loss, separation_loss


def np_neg_snr(estimate, target, snr_max):
    tau = 10 ** (-snr_max / 10)
    eps = np.finfo(np.float64).eps
    err = np.sum((target - estimate) ** 2) + tau * np.sum(target**2) + eps
    return 10 * np.log10(err) - 10 * np.log10(np.sum(target**2) + eps)


def test_anchored_mixit_against_brute_force():
    rng = np.random.default_rng(0)
    est = rng.standard_normal((3, 3, 50))
    target, other = rng.standard_normal((2, 3, 50))
    got = anchored_mixit_loss(torch.from_numpy(est), torch.from_numpy(target),
                              torch.from_numpy(other), snr_max=25.0)
    best = []
    for b in range(3):
        options = []
        for a in itertools.product((0, 1), repeat=2):
            to_target = est[b, 0] + sum(est[b, j + 1] for j in range(2) if a[j] == 0)
            to_other = sum((est[b, j + 1] for j in range(2) if a[j] == 1),
                           np.zeros(50))
            options.append(np_neg_snr(to_target, target[b], 25.0)
                           + np_neg_snr(to_other, other[b], 25.0))
        best.append(min(options))
    np.testing.assert_allclose(float(got), np.mean(best), rtol=1e-9)
    with pytest.raises(ShapeError, match=r"expected \(batch, M >= 2, time\)"):
        anchored_mixit_loss(torch.zeros(2, 1, 5), torch.zeros(2, 5), torch.zeros(2, 5))


def test_anchored_mixit_gradcheck_and_batch_equals_itemwise():
    g = torch.Generator().manual_seed(3)
    est = torch.randn(2, 3, 16, dtype=torch.float64, generator=g, requires_grad=True)
    target = torch.randn(2, 16, dtype=torch.float64, generator=g)
    other = torch.randn(2, 16, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(
        lambda e: anchored_mixit_loss(e, target, other, snr_max=20.0), (est,))
    whole = anchored_mixit_loss(est, target, other)
    items = [anchored_mixit_loss(est[i:i + 1], target[i:i + 1], other[i:i + 1])
             for i in range(2)]
    torch.testing.assert_close(whole, torch.stack(items).mean())


def test_separation_losses_numerics():
    rng = np.random.default_rng(1)
    t, i, e = (rng.standard_normal((4, 1, 64)) for _ in range(3))
    batch = Mixture(torch.from_numpy(t + i), torch.from_numpy(t), torch.from_numpy(i),
                    torch.zeros(4))
    l1 = separation_loss("l1", torch.from_numpy(e)[:, None], batch)
    np.testing.assert_allclose(float(l1), np.mean(np.abs(e - t)), rtol=1e-12)
    sdr = separation_loss("sdr", torch.from_numpy(e)[:, None], batch, sdr_lambda=0.9)
    eps = np.finfo(np.float64).eps

    def np_snr(x, s):
        return 10 * np.log10((np.sum(s**2) + eps) / (np.sum((s - x) ** 2) + eps))

    def np_si_snr(x, s):
        x, s = x - x.mean(), s - s.mean()
        proj = (np.dot(x, s) + eps) / (np.dot(s, s) + eps) * s
        return 10 * np.log10((np.sum(proj**2) + eps) / (np.sum((x - proj) ** 2) + eps))

    expected = np.mean([-0.9 * np_snr(e[b, 0], t[b, 0]) - 0.1 * np_si_snr(e[b, 0], t[b, 0])
                        for b in range(4)])
    np.testing.assert_allclose(float(sdr), expected, rtol=1e-6)
    with pytest.raises(ShapeError, match="'mixit' expected an estimate of shape"):
        separation_loss("mixit", torch.from_numpy(e), batch)
    with pytest.raises(ShapeError, match=r"'l1' expected an estimate of shape \(batch, 1, 1, "
                                         r"time\) \(4, 1, 1, 64\), got \(4, 2, 1, 64\)"):
        separation_loss("l1", torch.zeros(4, 2, 1, 64), batch)
    with pytest.raises(ValueRangeError, match="'name' expected one of"):
        separation_loss("l2", torch.from_numpy(e), batch)
