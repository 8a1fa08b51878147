"""The challenge's validation protocol: a recipe CSV turned into deterministic mixtures.

The DCASE 2024 Task 9 validation set is described by ``lass_synthetic_validation.csv``: a
header row, then ``source, noise, snr, caption`` per row, read by position
(docs/baseline.md#evaluation).
The audio of an id is ``<audio_dir>/<id>.wav``; the noise is scaled to the row's SNR
against the source and added, with the evaluator's clip protection
([`mix_at_snr`][torchlass.data.mix_at_snr]). Nothing is random, so every run and every
machine sees the same mixtures. An optional ``noise_caption`` column (found by its header
name) gives the noise's caption, for evaluating with the interferer as a negative query.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from torchlass.checks import check_positive_int
from torchlass.data.audio import read_audio
from torchlass.data.mixing import mix_at_snr
from torchlass.errors import TorchlassError

__all__ = ["RecipeRow", "ValidationMixtures", "read_validation_recipe",
           "write_validation_recipe"]


@dataclass(frozen=True)
class RecipeRow:
    """One validation mixture: source id, noise id, SNR (dB), the source's caption and,
    optionally, the noise's (``""``: unknown)."""

    source: str
    noise: str
    snr_db: float
    caption: str
    noise_caption: str = ""


def read_validation_recipe(path: str | Path) -> list[RecipeRow]:
    """Read a ``lass_synthetic_validation.csv``-style recipe.

    The first row is a header; the others are read by position as ``source, noise, snr,
    caption``. A header column named ``noise_caption`` is read too; other extra columns
    are ignored.

    Args:
        path: the CSV file.

    Returns:
        One [`RecipeRow`][torchlass.data.RecipeRow] per data row.

    Raises:
        FileNotFoundError: if the file does not exist.
        TorchlassError: for a row with fewer than four fields or an SNR that is not a
            number (the message gives the line).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"read_validation_recipe(): recipe not found: {str(file)!r}")
    rows = []
    noise_caption: int | None = None
    with file.open(newline="", encoding="utf-8") as f:
        for line, fields in enumerate(csv.reader(f), start=1):
            if line == 1:
                names = [x.strip().lower() for x in fields]
                noise_caption = names.index("noise_caption") if "noise_caption" in names else None
                continue
            if not any(x.strip() for x in fields):
                continue
            if len(fields) < 4:
                raise TorchlassError(
                    f"read_validation_recipe(): {str(file)!r} line {line} expected 4 fields "
                    f"(source, noise, snr, caption), got {len(fields)}"
                )
            try:
                snr = float(fields[2])
            except ValueError as err:
                raise TorchlassError(
                    f"read_validation_recipe(): {str(file)!r} line {line} expected a number "
                    f"in the snr column, got {fields[2]!r}"
                ) from err
            noise_text = (fields[noise_caption].strip() if noise_caption is not None
                          and noise_caption < len(fields) else "")
            rows.append(RecipeRow(fields[0].strip(), fields[1].strip(), snr, fields[3].strip(),
                                  noise_text))
    return rows


def write_validation_recipe(path: str | Path, rows: Sequence[RecipeRow]) -> None:
    """Write rows as a recipe CSV (header ``source,noise,snr,caption``, and
    ``noise_caption`` when a row has one)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    with_noise = any(row.noise_caption for row in rows)
    with file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["source", "noise", "snr", "caption"]
                        + (["noise_caption"] if with_noise else []))
        for row in rows:
            writer.writerow([row.source, row.noise, f"{row.snr_db:g}", row.caption]
                            + ([row.noise_caption] if with_noise else []))


class ValidationMixtures(Dataset[dict[str, Any]]):
    """The mixtures a recipe describes, built on access.

    Item ``i`` holds ``mixture`` and ``target`` (``(1, time)``, after clip protection),
    ``caption``, ``snr_db``, the row's ``source``/``noise`` ids and ``noise_caption``. The
    source sets the length; a noise clip of another length is cut or end-padded to it.

    Args:
        rows: from [`read_validation_recipe`][torchlass.data.read_validation_recipe].
        audio_dir: folder of ``<id>.wav`` files.
        sample_rate: rate the clips are read at (resampled if needed), in Hz.

    Shape:
        ``item["mixture"]``, ``item["target"]``: ``(1, time)``.
    """

    def __init__(self, rows: Sequence[RecipeRow], audio_dir: str | Path, *,
                 sample_rate: int = 16000) -> None:
        self.rows = list(rows)
        self.audio_dir = Path(audio_dir)
        self.sample_rate = check_positive_int(sample_rate, "ValidationMixtures", "sample_rate")

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self[i] for i in range(len(self)))

    def _read(self, clip_id: str) -> torch.Tensor:
        return read_audio(self.audio_dir / f"{clip_id}.wav", sample_rate=self.sample_rate)

    def __getitem__(self, index: int) -> dict[str, Any]:
        row = self.rows[index]
        source = self._read(row.source)
        noise = self._read(row.noise)[..., : source.shape[-1]]
        noise = torch.nn.functional.pad(noise, (0, source.shape[-1] - noise.shape[-1]))
        mixed = mix_at_snr(source[None], noise[None], row.snr_db)
        return {"mixture": mixed.mixture[0], "target": mixed.target[0], "caption": row.caption,
                "snr_db": row.snr_db, "source": row.source, "noise": row.noise,
                "noise_caption": row.noise_caption}
