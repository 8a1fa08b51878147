"""Caption lists in the formats LASS data comes in: DCASE JSON, Clotho CSV, AudioCaps CSV.

Each reader returns a list of [`CaptionedAudio`][torchlass.data.CaptionedAudio] (one audio file, one
caption; a clip with five captions gives five items, as the baseline trains). Audio files that do
not exist are dropped and reported once, in one warning with their count and the first few
names, rather than one by one or not at all; ``on_missing="error"`` raises instead, and a
list whose files are all missing always raises (the audio folder is most likely wrong).
"""

from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from torchlass.checks import check_choice
from torchlass.errors import TorchlassError

__all__ = [
    "CaptionedAudio",
    "MissingAudioWarning",
    "read_audiocaps_csv",
    "read_clotho_csv",
    "read_dcase_json",
]

PathLike = str | Path


class MissingAudioWarning(UserWarning):
    """Some audio files named in a caption list were not found and were skipped."""


@dataclass(frozen=True)
class CaptionedAudio:
    """One training item: an audio file and one caption of it.

    Attributes:
        path: the audio file.
        caption: the text describing it.
        labels: class names or tags, if the list has them (used to pair interferers that
            share none); empty otherwise, and the caption's content words are used.
    """

    path: Path
    caption: str
    labels: tuple[str, ...] = ()


def _resolve(name: str, audio_dir: Path | None) -> Path:
    path = Path(name)
    return path if audio_dir is None or path.is_absolute() else audio_dir / path


def _keep_existing(items: list[CaptionedAudio], fn: str, source: str,
                   on_missing: str) -> list[CaptionedAudio]:
    check_choice(on_missing, fn, "on_missing", ("warn", "error"))
    present = {p: p.is_file() for p in {item.path for item in items}}
    missing = sorted(str(p) for p, ok in present.items() if not ok)
    if not missing:
        return items
    first = ", ".join(repr(m) for m in missing[:3])
    message = (f"{fn}(): {len(missing)} of {len(present)} audio files listed in {source} "
               f"were not found (first: {first})")
    if on_missing == "error" or len(missing) == len(present):
        raise FileNotFoundError(message + "; check the audio folder")
    warnings.warn(message + "; their items are skipped", MissingAudioWarning, stacklevel=3)
    return [item for item in items if present[item.path]]


def _open_csv(path: Path, fn: str, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise FileNotFoundError(f"{fn}(): caption list not found: {str(path)!r}")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in reader.fieldnames or []]
        absent = [c for c in required if c not in header]
        if absent:
            raise TorchlassError(
                f"{fn}(): {str(path)!r} expected columns {list(required)}, "
                f"missing {absent} (header: {header})"
            )
        return [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]


def read_dcase_json(paths: PathLike | Iterable[PathLike], *, audio_dir: PathLike | None = None,
                    on_missing: str = "warn") -> list[CaptionedAudio]:
    """Read the DCASE 2024 baseline's JSON caption lists, concatenated in order.

    Each file is ``{"data": [{"wav": path, "caption": text}, ...]}`` (for example the
    challenge's ``fsd50k_dev_auto_caption.json`` and the Clotho lists). A relative ``wav``
    is joined to ``audio_dir`` when given, else used as it is (relative to the current
    directory, as the baseline opens it).

    Args:
        paths: one JSON file or several.
        audio_dir: folder the ``wav`` entries are relative to.
        on_missing: ``"warn"`` (skip missing audio, one warning) or ``"error"``.

    Returns:
        One [`CaptionedAudio`][torchlass.data.CaptionedAudio] per entry whose audio exists.

    Raises:
        FileNotFoundError: for a missing JSON file, or missing audio with
            ``on_missing="error"`` or when no audio file exists at all.
        TorchlassError: for a file that is not in this format.
    """
    files = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    root = Path(audio_dir) if audio_dir is not None else None
    items: list[CaptionedAudio] = []
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"read_dcase_json(): caption list not found: {str(file)!r}")
        try:
            entries = json.loads(file.read_text(encoding="utf-8"))["data"]
            items += [CaptionedAudio(_resolve(e["wav"], root), str(e["caption"]).strip())
                      for e in entries]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise TorchlassError(
                f"read_dcase_json(): {str(file)!r} expected "
                f'{{"data": [{{"wav": ..., "caption": ...}}, ...]}}, got an error: {err!r}'
            ) from err
    return _keep_existing(items, "read_dcase_json", ", ".join(repr(str(f)) for f in files),
                          on_missing)


def read_clotho_csv(path: PathLike, audio_dir: PathLike, *,
                    on_missing: str = "warn") -> list[CaptionedAudio]:
    """Read a Clotho v2.1 captions CSV: one item per non-empty caption.

    Columns ``file_name, caption_1, ..., caption_5``; the audio is ``audio_dir/file_name``.

    Args:
        path: the CSV file (e.g. ``clotho_captions_development.csv``).
        audio_dir: the folder holding the audio files.
        on_missing: ``"warn"`` or ``"error"`` (see
            [`read_dcase_json`][torchlass.data.read_dcase_json]).

    Returns:
        One [`CaptionedAudio`][torchlass.data.CaptionedAudio] per (file, caption) whose audio
        exists.

    Raises:
        FileNotFoundError: see [`read_dcase_json`][torchlass.data.read_dcase_json].
        TorchlassError: if the header lacks ``file_name`` or ``caption_1``.
    """
    file = Path(path)
    rows = _open_csv(file, "read_clotho_csv", ("file_name", "caption_1"))
    items = [
        CaptionedAudio(Path(audio_dir) / row["file_name"], row[key])
        for row in rows for key in sorted(k for k in row if k.startswith("caption_"))
        if row[key]
    ]
    return _keep_existing(items, "read_clotho_csv", repr(str(file)), on_missing)


def read_audiocaps_csv(path: PathLike, audio_dir: PathLike, *,
                       file_pattern: str = "{youtube_id}.wav",
                       on_missing: str = "warn") -> list[CaptionedAudio]:
    """Read an AudioCaps CSV (``audiocap_id, youtube_id, start_time, caption``).

    AudioCaps ships captions only; the audio is whatever the user downloaded, named by a
    pattern with the fields ``{audiocap_id}``, ``{youtube_id}`` and ``{start_time}``
    (``"{youtube_id}.wav"`` by default; ``"Y{youtube_id}.wav"`` and
    ``"{youtube_id}_{start_time}.wav"`` are common too).

    Args:
        path: the CSV file (``train.csv``, ``val.csv`` or ``test.csv``).
        audio_dir: the folder holding the audio files.
        file_pattern: how a row's audio file is named.
        on_missing: ``"warn"`` or ``"error"`` (see
            [`read_dcase_json`][torchlass.data.read_dcase_json]).

    Returns:
        One [`CaptionedAudio`][torchlass.data.CaptionedAudio] per row whose audio exists.

    Raises:
        FileNotFoundError: see [`read_dcase_json`][torchlass.data.read_dcase_json].
        TorchlassError: if a column is missing or ``file_pattern`` names another field.
    """
    file = Path(path)
    fields = ("audiocap_id", "youtube_id", "start_time", "caption")
    rows = _open_csv(file, "read_audiocaps_csv", fields)
    try:
        items = [CaptionedAudio(Path(audio_dir) / file_pattern.format(**row), row["caption"])
                 for row in rows if row["caption"]]
    except KeyError as err:
        raise TorchlassError(
            f"read_audiocaps_csv(): argument 'file_pattern' expected fields among {fields}, "
            f"got {file_pattern!r}"
        ) from err
    return _keep_existing(items, "read_audiocaps_csv", repr(str(file)), on_missing)
