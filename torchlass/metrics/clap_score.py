"""CLAPScore: how well separated audio matches its query, with no reference signal.

Xiao et al., "A Reference-free Metric for Language-Queried Audio Source Separation using
Contrastive Language-Audio Pretraining", DCASE 2024 Workshop (arXiv:2407.04936), define
CLAPScore as the semantic similarity of the separated audio and the text query in a CLAP
model's joint space. Their released evaluation code (github.com/LittleFlyingSheep/
CLAPScore_for_LASS, ``main.py``) scores each clip with ``(text_embed * audio_embed).sum(-1)``
over LAION-CLAP embeddings that ``get_text_embedding`` and ``get_audio_embedding`` have
L2-normalised: the plain cosine, in ``[-1, 1]``, neither clipped nor scaled. That is the
default convention here, ``"cos"``.

CLAPScore derives from CLIPScore (Hessel et al., EMNLP 2021, arXiv:2104.08718), whose code
(github.com/jmhessel/clipscore, ``get_clip_score``) computes ``w * max(cos, 0)`` with
``w = 2.5``: convention ``"hessel"``. torchmetrics' ``CLIPScore`` documents
``max(100 * cos(E_I, E_C), 0)``: convention ``"percent"``. The three differ only by the
clipping at zero and the factor, so the cosine is computed once
([`clap_similarity`][torchlass.metrics.clap_similarity]) and the convention applied on it.
Result names carry the convention (``clapscore_cos_estimate``), since the numbers differ.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from torchlass.checks import (
    check_choice,
    check_finite,
    check_min_length,
    check_ndim,
    check_positive_int,
    check_real_floating,
    check_same_shape,
    loss_dtype,
)
from torchlass.errors import ShapeError, TorchlassError, ValueRangeError
from torchlass.query.protocol import (
    AudioEncoder,
    TextEncoder,
    check_captions,
    embed_audio,
    embed_captions,
)

__all__ = ["CLAP_CONVENTIONS", "clap_score", "clap_score_audio", "clap_similarity"]

#: ``convention -> (factor, clipped at zero)``: the score is ``factor * cos`` or
#: ``factor * max(cos, 0)``.
CLAP_CONVENTIONS: dict[str, tuple[float, bool]] = {
    "cos": (1.0, False),      # Xiao et al. 2024, CLAPScore for LASS (released code)
    "hessel": (2.5, True),    # Hessel et al. 2021, CLIPScore: w * max(cos, 0), w = 2.5
    "percent": (100.0, True),  # torchmetrics CLIPScore: max(100 * cos, 0)
}


def clap_similarity(a: torch.Tensor, b: torch.Tensor, *, convention: str = "cos",
                    fn: str = "clap_similarity") -> torch.Tensor:
    """The CLAPScore of paired embeddings: their cosine, under a named convention.

    ``cos = <a, b> / (‖a‖ ‖b‖)``, computed in float64; ``"cos"`` returns it, ``"hessel"``
    returns ``2.5 * max(cos, 0)`` and ``"percent"`` ``100 * max(cos, 0)`` (see
    [`CLAP_CONVENTIONS`][torchlass.metrics.CLAP_CONVENTIONS]). Any positive rescaling of
    a row leaves the score unchanged.

    Args:
        a: embeddings, one per row (e.g. of the audio).
        b: the embeddings they are compared with (of the captions, or of references).
        convention: ``"cos"`` (default, the LASS CLAPScore), ``"hessel"`` or ``"percent"``.
        fn: the function named in error messages.

    Returns:
        One score per row: float64 for float64 input, float32 otherwise.

    Shape:
        ``a``, ``b``: ``(batch, dim)``. Output: ``(batch,)``.

    Raises:
        ShapeError: if ``a`` and ``b`` are not the same ``(batch, dim)`` shape.
        NonFiniteError: if an embedding holds NaN or Inf.
        ValueRangeError: if a row has zero norm (its cosine is undefined) or the
            convention is unknown.

    Examples:
        >>> a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
        >>> b = torch.tensor([[2.0, 2.0], [-1.0, 0.0]])
        >>> clap_similarity(a, b)
        tensor([ 0.7071, -1.0000])
        >>> clap_similarity(a, b, convention="hessel")
        tensor([1.7678, 0.0000])
    """
    factor, clipped = CLAP_CONVENTIONS[check_choice(convention, fn, "convention",
                                                    tuple(CLAP_CONVENTIONS))]
    for name, x in (("a", a), ("b", b)):
        check_real_floating(x, fn, name)
        check_ndim(x, fn, name, ndim=2, layout="(batch, dim)")
        check_finite(x, fn, name)
    check_same_shape(fn, a=a, b=b)
    a64, b64 = a.double(), b.to(a.device).double()
    norms = a64.norm(dim=-1) * b64.norm(dim=-1)
    zero = (norms == 0).nonzero().flatten().tolist()
    if zero:
        raise ValueRangeError(
            f"{fn}(): row {zero[0]} of the embeddings has zero norm, so its cosine is "
            "undefined (an encoder should return unit-norm embeddings)")
    cos = (a64 * b64).sum(-1) / norms
    score = factor * (cos.clamp_min(0) if clipped else cos)
    return score.to(loss_dtype(torch.promote_types(a.dtype, b.dtype)))


def _check_audio(audio: torch.Tensor, fn: str, name: str) -> None:
    check_real_floating(audio, fn, name)
    if audio.dim() not in (2, 3):
        raise ShapeError(f"{fn}(): argument '{name}' expected a 2-d (batch, time) or 3-d "
                         f"(batch, channels, time) tensor, got shape {tuple(audio.shape)}")
    if audio.shape[0] == 0:
        raise ShapeError(f"{fn}(): argument '{name}' expected at least one clip, got shape "
                         f"{tuple(audio.shape)}")
    check_min_length(audio, fn, name, 1, why="the time axis must not be empty")
    check_finite(audio, fn, name)


def clap_score(audio: torch.Tensor, captions: Sequence[str], encoder: AudioEncoder, *,
               sample_rate: int, convention: str = "cos") -> torch.Tensor:
    """CLAPScore of audio against its text query: the cosine of their CLAP embeddings.

    The reference-free metric of Xiao et al. (DCASE 2024 Workshop, arXiv:2407.04936) for
    language-queried separation: ``cos(E_audio(audio), E_text(caption))`` per clip, higher is
    better (see the module docstring for the conventions and where each was checked).
    ``encoder`` embeds both: CLAP's audio and text towers in one object, an
    [`AudioEncoder`][torchlass.query.AudioEncoder] and a
    [`TextEncoder`][torchlass.query.TextEncoder]. Audio goes to ``encoder.embed_audio`` at
    its own ``sample_rate`` (the encoder resamples to its rate, 48 kHz for CLAP, and
    averages channels). Silent audio is scored like any other clip: CLAP embeds silence to a
    defined vector; only an embedding of zero norm, whose cosine is undefined, is an error.

    Args:
        audio: the separated clips (or mixtures), float.
        captions: one text query per clip.
        encoder: a CLAP model with both towers.
        sample_rate: rate of ``audio`` in Hz.
        convention: ``"cos"`` (default), ``"hessel"`` or ``"percent"`` (see
            [`clap_similarity`][torchlass.metrics.clap_similarity]).

    Returns:
        One score per clip, float32 (float64 if ``embed_audio`` returns float64; the text
        embeddings are float32, as [`embed_captions`][torchlass.query.embed_captions]
        returns them).

    Shape:
        ``audio``: ``(batch, time)`` or ``(batch, channels, time)``. Output: ``(batch,)``.

    Raises:
        TorchlassError: if ``encoder`` has no ``embed_audio`` or cannot embed captions.
        ShapeError: if the numbers of clips and captions differ, ``audio`` is empty or of
            another rank, or the encoder returns another shape.
        NonFiniteError: if ``audio`` or an embedding holds NaN or Inf.
        ValueRangeError: if an embedding has zero norm.
        DTypeError: for integer audio, captions that are not strings, or an encoder that
            returns something other than a floating-point tensor.

    Examples:
        >>> class Toy:  # a stand-in CLAP: audio -> (mean, 1), any caption -> (1, 1)
        ...     dim = 2
        ...     def __call__(self, captions):
        ...         return torch.ones(len(captions), 2)
        ...     def embed_audio(self, audio, sample_rate):
        ...         mean = audio.reshape(audio.shape[0], -1).mean(-1)
        ...         return torch.stack([mean, torch.ones_like(mean)], -1)
        >>> clap_score(torch.ones(2, 8) * torch.tensor([[1.0], [-1.0]]), ["a", "b"], Toy(),
        ...            sample_rate=16000)
        tensor([1., 0.])
    """
    fn = "clap_score"
    _check_audio(audio, fn, "audio")
    check_positive_int(sample_rate, fn, "sample_rate")
    captions = check_captions(captions, fn)
    if len(captions) != audio.shape[0]:
        raise ShapeError(f"{fn}(): arguments 'audio' and 'captions' expected one caption per "
                         f"clip, got {audio.shape[0]} clip(s) and {len(captions)} caption(s)")
    audio_embedding = embed_audio(encoder, audio, sample_rate, fn=fn)
    if not isinstance(encoder, TextEncoder):
        raise TorchlassError(f"{fn}(): argument 'encoder' expected CLAP's text tower too "
                             f"(callable on captions), got {type(encoder).__name__}, which "
                             "embeds audio only")
    text_embedding = embed_captions(encoder, captions)  # float32, checked
    return clap_similarity(audio_embedding, text_embedding, convention=convention,
                           fn=fn).to(audio.device)


def clap_score_audio(audio: torch.Tensor, reference: torch.Tensor, encoder: AudioEncoder, *,
                     sample_rate: int, convention: str = "cos") -> torch.Tensor:
    """Audio-audio CLAPScore: the cosine of the CLAP embeddings of a clip and its reference.

    For evaluation data that has clean references: how close the separated audio sounds to
    the reference in CLAP's space, ``cos(E_audio(audio), E_audio(reference))``, under the
    same conventions as [`clap_score`][torchlass.metrics.clap_score] (it is the audio side of
    the RefCLAPScore that Xiao et al. build like Hessel et al.'s RefCLIPScore).

    Args:
        audio: the separated clips, float.
        reference: the clean references, same shape.
        encoder: an [`AudioEncoder`][torchlass.query.AudioEncoder].
        sample_rate: rate of both in Hz.
        convention: ``"cos"`` (default), ``"hessel"`` or ``"percent"``.

    Returns:
        One score per clip, float32 (float64 if the encoder returns float64).

    Shape:
        ``audio``, ``reference``: ``(batch, time)`` or ``(batch, channels, time)``.
        Output: ``(batch,)``.

    Raises:
        TorchlassError: if ``encoder`` has no ``embed_audio``.
        ShapeError: if ``audio`` and ``reference`` differ in shape or are empty.
        NonFiniteError: if an input or an embedding holds NaN or Inf.
        ValueRangeError: if an embedding has zero norm.

    Examples:
        >>> class Toy:  # a stand-in CLAP audio tower: (mean, 1)
        ...     dim = 2
        ...     def embed_audio(self, audio, sample_rate):
        ...         mean = audio.reshape(audio.shape[0], -1).mean(-1)
        ...         return torch.stack([mean, torch.ones_like(mean)], -1)
        >>> clap_score_audio(torch.ones(1, 8), torch.ones(1, 8), Toy(), sample_rate=16000)
        tensor([1.])
    """
    fn = "clap_score_audio"
    _check_audio(audio, fn, "audio")
    _check_audio(reference, fn, "reference")
    check_same_shape(fn, audio=audio, reference=reference)
    check_positive_int(sample_rate, fn, "sample_rate")
    a = embed_audio(encoder, audio, sample_rate, fn=fn)
    b = embed_audio(encoder, reference, sample_rate, fn=fn)
    return clap_similarity(a, b, convention=convention, fn=fn).to(audio.device)
