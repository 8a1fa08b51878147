"""The separator: STFT -> features -> conditioned backbone -> mask head -> inverse STFT.

:class:`Separator` chains five swappable parts; its constructors build the DCASE 2024 Task 9
baseline (magnitude features, magnitude mask with phase rotation), SRPOL system 1 (real and
imaginary parts in, real/imaginary ratio masks out) and a true complex-ratio-mask variant,
each on the baseline's ResUNet30. :func:`separate` runs any separator on audio of any
length in chunks joined by a cross-fade, for several queries of one mixture at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from torchlass.errors import (
    ShapeError,
    ValueRangeError,
    check_ndim,
    check_positive_int,
    check_real_floating,
)
from torchlass.masks import ComplexRatioMaskHead, MagPhaseMaskHead, RealImagMaskHead
from torchlass.nn import MagnitudeFeatures, RealImagFeatures, ResUNet
from torchlass.stft import ISTFT, STFT

__all__ = ["Separator", "separate"]


class Separator(nn.Module):
    """Mask-based separator conditioned on a query embedding, built from swappable parts.

    ``spec = stft(mixture)``, ``logits = backbone(features(spec), condition)``,
    ``estimate = istft(head(logits, spec), length=time)``. Any module with the same call
    signature can replace a part: a learnable asteroid-filterbanks bank for the STFT (its
    output turned complex with :func:`torchlass.stft.from_asteroid`), another network for
    the backbone, another head from :mod:`torchlass.masks`.

    Args:
        backbone: ``(features (batch, in, freq, frames), condition (batch, dim)) ->
            (batch, sources * channels * planes, freq, frames)``, e.g. :class:`ResUNet`.
        features: complex spectrogram -> real network input, e.g.
            :class:`~torchlass.nn.MagnitudeFeatures`.
        head: ``(logits, spec) -> complex (batch, sources, channels, freq, frames)``, e.g.
            :class:`~torchlass.masks.MagPhaseMaskHead`.
        stft: waveform ``(batch, channels, time)`` -> complex ``(batch, channels, freq,
            frames)``.
        istft: ``(spec, length) -> waveform``.
        channels: audio channels of the mixture.
        sample_rate: sample rate in Hz the separator is meant for (used by
            :meth:`separate` to turn seconds into samples).

    Shape:
        - mixture: ``(batch, channels, time)``
        - condition: ``(batch, condition_size)``
        - output: ``(batch, channels, time)`` for one source, ``(batch, sources, channels,
          time)`` for several

    Raises:
        ShapeError: on a mixture or condition of the wrong rank, channel count or batch.

    Examples:
        >>> sep = Separator.srpol_system1(condition_size=8, n_fft=256, hop_length=64,
        ...                               stem_width=4, widths=(4, 8), pools=((2, 2), (2, 2)))
        >>> sep(torch.randn(2, 1, 4000), torch.randn(2, 8)).shape
        torch.Size([2, 1, 4000])
    """

    def __init__(self, backbone: nn.Module, *, features: nn.Module, head: nn.Module,
                 stft: nn.Module, istft: nn.Module, channels: int = 1,
                 sample_rate: int = 16000) -> None:
        super().__init__()
        self.channels = check_positive_int(channels, "Separator", "channels")
        self.sample_rate = check_positive_int(sample_rate, "Separator", "sample_rate")
        self.stft = stft
        self.features = features
        self.backbone = backbone
        self.head = head
        self.istft = istft

    @property
    def num_sources(self) -> int:
        """Sources estimated per mixture channel (the head's ``num_sources``)."""
        return int(getattr(self.head, "num_sources", 1))

    def forward(self, mixture: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Estimate the queried source(s) in ``mixture``; same length as the input."""
        fn = "Separator.forward"
        check_real_floating(mixture, fn, "mixture")
        check_ndim(mixture, fn, "mixture", ndim=3, layout="(batch, channels, time)")
        check_ndim(condition, fn, "condition", ndim=2, layout="(batch, condition_size)")
        if mixture.shape[1] != self.channels:
            raise ShapeError(f"{fn}(): argument 'mixture' expected {self.channels} channel(s) "
                             f"(batch, channels, time), got shape {tuple(mixture.shape)}")
        if condition.shape[0] != mixture.shape[0]:
            raise ShapeError(f"{fn}(): arguments 'mixture' and 'condition' expected the same "
                             f"batch size, got {mixture.shape[0]} and {condition.shape[0]}")
        spec = self.stft(mixture)
        estimate = self.head(self.backbone(self.features(spec), condition), spec)
        waveform = self.istft(estimate, length=mixture.shape[-1])
        return waveform[:, 0] if waveform.shape[1] == 1 else waveform

    def separate(self, mixture: torch.Tensor, condition: torch.Tensor, *,
                 chunk_seconds: float = 10.0, overlap_seconds: float = 1.0,
                 residual: bool = False) -> torch.Tensor:
        """:func:`separate` with chunk and overlap in seconds at ``sample_rate``.

        Chunks start on multiples of the hop times the backbone's frame pooling factor (5120
        samples, 0.32 s, for ResUNet30), so that each chunk sees the frames and pooling grid
        of the whole input.
        """
        return separate(self, mixture, condition,
                        chunk_length=round(chunk_seconds * self.sample_rate),
                        overlap=round(overlap_seconds * self.sample_rate),
                        align=self.chunk_align, residual=residual)

    @property
    def chunk_align(self) -> int:
        """Samples chunk starts are multiples of: the hop times the backbone's frame pooling."""
        return getattr(self.stft, "hop_length", 1) * getattr(self.backbone, "frame_factor", 1)

    @classmethod
    def _on_resunet(cls, features: MagnitudeFeatures | RealImagFeatures,
                    head: MagPhaseMaskHead | RealImagMaskHead | ComplexRatioMaskHead, *,
                    channels: int,
                    condition_size: int, n_fft: int, hop_length: int, sample_rate: int,
                    check_finite: bool, resunet_options: dict[str, Any]) -> Separator:
        backbone = ResUNet(channels * features.per_channel,
                           head.num_sources * channels * head.planes,
                           condition_size=condition_size, **resunet_options)
        return cls(backbone, features=features, head=head,
                   stft=STFT(n_fft, hop_length, check_finite=check_finite),
                   istft=ISTFT(n_fft, hop_length, check_finite=check_finite),
                   channels=channels, sample_rate=sample_rate)

    @classmethod
    def dcase2024_baseline(cls, *, channels: int = 1, num_sources: int = 1,
                           condition_size: int = 512, n_fft: int = 1024, hop_length: int = 160,
                           sample_rate: int = 16000, check_finite: bool = True,
                           **resunet_options: Any) -> Separator:
        """The DCASE 2024 Task 9 baseline: ``|Y|`` -> bn0 -> ResUNet30 -> magnitude/phase mask.

        Features :class:`~torchlass.nn.MagnitudeFeatures` (floored magnitude, BatchNorm per
        bin), head :class:`~torchlass.masks.MagPhaseMaskHead`. The defaults are the
        baseline's (16 kHz, ``n_fft = 1024``, hop 160, periodic Hann, 512-d condition,
        ResUNet30); :func:`torchlass.checkpoints.load_dcase2024_baseline` builds this and
        loads the official weights into it.

        Args:
            channels: mixture channels (each its own magnitude input and mask).
            num_sources: sources estimated per query (the baseline: 1).
            condition_size: size of the query embedding.
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf at the STFT and inverse STFT (one GPU sync each;
                switch off for training speed and ``torch.compile``).
            **resunet_options: :class:`~torchlass.nn.ResUNet` keywords (``stem_width``,
                ``widths``, ``pools``, ``film_scale``, ``freq_fit``); default ResUNet30.

        Returns:
            A freshly initialised :class:`Separator`.
        """
        return cls._on_resunet(MagnitudeFeatures(n_fft // 2 + 1), MagPhaseMaskHead(num_sources),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options)

    @classmethod
    def srpol_system1(cls, *, bound: str = "tanh", channels: int = 1, num_sources: int = 1,
                      condition_size: int = 512, n_fft: int = 1024, hop_length: int = 160,
                      sample_rate: int = 16000, check_finite: bool = True,
                      **resunet_options: Any) -> Separator:
        """SRPOL system 1: ``(Re Y, Im Y)`` in, separate real/imaginary ratio masks out.

        As :meth:`dcase2024_baseline` with :class:`~torchlass.nn.RealImagFeatures` (two
        input channels per mixture channel, BatchNorm per bin) and
        :class:`~torchlass.masks.RealImagMaskHead` (``X = M_re Re Y + j M_im Im Y``, SRPOL
        eq. 1); the ResUNet predicts two planes per source and channel.

        Args:
            bound: mask bound, one of :data:`torchlass.masks.BOUNDS`.
            channels: mixture channels.
            num_sources: sources estimated per query.
            condition_size: size of the query embedding.
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf at the STFT and inverse STFT.
            **resunet_options: :class:`~torchlass.nn.ResUNet` keywords.

        Returns:
            A freshly initialised :class:`Separator`.
        """
        return cls._on_resunet(RealImagFeatures(n_fft // 2 + 1),
                               RealImagMaskHead(num_sources, bound=bound),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options)

    @classmethod
    def complex_ratio_mask(cls, *, bound: str = "polar_tanh", channels: int = 1,
                           num_sources: int = 1, condition_size: int = 512, n_fft: int = 1024,
                           hop_length: int = 160, sample_rate: int = 16000,
                           check_finite: bool = True, **resunet_options: Any) -> Separator:
        """True complex ratio mask: ``(Re Y, Im Y)`` in, ``X = M Y`` out (SRPOL eq. 2).

        As :meth:`srpol_system1` with :class:`~torchlass.masks.ComplexRatioMaskHead`.

        Args:
            bound: mask bound, one of :data:`torchlass.masks.BOUNDS`.
            channels: mixture channels.
            num_sources: sources estimated per query.
            condition_size: size of the query embedding.
            n_fft: DFT size in samples.
            hop_length: STFT hop in samples.
            sample_rate: sample rate in Hz.
            check_finite: reject NaN/Inf at the STFT and inverse STFT.
            **resunet_options: :class:`~torchlass.nn.ResUNet` keywords.

        Returns:
            A freshly initialised :class:`Separator`.
        """
        return cls._on_resunet(RealImagFeatures(n_fft // 2 + 1),
                               ComplexRatioMaskHead(num_sources, bound=bound),
                               channels=channels, condition_size=condition_size, n_fft=n_fft,
                               hop_length=hop_length, sample_rate=sample_rate,
                               check_finite=check_finite, resunet_options=resunet_options)


def check_chunking(fn: str, chunk_length: object, overlap: object, align: object) -> None:
    """Check the chunk settings of :func:`separate` (and of streamed separation)."""
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


def separate(model: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
             mixture: torch.Tensor, condition: torch.Tensor, *, chunk_length: int,
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
    without a cross-fade and assumes 32 kHz: SPEC.md quirk 8.)

    Args:
        model: a separator, ``(mixture (batch, channels, time), condition (batch, dim)) ->
            (batch, [sources,] channels, time)``.
        mixture: one mixture for every query, or one mixture per query.
        condition: query embeddings.
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
        - output: ``(queries, channels, time)``, or ``(queries, sources, channels, time)``
          for a model with several sources

    Raises:
        ShapeError: on a wrong rank or a batch mismatch.
        ValueRangeError: on a non-positive ``chunk_length`` or ``align``, an ``overlap``
            out of ``[0, chunk_length // 2]`` or ``align > chunk_length - overlap``.

    Examples:
        >>> def model(x, c):  # a stand-in: scale by the query's first entry
        ...     return x * c[:, :1, None]
        >>> out = separate(model, torch.ones(1, 1000), torch.tensor([[0.5], [2.0]]),
        ...                chunk_length=300, overlap=50)
        >>> out.shape, out[0].unique(), out[1].unique()
        (torch.Size([2, 1, 1000]), tensor([0.5000]), tensor([2.]))
    """
    fn = "separate"
    check_real_floating(mixture, fn, "mixture")
    check_ndim(condition, fn, "condition", ndim=2, layout="(queries, dim)")
    check_chunking(fn, chunk_length, overlap, align)
    queries = condition.shape[0]
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
            estimate = model(mixture[..., start:end], condition)
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
    if residual:
        shared = mixture if out.dim() == mixture.dim() else mixture.unsqueeze(1)
        return shared - out
    return out
