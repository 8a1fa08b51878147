"""Bounding functions that turn two real network outputs into a complex (or two-part) mask.

A network predicts an unconstrained pair ``(a, b)``; [`bound_mask`][torchlass.masks.bound_mask] maps
it to the mask ``(M_re, M_im)`` used by
[`apply_real_imag_mask`][torchlass.masks.apply_real_imag_mask] or
[`apply_complex_ratio_mask`][torchlass.masks.apply_complex_ratio_mask]. The options, and where they
come from:

* ``"none"``: ``M = a + j b``, unbounded (the complex ratio mask of Williamson, Wang and
  Wang, "Complex ratio masking for monaural speech separation", IEEE/ACM TASLP 24(3), 2016,
  and the "unbounded" mask of Choi et al., "Phase-aware speech enhancement with deep
  complex U-Net", ICLR 2019). Any target is reachable; training can diverge.
* ``"tanh"``: ``M = tanh(a) + j tanh(b)``, each part in (-1, 1): the per-part analogue of
  the baseline's (0, 1) magnitude mask that still lets a part change sign.
* ``"sigmoid"``: ``M = sigmoid(a) + j sigmoid(b)``, each part in (0, 1) (Choi et al.,
  2019, "bounded (sigmoid-sigmoid)"; the ideal-ratio-mask range per part).
* ``"polar_tanh"``: ``M = tanh(|O|) e^{j angle O}`` with ``O = a + j b``: magnitude in
  [0, 1), any phase (Choi et al., 2019, "bounded (tanh)").
* ``"cirm"``: each part compressed as in Williamson et al. (2016), eq. 10:
  ``K (1 - e^{-C z}) / (1 + e^{-C z}) = K tanh(C z / 2)``, in (-K, K), with their
  ``K = 10`` and ``C = 0.1`` (computed through ``tanh``, which never overflows).
"""

from __future__ import annotations

import torch

from torchlass.checks import check_choice, check_dtype, check_same_shape
from torchlass.errors import ValueRangeError

__all__ = ["BOUNDS", "CIRM_C", "CIRM_K", "bound_mask"]

BOUNDS = ("none", "tanh", "sigmoid", "polar_tanh", "cirm")
"""Accepted values of ``bound=``."""
CIRM_K = 10.0
"""Range ``K`` of the compressed cIRM: each part lies in (-K, K) (Williamson et al., 2016)."""
CIRM_C = 0.1
"""Steepness ``C`` of the compressed cIRM (Williamson et al., 2016)."""

# Floor on |O|^2 in the polar bound: keeps angle(O) and its gradient finite at O = 0.
_POLAR_EPS = 1e-20


def bound_mask(
    real: torch.Tensor,
    imag: torch.Tensor,
    *,
    bound: str = "tanh",
    cirm_k: float = CIRM_K,
    cirm_c: float = CIRM_C,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Bound a pair of network outputs into mask parts ``(M_re, M_im)``.

    See the module description for the formula and the paper behind each ``bound``.

    Args:
        real: first network output plane ``a``.
        imag: second network output plane ``b``.
        bound: one of [`BOUNDS`][torchlass.masks.BOUNDS].
        cirm_k: range ``K`` of the ``"cirm"`` compression, > 0.
        cirm_c: steepness ``C`` of the ``"cirm"`` compression, > 0.

    Returns:
        ``(M_re, M_im)``, real tensors of the input shape and dtype. Ranges: ``"tanh"``
        (-1, 1) per part; ``"sigmoid"`` (0, 1) per part; ``"polar_tanh"`` ``|M| < 1``;
        ``"cirm"`` (-K, K) per part.

    Shape:
        ``real`` and ``imag``: the same shape ``(...)``; outputs: that shape.

    Raises:
        DTypeError: an input is not a real floating-point tensor.
        ShapeError: the shapes differ.
        ValueRangeError: unknown ``bound`` or a non-positive ``cirm_k``/``cirm_c``.

    Examples:
        >>> bound_mask(torch.tensor([0.0]), torch.tensor([0.0]), bound="sigmoid")
        (tensor([0.5000]), tensor([0.5000]))
    """
    fn = "bound_mask"
    check_dtype(real, fn, "real", complex_=False)
    check_dtype(imag, fn, "imag", complex_=False)
    check_same_shape(fn, real=real, imag=imag)
    check_choice(bound, fn, "bound", BOUNDS)
    for name, value in (("cirm_k", cirm_k), ("cirm_c", cirm_c)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueRangeError(
                f"{fn}(): argument '{name}' expected a positive float, got {value!r}"
            )
    if bound == "none":
        return real, imag
    if bound == "tanh":
        return torch.tanh(real), torch.tanh(imag)
    if bound == "sigmoid":
        return torch.sigmoid(real), torch.sigmoid(imag)
    if bound == "polar_tanh":
        norm = torch.sqrt(torch.clamp(real * real + imag * imag, min=_POLAR_EPS))
        scale = torch.tanh(norm) / norm  # tanh(|O|) / |O|, -> 1 as |O| -> 0
        return real * scale, imag * scale
    return cirm_k * torch.tanh(0.5 * cirm_c * real), cirm_k * torch.tanh(0.5 * cirm_c * imag)
