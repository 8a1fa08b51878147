"""Separate sound files of any rate, channel count and length, streamed chunk by chunk.

The file is read in blocks, resampled block-wise to the model's rate
([`BlockResampler`][torchlass.inference.stream.BlockResampler], seam-free), cut into the
chunks of [`separate`][torchlass.separator.separate] (same starts, same sin^2/cos^2
cross-fade), and every channel is separated for every query in one batch. Once a chunk is
done, everything before the next chunk's start is final: it is resampled back to the
file's rate and written, so memory holds about one chunk whatever the file's length. The
result equals separating the whole resampled file with [`separate`][torchlass.separator.separate]
and resampling it back. The residual is the original mixture, at its own rate, minus that
estimate: content above the model's Nyquist frequency stays in the residual.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from torchlass.checks import check_choice
from torchlass.data.audio import AudioFileError, import_soundfile
from torchlass.errors import ShapeError, TorchlassError
from torchlass.inference.queries import (
    check_negatives,
    embed_conditions,
    takes_negative,
)
from torchlass.inference.stream import BlockResampler, ForwardReader
from torchlass.query import Query, TextEncoder, check_queries
from torchlass.separator import _chunks, _fade_weights, check_chunking

__all__ = ["DTYPES", "SeparatedFile", "model_sample_rate", "output_name", "output_names",
           "separate_file"]

#: ``dtype=`` choices: the network's arithmetic (bfloat16 through autocast).
DTYPES = ("float32", "bfloat16")


def model_sample_rate(separator: nn.Module) -> int:
    """The rate in Hz a separator works at (its ``sample_rate``; 16 kHz if it has none)."""
    return int(getattr(separator, "sample_rate", 16000))


def _slug(query: Query) -> str:
    """The query in lower-case ASCII letters, digits and underscores (safe in any file name)."""
    text = query if isinstance(query, str) else f"audio {query.name}"
    return "_".join(re.findall(r"[a-z0-9]+", text.lower()))[:60] or "query"


def output_name(path: str | os.PathLike, query: Query, *, residual: bool = False) -> str:
    """File name of the estimate (or residual) of ``query`` in ``path``.

    A caption gives its words; an [`AudioQuery`][torchlass.query.AudioQuery] gives
    ``audio_`` and the words of its name.

    Examples:
        >>> output_name("rec/street.flac", "A dog barking!")
        'street_a_dog_barking.wav'
        >>> output_name("street.flac", "a dog barking", residual=True)
        'street_a_dog_barking_residual.wav'
        >>> from torchlass.query import AudioQuery
        >>> output_name("street.flac", AudioQuery(torch.zeros(8), 16000, "Bark #2"))
        'street_audio_bark_2.wav'
    """
    return f"{Path(path).stem}_{_slug(query)}{'_residual' if residual else ''}.wav"


def output_names(path: str | os.PathLike, queries: Sequence[Query]) -> list[str]:
    """Two file names per query, ``[target, residual, target, residual, ...]``, all distinct.

    Each is [`output_name`][torchlass.inference.output_name]'s; a name already taken by an
    earlier query (the same caption twice, two clips of the same name, a caption that reads
    like a residual) gets ``_2``, ``_3``, ... after the query's words.

    Examples:
        >>> output_names("a.wav", ["rain", "rain"])
        ['a_rain.wav', 'a_rain_residual.wav', 'a_rain_2.wav', 'a_rain_2_residual.wav']
    """
    taken: set[str] = set()
    names: list[str] = []
    for query in queries:
        base, k = f"{Path(path).stem}_{_slug(query)}", 1
        pair = [f"{base}.wav", f"{base}_residual.wav"]
        while taken.intersection(pair):
            k += 1
            pair = [f"{base}_{k}.wav", f"{base}_{k}_residual.wav"]
        taken.update(pair)
        names += pair
    return names


@dataclass
class SeparatedFile:
    """What [`separate_file`][torchlass.inference.separate_file] wrote for one input.

    Attributes:
        input: the input file.
        targets: one estimate per query, in the order of the queries.
        residuals: one residual per query (empty without ``residual=True``).
        seconds: the input's duration.
        sample_rate: the input's (and outputs') rate in Hz.
        channels: the input's (and outputs') channel count.
    """

    input: Path
    targets: list[Path]
    residuals: list[Path] = field(default_factory=list)
    seconds: float = 0.0
    sample_rate: int = 0
    channels: int = 0


def _batched(separator: nn.Module, x: torch.Tensor, condition: torch.Tensor,
             negative: torch.Tensor | None, *, batch_size: int, dtype: str) -> torch.Tensor:
    """``(queries, channels, time)`` estimates of every channel of ``x`` for every query.

    ``negative`` (``(queries, dim)`` or None) is passed only when given.
    """
    queries, (channels, time) = condition.shape[0], x.shape
    model_channels = int(getattr(separator, "channels", 1))
    if model_channels == 1:  # each channel is its own mixture
        mixtures = x[None].expand(queries, channels, time).reshape(-1, 1, time)
        conditions = condition.repeat_interleave(channels, dim=0)
        negatives = None if negative is None else negative.repeat_interleave(channels, dim=0)
    else:
        mixtures, conditions = x[None].expand(queries, channels, time), condition
        negatives = negative
    device = conditions.device
    rows = []
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16,
                                         enabled=dtype == "bfloat16"):
        for start in range(0, mixtures.shape[0], batch_size):
            part = slice(start, start + batch_size)
            extra = {} if negatives is None else {"negative": negatives[part]}
            out = separator(mixtures[part].to(device), conditions[part], **extra)
            rows.append(out[:, 0] if out.dim() == 4 else out)  # several sources: the query's
    return torch.cat(rows).float().reshape(queries, channels, time)


class _CrossFade:
    """Running sums of cross-faded chunk estimates (as `separate`), handed out when final.

    Holds the samples from the last hand-out on: about one chunk.
    """

    def __init__(self, queries: int, channels: int) -> None:
        self.sums = torch.zeros(queries, channels, 0)
        self.weights = torch.zeros(0)
        self.base = 0  # position of sums[..., 0] at the model's rate

    def add(self, start: int, estimate: torch.Tensor, *, fade_in: int, fade_out: int) -> None:
        """Add a chunk's ``(queries, channels, n)`` estimate starting at ``start``."""
        n = estimate.shape[-1]
        w = _fade_weights(n, fade_in, fade_out, device=estimate.device, dtype=estimate.dtype)
        grow = start + n - self.base - self.weights.shape[0]
        if grow > 0:
            self.sums = torch.cat([self.sums, self.sums.new_zeros(*self.sums.shape[:2], grow)],
                                  dim=-1)
            self.weights = torch.cat([self.weights, self.weights.new_zeros(grow)])
        self.sums[..., start - self.base:start - self.base + n] += estimate * w
        self.weights[start - self.base:start - self.base + n] += w

    def pop(self, final: int) -> torch.Tensor:
        """The normalised estimate up to ``final``, ``(queries, channels, final - base)``."""
        n = final - self.base
        done = self.sums[..., :n] / self.weights[:n]
        self.sums, self.weights, self.base = self.sums[..., n:], self.weights[n:], final
        return done


