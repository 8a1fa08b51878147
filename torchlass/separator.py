"""The separator: STFT -> features -> conditioned backbone -> mask head -> inverse STFT.

[`Separator`][torchlass.separator.Separator] chains five swappable parts; its constructors build the
DCASE 2024 Task 9 baseline (magnitude features, magnitude mask with phase rotation), SRPOL system 1
(real and imaginary parts in, real/imaginary ratio masks out), a true complex-ratio-mask variant
and system 1 with a negative query (what to leave out), each on the baseline's ResUNet30.
[`separate`][torchlass.separator.separate] runs any separator on
audio of any length in chunks joined by a cross-fade, for several queries of one mixture at once.

Both return one shape whatever the head: ``(batch, sources, channels, time)``, the query's
own source first, so a caller takes ``[:, 0]`` for it and never branches on the rank.
Errors raised by a part on the caller's input are re-raised naming the caller and its
argument (``Separator.forward(): argument 'mixture' ...``), chained to the original.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from torchlass.checks import check_finite as _check_finite
from torchlass.checks import check_ndim, check_positive_int, check_real_floating
from torchlass.errors import DTypeError, ShapeError, TorchlassError, ValueRangeError
from torchlass.masks import ComplexRatioMaskHead, MagPhaseMaskHead, RealImagMaskHead
from torchlass.nn import MagnitudeFeatures, QueryCondition, RealImagFeatures, ResUNet
from torchlass.stft import ISTFT, STFT

__all__ = ["PRESETS", "Separator", "separate"]

#: Names of the `Separator` preset constructors; each records its name and full
#: options on the separator it builds (``separator.preset``, for
#: [`Separator.save_pretrained`][torchlass.separator.Separator.save_pretrained]).
PRESETS: list[str] = []


def _records_preset(build: Callable[..., Separator]) -> Callable[..., Separator]:
    """Register a preset constructor and make it record ``{"name", "options"}`` on its result.

    The options are complete (defaults filled in, the ResUNet's included), so the preset can
    be rebuilt from them even if a default changes later.
    """
    signature = inspect.signature(build)
    resunet_defaults = {p.name: p.default for p in inspect.signature(ResUNet).parameters.values()
                        if p.kind is inspect.Parameter.KEYWORD_ONLY
                        and p.name not in signature.parameters}  # e.g. condition_size

    @functools.wraps(build)
    def wrapper(cls: type[Separator], **options: Any) -> Separator:
        separator = build(cls, **options)
        bound = signature.bind(cls, **options)
        bound.apply_defaults()
        named = {k: v for k, v in bound.arguments.items() if k not in ("cls", "resunet_options")}
        resunet = resunet_defaults | bound.arguments["resunet_options"]
        separator.preset = {"name": build.__name__, "options": named | resunet}
        return separator

    PRESETS.append(build.__name__)
    return wrapper

# The head of every torchlass error message: "fn(): argument 'name' ".
_ARGUMENT = re.compile(r"^[\w.]+\(\): argument '(?P<name>\w+)' ")


def _in_context(err: TorchlassError, fn: str, renames: Mapping[str, str],
                context: str) -> TorchlassError:
    """``err`` as the caller ``fn`` raises it: the same type, chained to ``err`` by the caller.

    An error about an argument in ``renames`` is rewritten to name the caller's argument it
    came from; any other error keeps its text after ``fn`` and ``context`` (as einops does).
    """
    text = str(err)
    match = _ARGUMENT.match(text)
    if match and match["name"] in renames:
        return type(err)(f"{fn}(): argument '{renames[match['name']]}' {text[match.end():]}")
    return type(err)(f"{fn}(): {context}: {text}")


class Separator(nn.Module):
    """Mask-based separator conditioned on a query embedding, built from swappable parts.

    ``spec = stft(mixture)``, ``logits = backbone(features(spec), condition)``,
    ``estimate = istft(head(logits, spec), length=time)``. With a ``query`` part the
    backbone's condition is ``query(condition, negative)`` instead of ``condition``: the
    query embedding and an optional negative one (what to leave out; see
    [`QueryCondition`][torchlass.nn.QueryCondition]). Any module with the same call
    signature can replace a part: a learnable asteroid-filterbanks bank for the STFT (its
    output turned complex with [`torchlass.stft.from_asteroid`][torchlass.stft.from_asteroid]),
    another network for the backbone, another head from
    [`torchlass.masks`][torchlass.masks.functional].

    Args:
        backbone: ``(features (batch, in, freq, frames), condition (batch, dim)) ->
            (batch, sources * channels * planes, freq, frames)``, e.g.
            [`ResUNet`][torchlass.nn.ResUNet].
        features: complex spectrogram -> real network input, e.g.
            [`MagnitudeFeatures`][torchlass.nn.MagnitudeFeatures].
        head: ``(logits, spec) -> complex (batch, sources, channels, freq, frames)``, e.g.
            [`MagPhaseMaskHead`][torchlass.masks.MagPhaseMaskHead].
        stft: waveform ``(batch, channels, time)`` -> complex ``(batch, channels, freq,
            frames)``.
        istft: ``(spec, length) -> waveform``.
        channels: audio channels of the mixture.
        sample_rate: sample rate in Hz the separator is meant for (used by
            [`separate`][torchlass.separator.Separator.separate] to turn seconds into samples; saved
            by [`save_pretrained`][torchlass.separator.Separator.save_pretrained]).
        check_finite: reject NaN/Inf in the condition (the STFT checks the mixture).
        query: ``(condition (batch, dim), negative (batch, dim) or None) -> backbone
            condition``, e.g. [`QueryCondition`][torchlass.nn.QueryCondition]; ``None``
            (the baseline presets): the condition goes to the backbone as it is, and no
            negative query is taken.

    Shape:
        - mixture: ``(batch, channels, time)``
        - condition: ``(batch, condition_size)``
        - negative: ``(batch, condition_size)`` or ``None``; a row of zeros is no negative
          query for that item (only for a separator that
          [`takes_negative`][torchlass.separator.Separator.takes_negative])
        - output: ``(batch, sources, channels, time)`` always, ``sources`` being
          [`num_sources`][torchlass.separator.Separator.num_sources] (1 for the baseline):
          the rank never depends on the head, and ``output[:, 0]`` is the queried source,
          shaped like the mixture.

    The mixture and the condition must have the dtype of the model's parameters: convert
    the model (``sep.double()``) to separate float64 audio; it then computes in float64
    throughout, the STFT window included.

    Raises:
        ShapeError: on a mixture, condition or negative of the wrong rank, channel count
            or batch, or a mixture too short for the STFT.
        DTypeError: on a mixture, condition or negative that is not real floating-point or
            not of the model's dtype.
        NonFiniteError: on NaN/Inf in the mixture, the condition or the negative.
        ValueRangeError: on a negative given to a separator without a ``query`` part.

    Examples:
        >>> sep = Separator.srpol_system1(condition_size=8, n_fft=256, hop_length=64,
        ...                               stem_width=4, widths=(4, 8), pools=((2, 2), (2, 2)))
        >>> sep(torch.randn(2, 1, 4000), torch.randn(2, 8)).shape
        torch.Size([2, 1, 1, 4000])
    """

    def __init__(self, backbone: nn.Module, *, features: nn.Module, head: nn.Module,
                 stft: nn.Module, istft: nn.Module, channels: int = 1,
                 sample_rate: int = 16000, check_finite: bool = True,
                 query: nn.Module | None = None) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "Separator", "channels")
        self.sample_rate = check_positive_int(sample_rate, "Separator", "sample_rate")
        self.check_finite = check_finite
        self.preset: dict[str, Any] | None = None  # set by the preset constructors
        self.stft = stft
        self.features = features
        self.backbone = backbone
        self.head = head
        self.istft = istft
        if query is not None:  # absent, not None, in the baseline presets' module tree
            self.query = query

    @property
    def num_sources(self) -> int:
        """Sources estimated per mixture channel (the head's ``num_sources``)."""
        return int(getattr(self.head, "num_sources", 1))

    @property
    def takes_negative(self) -> bool:
        """Whether ``forward`` takes a negative query (the separator has a ``query`` part)."""
        return getattr(self, "query", None) is not None

    def forward(self, mixture: torch.Tensor, condition: torch.Tensor,
                negative: torch.Tensor | None = None) -> torch.Tensor:
        """Estimate the queried source(s) in ``mixture``: ``(batch, sources, channels, time)``.

        ``negative`` (what to leave out) is taken by a separator that
        [`takes_negative`][torchlass.separator.Separator.takes_negative]; ``None`` is the same
        as a row of zeros: no negative query.
        """
        fn = "Separator.forward"
        self._check_inputs(fn, mixture, condition, negative)
        try:
            spec = self.stft(mixture)
        except TorchlassError as err:
            raise _in_context(err, fn, {"x": "mixture"}, "the STFT rejected 'mixture'") from err
        try:
            if self.takes_negative:
                condition = self.query(condition, negative)
            estimate = self.head(self.backbone(self.features(spec), condition), spec)
            return self.istft(estimate, length=mixture.shape[-1])
        except TorchlassError as err:
            raise _in_context(err, fn, {"condition": "condition", "positive": "condition",
                                        "negative": "negative"},
                              "a part failed on a valid 'mixture' and 'condition' (non-finite "
                              "weights or an overflow?)") from err

    def _check_inputs(self, fn: str, mixture: torch.Tensor, condition: torch.Tensor,
                      negative: torch.Tensor | None = None) -> None:
        check_real_floating(mixture, fn, "mixture")
        check_real_floating(condition, fn, "condition")
        check_ndim(mixture, fn, "mixture", ndim=3, layout="(batch, channels, time)")
        check_ndim(condition, fn, "condition", ndim=2, layout="(batch, condition_size)")
        if mixture.shape[1] != self.channels:
            raise ShapeError(f"{fn}(): argument 'mixture' expected {self.channels} channel(s) "
                             f"(batch, channels, time), got shape {tuple(mixture.shape)}")
        if condition.shape[0] != mixture.shape[0]:
            raise ShapeError(f"{fn}(): arguments 'mixture' and 'condition' expected the same "
                             f"batch size, got {mixture.shape[0]} and {condition.shape[0]}")
        inputs = [("mixture", mixture), ("condition", condition)]
        if negative is not None:
            self._check_negative(fn, condition, negative)
            inputs.append(("negative", negative))
        weight = next(self.parameters(), None)
        for name, x in inputs:
            if weight is not None and x.dtype != weight.dtype:
                raise DTypeError(f"{fn}(): argument '{name}' expected the model's dtype "
                                 f"{weight.dtype}, got {x.dtype} (convert the model, e.g. "
                                 f".to({x.dtype}), or the input)")
        if self.check_finite:
            _check_finite(condition, fn, "condition")
            if negative is not None:
                _check_finite(negative, fn, "negative")

    def _check_negative(self, fn: str, condition: torch.Tensor, negative: torch.Tensor) -> None:
        if not self.takes_negative:
            name = self.preset["name"] if self.preset is not None else "composed by hand"
            raise ValueRangeError(
                f"{fn}(): argument 'negative' expected None: this separator ({name}) has no "
                f"negative-query conditioning (the {_NEGATIVE_PRESET} preset takes one), got "
                f"a tensor of shape {tuple(negative.shape)}")
        check_real_floating(negative, fn, "negative")
        if negative.shape != condition.shape:
            raise ShapeError(f"{fn}(): argument 'negative' expected the shape of 'condition' "
                             f"{tuple(condition.shape)} (batch, condition_size), got "
                             f"{tuple(negative.shape)}")

    def separate(self, mixture: torch.Tensor, condition: torch.Tensor, *,
                 negative: torch.Tensor | None = None,
                 chunk_seconds: float = 10.0, overlap_seconds: float = 1.0,
                 residual: bool = False) -> torch.Tensor:
        """[`separate`][torchlass.separator.Separator.separate] with chunk and overlap in seconds at
        ``sample_rate``.

        Chunks start on multiples of the hop times the backbone's frame pooling factor (5120
        samples, 0.32 s, for ResUNet30), so that each chunk sees the frames and pooling grid
        of the whole input.
        """
        try:
            return separate(self, mixture, condition, negative=negative,
                            chunk_length=round(chunk_seconds * self.sample_rate),
                            overlap=round(overlap_seconds * self.sample_rate),
                            align=self.chunk_align,
                            residual=residual)
        except TorchlassError as err:
            raise _in_context(err, "Separator.separate", {"mixture": "mixture",
                                                          "condition": "condition",
                                                          "negative": "negative"},
                              "separating in chunks") from err

    def save_pretrained(self, folder: str | Path) -> Path:
        """Save to ``folder`` as ``config.json`` + ``model.safetensors`` (no pickle).

        See [`torchlass.pretrained.save_pretrained`][torchlass.pretrained.save_pretrained].
        """
        from torchlass.pretrained import save_pretrained

        return save_pretrained(self, folder)

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> Separator:
        """Rebuild a separator saved by `save_pretrained`, in eval mode.

        See [`torchlass.pretrained.from_pretrained`][torchlass.pretrained.from_pretrained].
        """
        from torchlass.pretrained import from_pretrained

        return from_pretrained(folder)

    @property
    def chunk_align(self) -> int:
        """Samples chunk starts are multiples of: the hop times the backbone's frame pooling."""
        return getattr(self.stft, "hop_length", 1) * getattr(self.backbone, "frame_factor", 1)

    @classmethod
    def _on_resunet(cls, features: MagnitudeFeatures | RealImagFeatures,
                    head: MagPhaseMaskHead | RealImagMaskHead | ComplexRatioMaskHead, *,
                    channels: int,
                    condition_size: int, n_fft: int, hop_length: int, sample_rate: int,
                    check_finite: bool, resunet_options: dict[str, Any],
                    negative: bool = False) -> Separator:
        query = QueryCondition(condition_size) if negative else None
        backbone = ResUNet(channels * features.per_channel,
                           head.num_sources * channels * head.planes,
                           condition_size=condition_size if query is None
                           else query.condition_size, **resunet_options)
        return cls(backbone, features=features, head=head,
                   stft=STFT(n_fft, hop_length, check_finite=check_finite),
                   istft=ISTFT(n_fft, hop_length, check_finite=check_finite),
                   channels=channels, sample_rate=sample_rate, check_finite=check_finite,
                   query=query)

    @classmethod
    @_records_preset
    def dcase2024_baseline(cls, *, channels: int = 1, num_sources: int = 1,
                           condition_size: int = 512, n_fft: int = 1024, hop_length: int = 160,
                           sample_rate: int = 16000, check_finite: bool = True,
                           **resunet_options: Any) -> Separator:
        """The DCASE 2024 Task 9 baseline: ``|Y|`` -> bn0 -> ResUNet30 -> magnitude/phase mask.

        Features [`MagnitudeFeatures`][torchlass.nn.MagnitudeFeatures] (floored magnitude, BatchNorm
        per bin), head [`MagPhaseMaskHead`][torchlass.masks.MagPhaseMaskHead]. The defaults are the
        baseline's (16 kHz, ``n_fft = 1024``, hop 160, periodic Hann, 512-d condition,
        ResUNet30);
        [`torchlass.checkpoints.load_dcase2024_baseline`][torchlass.checkpoints.load_dcase2024_baseline]
        builds this and loads the official weights into it.

        Args:
            channels: mixture channels (each its own magnitude input and mask).
            num_sources: sources estimated per query (the baseline: 1).
            condition_size: size of the query embedding.
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf in the condition and at the STFT and inverse STFT
                (one GPU sync each; switch off for training speed and ``torch.compile``).
            **resunet_options: [`ResUNet`][torchlass.nn.ResUNet] keywords (``stem_width``,
                ``widths``, ``pools``, ``film_scale``, ``freq_fit``); default ResUNet30.

        Returns:
            A freshly initialised [`Separator`][torchlass.separator.Separator].
        """
        return cls._on_resunet(MagnitudeFeatures(n_fft // 2 + 1), MagPhaseMaskHead(num_sources),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options)

    @classmethod
    @_records_preset
    def srpol_system1(cls, *, bound: str = "tanh", channels: int = 1, num_sources: int = 1,
                      condition_size: int = 512, n_fft: int = 1024, hop_length: int = 160,
                      sample_rate: int = 16000, check_finite: bool = True,
                      **resunet_options: Any) -> Separator:
        """SRPOL system 1: ``(Re Y, Im Y)`` in, separate real/imaginary ratio masks out.

        As [`dcase2024_baseline`][torchlass.separator.Separator.dcase2024_baseline] with
        [`RealImagFeatures`][torchlass.nn.RealImagFeatures] (two input channels per mixture channel,
        BatchNorm per bin) and [`RealImagMaskHead`][torchlass.masks.RealImagMaskHead]
        (``X = M_re Re Y + j M_im Im Y``, SRPOL eq. 1); the ResUNet predicts two planes per source
        and channel.

        Args:
            bound: mask bound, one of [`torchlass.masks.BOUNDS`][torchlass.masks.BOUNDS].
            channels: mixture channels.
            num_sources: sources estimated per query.
            condition_size: size of the query embedding.
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf in the condition and at the STFT and inverse STFT.
            **resunet_options: [`ResUNet`][torchlass.nn.ResUNet] keywords.

        Returns:
            A freshly initialised [`Separator`][torchlass.separator.Separator].
        """
        return cls._on_resunet(RealImagFeatures(n_fft // 2 + 1),
                               RealImagMaskHead(num_sources, bound=bound),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options)

    @classmethod
    @_records_preset
    def complex_ratio_mask(cls, *, bound: str = "polar_tanh", channels: int = 1,
                           num_sources: int = 1, condition_size: int = 512, n_fft: int = 1024,
                           hop_length: int = 160, sample_rate: int = 16000,
                           check_finite: bool = True, **resunet_options: Any) -> Separator:
        """True complex ratio mask: ``(Re Y, Im Y)`` in, ``X = M Y`` out (SRPOL eq. 2).

        As [`srpol_system1`][torchlass.separator.Separator.srpol_system1] with
        [`ComplexRatioMaskHead`][torchlass.masks.ComplexRatioMaskHead].

        Args:
            bound: mask bound, one of [`torchlass.masks.BOUNDS`][torchlass.masks.BOUNDS].
            channels: mixture channels.
            num_sources: sources estimated per query.
            condition_size: size of the query embedding.
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf in the condition and at the STFT and inverse STFT.
            **resunet_options: [`ResUNet`][torchlass.nn.ResUNet] keywords.

        Returns:
            A freshly initialised [`Separator`][torchlass.separator.Separator].
        """
        return cls._on_resunet(RealImagFeatures(n_fft // 2 + 1),
                               ComplexRatioMaskHead(num_sources, bound=bound),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options)

    @classmethod
    @_records_preset
    def srpol_negative_query(cls, *, bound: str = "tanh", channels: int = 1,
                             num_sources: int = 1, condition_size: int = 512,
                             n_fft: int = 1024, hop_length: int = 160,
                             sample_rate: int = 16000, check_finite: bool = True,
                             **resunet_options: Any) -> Separator:
        """SRPOL system 1 that also takes a negative query: what to leave out (as CLAPSep).

        As [`srpol_system1`][torchlass.separator.Separator.srpol_system1], with a
        [`QueryCondition`][torchlass.nn.QueryCondition] in front of the ResUNet: its FiLM
        layers read ``[condition, negative]`` (``2 * condition_size`` values), a zero
        negative meaning none. ``forward(mixture, condition, negative=None)``.

        Args:
            bound: mask bound, one of [`torchlass.masks.BOUNDS`][torchlass.masks.BOUNDS].
            channels: mixture channels.
            num_sources: sources estimated per query.
            condition_size: size of each query embedding (positive and negative).
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf in the queries and at the STFT and inverse STFT.
            **resunet_options: [`ResUNet`][torchlass.nn.ResUNet] keywords.

        Returns:
            A freshly initialised [`Separator`][torchlass.separator.Separator].

        Examples:
            >>> sep = Separator.srpol_negative_query(
            ...     condition_size=8, n_fft=256, hop_length=64, stem_width=4, widths=(4,),
            ...     pools=((2, 2),)).eval()
            >>> x, c = torch.randn(2, 1, 4000), torch.randn(2, 8)
            >>> sep.takes_negative, bool(sep(x, c).equal(sep(x, c, torch.zeros(2, 8))))
            (True, True)
        """
        return cls._on_resunet(RealImagFeatures(n_fft // 2 + 1),
                               RealImagMaskHead(num_sources, bound=bound),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options,
                               negative=True)


#: The preset that takes a negative query (named in errors of the others).
_NEGATIVE_PRESET = Separator.srpol_negative_query.__name__


def check_chunking(fn: str, chunk_length: object, overlap: object, align: object) -> None:
    """Check the chunk settings of [`separate`][torchlass.separator.separate] (and of streamed
    separation)."""
    length = check_positive_int(chunk_length, fn, "chunk_length")
    step = check_positive_int(align, fn, "align")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not (
            0 <= overlap <= length // 2):
        raise ValueRangeError(f"{fn}(): argument 'overlap' expected an int in "
                              f"[0, chunk_length // 2 = {length // 2}], got {overlap!r}")
    if step > length - overlap:
        raise ValueRangeError(f"{fn}(): argument 'align' expected at most chunk_length - "
                              f"overlap = {length - overlap} samples, got {step}")


def _chunks(length: int, chunk_length: int, overlap: int, align: int) -> list[tuple[int, int]]:
    """``(start, end)`` of chunks starting on multiples of ``align`` and ending at ``length``.

    Starts are ``k * step`` with ``step`` the largest multiple of ``align`` keeping at least
    ``overlap`` samples shared; the last chunk ends at ``length`` (as the whole input does)
    and is merged into the one before it when shorter than half a chunk.
    """
    step = (chunk_length - overlap) // align * align
    starts = [0]
    while starts[-1] + chunk_length < length:
        starts.append(starts[-1] + step)
    if len(starts) > 1 and length - starts[-1] < chunk_length // 2:
        starts.pop()
    ends = [s + chunk_length for s in starts[:-1]] + [length]
    return list(zip(starts, ends, strict=True))


def _fade_weights(size: int, fade_in: int, fade_out: int, *, device: torch.device,
                  dtype: torch.dtype) -> torch.Tensor:
    """Ones with a sin^2 fade-in over ``fade_in`` and cos^2 fade-out over ``fade_out`` samples.

    Ramps are sampled at half-sample offsets: never zero, and a fade-out plus the next
    chunk's fade-in over the same samples sum to one.
    """
    w = torch.ones(size, device=device, dtype=dtype)
    for n, rising in ((fade_in, True), (fade_out, False)):
        if n > 0:
            ramp = torch.sin(0.5 * math.pi * (torch.arange(n, device=device, dtype=dtype) + 0.5)
                             / n) ** 2
            if rising:
                w[:n] *= ramp
            else:
                w[size - n:] *= ramp.flip(0)
    return w


def separate(model: Callable[..., torch.Tensor],
             mixture: torch.Tensor, condition: torch.Tensor, *,
             negative: torch.Tensor | None = None, chunk_length: int,
             overlap: int = 0, align: int = 1, residual: bool = False) -> torch.Tensor:
    """Separate audio of any length in chunks, cross-faded, for one or several queries.

    The input is cut into chunks of about ``chunk_length`` samples that share at least
    ``overlap`` samples and start on multiples of ``align`` samples; each is separated on
    its own (so memory does not grow with the length, apart from the output) and the
    results are joined by a sin^2/cos^2 cross-fade over each shared stretch, normalised by
    the summed weights. Aligning starts to the STFT hop times the network's pooling factor
    gives every chunk the frame grid of the whole input, so chunks agree with the
    unchunked result away from their edges. An input no longer than ``chunk_length`` is
    one chunk and the result is exactly ``model(mixture, condition)``. Runs without
    gradient; put the model in eval mode first. (The baseline's ``chunk_inference`` cuts
    without a cross-fade and assumes 32 kHz: docs/baseline.md#chunked-inference.)
    An error the model raises about its ``mixture``, ``condition`` or ``negative`` is
    re-raised naming this function's argument.

    Args:
        model: a separator, ``(mixture (batch, channels, time), condition (batch, dim)) ->
            (batch, sources, channels, time)``, as [`Separator`][torchlass.separator.Separator]
            returns.
        mixture: one mixture for every query, or one mixture per query.
        condition: query embeddings.
        negative: negative query embeddings (what to leave out; a row of zeros: none),
            passed to the model as its third argument, for a separator that
            [`takes_negative`][torchlass.separator.Separator.takes_negative]; ``None``: the
            model is called with two arguments.
        chunk_length: samples per chunk (the last may be up to 1.5 times longer).
        overlap: samples shared by neighbouring chunks, at most ``chunk_length // 2``.
        align: chunk starts are multiples of this many samples, at most ``chunk_length -
            overlap``.
        residual: return ``mixture - estimate`` (everything but the queried sound) instead.

    Returns:
        The estimates (or residuals) for every query.

    Shape:
        - mixture: ``(channels, time)`` (shared by all queries) or ``(queries, channels,
          time)``
        - condition: ``(queries, dim)``
        - negative: ``(queries, dim)`` or ``None``
        - output: ``(queries, sources, channels, time)``, the model's output shape

    Raises:
        ShapeError: on a wrong rank or a batch mismatch, or a model whose output is not
            ``(queries, sources, channels, time)``.
        ValueRangeError: on a non-positive ``chunk_length`` or ``align``, an ``overlap``
            out of ``[0, chunk_length // 2]`` or ``align > chunk_length - overlap``.

    Examples:
        >>> def model(x, c):  # a stand-in: one source, the mixture scaled by the query
        ...     return (x * c[:, :1, None])[:, None]
        >>> out = separate(model, torch.ones(1, 1000), torch.tensor([[0.5], [2.0]]),
        ...                chunk_length=300, overlap=50)
        >>> out.shape, out[0].unique(), out[1].unique()
        (torch.Size([2, 1, 1, 1000]), tensor([0.5000]), tensor([2.]))
    """
    fn = "separate"
    check_real_floating(mixture, fn, "mixture")
    check_ndim(condition, fn, "condition", ndim=2, layout="(queries, dim)")
    if negative is not None:
        check_real_floating(negative, fn, "negative")
        if negative.shape != condition.shape:
            raise ShapeError(f"{fn}(): argument 'negative' expected the shape of 'condition' "
                             f"{tuple(condition.shape)} (queries, dim), got "
                             f"{tuple(negative.shape)}")
    check_chunking(fn, chunk_length, overlap, align)
    queries = condition.shape[0]
    queries_of = (condition,) if negative is None else (condition, negative)
    if mixture.dim() == 2:
        mixture = mixture.expand(queries, *mixture.shape)
    check_ndim(mixture, fn, "mixture", ndim=3, layout="(queries, channels, time)")
    if mixture.shape[0] != queries:
        raise ShapeError(f"{fn}(): arguments 'mixture' and 'condition' expected the same "
                         f"number of queries, got {mixture.shape[0]} and {queries}")
    length = mixture.shape[-1]
    chunks = _chunks(length, chunk_length, overlap, align)
    out: torch.Tensor | None = None
    total = torch.zeros(length, device=mixture.device, dtype=mixture.dtype)
    with torch.no_grad():
        for k, (start, end) in enumerate(chunks):
            try:
                estimate = model(mixture[..., start:end], *queries_of)
            except TorchlassError as err:
                raise _in_context(err, fn, {"mixture": "mixture", "condition": "condition",
                                            "negative": "negative"},
                                  f"the model failed on samples [{start}, {end})") from err
            if estimate.dim() != 4 or (estimate.shape[0], *estimate.shape[2:]) != (
                    queries, mixture.shape[1], end - start):
                raise ShapeError(f"{fn}(): argument 'model' expected to return (queries, "
                                 f"sources, channels, time) = ({queries}, sources, "
                                 f"{mixture.shape[1]}, {end - start}), got "
                                 f"{tuple(estimate.shape)}")
            fade_in = chunks[k - 1][1] - start if k > 0 else 0
            fade_out = end - chunks[k + 1][0] if k + 1 < len(chunks) else 0
            w = _fade_weights(end - start, fade_in, fade_out, device=estimate.device,
                              dtype=estimate.dtype)
            if out is None:
                out = estimate.new_zeros(*estimate.shape[:-1], length)
            out[..., start:end] += estimate * w
            total[start:end] += w.to(total.dtype)
    assert out is not None  # at least one chunk always runs
    out = out / total.to(out.dtype)
    return mixture.unsqueeze(1) - out if residual else out
