"""Separate many files: inputs as files, folders or globs, queries embedded once, errors counted.

A bad file (missing, unreadable, empty, too short, a channel count the model does not
take) does not stop the run: its one-line reason is collected in the
[`SeparationSummary`][torchlass.inference.SeparationSummary] and the next file is
processed.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from torchlass.checks import check_choice
from torchlass.data.audio import import_soundfile
from torchlass.errors import TorchlassError
from torchlass.inference.files import (
    DTYPES,
    SeparatedFile,
    model_sample_rate,
    output_names,
    separate_file,
)
from torchlass.inference.queries import check_negatives, embed_conditions
from torchlass.query import Query, TextEncoder, check_queries
from torchlass.separator import check_chunking

__all__ = ["AUDIO_SUFFIXES", "SeparationSummary", "expand_inputs", "separate_files"]

#: File name endings a folder is searched for (what libsndfile reads).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".mp3")


@dataclass
class SeparationSummary:
    """The outcome of [`separate_files`][torchlass.inference.separate_files].

    Attributes:
        done: what was written, one entry per input separated.
        failed: ``(input, reason)`` for every input that could not be separated.
    """

    done: list[SeparatedFile] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> list[Path]:
    """Files named by ``inputs``: files as they are, folders' audio files, glob matches.

    A folder contributes its files ending in one of `AUDIO_SUFFIXES` (not its
    sub-folders), sorted; a pattern with ``*``, ``?`` or ``[`` its sorted matches. A path
    that does not exist is kept, so that separating it reports the problem. Duplicates are
    dropped.

    Examples:
        >>> expand_inputs(["missing.wav", "missing.wav"])
        [PosixPath('missing.wav')]
    """
    out: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            out += sorted(p for p in path.iterdir()
                          if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
        elif not path.exists() and any(c in str(item) for c in "*?["):
            out += sorted(Path(p) for p in glob.glob(str(item), recursive=True)
                          if Path(p).is_file())
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def _seconds(path: Path) -> float:
    try:
        info = import_soundfile().info(str(path))
        return info.frames / info.samplerate
    except Exception:  # reported when the file itself is separated
        return 0.0


def separate_files(separator: nn.Module, inputs: Sequence[str | os.PathLike],
                   queries: Sequence[Query], encoder: TextEncoder, *,
                   negatives: Sequence[Query | None] | None = None,
                   out_dir: str | os.PathLike = ".", residual: bool = False,
                   chunk_seconds: float = 10.0, overlap_seconds: float = 1.0,
                   batch_size: int = 8, device: str | torch.device | None = None,
                   dtype: str = "float32", progress: bool = True) -> SeparationSummary:
    """[`separate_file`][torchlass.inference.separate_file] on every input, queries embedded once.

    Args:
        separator: the model, in eval mode, on ``device``.
        inputs: files, folders or glob patterns (see
            [`expand_inputs`][torchlass.inference.expand_inputs]).
        queries: captions and [`AudioQuery`][torchlass.query.AudioQuery] clips, in any
            order; one output file per query and input.
        encoder: embeds ``queries`` and ``negatives`` (called once for the whole run).
        negatives: one negative query per query (a caption, a clip, or None for none), or
            None; only for a separator whose ``takes_negative`` is true (see
            [`separate_file`][torchlass.inference.separate_file]).
        out_dir: folder of the outputs, named by
            [`output_names`][torchlass.inference.output_names].
        residual: also write the mixture minus each estimate.
        chunk_seconds: chunk length in seconds at the model's rate.
        overlap_seconds: cross-fade length in seconds.
        batch_size: mixtures (channels x queries) per forward pass.
        device: where the network runs (default: where ``separator``'s parameters are).
        dtype: ``"float32"`` or ``"bfloat16"``.
        progress: show a progress bar (seconds of audio, files done).

    Returns:
        A [`SeparationSummary`][torchlass.inference.SeparationSummary]; inputs that could
        not be separated are listed in ``failed`` with the reason, not raised.

    Raises:
        TorchlassError: if there is no input, the queries cannot be embedded (a clip and an
            encoder that embeds text only), or negatives are given to a separator that
            takes none.
        ShapeError: if ``negatives`` does not have one entry per query.
        DTypeError: if a query or negative is neither a caption nor an ``AudioQuery``.
        ValueRangeError: on chunk settings or a ``dtype`` that no file could be run with.
    """
    fn = "separate_files"
    queries = check_queries(queries, fn)
    negatives = check_negatives(negatives, queries, separator, fn)
    files = expand_inputs(inputs)
    if not files:
        raise TorchlassError(f"{fn}(): argument 'inputs' expected at least one file, got "
                             f"none (from {[str(i) for i in inputs]})")
    rate = model_sample_rate(separator)  # settings errors are the run's, not a file's
    check_chunking(fn, round(chunk_seconds * rate), round(overlap_seconds * rate),
                   int(getattr(separator, "chunk_align", 1)))
    check_choice(dtype, fn, "dtype", DTYPES)
    if device is None:
        device = next(iter(separator.parameters()), torch.empty(0)).device
    condition, negative = embed_conditions(encoder, queries, negatives, device=device, fn=fn)
    summary = SeparationSummary()
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=round(sum(_seconds(f) for f in files), 2), unit="s",
                   desc="separate", bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s audio "
                   "[{elapsed}<{remaining}]{postfix}")
    claimed: dict[Path, Path] = {}  # output -> the input that writes it
    expected_failures = (TorchlassError, OSError, import_soundfile().SoundFileError)
    try:
        for i, path in enumerate(files):
            names = output_names(path, queries)
            clash = next((claimed[Path(out_dir) / n] for n in names
                          if Path(out_dir) / n in claimed), None)
            try:
                if clash is not None:
                    raise TorchlassError(f"its outputs would overwrite those of {str(clash)!r} "
                                         "(same file name); separate it on its own")
                claimed.update({Path(out_dir) / n: path for n in names})
                summary.done.append(separate_file(
                    separator, path, queries, condition=condition,
                    negative_condition=negative, names=names,
                    out_dir=out_dir, residual=residual, chunk_seconds=chunk_seconds,
                    overlap_seconds=overlap_seconds, batch_size=batch_size, device=device,
                    dtype=dtype, progress=bar.update if bar is not None else None))
            except expected_failures as err:
                summary.failed.append((path, str(err)))
            if bar is not None:
                bar.set_postfix_str(f"{i + 1}/{len(files)} files"
                                    + (f", {len(summary.failed)} failed" if summary.failed
                                       else ""))
    finally:
        if bar is not None:
            bar.close()
    return summary
