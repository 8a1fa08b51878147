"""A positive and an optional negative query embedding turned into one backbone condition.

"Speech, but not the TV": the negative query names what to leave out. Following CLAPSep
(Ma et al., "CLAPSep: Leveraging Contrastive Pre-trained Model for Multi-Modal
Query-Conditioned Target Sound Extraction", 2024; ``model/CLAPSep.py`` in its repository),
the condition is the concatenation ``[positive, negative]`` and an absent query is a row of
zeros. CLAP embeddings have unit norm, so zero is never a real embedding.

Why a concatenation rather than a learned combination into ``dim`` values: every FiLM
layer of the backbone is linear in its condition, ``beta = W_p positive + W_n negative +
b``, so each layer gets its own directions for the negative at no extra cost here, and a
zero negative leaves exactly ``W_p positive + b``: the positive-only model of the same
weights. (A shared projection ``positive + A negative`` would have to serve every layer
with one ``A``.) A positive-only checkpoint can therefore seed a negative-query model:
copy its FiLM weights into ``W_p`` and zero ``W_n``. The conditioner has no parameters;
the cost is the FiLM layers' doubled input (measured in docs/guides/negative_queries.md).
"""

from __future__ import annotations

import torch
from torch import nn

from torchlass.checks import check_ndim, check_positive_int, check_real_floating
from torchlass.errors import DTypeError, ShapeError

__all__ = ["QueryCondition", "query_condition"]


def query_condition(positive: torch.Tensor, negative: torch.Tensor | None = None) -> torch.Tensor:
    """Concatenate a positive query embedding and a negative one (zeros when absent).

    ``condition = [positive, negative]`` along the last axis; ``negative=None`` is the same
    as a row of zeros for every item, and a zero row in ``negative`` means "no negative
    query" for that item only, so a batch can mix both.

    Args:
        positive: embedding of what to keep.
        negative: embedding of what to leave out, or ``None`` for none.

    Returns:
        The condition, same dtype and device as ``positive``.

    Shape:
        - positive: ``(batch, dim)``
        - negative: ``(batch, dim)`` or ``None``
        - output: ``(batch, 2 * dim)``

    Raises:
        ShapeError: if ``positive`` is not ``(batch, dim)`` or ``negative`` not of its shape.
        DTypeError: if either is not real floating-point or their dtypes differ.

    Examples:
        >>> query_condition(torch.ones(1, 2), torch.full((1, 2), 3.0))
        tensor([[1., 1., 3., 3.]])
        >>> query_condition(torch.ones(1, 2))
        tensor([[1., 1., 0., 0.]])
    """
    fn = "query_condition"
    check_real_floating(positive, fn, "positive")
    check_ndim(positive, fn, "positive", ndim=2, layout="(batch, dim)")
    if negative is None:
        return torch.cat([positive, torch.zeros_like(positive)], dim=-1)
    check_real_floating(negative, fn, "negative")
    if negative.shape != positive.shape:
        raise ShapeError(f"{fn}(): argument 'negative' expected the shape of 'positive' "
                         f"{tuple(positive.shape)} (batch, dim), got {tuple(negative.shape)}")
    if negative.dtype != positive.dtype:
        raise DTypeError(f"{fn}(): argument 'negative' expected the dtype of 'positive' "
                         f"{positive.dtype}, got {negative.dtype}")
    return torch.cat([positive, negative], dim=-1)


class QueryCondition(nn.Module):
    """The [`query_condition`][torchlass.nn.query_condition.query_condition] of queries of a
    known size.

    Holds the query size so that a separator can tell its callers what it takes
    (``query_size``) and what its backbone reads (``condition_size = 2 * query_size``). It
    has no parameters or buffers.

    Args:
        query_size: size of each query embedding (512 for CLAP).

    Shape:
        - positive, negative: ``(batch, query_size)`` (``negative`` may be ``None``)
        - output: ``(batch, 2 * query_size)``

    Raises:
        ShapeError: on embeddings of another size (and as the function).

    Examples:
        >>> layer = QueryCondition(3)
        >>> layer(torch.ones(2, 3)).shape, layer.condition_size
        (torch.Size([2, 6]), 6)
    """

    def __init__(self, query_size: int) -> None:
        super().__init__()
        self.query_size = check_positive_int(query_size, "QueryCondition", "query_size")

    @property
    def condition_size(self) -> int:
        """Size of the condition the backbone reads: ``2 * query_size``."""
        return 2 * self.query_size

    def forward(self, positive: torch.Tensor, negative: torch.Tensor | None = None
                ) -> torch.Tensor:
        """``[positive, negative or zeros]``, ``(batch, 2 * query_size)``."""
        if positive.dim() == 2 and positive.shape[-1] != self.query_size:
            raise ShapeError(f"QueryCondition(): argument 'positive' expected "
                             f"{self.query_size} values per query (batch, query_size), got "
                             f"shape {tuple(positive.shape)}")
        return query_condition(positive, negative)

    def extra_repr(self) -> str:
        return f"query_size={self.query_size}"
