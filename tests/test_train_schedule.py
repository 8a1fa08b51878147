"""torchlass.recipes.schedule: the baseline's warm-up, linear warm-up, constant."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from torchlass.errors import ValueRangeError
from torchlass.recipes import baseline_warmup, build_scheduler, linear_warmup


def test_baseline_warmup_learning_rates():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = build_scheduler(opt, "baseline_warmup", warmup_steps=10)
    lrs = []
    for _ in range(45):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [1e-6] * 10 + [1e-5] * 10 + [1e-4] * 10 + [1e-3] * 15
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert [baseline_warmup(s) for s in (9999, 10000, 29999, 30000)] == [0.001, 0.01, 0.1, 1.0]


def test_linear_and_constant_schedules():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = build_scheduler(opt, "linear_warmup", warmup_steps=4)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert linear_warmup(0, warmup_steps=1) == 1.0
    const = build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3),
                            "constant")
    assert const.get_last_lr() == [0.3]
    with pytest.raises(ValueRangeError, match="'name' expected one of"):
        build_scheduler(opt, "cosine")
