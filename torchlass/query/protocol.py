"""The query protocols: anything that turns captions (or example clips) into embeddings.

A separator is conditioned on a ``(batch, dim)`` tensor. Where that tensor comes from is
left open: LAION-CLAP's text tower ([`ClapTextEncoder`][torchlass.query.ClapTextEncoder]), the
built-in [`HashedTextEncoder`][torchlass.query.HashedTextEncoder], or any object of the user's
with a ``dim`` attribute that can be called on a list of captions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeGuard, runtime_checkable

import torch

from torchlass.errors import DTypeError, ShapeError, TorchlassError

__all__ = [
    "AudioEncoder",
    "AudioQuery",
    "Query",
    "TextEncoder",
    "check_captions",
    "check_clip",
    "check_queries",
    "embed_captions",
    "embed_queries",
    "query_name",
]


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
    out = _checked_embeddings(encoder(captions), (len(captions), encoder.dim),
                              "embed_captions(): the encoder")
    return out.to(device=device, dtype=torch.float32)


def _checked_embeddings(out: object, expected: tuple[int, int], who: str) -> torch.Tensor:
    """``out`` if it is a floating-point tensor of shape ``expected``; else raise as ``who``."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        got = out.dtype if isinstance(out, torch.Tensor) else type(out).__name__
        raise DTypeError(f"{who} expected to return a floating-point tensor, got {got}")
    if tuple(out.shape) != expected:
        raise ShapeError(f"{who} expected to return shape {expected}, got {tuple(out.shape)}")
    return out


