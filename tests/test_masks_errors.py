"""Every bad-input path of torchlass.masks, with the message asserted."""

from __future__ import annotations

import pytest
import torch
from helpers import randn, random_spec

from torchlass.errors import DTypeError, ShapeError, ValueRangeError
from torchlass.masks import (
    ComplexRatioMaskHead,
    MagPhaseMaskHead,
    RealImagMaskHead,
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
    bound_mask,
)

SPEC = random_spec(2, 1, 5, 4, dtype=torch.complex64)
M = torch.rand(2, 1, 5, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(("fn", "planes"), [
    (apply_mag_phase_mask, ("mag_logit", "phase_real_logit", "phase_imag_logit")),
    (apply_real_imag_mask, ("mask_real", "mask_imag")),
    (apply_complex_ratio_mask, ("mask_real", "mask_imag")),
])
def test_apply_errors(fn, planes):
    name = fn.__name__
    masks = [M] * len(planes)
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'spec' expected a complex "
                                         r"tensor, got dtype torch.float32"):
        fn(M, *masks)
    for i, plane in enumerate(planes):
        bad = list(masks)
        bad[i] = SPEC
        with pytest.raises(DTypeError, match=rf"{name}\(\): argument '{plane}' expected a real "
                                             r"floating-point tensor, got dtype torch.complex64"):
            fn(SPEC, *bad)
        bad[i] = (M > 0.5).long()
        with pytest.raises(DTypeError, match=rf"{name}\(\): argument '{plane}' expected a "
                                             r"floating-point tensor, got dtype torch.int64"):
            fn(SPEC, *bad)
    bad = list(masks)
    bad[-1] = torch.rand(3, 1, 5, 4)
    with pytest.raises(ShapeError, match=rf"{name}\(\): arguments 'spec', .*'{planes[-1]}' "
                                         r"expected shapes that broadcast together, got spec "
                                         rf"\(2, 1, 5, 4\) and .* and {planes[-1]} \(3, 1, 5, 4\)"):
        fn(SPEC, *bad)
    with pytest.raises(DTypeError, match=rf"{name}\(\): argument 'spec' expected a torch.Tensor"):
        fn([1j], *masks)


def test_bound_mask_errors():
    a = torch.randn(3)
    with pytest.raises(ValueRangeError, match=r"bound_mask\(\): argument 'bound' expected one of "
                                              r"'none', 'tanh', 'sigmoid', 'polar_tanh', 'cirm', "
                                              r"got 'relu'"):
        bound_mask(a, a, bound="relu")
    with pytest.raises(ShapeError, match=r"bound_mask\(\): arguments 'real' and 'imag' must have "
                                         r"the same shape, got \(3,\) and \(4,\)"):
        bound_mask(a, torch.randn(4))
    with pytest.raises(DTypeError, match=r"bound_mask\(\): argument 'imag' expected a real "
                                         r"floating-point tensor, got dtype torch.complex64"):
        bound_mask(a, a.to(torch.complex64))
    for name in ("cirm_k", "cirm_c"):
        with pytest.raises(ValueRangeError, match=rf"bound_mask\(\): argument '{name}' expected a "
                                                  r"positive float, got 0"):
            bound_mask(a, a, bound="cirm", **{name: 0})


@pytest.mark.parametrize("head", [MagPhaseMaskHead(2), RealImagMaskHead(2),
                                  ComplexRatioMaskHead(2)])
def test_head_errors(head):
    name = rf"{type(head).__name__}\.forward\(\)"
    k = head.planes
    spec = random_spec(2, 3, 5, 4, dtype=torch.complex64)
    good = randn(2, 2 * 3 * k, 5, 4, dtype=torch.float32, seed=1)
    head(good, spec)
    with pytest.raises(ShapeError, match=rf"{name}: argument 'net_out' expected shape "
                                         rf"\(2, {6 * k}, 5, 4\) \(batch, sources=2 \* channels=3 "
                                         rf"\* planes={k}, freq, frames\) to match 'spec' "
                                         rf"\(2, 3, 5, 4\), got \(2, {6 * k - 1}, 5, 4\)"):
        head(good[:, 1:], spec)
    with pytest.raises(ShapeError, match=rf"{name}: argument 'net_out' expected shape .*got "
                                         rf"\(2, {6 * k}, 5, 3\)"):
        head(good[..., 1:], spec)
    with pytest.raises(ShapeError, match=rf"{name}: argument 'spec' expected a 4-d tensor "
                                         r"\(batch, channels, freq, frames\), "
                                         r"got shape \(3, 5, 4\)"):
        head(good, spec[0])
    with pytest.raises(ShapeError, match=rf"{name}: argument 'net_out' expected a 4-d tensor "
                                         r"\(batch, sources \* channels \* planes, freq, frames\)"):
        head(good[0], spec)
    with pytest.raises(DTypeError, match=rf"{name}: argument 'spec' expected a complex tensor"):
        head(good, spec.real)
    with pytest.raises(DTypeError, match=rf"{name}: argument 'net_out' expected a real "
                                         r"floating-point tensor"):
        head(good.to(torch.complex64), spec)


def test_head_constructor_errors():
    with pytest.raises(ValueRangeError, match=r"MagPhaseMaskHead\(\): argument 'num_sources' "
                                              r"expected an int >= 1, got 0"):
        MagPhaseMaskHead(0)
    with pytest.raises(DTypeError, match=r"RealImagMaskHead\(\): argument 'num_sources' expected "
                                         r"an int, got float"):
        RealImagMaskHead(1.0)
    with pytest.raises(ValueRangeError, match=r"ComplexRatioMaskHead\(\): argument 'bound' "
                                              r"expected one of .*got 'abs'"):
        ComplexRatioMaskHead(bound="abs")
