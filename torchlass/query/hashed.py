"""A deterministic text encoder that needs no download: hashed word and character n-grams.

This encoder is for tests, ``torchlass demo`` and quick experiments, not a substitute for
CLAP: it knows nothing about meaning, only about shared spelling. A caption is lower-cased
and split into words; its features are the content words (a short list of function words
such as "a", "the", "of" is left out), the pairs of neighbouring content words, and the
character 3-grams of each content word with boundary marks (so "barking" and "barks"
share "<ba", "bar", "ark"). Each feature is hashed (BLAKE2b, so the result is the same in
every process and on every machine) to a few signed positions of a ``dim``-sized vector
(the hashing trick: a sparse random projection of the bag of n-grams), and the sum is
L2-normalised. Captions that share words therefore get nearby embeddings.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Sequence

import torch

from torchlass.checks import check_positive_int
from torchlass.errors import ValueRangeError
from torchlass.query.protocol import check_captions

__all__ = ["FUNCTION_WORDS", "HashedTextEncoder", "content_words"]

#: Words left out of the features (articles, prepositions, "sound", ...).
FUNCTION_WORDS = frozenset(
    "a an the of in on at to and or is are was were be been it its this that with from by "
    "for as some someone something sound sounds there while into over".split()
)
_WORD = re.compile(r"[a-z0-9']+")


def content_words(caption: str) -> list[str]:
    """The lower-cased words of ``caption`` without function words ("a", "the", "of", ...).

    Args:
        caption: any text.

    Returns:
        The content words, in order.

    Examples:
        >>> content_words("The sound of a dog barking!")
        ['dog', 'barking']
    """
    return [w for w in _WORD.findall(caption.lower()) if w not in FUNCTION_WORDS]


class HashedTextEncoder:
    """Embed captions as L2-normalised hashed n-gram vectors (deterministic, no download).

    Feature weights: content words 1.0, word pairs 0.5, character 3-grams 0.5 divided by
    the square root of the word's number of 3-grams (so each word's 3-grams together weigh
    about half as much as the word itself, whatever its length).

    Args:
        dim: embedding size (512 matches CLAP and the baseline's FiLM input).
        seed: changes the hash, hence the projection.
        hashes_per_feature: signed positions each feature is spread over.

    Shape:
        Output: ``(len(captions), dim)``, float32, rows of unit L2 norm.

    Raises:
        ValueRangeError: when called on a caption that has no content word.

    Examples:
        >>> enc = HashedTextEncoder(dim=512)
        >>> e = enc(["a dog barking", "dog barks", "rain falling"])
        >>> bool(e[0] @ e[1] > e[0] @ e[2])
        True
    """

    def __init__(self, dim: int = 512, *, seed: int = 0, hashes_per_feature: int = 4) -> None:
        self.dim = check_positive_int(dim, "HashedTextEncoder", "dim", minimum=2)
        self.seed = seed
        self.hashes_per_feature = check_positive_int(
            hashes_per_feature, "HashedTextEncoder", "hashes_per_feature")

    def __repr__(self) -> str:
        return f"HashedTextEncoder(dim={self.dim}, seed={self.seed})"

    def _features(self, caption: str) -> dict[str, float]:
        words = content_words(caption)
        feats: dict[str, float] = {}
        for w in words:
            feats["w:" + w] = feats.get("w:" + w, 0.0) + 1.0
            marked = f"<{w}>"
            grams = [marked[i:i + 3] for i in range(len(marked) - 2)]
            for g in grams:
                feats["c:" + g] = feats.get("c:" + g, 0.0) + 0.5 / len(grams) ** 0.5
        for a, b in itertools.pairwise(words):
            feats[f"p:{a} {b}"] = feats.get(f"p:{a} {b}", 0.0) + 0.5
        return feats

    def _positions(self, feature: str) -> list[tuple[int, float]]:
        digest = hashlib.blake2b(f"{self.seed}|{feature}".encode(), digest_size=32).digest()
        out = []
        for k in range(self.hashes_per_feature):
            word = int.from_bytes(digest[4 * k:4 * k + 4], "little")
            out.append((word % self.dim, 1.0 if (word >> 31) & 1 else -1.0))
        return out

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed ``captions``; see the class docstring."""
        captions = check_captions(captions, "HashedTextEncoder")
        out = torch.zeros(len(captions), self.dim, dtype=torch.float64)
        for row, caption in enumerate(captions):
            feats = self._features(caption)
            if not feats:
                raise ValueRangeError(
                    "HashedTextEncoder(): argument 'captions' expected captions with at least "
                    f"one content word, got {caption!r}"
                )
            for feature, weight in feats.items():
                for index, sign in self._positions(feature):
                    out[row, index] += sign * weight
        out /= out.norm(dim=1, keepdim=True).clamp_min(1e-12)
        return out.to(torch.float32)
