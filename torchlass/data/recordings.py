"""Real recordings to evaluate without references: a folder of mixtures and their queries.

Real mixtures (the DCASE 2024 Task 9 "evaluation (real)" clips, a user's own recordings)
have no clean sources, so they are scored with CLAPScore rather than SDR
([`clap_score`][torchlass.metrics.clap_score]). A caption list names, for each query, the
mixture it applies to; one mixture may appear with several captions (one per sound to
extract). [`read_mixture_captions`][torchlass.data.read_mixture_captions] reads it and
[`RecordedMixtures`][torchlass.data.RecordedMixtures] reads the audio.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from torchlass.checks import check_positive_int
from torchlass.data.audio import read_audio
from torchlass.data.captions import (
    CaptionedAudio,
    _keep_existing,
    _open_csv,
    _resolve,
    read_dcase_json,
)
from torchlass.errors import TorchlassError

__all__ = ["RecordedMixtures", "read_mixture_captions"]

#: Accepted CSV headers: ``file, caption``, and the ``audio_file, text_query`` of the
#: CLAPScore authors' evaluation code.
_CSV_COLUMNS = (("file", "caption"), ("audio_file", "text_query"))


def read_mixture_captions(path: str | Path, mixtures_dir: str | Path) -> list[CaptionedAudio]:
    """Read the queries of a folder of mixtures: a CSV or a DCASE-style JSON list.

    A ``.json`` file is the baseline's ``{"data": [{"wav": ..., "caption": ...}]}``
    ([`read_dcase_json`][torchlass.data.read_dcase_json]); anything else is a CSV with a
    header ``file,caption`` (or ``audio_file,text_query``), one row per query. File names
    are relative to ``mixtures_dir``. Every named file must exist: an evaluation that
    silently skipped some would not be comparable.

    Args:
        path: the caption list.
        mixtures_dir: the folder of the mixtures.

    Returns:
        One [`CaptionedAudio`][torchlass.data.CaptionedAudio] per query, in file order.

    Raises:
        FileNotFoundError: if the list or a mixture it names does not exist.
        TorchlassError: if the list has another header, an empty caption, or no row.
    """
    fn = "read_mixture_captions"
    file, root = Path(path), Path(mixtures_dir)
    if file.suffix.lower() == ".json":
        items = read_dcase_json(file, audio_dir=root, on_missing="error")
    else:
        if not file.is_file():
            raise FileNotFoundError(f"{fn}(): caption list not found: {str(file)!r}")
        with file.open(encoding="utf-8") as f:
            header = [h.strip() for h in f.readline().split(",")]
        columns = next((c for c in _CSV_COLUMNS if set(c) <= set(header)), _CSV_COLUMNS[0])
        rows = _open_csv(file, fn, columns)
        name, text = columns
        empty = [k + 2 for k, row in enumerate(rows) if not row[text]]
        if empty:
            raise TorchlassError(f"{fn}(): {str(file)!r} expected a caption on every row, got "
                                 f"an empty one on line {empty[0]}")
        items = [CaptionedAudio(_resolve(row[name], root), row[text]) for row in rows]
        items = _keep_existing(items, fn, repr(str(file)), "error")
    if not items:
        raise TorchlassError(f"{fn}(): {str(file)!r} expected at least one query, got none")
    return items


class RecordedMixtures(Dataset[dict[str, Any]]):
    """Real mixtures and their queries, read on access, mono, at one rate.

    Item ``i`` holds ``mixture`` (``(1, time)``: channels averaged, resampled to
    ``sample_rate`` with [`read_audio`][torchlass.data.read_audio]), ``caption`` and
    ``source`` (the file's name). There is no ``target``: evaluation scores these items
    with CLAPScore only.

    Args:
        items: from [`read_mixture_captions`][torchlass.data.read_mixture_captions].
        sample_rate: rate the separator works at, in Hz.

    Shape:
        ``item["mixture"]``: ``(1, time)``.
    """

    def __init__(self, items: Sequence[CaptionedAudio], *, sample_rate: int = 16000) -> None:
        self.items = list(items)
        self.sample_rate = check_positive_int(sample_rate, "RecordedMixtures", "sample_rate")

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        return {"mixture": read_audio(item.path, sample_rate=self.sample_rate),
                "caption": item.caption, "source": item.path.name}
