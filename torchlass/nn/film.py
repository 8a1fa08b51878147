"""Feature-wise linear modulation (FiLM) of feature maps by a conditioning vector.

FiLM (Perez et al., "FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018)
shifts, and optionally scales, every channel of a feature map by amounts predicted from a
condition such as a text embedding. The DCASE 2024 Task 9 baseline uses the additive form
only (a shift ``beta`` added after BatchNorm, docs/baseline.md#film); the full form adds a scale.
The scale is parametrised as a deviation from one, so a generator whose outputs are zero is
the identity, and [`FiLM`][torchlass.nn.FiLM] starts there.
"""

from __future__ import annotations

import torch
from torch import nn

from torchlass.checks import check_ndim, check_positive_int, check_tensor
from torchlass.errors import ShapeError

__all__ = ["FiLM", "film"]


def _per_channel(v: torch.Tensor, x: torch.Tensor, name: str) -> torch.Tensor:
    check_tensor(v, "film", name)
    if v.shape != x.shape[:2]:
        raise ShapeError(
            f"film(): argument '{name}' expected shape {tuple(x.shape[:2])} "
            f"(batch, channels) to match 'x', got {tuple(v.shape)}"
        )
    return v.reshape(*v.shape, *([1] * (x.dim() - 2)))


def film(x: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor | None = None) -> torch.Tensor:
    """Modulate every channel of ``x`` by a per-item shift and an optional scale.

    ``y = (1 + gamma) * x + beta``, with ``beta`` and ``gamma`` broadcast over the spatial
    dimensions. With ``gamma=None`` this is the additive form ``y = x + beta`` of the DCASE
    2024 baseline. Perez et al. (2018) write ``gamma * x + beta``; the ``1 + gamma`` form
    makes zero coefficients the identity.

    Args:
        x: feature maps.
        beta: shift per item and channel.
        gamma: scale deviation per item and channel, or ``None`` for a shift only.

    Returns:
        The modulated feature maps, same shape and dtype as ``x``.

    Shape:
        - x: ``(batch, channels, *spatial)``
        - beta, gamma: ``(batch, channels)``
        - output: ``(batch, channels, *spatial)``

    Raises:
        ShapeError: if ``x`` has fewer than 2 dimensions or ``beta``/``gamma`` is not
            ``(batch, channels)``.

    Examples:
        >>> x = torch.ones(2, 3, 4, 5)
        >>> film(x, torch.zeros(2, 3)).equal(x)
        True
        >>> film(x, torch.ones(2, 3), torch.ones(2, 3))[0, 0, 0, 0].item()
        3.0
    """
    check_tensor(x, "film", "x")
    check_ndim(x, "film", "x", min_ndim=2, layout="(batch, channels, *spatial)")
    shift = _per_channel(beta, x, "beta")
    if gamma is None:
        return x + shift
    return torch.addcmul(x + shift, x, _per_channel(gamma, x, "gamma"))


class FiLM(nn.Module):
    """Predict FiLM coefficients from a condition with linear layers and apply them.

    ``beta = W_b c + b_b`` and, with ``scale=True``, ``gamma = W_g c + b_g``; the output is
    [`film`][torchlass.nn.film.film] of the input. Both layers start at zero, so the module is the
    identity at initialisation and learns its way away from it.

    Args:
        condition_size: size of the conditioning vector (512 for CLAP).
        num_features: number of channels modulated.
        scale: also predict a scale (full FiLM); ``False`` gives the baseline's shift only.

    Shape:
        - x: ``(batch, num_features, *spatial)``
        - condition: ``(batch, condition_size)``
        - output: ``(batch, num_features, *spatial)``

    Examples:
        >>> layer = FiLM(8, 3, scale=True)
        >>> x = torch.randn(2, 3, 4, 4)
        >>> layer(x, torch.randn(2, 8)).equal(x)
        True
    """

    def __init__(self, condition_size: int, num_features: int, *, scale: bool = False) -> None:
        super().__init__()
        check_positive_int(condition_size, "FiLM", "condition_size")
        check_positive_int(num_features, "FiLM", "num_features")
        self.shift = nn.Linear(condition_size, num_features)
        self.scale = nn.Linear(condition_size, num_features) if scale else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero every weight and bias: the identity modulation."""
        for layer in (self.shift, self.scale):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def coefficients(self, condition: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(beta, gamma)``, each ``(batch, num_features)``; ``gamma`` may be ``None``."""
        beta = self.shift(condition)
        gamma = self.scale(condition) if self.scale is not None else None
        return beta, gamma

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Modulate ``x`` by the coefficients predicted from ``condition``."""
        return film(x, *self.coefficients(condition))
