"""Datasets of captioned clips for training, and the collate function that batches them.

Both datasets return ``{"waveform": (1, length), "caption": str, "labels": tuple[str, ...]}``
per item; [`collate_captioned`][torchlass.data.collate_captioned] stacks waveforms into
``(batch, 1, length)`` and keeps captions and labels as lists. Labels default to the caption's
content words and feed the ``"disjoint"`` pairing of [`BatchMixer`][torchlass.data.BatchMixer].
[`CaptionedAudioDataset`][torchlass.data.CaptionedAudioDataset] reads files as the baseline does
(mono, resampled, cropped or padded to a fixed segment, clips under 0.5 s rejected when the dataset
is built); the random crop is drawn from ``(seed, epoch, index)``, so it does not depend on worker
processes or the order items are read (an ``(index, epoch)`` key, as
[`StepBatchSampler`][torchlass.recipes.StepBatchSampler] yields, picks the epoch).
[`TensorCaptionDataset`][torchlass.data.TensorCaptionDataset] holds clips already in memory (the
synthetic collection of the demo, for instance).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset

from torchlass.checks import check_ndim, check_positive_int, check_real_floating
from torchlass.data.audio import AudioFileError, audio_info, fit_length, read_audio
from torchlass.data.captions import CaptionedAudio
from torchlass.errors import ShapeError
from torchlass.query.hashed import content_words

__all__ = ["CaptionedAudioDataset", "ShortAudioWarning", "TensorCaptionDataset",
           "collate_captioned"]

Item = dict[str, Any]


class ShortAudioWarning(UserWarning):
    """Some clips were shorter than the minimum duration (or unreadable) and were skipped."""


def _labels(labels: Sequence[str], caption: str) -> tuple[str, ...]:
    return tuple(labels) if labels else tuple(content_words(caption))


class CaptionedAudioDataset(Dataset[Item]):
    """Captioned audio files, loaded as the DCASE 2024 baseline trains on them.

    Each item is read with [`read_audio`][torchlass.data.read_audio] (mono, resampled to
    ``sample_rate``) and cropped at random or end-padded to ``segment_seconds`` with
    [`fit_length`][torchlass.data.fit_length]. When the dataset is built, the headers of all
    files are read once and clips shorter than ``min_seconds`` at ``sample_rate`` (and
    unreadable files) are dropped with one warning giving their count, where the baseline
    retried a random other item at every load.

    Args:
        items: from [`torchlass.data.captions`][torchlass.data.captions].
        sample_rate: in Hz (16000 for the baseline).
        segment_seconds: length of every item in seconds (10 for the baseline).
        min_seconds: shortest clip kept, in seconds at ``sample_rate``.
        seed: seed of the random crops.

    Shape:
        ``item["waveform"]``: ``(1, round(segment_seconds * sample_rate))``.

    Raises:
        ShapeError: if no item is left.
    """

    def __init__(self, items: Sequence[CaptionedAudio], *, sample_rate: int = 16000,
                 segment_seconds: float = 10.0, min_seconds: float = 0.5, seed: int = 0) -> None:
        self.sample_rate = check_positive_int(sample_rate, "CaptionedAudioDataset", "sample_rate")
        self.length = round(segment_seconds * sample_rate)
        check_positive_int(self.length, "CaptionedAudioDataset", "segment_seconds * sample_rate")
        self.min_seconds = min_seconds
        self.seed = seed
        self.epoch = 0
        self.items = self._keep_long_enough(list(items))

    def _keep_long_enough(self, items: list[CaptionedAudio]) -> list[CaptionedAudio]:
        kept, short, broken = [], 0, 0
        samples: dict[Any, float] = {}  # length of each file at the target rate
        for item in items:
            if item.path not in samples:
                try:
                    frames, rate = audio_info(item.path)
                    samples[item.path] = math.ceil(frames * self.sample_rate / rate)
                except (AudioFileError, FileNotFoundError):
                    samples[item.path] = math.nan
            length = samples[item.path]
            if math.isnan(length):
                broken += 1
            elif length < self.min_seconds * self.sample_rate:
                short += 1
            else:
                kept.append(item)
        if short or broken:
            warnings.warn(
                f"CaptionedAudioDataset(): skipped {short} item(s) shorter than "
                f"{self.min_seconds} s and {broken} unreadable or missing one(s) "
                f"out of {len(items)}", ShortAudioWarning, stacklevel=3)
        if not kept:
            raise ShapeError(
                f"CaptionedAudioDataset(): argument 'items' expected at least one readable clip "
                f"of {self.min_seconds} s or more, got none out of {len(items)}"
            )
        return kept

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (call once per epoch for fresh crops)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> Item:
        """Item ``key``: an index (crop of the current epoch) or an ``(index, epoch)`` pair."""
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        item = self.items[index]
        audio = read_audio(item.path, sample_rate=self.sample_rate)
        generator = torch.Generator().manual_seed(
            (self.seed * 1_000_003 + epoch) * 10_000_019 + index)
        return {
            "waveform": fit_length(audio, self.length, generator=generator),
            "caption": item.caption,
            "labels": _labels(item.labels, item.caption),
        }


class TensorCaptionDataset(Dataset[Item]):
    """Captioned clips already in memory, all of one length.

    Args:
        waveforms: the clips.
        captions: one caption per clip.
        labels: optional class names per clip (default: the caption's content words).

    Shape:
        ``waveforms``: ``(clips, 1, time)``; ``item["waveform"]``: ``(1, time)``.

    Raises:
        ShapeError: if the counts differ or ``waveforms`` is not 3-d.

    Examples:
        >>> ds = TensorCaptionDataset(torch.zeros(2, 1, 8), ["a dog", "rain"])
        >>> ds[1]["caption"], ds[1]["labels"]
        ('rain', ('rain',))
    """

    def __init__(self, waveforms: torch.Tensor, captions: Sequence[str],
                 labels: Sequence[Sequence[str]] | None = None) -> None:
        check_real_floating(waveforms, "TensorCaptionDataset", "waveforms")
        check_ndim(waveforms, "TensorCaptionDataset", "waveforms", ndim=3,
                   layout="(clips, 1, time)")
        if len(captions) != waveforms.shape[0] or (labels is not None
                                                  and len(labels) != len(captions)):
            raise ShapeError(
                "TensorCaptionDataset(): arguments 'waveforms', 'captions' and 'labels' "
                f"expected one entry per clip, got {waveforms.shape[0]}, {len(captions)} and "
                f"{'None' if labels is None else len(labels)}"
            )
        self.waveforms = waveforms
        self.captions = list(captions)
        self.labels = [_labels(labels[i] if labels is not None else (), c)
                       for i, c in enumerate(self.captions)]

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, key: int | tuple[int, int]) -> Item:
        """Item ``key``: an index or an ``(index, epoch)`` pair (the epoch is ignored)."""
        index = key[0] if isinstance(key, tuple) else key
        return {"waveform": self.waveforms[index], "caption": self.captions[index],
                "labels": self.labels[index]}


def collate_captioned(items: Sequence[Item]) -> Item:
    """Batch dataset items: waveforms stacked, captions and labels as lists.

    Shape:
        ``out["waveform"]``: ``(batch, 1, time)``.
    """
    return {
        "waveform": torch.stack([item["waveform"] for item in items]),
        "caption": [item["caption"] for item in items],
        "labels": [item["labels"] for item in items],
    }
