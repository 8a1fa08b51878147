"""FiLM: the function against its formula in float64 numpy, the module's identity at init."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from torchlass.errors import ShapeError
from torchlass.nn import FiLM, film


def _numpy_film(x, beta, gamma=None):
    x, beta = np.asarray(x, np.float64), np.asarray(beta, np.float64)
    shape = beta.shape + (1,) * (x.ndim - 2)
    scale = 1.0 if gamma is None else 1.0 + np.asarray(gamma, np.float64).reshape(shape)
    return scale * x + beta.reshape(shape)


@given(batch=st.integers(1, 3), channels=st.integers(1, 4),
       spatial=st.lists(st.integers(1, 5), min_size=0, max_size=3), scaled=st.booleans())
def test_film_matches_formula(batch, channels, spatial, scaled):
    g = torch.Generator().manual_seed(batch * 100 + channels)
    x = torch.randn(batch, channels, *spatial, generator=g, dtype=torch.float64)
    beta = torch.randn(batch, channels, generator=g, dtype=torch.float64)
    gamma = torch.randn(batch, channels, generator=g, dtype=torch.float64) if scaled else None
    expected = _numpy_film(x.numpy(), beta.numpy(), None if gamma is None else gamma.numpy())
    np.testing.assert_allclose(film(x, beta, gamma).numpy(), expected, rtol=1e-12, atol=1e-12)


def test_film_zero_coefficients_are_identity_bitwise():
    x = torch.randn(2, 3, 7, 5)
    zeros = torch.zeros(2, 3)
    assert torch.equal(film(x, zeros), x)
    assert torch.equal(film(x, zeros, zeros), x)


def test_film_gradcheck():
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    beta = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    gamma = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(film, (x, beta, gamma))
    assert torch.autograd.gradcheck(film, (x, beta))


def test_film_batch_equals_itemwise():
    x, beta, gamma = torch.randn(4, 3, 6, 2), torch.randn(4, 3), torch.randn(4, 3)
    items = torch.cat([film(x[i:i + 1], beta[i:i + 1], gamma[i:i + 1]) for i in range(4)])
    torch.testing.assert_close(film(x, beta, gamma), items, rtol=0, atol=0)


def test_film_errors():
    x = torch.randn(2, 3, 4)
    with pytest.raises(ShapeError, match=r"film\(\): argument 'beta' expected shape \(2, 3\) "
                                         r"\(batch, channels\) to match 'x', got \(2, 4\)"):
        film(x, torch.zeros(2, 4))
    with pytest.raises(ShapeError, match=r"film\(\): argument 'gamma' expected shape \(2, 3\)"):
        film(x, torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ShapeError, match=r"film\(\): argument 'x' expected at least 2 dim"):
        film(torch.zeros(3), torch.zeros(3))
    with pytest.raises(TypeError, match=r"film\(\): argument 'beta' expected a torch.Tensor"):
        film(x, 0.5)


@pytest.mark.parametrize("scale", [False, True])
def test_module_is_identity_at_init_and_learns(scale):
    layer = FiLM(6, 3, scale=scale)
    x, condition = torch.randn(2, 3, 5, 4), torch.randn(2, 6)
    out = layer(x, condition)
    assert torch.equal(out, x)
    out.square().sum().backward()
    grads = [p.grad for p in layer.parameters()]
    assert len(grads) == (4 if scale else 2)
    assert all(g is not None and g.abs().sum() > 0 for g in grads)


def test_module_equals_function():
    layer = FiLM(6, 3, scale=True)
    for p in layer.parameters():
        torch.nn.init.normal_(p)
    x, condition = torch.randn(2, 3, 5), torch.randn(2, 6)
    beta = condition @ layer.shift.weight.T + layer.shift.bias
    gamma = condition @ layer.scale.weight.T + layer.scale.bias
    torch.testing.assert_close(layer(x, condition), film(x, beta, gamma))
    assert layer.coefficients(condition)[0].shape == (2, 3)
    assert FiLM(6, 3).coefficients(condition)[1] is None


def test_module_errors():
    with pytest.raises(ValueError, match=r"FiLM\(\): argument 'num_features' expected an int >= 1"):
        FiLM(4, 0)