class _Writers:
    """Output files written under temporary names and renamed once complete."""

    def __init__(self, paths: list[Path], rate: int, channels: int) -> None:
        sf = import_soundfile()
        self.paths = paths
        self.parts = [p.with_name(p.name + ".part") for p in paths]
        self.files: list[Any] = []
        for part in self.parts:
            part.parent.mkdir(parents=True, exist_ok=True)
            self.files.append(sf.SoundFile(str(part), "w", samplerate=rate, channels=channels,
                                           format="WAV", subtype="FLOAT"))

    def write(self, k: int, block: np.ndarray) -> None:
        self.files[k].write(np.ascontiguousarray(block.T, dtype=np.float32))

    def close(self, *, keep: bool) -> None:
        for f in self.files:
            f.close()
        for part, path in zip(self.parts, self.paths, strict=True):
            if keep:
                os.replace(part, path)
            else:
                part.unlink(missing_ok=True)


def _check_rows(embedding: torch.Tensor, queries: int, fn: str, name: str,
                device: str | torch.device) -> torch.Tensor:
    """``embedding`` as float32 on ``device``, if it is ``(queries, dim)``."""
    if not isinstance(embedding, torch.Tensor) or embedding.dim() != 2 or (
            embedding.shape[0] != queries):
        got = tuple(embedding.shape) if isinstance(embedding, torch.Tensor) else type(
            embedding).__name__
        raise ShapeError(f"{fn}(): argument '{name}' expected shape ({queries}, dim), one row "
                         f"per query, got {got}")
    return embedding.to(device=device, dtype=torch.float32)


def _open(path: Path, fn: str) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"{fn}(): audio file not found: {str(path)!r}")
    try:
        return import_soundfile().SoundFile(str(path))
    except (RuntimeError, OSError) as err:  # soundfile raises LibsndfileError (a RuntimeError)
        raise AudioFileError(f"{fn}(): cannot read {str(path)!r}: {err}") from None


