"""A cache in front of a text encoder, so each distinct caption is embedded once.

Training sees the same captions again and again; a large text tower such as CLAP's
RoBERTa costs far more than the separator's step.
[`CachedTextEncoder`][torchlass.query.CachedTextEncoder] keeps one embedding per distinct caption
(on the CPU) and, per call, embeds only the captions it has not seen, in one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from torchlass.errors import TorchlassError
from torchlass.query.protocol import AudioEncoder, TextEncoder, check_captions, embed_captions

__all__ = ["CachedTextEncoder"]


class CachedTextEncoder:
    """Memoise a [`TextEncoder`][torchlass.query.TextEncoder] caption by caption.

    The cache assumes the wrapped encoder is deterministic (eval mode); the baseline's
    CLAP in train mode has dropout on (docs/baseline.md#query-encoder), which a cache freezes.

    Args:
        encoder: the encoder to wrap.
        max_items: keep at most this many captions (oldest dropped first); None: no limit.

    Shape:
        Output: ``(len(captions), encoder.dim)``, float32, on the CPU.

    Examples:
        >>> from torchlass.query import HashedTextEncoder
        >>> cached = CachedTextEncoder(HashedTextEncoder(dim=8))
        >>> cached(["rain", "a dog", "rain"]).shape, len(cached)
        (torch.Size([3, 8]), 2)
    """

    def __init__(self, encoder: TextEncoder, *, max_items: int | None = None) -> None:
        self.encoder = encoder
        self.dim = encoder.dim
        self.max_items = max_items
        self._store: dict[str, torch.Tensor] = {}

    def __len__(self) -> int:
        return len(self._store)

    def clear(self) -> None:
        """Forget every cached embedding."""
        self._store.clear()

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed ``captions``, calling the wrapped encoder only on unseen ones."""
        captions = check_captions(captions, "CachedTextEncoder")
        missing = list(dict.fromkeys(c for c in captions if c not in self._store))
        if missing:
            fresh = embed_captions(self.encoder, missing, device="cpu").detach()
            self._store.update(zip(missing, fresh, strict=True))
            if self.max_items is not None:
                while len(self._store) > self.max_items:
                    self._store.pop(next(iter(self._store)))
        rows = [self._store.get(c) for c in captions]
        if any(r is None for r in rows):  # evicted within this call: embed them directly
            return embed_captions(self.encoder, captions, device="cpu").detach()
        return torch.stack(rows)  # type: ignore[arg-type]

    def embed_audio(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """The wrapped encoder's ``embed_audio`` (clips are not cached: they rarely repeat).

        Raises:
            TorchlassError: if the wrapped encoder embeds text only.
        """
        if not isinstance(self.encoder, AudioEncoder):
            raise TorchlassError(f"CachedTextEncoder.embed_audio(): the wrapped encoder "
                                 f"{type(self.encoder).__name__} embeds text only (a CLAP "
                                 "encoder with its audio tower embeds both)")
        return self.encoder.embed_audio(audio, sample_rate)
