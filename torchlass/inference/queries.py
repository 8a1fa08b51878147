"""The queries of a file run: captions or example clips, each with an optional negative query.

A run embeds its queries once. [`embed_conditions`][torchlass.inference.queries.embed_conditions]
turns the positive queries and the negative ones into the two ``(queries, dim)`` tensors a
separator is called with, in one call to the encoder: a query without a negative gets a row
of zeros, which a separator trained with negative queries reads as "no negative query".
Negative queries are refused, before any work, by a separator that does not take them
(``takes_negative`` false or absent).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from torchlass.errors import DTypeError, ShapeError, TorchlassError
from torchlass.query import (
    AudioQuery,
    Query,
    TextEncoder,
    embed_queries,
    embeds_audio,
)
from torchlass.query.protocol import check_clip

__all__ = ["check_negatives", "embed_conditions", "takes_negative"]


def takes_negative(separator: nn.Module) -> bool:
    """Whether ``separator`` is conditioned on a negative query too (its ``takes_negative``)."""
    return bool(getattr(separator, "takes_negative", False))


def check_negatives(negatives: object, queries: Sequence[Query], separator: nn.Module,
                    fn: str) -> list[Query | None] | None:
    """Return ``negatives`` as a list, one per query, or raise before any work is done.

    Args:
        negatives: one negative query per query (a caption, an
            [`AudioQuery`][torchlass.query.AudioQuery], or None for none), or None.
        queries: the positive queries.
        separator: the model; it must take negative queries if any is given.
        fn: the public function, for messages.

    Returns:
        The list, or None without ``negatives`` or when all are None and the separator
        takes no negative query (it is then called without one).

    Raises:
        DTypeError: if ``negatives`` is a string or holds another type.
        ShapeError: if it does not hold one entry per query.
        TorchlassError: if a negative query is given to a separator that does not take any.
    """
    if negatives is None:
        return None
    if isinstance(negatives, str) or not isinstance(negatives, Sequence):
        raise DTypeError(f"{fn}(): argument 'negatives' expected a list (one caption or None "
                         f"per query), got {type(negatives).__name__}")
    if len(negatives) != len(queries):
        raise ShapeError(f"{fn}(): argument 'negatives' expected one entry per query "
                         f"({len(queries)}), got {len(negatives)}")
    for negative in negatives:
        if isinstance(negative, AudioQuery):
            check_clip(negative, fn, "negatives")
        elif negative is not None and not isinstance(negative, str):
            raise DTypeError(f"{fn}(): argument 'negatives' expected captions (str), "
                             f"AudioQuery clips or None, got an item of type "
                             f"{type(negative).__name__}")
    if not takes_negative(separator):
        if all(n is None for n in negatives):  # nothing to pass to a model that takes none
            return None
        raise TorchlassError(f"{fn}(): argument 'negatives' was given, but the separator "
                             f"{type(separator).__name__} takes no negative query (its "
                             "takes_negative is not true): use a model trained with negative "
                             "queries, or leave 'negatives' out")
    return list(negatives)


def embed_conditions(encoder: TextEncoder, queries: Sequence[Query],
                     negatives: Sequence[Query | None] | None = None, *,
                     device: torch.device | str | None = None, fn: str = "embed_conditions"
                     ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Embed the queries and their negatives in one call to the encoder.

    Args:
        encoder: a [`TextEncoder`][torchlass.query.TextEncoder], also an
            [`AudioEncoder`][torchlass.query.AudioEncoder] if a clip is among the queries.
        queries: captions and clips (checked by
            [`check_queries`][torchlass.query.check_queries]).
        negatives: one negative query or None per query (checked by
            [`check_negatives`][torchlass.inference.queries.check_negatives]), or None.
        device: where the embeddings should live.
        fn: the public function, for messages.

    Returns:
        ``(condition, negative)``, float32; ``negative`` is None without ``negatives`` and
        has a zero row for every query without a negative query.

    Shape:
        Both: ``(len(queries), encoder.dim)``.

    Raises:
        TorchlassError: if a clip is given and the encoder embeds text only.

    Examples:
        >>> from torchlass.query import HashedTextEncoder
        >>> encoder = HashedTextEncoder(dim=4)
        >>> c, n = embed_conditions(encoder, ["speech", "a dog"], ["tv", None])
        >>> c.shape, torch.equal(n[0], encoder(["tv"])[0]), n[1].tolist()
        (torch.Size([2, 4]), True, [0.0, 0.0, 0.0, 0.0])
    """
    given = [k for k, n in enumerate(negatives or []) if n is not None]
    items: list[Query] = [*queries, *(n for n in negatives or [] if n is not None)]
    clip = next((q for q in items if isinstance(q, AudioQuery)), None)
    if clip is not None and not embeds_audio(encoder):
        raise TorchlassError(f"{fn}(): the clip {clip.name!r} is a query, but the "
                             f"encoder {type(encoder).__name__} embeds text only (a CLAP "
                             "encoder with its audio tower embeds both)")
    rows = embed_queries(encoder, items, device=device)
    condition = rows[:len(queries)]
    if negatives is None:
        return condition, None
    negative = torch.zeros_like(condition)
    negative[given] = rows[len(queries):]
    return condition, negative