def separate_file(separator: nn.Module, path: str | os.PathLike, queries: Sequence[Query],
                  encoder: TextEncoder | None = None, *,
                  negatives: Sequence[Query | None] | None = None,
                  out_dir: str | os.PathLike = ".",
                  residual: bool = False, chunk_seconds: float = 10.0,
                  overlap_seconds: float = 1.0, batch_size: int = 8,
                  device: str | torch.device | None = None, dtype: str = "float32",
                  condition: torch.Tensor | None = None,
                  negative_condition: torch.Tensor | None = None,
                  names: Sequence[str] | None = None,
                  progress: Callable[[float], None] | None = None) -> SeparatedFile:
    """Separate every query from a sound file of any rate, channel count and length.

    Each channel is separated on its own (a one-channel model) or together (a model with
    the file's channel count); nothing is mixed down. The file is processed in chunks of
    ``chunk_seconds`` at the model's rate, cross-faded over ``overlap_seconds``, exactly as
    [`Separator.separate`][torchlass.separator.Separator.separate]: memory depends on the
    chunk, not on the file. All queries of a chunk go through the network together (in
    batches of ``batch_size``). Outputs are 32-bit float WAV files at the input's rate with
    its channel count, named by [`output_names`][torchlass.inference.output_names] in
    ``out_dir`` (written under a temporary name, renamed when complete).

    A query is a caption or an [`AudioQuery`][torchlass.query.AudioQuery] clip ("more of
    this sound"; the encoder must then embed audio, as CLAP with its audio tower does).
    With ``negatives``, the separator is called as ``separator(mixture, condition,
    negative=...)``, a query without a negative query getting a row of zeros; only a
    separator whose ``takes_negative`` is true accepts them.

    Args:
        separator: the model, in eval mode, on ``device``; its ``sample_rate`` is the rate
            chunks are separated at.
        path: a sound file soundfile reads (WAV, FLAC, OGG, ...).
        queries: captions and clips, in any order (one output per query, in this order).
        encoder: embeds ``queries`` and ``negatives`` (not needed with ``condition`` and,
            if there are negatives, ``negative_condition``).
        negatives: one negative query per query ("what not to keep": a caption, a clip, or
            None for none), or None.
        out_dir: folder of the outputs.
        residual: also write the mixture minus each estimate (at the input's rate, so
            content above the model's Nyquist frequency stays in it).
        chunk_seconds: chunk length in seconds at the model's rate.
        overlap_seconds: cross-fade length in seconds.
        batch_size: mixtures (channels x queries) per forward pass.
        device: where the network runs (default: where ``separator``'s parameters are).
        dtype: ``"float32"`` or ``"bfloat16"`` (autocast; STFTs stay in float32).
        condition: the queries' embeddings, ``(len(queries), dim)``, if already computed.
        negative_condition: the negatives' embeddings, ``(len(queries), dim)`` with zero
            rows for none, if already computed (instead of ``negatives``).
        names: output file names, two per query (target, residual), default from
            [`output_names`][torchlass.inference.output_names].
        progress: called with the seconds of audio written after each chunk.

    Returns:
        A [`SeparatedFile`][torchlass.inference.SeparatedFile].

    Raises:
        FileNotFoundError: if the file does not exist.
        AudioFileError: if it cannot be read, or ends before its header says.
        ShapeError: if it has no samples, is shorter than one STFT frame at the model's
            rate, or has a channel count a multichannel model does not take; if
            ``negatives``, ``condition`` or ``negative_condition`` do not have one entry
            (row) per query.
        DTypeError: if a query or negative is neither a caption nor an ``AudioQuery``.
        TorchlassError: if negatives are given to a separator that takes none, a clip to
            an encoder that embeds text only, or embeddings are needed and there is no
            encoder. All of these are raised before the file is opened.
    """
    fn = "separate_file"
    path = Path(path)
    queries = check_queries(queries, fn)
    negatives = check_negatives(negatives, queries, separator, fn)
    dtype = check_choice(dtype, fn, "dtype", DTYPES)
    if negative_condition is not None:
        if negatives is not None:
            raise TorchlassError(f"{fn}(): give 'negatives' or 'negative_condition', not both")
        if not takes_negative(separator):
            raise TorchlassError(f"{fn}(): argument 'negative_condition' was given, but the "
                                 f"separator {type(separator).__name__} takes no negative "
                                 "query (its takes_negative is not true)")
    if device is None:
        device = next(iter(separator.parameters()), torch.empty(0)).device
    if condition is None or (negatives is not None and negative_condition is None):
        if encoder is None:
            needs = "'condition'" if negatives is None else "'condition' and 'negative_condition'"
            raise TorchlassError(f"{fn}(): argument 'encoder' is needed without {needs}")
        embedded, embedded_negative = embed_conditions(encoder, queries, negatives, fn=fn)
        condition = embedded if condition is None else condition
        negative_condition = embedded_negative if negatives is not None else negative_condition
    condition = _check_rows(condition, len(queries), fn, "condition", device)
    if negative_condition is not None:
        negative_condition = _check_rows(negative_condition, len(queries), fn,
                                         "negative_condition", device)
        if negative_condition.shape != condition.shape:
            raise ShapeError(f"{fn}(): arguments 'condition' and 'negative_condition' expected "
                             f"the same shape, got {tuple(condition.shape)} and "
                             f"{tuple(negative_condition.shape)}")
    rate = model_sample_rate(separator)
    chunk, overlap = round(chunk_seconds * rate), round(overlap_seconds * rate)
    align = int(getattr(separator, "chunk_align", 1))
    check_chunking(fn, chunk, overlap, align)

    source = _open(path, fn)
    mixture_file = None
    try:
        length, file_rate, channels = source.frames, source.samplerate, source.channels
        model_channels = int(getattr(separator, "channels", 1))
        if model_channels not in (1, channels):
            raise ShapeError(f"{fn}(): {str(path)!r} has {channels} channel(s), the "
                             f"separator takes 1 or {model_channels}")
        if length <= 0:
            raise ShapeError(f"{fn}(): {str(path)!r} has no samples")
        to_model = BlockResampler(file_rate, rate) if file_rate != rate else None
        back = BlockResampler(rate, file_rate) if file_rate != rate else None
        total = to_model.output_length(length) if to_model else length
        n_fft = int(getattr(getattr(separator, "stft", None), "n_fft", 1))
        if total < n_fft:
            raise ShapeError(
                f"{fn}(): {str(path)!r} is too short: {total} samples at {rate} Hz, fewer "
                f"than one STFT frame ({n_fft} samples, {n_fft / rate:.3f} s)")
        out_dir = Path(out_dir)
        names = list(names) if names is not None else output_names(path, queries)
        targets = [out_dir / n for n in names[0::2]]
        residuals = [out_dir / n for n in names[1::2]] if residual else []

        def read(stream: Any) -> Callable[[int], np.ndarray]:
            def pull(n: int) -> np.ndarray:
                try:
                    return stream.read(n, dtype="float32", always_2d=True)
                except import_soundfile().SoundFileError as err:  # a corrupt stretch of the file
                    raise EOFError(f"reading failed: {err}") from None
            return pull

        mixture = ForwardReader(channels, length, read(source))
        if residual:
            mixture_file = _open(path, fn)
            original = ForwardReader(channels, length, read(mixture_file))
        estimates = ForwardReader(len(queries) * channels, total)  # final, at the model's rate
        writers = _Writers(targets + residuals, file_rate, channels)
        ok = False
        try:
            plan = _chunks(total, chunk, overlap, align)
            fader = _CrossFade(len(queries), channels)
            written = 0
            for k, (start, end) in enumerate(plan):
                if to_model is not None:
                    n0, n1 = to_model.input_span(start, end)
                    x = to_model(mixture.get(n0, n1), n0, start, end)
                else:
                    x = mixture.get(start, end)
                est = _batched(separator, torch.from_numpy(np.asarray(x, np.float32)),
                               condition, negative_condition, batch_size=batch_size,
                               dtype=dtype).cpu()
                fader.add(start, est, fade_in=plan[k - 1][1] - start if k > 0 else 0,
                          fade_out=end - plan[k + 1][0] if k + 1 < len(plan) else 0)
                # no later chunk reaches before the next one's start: that much is final
                final = plan[k + 1][0] if k + 1 < len(plan) else total
                estimates.feed(fader.pop(final).reshape(len(queries) * channels, -1).numpy())
                stop = length if final == total else min(
                    length, back.last_output(final) if back else final)
                if stop > written:
                    _write(writers, estimates, back, original if residual else None,
                           written, stop, len(queries), channels)
                    if progress is not None:
                        progress((stop - written) / file_rate)
                    written = stop
            ok = True
        except EOFError as err:
            raise AudioFileError(f"{fn}(): cannot read {str(path)!r}: {err}") from None
        finally:
            writers.close(keep=ok)
    finally:
        source.close()
        if mixture_file is not None:
            mixture_file.close()
    return SeparatedFile(path, targets, residuals, length / file_rate, file_rate, channels)


def _write(writers: _Writers, estimates: ForwardReader, back: BlockResampler | None,
           original: ForwardReader | None, m0: int, m1: int, queries: int,
           channels: int) -> None:
    """Write output frames ``[m0, m1)`` at the file's rate: estimates, then residuals."""
    if back is None:
        block = estimates.get(m0, m1).astype(np.float64)
    else:
        n0, n1 = back.input_span(m0, m1)
        block = back(estimates.get(n0, n1), n0, m0, m1)
    block = block.reshape(queries, channels, m1 - m0)
    for q in range(queries):
        writers.write(q, block[q])
    if original is not None:
        mix = original.get(m0, m1).astype(np.float64)
        for q in range(queries):
            writers.write(queries + q, mix - block[q])
