"""The datasets a configuration's ``data`` section names: caption lists and validation recipe.

[`build_train_set`][torchlass.recipes.datasets.build_train_set] reads
``data.train_lists`` in ``data.list_format`` (the DCASE JSON lists, Clotho or AudioCaps
CSVs) into a [`CaptionedAudioDataset`][torchlass.data.dataset.CaptionedAudioDataset] at
the model's sample rate;
[`build_validation_set`][torchlass.recipes.datasets.build_validation_set] turns
``data.validation_recipe`` into
[`ValidationMixtures`][torchlass.data.validation.ValidationMixtures]. ``torchlass train``
calls both, and so can a user of [`Trainer`][torchlass.recipes.trainer.Trainer]:
``Trainer(config, train_set=build_train_set(config),
validation_set=build_validation_set(config))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torchlass.checks import check_choice
from torchlass.errors import ValueRangeError

if TYPE_CHECKING:
    from torchlass.data import CaptionedAudioDataset, ValidationMixtures
    from torchlass.recipes.config import Config

__all__ = ["LIST_FORMATS", "build_train_set", "build_validation_set"]

LIST_FORMATS = ("dcase_json", "clotho_csv", "audiocaps_csv")
"""The values of ``data.list_format``: the caption-list formats ``build_train_set`` reads."""


def build_train_set(config: Config) -> CaptionedAudioDataset:
    """The training clips ``config.data`` lists, read as the baseline reads them.

    ``dcase_json`` lists (``{"data": [{"wav", "caption"}]}``) are concatenated in order,
    their relative ``wav`` paths joined to ``data.audio_dir`` when it is set. Clotho and
    AudioCaps CSVs give one item per caption, their audio in ``data.audio_dir``. Missing
    audio files are skipped with one warning; clips shorter than ``data.min_seconds`` are
    dropped. Clips are read at ``config.model.sample_rate``, cut or padded to
    ``data.segment_seconds`` with crops seeded by ``train.seed``.

    Args:
        config: the configuration (its ``data``, ``model.sample_rate`` and ``train.seed``).

    Returns:
        A [`CaptionedAudioDataset`][torchlass.data.dataset.CaptionedAudioDataset].

    Raises:
        ValueRangeError: if ``data.train_lists`` is empty, ``data.list_format`` is not one
            of [`LIST_FORMATS`][torchlass.recipes.datasets.LIST_FORMATS], or a CSV format
            comes without ``data.audio_dir``.
        FileNotFoundError: for a missing list, or when none of the listed audio exists.
        TorchlassError: for a list that is not in its format.
    """
    from torchlass.data import (
        CaptionedAudioDataset,
        read_audiocaps_csv,
        read_clotho_csv,
        read_dcase_json,
    )

    fn, data = "build_train_set", config.data
    if not data.train_lists:
        raise ValueRangeError(f"{fn}(): argument 'config' expected data.train_lists to name "
                              "at least one caption list (e.g. lists/clotho_dev.json), got ()")
    check_choice(data.list_format, fn, "config.data.list_format", LIST_FORMATS)
    audio_dir = data.audio_dir or None
    if data.list_format == "dcase_json":
        items = read_dcase_json(data.train_lists, audio_dir=audio_dir)
    elif audio_dir is None:
        raise ValueRangeError(f"{fn}(): argument 'config' expected data.audio_dir (the folder "
                              f"of the audio) with data.list_format={data.list_format!r}, "
                              "got ''")
    else:
        reader = read_clotho_csv if data.list_format == "clotho_csv" else read_audiocaps_csv
        items = [item for path in data.train_lists for item in reader(path, audio_dir)]
    return CaptionedAudioDataset(items, sample_rate=config.model.sample_rate,
                                 segment_seconds=data.segment_seconds,
                                 min_seconds=data.min_seconds, seed=config.train.seed)


def build_validation_set(config: Config) -> ValidationMixtures | None:
    """The validation mixtures of ``config.data.validation_recipe``, or None if unset.

    The recipe's clips are ``data.validation_audio_dir/<id>.wav`` (the current folder when
    unset), read at ``config.model.sample_rate``.

    Args:
        config: the configuration.

    Returns:
        [`ValidationMixtures`][torchlass.data.validation.ValidationMixtures], or None when
        ``data.validation_recipe`` is ``""``.

    Raises:
        FileNotFoundError: if the recipe does not exist.
        TorchlassError: for a malformed recipe row.

    Examples:
        >>> from torchlass.recipes import get_config
        >>> build_validation_set(get_config("baseline")) is None
        True
    """
    from torchlass.data import ValidationMixtures, read_validation_recipe

    data = config.data
    if not data.validation_recipe:
        return None
    return ValidationMixtures(read_validation_recipe(data.validation_recipe),
                              data.validation_audio_dir or ".",
                              sample_rate=config.model.sample_rate)
