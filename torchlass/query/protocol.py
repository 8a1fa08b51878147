"""The text-query protocol: anything that turns a list of captions into embeddings.

A separator is conditioned on a ``(batch, dim)`` tensor. Where that tensor comes from is
left open: LAION-CLAP's text tower ([`ClapTextEncoder`][torchlass.query.ClapTextEncoder]), the
built-in [`HashedTextEncoder`][torchlass.query.HashedTextEncoder], or any object of the user's
with a ``dim`` attribute that can be called on a list of captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch

from torchlass.errors import DTypeError, ShapeError

__all__ = ["TextEncoder", "check_captions", "embed_captions"]


@runtime_checkable
class TextEncoder(Protocol):
    """What torchlass expects from a text-query encoder.

    Attributes:
        dim: size of one embedding.

    Calling the encoder on ``n`` captions returns a float tensor of shape ``(n, dim)``.
    """

    dim: int

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed ``captions`` into a ``(len(captions), dim)`` float tensor."""
        ...


def check_captions(captions: object, fn: str) -> list[str]:
    """Return ``captions`` as a list of strings, or raise naming ``fn``.

    A single string is rejected rather than split into characters.

    Raises:
        DTypeError: if ``captions`` is a string or holds something that is not a string.
        ShapeError: if ``captions`` is empty.
    """
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise DTypeError(
            f"{fn}(): argument 'captions' expected a list of strings, "
            f"got {type(captions).__name__}"
        )
    bad = [type(c).__name__ for c in captions if not isinstance(c, str)]
    if bad:
        raise DTypeError(
            f"{fn}(): argument 'captions' expected a list of strings, got an item of type "
            f"{bad[0]}"
        )
    if len(captions) == 0:
        raise ShapeError(f"{fn}(): argument 'captions' expected at least one caption, got 0")
    return list(captions)


def embed_captions(encoder: TextEncoder, captions: Sequence[str], *,
                   device: torch.device | str | None = None) -> torch.Tensor:
    """Call ``encoder`` on ``captions``, check what it returns, move it to ``device``.

    Args:
        encoder: any [`TextEncoder`][torchlass.query.TextEncoder].
        captions: the text queries.
        device: where the embeddings should live (default: where the encoder put them).

    Returns:
        Float32 embeddings.

    Shape:
        Output: ``(len(captions), encoder.dim)``.

    Raises:
        ShapeError: if the encoder returns a tensor of another shape.
        DTypeError: if the encoder returns something other than a floating-point tensor.

    Examples:
        >>> from torchlass.query import HashedTextEncoder
        >>> embed_captions(HashedTextEncoder(dim=16), ["a dog", "rain"]).shape
        torch.Size([2, 16])
    """
    captions = check_captions(captions, "embed_captions")
    out = encoder(captions)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise DTypeError(
            "embed_captions(): the encoder expected to return a floating-point tensor, "
            f"got {type(out).__name__ if not isinstance(out, torch.Tensor) else out.dtype}"
        )
    expected = (len(captions), encoder.dim)
    if tuple(out.shape) != expected:
        raise ShapeError(
            f"embed_captions(): the encoder expected to return shape {expected}, "
            f"got {tuple(out.shape)}"
        )
    return out.to(device=device, dtype=torch.float32)