@runtime_checkable
class AudioEncoder(Protocol):
    """What torchlass expects from an audio-query encoder (CLAP's audio tower, for one).

    Attributes:
        dim: size of one embedding; an encoder that is also a
            [`TextEncoder`][torchlass.query.TextEncoder] embeds text and audio into the same
            space (CLAP's joint space), so either can condition a separator.

    ``embed_audio(audio, sample_rate)`` takes float audio at ``sample_rate`` Hz, shaped
    ``(n, time)`` or ``(n, channels, time)`` (channels are averaged), resamples it to the
    encoder's own rate itself, and returns a float tensor of shape ``(n, dim)``.
    """

    dim: int

    def embed_audio(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Embed ``audio`` at ``sample_rate`` Hz into a ``(n, dim)`` float tensor."""
        ...


@dataclass(frozen=True)
class AudioQuery:
    """A clip used as a query ("more of this sound"), in a list of queries with captions.

    Attributes:
        waveform: the example sound, ``(time,)`` or ``(channels, time)``, float.
        sample_rate: its rate in Hz.
        name: a short label for messages and output file names (e.g. the file's stem).
    """

    waveform: torch.Tensor
    sample_rate: int
    name: str = "audio"


#: One query: a caption or an example clip.
Query = str | AudioQuery


def query_name(query: Query) -> str:
    """A caption as it is, or ``"audio:<name>"`` for an [`AudioQuery`][torchlass.query.AudioQuery].

    Examples:
        >>> query_name("a dog"), query_name(AudioQuery(torch.zeros(8), 16000, "bark"))
        ('a dog', 'audio:bark')
    """
    return query if isinstance(query, str) else f"audio:{query.name}"


def embed_queries(encoder: TextEncoder, queries: Sequence[Query], *,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """Embed a list that mixes captions and [`AudioQuery`][torchlass.query.AudioQuery] clips.

    Captions go to the encoder in one call (through
    [`embed_captions`][torchlass.query.embed_captions]); each clip goes to
    ``encoder.embed_audio`` on its own (clips differ in length and rate). The rows keep the
    order of ``queries``.

    Args:
        encoder: a [`TextEncoder`][torchlass.query.TextEncoder]; it must also be an
            [`AudioEncoder`][torchlass.query.AudioEncoder] if ``queries`` holds a clip.
        queries: captions and clips, in any order.
        device: where the embeddings should live (default: where the encoder put them).

    Returns:
        Float32 embeddings.

    Shape:
        Output: ``(len(queries), encoder.dim)``.

    Raises:
        DTypeError: if a query is neither a string nor an ``AudioQuery``, or the encoder
            returns something other than a floating-point tensor.
        ShapeError: if ``queries`` is empty or the encoder returns another shape.
        TorchlassError: if a clip is given to an encoder without ``embed_audio``.

    Examples:
        >>> from torchlass.query import HashedTextEncoder
        >>> embed_queries(HashedTextEncoder(dim=16), ["a dog", "rain"]).shape
        torch.Size([2, 16])
    """
    fn = "embed_queries"
    queries = check_queries(queries, fn)
    rows: list[torch.Tensor | None] = [None] * len(queries)
    text = [k for k, q in enumerate(queries) if isinstance(q, str)]
    if text:
        embedded = embed_captions(encoder, [str(queries[k]) for k in text], device=device)
        for k, row in zip(text, embedded, strict=True):
            rows[k] = row
    for k, query in enumerate(queries):
        if not isinstance(query, AudioQuery):
            continue
        if not embeds_audio(encoder):
            raise TorchlassError(f"{fn}(): argument 'queries' holds the clip {query.name!r} "
                                 f"but the encoder {type(_unwrapped(encoder)).__name__} embeds "
                                 "text only "
                                 "(a CLAP encoder with its audio tower embeds both)")
        audio = query.waveform if query.waveform.dim() > 1 else query.waveform[None]
        out = embed_audio(encoder, audio[None], query.sample_rate, fn=fn)
        rows[k] = out[0].to(device=device if device is not None else out.device,
                            dtype=torch.float32)
    done = [r for r in rows if r is not None]  # every row, now filled
    return torch.stack([r.to(done[0].device) for r in done])


def check_clip(query: AudioQuery, fn: str, name: str) -> None:
    """Raise naming ``fn`` and ``name`` unless ``query`` holds a real float waveform of rank 1
    or 2 with samples and a positive int sample rate."""
    wave, rate = query.waveform, query.sample_rate
    if not isinstance(wave, torch.Tensor) or not wave.is_floating_point() or wave.is_complex():
        got = wave.dtype if isinstance(wave, torch.Tensor) else type(wave).__name__
        raise DTypeError(f"{fn}(): argument '{name}' holds the clip {query.name!r}, expected a "
                         f"real floating-point waveform, got {got}")
    if wave.dim() not in (1, 2) or wave.shape[-1] == 0:
        raise ShapeError(f"{fn}(): argument '{name}' holds the clip {query.name!r}, expected a "
                         f"waveform (time,) or (channels, time) with samples, got shape "
                         f"{tuple(wave.shape)}")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate <= 0:
        raise ShapeError(f"{fn}(): argument '{name}' holds the clip {query.name!r}, expected a "
                         f"positive int sample_rate, got {rate!r}")


def check_queries(queries: object, fn: str) -> list[Query]:
    """Return ``queries`` (captions and [`AudioQuery`][torchlass.query.AudioQuery] clips) as a list.

    Raises:
        DTypeError: if ``queries`` is a string, or holds something that is neither a string
            nor an ``AudioQuery``, or a clip whose waveform is not real floating-point.
        ShapeError: if ``queries`` is empty or a clip has no samples, a rank other than 1
            or 2, or a sample rate that is not a positive int.

    Examples:
        >>> check_queries(["a dog", AudioQuery(torch.zeros(4), 8000, "x")], "f")[0]
        'a dog'
    """
    if isinstance(queries, str) or not isinstance(queries, Sequence):
        raise DTypeError(f"{fn}(): argument 'queries' expected a list of captions and "
                         f"AudioQuery clips, got {type(queries).__name__}")
    if len(queries) == 0:
        raise ShapeError(f"{fn}(): argument 'queries' expected at least one query, got 0")
    for query in queries:
        if isinstance(query, AudioQuery):
            check_clip(query, fn, "queries")
        elif not isinstance(query, str):
            raise DTypeError(f"{fn}(): argument 'queries' expected captions (str) and "
                             f"AudioQuery clips, got an item of type {type(query).__name__}")
    return list(queries)


def embeds_audio(encoder: object) -> TypeGuard[AudioEncoder]:
    """Whether ``encoder`` embeds clips: an [`AudioEncoder`][torchlass.query.AudioEncoder].

    A [`CachedTextEncoder`][torchlass.query.CachedTextEncoder] always has ``embed_audio``
    and forwards it, so the encoder it wraps decides.

    Examples:
        >>> from torchlass.query import CachedTextEncoder, HashedTextEncoder
        >>> embeds_audio(CachedTextEncoder(HashedTextEncoder(dim=8)))
        False
    """
    return isinstance(_unwrapped(encoder), AudioEncoder)


def _unwrapped(encoder: object) -> object:
    """The encoder inside any [`CachedTextEncoder`][torchlass.query.CachedTextEncoder]s."""
    from torchlass.query.cache import CachedTextEncoder  # the cache imports this module

    while isinstance(encoder, CachedTextEncoder):
        encoder = encoder.encoder
    return encoder


def embed_audio(encoder: object, audio: torch.Tensor, sample_rate: int, *,
                fn: str = "embed_audio") -> torch.Tensor:
    """Call ``encoder.embed_audio`` and check what it returns.

    Args:
        encoder: an [`AudioEncoder`][torchlass.query.AudioEncoder].
        audio: clips at ``sample_rate`` Hz.
        sample_rate: their rate in Hz.
        fn: the public function named in error messages.

    Returns:
        The embeddings as the encoder returns them (floating point).

    Shape:
        audio: ``(n, time)`` or ``(n, channels, time)``. Output: ``(n, encoder.dim)``.

    Raises:
        TorchlassError: if the encoder embeds text only.
        DTypeError: if it returns something other than a floating-point tensor.
        ShapeError: if it returns another shape.
    """
    if not embeds_audio(encoder):
        raise TorchlassError(f"{fn}(): argument 'encoder' expected an audio encoder (dim and "
                             "embed_audio(audio, sample_rate): a CLAP model with its audio "
                             f"tower), got {type(_unwrapped(encoder)).__name__}, which embeds "
                             "text only")
    return _checked_embeddings(encoder.embed_audio(audio, sample_rate),
                               (audio.shape[0], encoder.dim),
                               f"{fn}(): the encoder's embed_audio")
