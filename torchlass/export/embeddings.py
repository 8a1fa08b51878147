"""Query embeddings as data: what a deployed graph takes instead of a text encoder.

An exported separator takes the ``(batch, condition_size)`` embedding, not the caption:
the text encoder (CLAP's text tower, hundreds of MB) stays out of the graph. A service
with a fixed set of queries embeds them once with
[`save_embeddings`][torchlass.export.save_embeddings] and ships the ``.npy`` file next to the
``.onnx`` one.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from torchlass.query import TextEncoder, embed_captions

__all__ = ["save_embeddings"]


def save_embeddings(encoder: TextEncoder, captions: Sequence[str], path: str | Path) -> Path:
    """Embed ``captions`` with ``encoder`` and save them as a float32 ``.npy`` array.

    Row ``i`` of the array is the embedding of ``captions[i]``, ready to feed a graph's
    ``condition`` input (``numpy.load(path)[i:i + 1]`` for one query).

    Args:
        encoder: any [`TextEncoder`][torchlass.query.TextEncoder] (CLAP for the baseline's
            weights).
        captions: the text queries, at least one.
        path: the file to write (``numpy.save`` appends ``.npy`` if missing).

    Returns:
        The path written.

    Shape:
        Saved array: ``(len(captions), encoder.dim)``, float32.

    Raises:
        DTypeError: ``captions`` is not a list of strings, or the encoder returns a
            non-floating-point tensor.
        ShapeError: ``captions`` is empty, or the encoder returns another shape.

    Examples:
        >>> import tempfile
        >>> from torchlass.query import HashedTextEncoder
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     file = save_embeddings(HashedTextEncoder(dim=16), ["a dog", "rain"],
        ...                            f"{folder}/queries.npy")
        ...     np.load(file).shape, np.load(file).dtype
        ((2, 16), dtype('float32'))
    """
    embeddings = embed_captions(encoder, captions, device="cpu")
    path = Path(path)
    if path.suffix != ".npy":
        path = path.with_name(path.name + ".npy")
    np.save(path, embeddings.numpy())
    return path
