"""torchlass.recipes.objectives: the training losses a configuration names."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlass.data import Mixture
from torchlass.errors import ShapeError, ValueRangeError
from torchlass.recipes import separation_loss


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
