"""Evaluation with the challenge protocol: per-item scores, the table, SNR buckets, CSV.

[`evaluate_separator`][torchlass.recipes.evaluate_separator] runs a separator on validation mixtures
(for example [`ValidationMixtures`][torchlass.data.ValidationMixtures] built from
``lass_synthetic_validation.csv``), one full-length forward pass per clip as the DCASE 2024
evaluator does (docs/baseline.md#evaluation), and
scores every clip with [`torchlass.metrics.sdr`][torchlass.metrics.sdr],
[`sdri`][torchlass.metrics.sdri] and [`si_sdr`][torchlass.metrics.si_sdr].
[`summarize`][torchlass.recipes.summarize] gives the challenge's table (plain means over rows) and
the same means per SNR bucket; [`format_table`][torchlass.recipes.format_table] prints them and
[`write_item_csv`][torchlass.recipes.write_item_csv] keeps every row.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from torchlass.checks import check_positive_int
from torchlass.errors import ShapeError, ValueRangeError
from torchlass.query.protocol import TextEncoder, embed_captions

__all__ = ["ItemScore", "evaluate_separator", "format_table", "snr_bucket", "summarize",
           "write_item_csv"]

METRICS = ("sdr", "sdri", "si_sdr")


@dataclass(frozen=True)
class ItemScore:
    """Scores of one validation mixture, in dB."""

    index: int
    source: str
    noise: str
    caption: str
    snr_db: float
    sdr: float
    sdri: float
    si_sdr: float


def snr_bucket(snr_db: float, *, width: float = 5.0) -> str:
    """The SNR bucket of a mixture: ``[low, low + width)`` dB, ``low`` a multiple of ``width``.

    Examples:
        >>> snr_bucket(-3.0), snr_bucket(5.0), snr_bucket(-15)
        ('[-5, 0)', '[5, 10)', '[-15, -10)')
    """
    low = math.floor(snr_db / width) * width
    return f"[{low:g}, {low + width:g})"


@torch.no_grad()
def evaluate_separator(separator: torch.nn.Module, items: Iterable[Mapping[str, Any]],
                       encoder: TextEncoder, *, device: torch.device | str = "cpu",
                       batch_size: int = 1, progress: bool = False,
                       negative: bool = False) -> list[ItemScore]:
    """Separate and score every validation item.

    Items are dicts with ``mixture`` and ``target`` (``(1, time)``), ``caption`` and
    ``snr_db`` (``source`` and ``noise`` ids are kept when present), as
    [`ValidationMixtures`][torchlass.data.ValidationMixtures] returns. The separator runs in eval
    mode on the whole clip (a separator with several outputs per query is scored on the first,
    the query's source); consecutive items of equal length are batched up to ``batch_size``
    (BatchNorm in eval mode makes the result independent of batching). Scores are
    computed in float32 as the evaluator's numpy code does (``eps`` of float32 in SI-SDR).

    Args:
        separator: ``(mixture (batch, 1, time), condition (batch, dim)) -> (batch, 1, time)``.
        items: the validation mixtures.
        encoder: turns captions into conditions.
        device: where the separator runs.
        batch_size: clips per forward pass.
        progress: show a tqdm progress bar.
        negative: give each item's ``noise_caption`` (the interferer's caption) to the
            separator as a negative query (what to leave out); the separator must take
            one ([`takes_negative`][torchlass.separator.Separator.takes_negative]).

    Returns:
        One [`ItemScore`][torchlass.recipes.ItemScore] per item, in order.

    Raises:
        ShapeError: if the separator does not return ``(batch, sources, channels, time)``
            with the mixture's batch, channels and time (the first source is scored).
        ValueRangeError: with ``negative``, for a separator that takes no negative query
            or an item without a ``noise_caption``.
    """
    check_positive_int(batch_size, "evaluate_separator", "batch_size")
    if negative and not getattr(separator, "takes_negative", False):
        raise ValueRangeError(
            "evaluate_separator(): argument 'negative' expected False for a separator without "
            "negative-query conditioning (the srpol_negative_query preset takes one), got True")
    from torchlass.metrics import sdr, sdri, si_sdr

    was_training = separator.training
    separator.eval()
    scores: list[ItemScore] = []
    pending: list[tuple[int, Mapping[str, Any]]] = []

    def flush() -> None:
        mixture = torch.stack([it["mixture"] for _, it in pending]).to(device)
        target = torch.stack([it["target"] for _, it in pending]).to(device)
        queries = [embed_captions(encoder, [it["caption"] for _, it in pending], device=device)]
        if negative:
            queries.append(embed_captions(encoder, [it["noise_caption"] for _, it in pending],
                                          device=device))
        estimate = separator(mixture, *queries)  # (batch, sources, channels, time)
        if estimate.dim() != 4 or estimate[:, 0].shape != mixture.shape:
            raise ShapeError(
                f"evaluate_separator(): the separator expected to return (batch, sources, "
                f"channels, time) with the mixture's {tuple(mixture.shape)} as (batch, "
                f"channels, time), got {tuple(estimate.shape)}"
            )
        estimate = estimate[:, 0]  # the query's own source
        est, tgt, mix = (t.float()[:, 0] for t in (estimate, target, mixture))
        values = torch.stack([sdr(est, tgt), sdri(est, tgt, mix), si_sdr(est, tgt)], 1).cpu()
        for (index, it), row in zip(pending, values.tolist(), strict=True):
            scores.append(ItemScore(index, str(it.get("source", "")), str(it.get("noise", "")),
                                    it["caption"], float(it["snr_db"]), *row))
        pending.clear()

    iterator: Iterable[Mapping[str, Any]] = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="evaluate", unit="clip", leave=False)
    try:
        for index, item in enumerate(iterator):
            if negative and not item.get("noise_caption"):
                raise ValueRangeError(
                    f"evaluate_separator(): argument 'items' expected a 'noise_caption' in "
                    f"every item with negative=True, got none in item {index} (give the "
                    "recipe a noise_caption column)")
            if pending and (len(pending) == batch_size
                            or pending[0][1]["mixture"].shape != item["mixture"].shape):
                flush()
            pending.append((index, item))
        if pending:
            flush()
    finally:
        separator.train(was_training)
    return scores


def summarize(scores: Sequence[ItemScore], *, bucket_width: float = 5.0
              ) -> dict[str, dict[str, float]]:
    """The challenge table: mean SDR, SDRi, SI-SDR over all rows, and per SNR bucket.

    Args:
        scores: from [`evaluate_separator`][torchlass.recipes.evaluate_separator].
        bucket_width: width of the SNR buckets in dB (see
            [`snr_bucket`][torchlass.recipes.snr_bucket]).

    Returns:
        ``{"all": {"sdr", "sdri", "si_sdr", "count"}, "[-15, -10)": {...}, ...}``, buckets
        in increasing SNR order; means are plain arithmetic means in dB.

    Raises:
        ShapeError: if ``scores`` is empty.

    Examples:
        >>> rows = [ItemScore(0, "a", "b", "dog", -2.0, 4.0, 6.0, 3.0),
        ...         ItemScore(1, "c", "d", "rain", 7.0, 8.0, 1.0, 7.0)]
        >>> summarize(rows)["all"]
        {'sdr': 6.0, 'sdri': 3.5, 'si_sdr': 5.0, 'count': 2}
    """
    if not scores:
        raise ShapeError("summarize(): argument 'scores' expected at least one row, got 0")

    def means(rows: Sequence[ItemScore]) -> dict[str, float]:
        out: dict[str, Any] = {m: math.fsum(getattr(r, m) for r in rows) / len(rows)
                               for m in METRICS}
        out["count"] = len(rows)
        return out

    table = {"all": means(scores)}
    lows = sorted({math.floor(r.snr_db / bucket_width) for r in scores})
    for low in lows:
        rows = [r for r in scores if math.floor(r.snr_db / bucket_width) == low]
        table[snr_bucket(low * bucket_width, width=bucket_width)] = means(rows)
    return table


def format_table(columns: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Format one or more summaries side by side (``{"trained": summarize(...), ...}``).

    The first block is the challenge table (rows SDR, SDRi, SI-SDR over all mixtures);
    then SDRi per SNR bucket with the number of mixtures in each.

    Examples:
        >>> rows = [ItemScore(0, "a", "b", "dog", -2.0, 4.0, 6.0, 3.0)]
        >>> print(format_table({"model": summarize(rows)}))
        metric (dB)      model
        SDR               4.00
        SDRi              6.00
        SI-SDR            3.00
        <BLANKLINE>
        SDRi by SNR      model    clips
        [-5, 0)           6.00        1
    """
    names = list(columns)
    width = max(9, *(len(n) for n in names))
    head = "metric (dB)".ljust(12) + "".join(n.rjust(width + 1) for n in names)
    lines = [head]
    for key, label in zip(METRICS, ("SDR", "SDRi", "SI-SDR"), strict=True):
        lines.append(label.ljust(12) + "".join(f"{columns[n]['all'][key]:{width + 1}.2f}"
                                               for n in names))
    buckets = [b for b in columns[names[0]] if b != "all"]
    lines += ["", "SDRi by SNR".ljust(12) + "".join(n.rjust(width + 1) for n in names)
              + "clips".rjust(9)]
    for bucket in buckets:
        cells = "".join(f"{columns[n][bucket]['sdri']:{width + 1}.2f}" for n in names)
        lines.append(bucket.ljust(12) + cells + f"{columns[names[0]][bucket]['count']:9d}")
    return "\n".join(lines)


def write_item_csv(path: str | Path, scores: Sequence[ItemScore]) -> None:
    """Write one row per item (index, ids, caption, SNR and the three scores in dB)."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    names = list(ItemScore.__dataclass_fields__)
    with file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        for row in scores:
            writer.writerow(asdict(row))
