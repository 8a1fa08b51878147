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

Given a CLAP model with its audio tower (``clap``), every row also gets CLAPScore
([`clap_score`][torchlass.metrics.clap_score]) of the estimate and of the unprocessed
mixture against the caption, and their difference (estimate minus mixture, as SDRi is to
SDR). Real recordings ([`RecordedMixtures`][torchlass.data.RecordedMixtures]) have no
``target``: their SDR columns stay empty and CLAPScore is their score. Result names carry
the CLAPScore convention, e.g. ``clapscore_cos_estimate`` (see
[`clap_columns`][torchlass.recipes.evaluate.clap_columns]).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from torchlass.checks import check_choice, check_positive_int
from torchlass.errors import ShapeError, ValueRangeError
from torchlass.query.protocol import AudioEncoder, TextEncoder, embed_captions

__all__ = ["ItemScore", "clap_columns", "evaluate_separator", "format_table", "item_row",
           "snr_bucket", "summarize", "write_item_csv"]

METRICS = ("sdr", "sdri", "si_sdr")
_CLAP_PARTS = ("estimate", "mixture", "improvement")


def clap_columns(convention: str) -> tuple[str, str, str]:
    """Names of the CLAPScore results under ``convention``: estimate, mixture, difference.

    Examples:
        >>> clap_columns("cos")
        ('clapscore_cos_estimate', 'clapscore_cos_mixture', 'clapscore_cos_improvement')
    """
    first, second, third = (f"clapscore_{convention}_{part}" for part in _CLAP_PARTS)
    return first, second, third


@dataclass(frozen=True)
class ItemScore:
    """Scores of one mixture: SDR family in dB, CLAPScore under ``clap_convention``.

    ``snr_db`` and the SDR family are None for a mixture without a reference (a real
    recording); the CLAPScore fields are None when no CLAP model scored the row.
    ``clap_improvement`` is ``clap_estimate - clap_mixture``.
    """

    index: int
    source: str
    noise: str
    caption: str
    snr_db: float | None
    sdr: float | None
    sdri: float | None
    si_sdr: float | None
    clap_estimate: float | None = None
    clap_mixture: float | None = None
    clap_improvement: float | None = None
    clap_convention: str = ""


def item_row(score: ItemScore) -> dict[str, Any]:
    """One row of the per-item CSV: the fields, the CLAPScore ones named with their convention.

    Examples:
        >>> item_row(ItemScore(0, "a.wav", "", "a dog", None, None, None, None, 0.5, 0.25,
        ...                    0.25, "cos"))["clapscore_cos_improvement"]
        0.25
    """
    row = asdict(score)
    convention = row.pop("clap_convention")
    values = [row.pop(f"clap_{part}") for part in _CLAP_PARTS]
    if convention:
        row.update(zip(clap_columns(convention), values, strict=True))
    return row


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
                       clap: AudioEncoder | None = None, sample_rate: int | None = None,
                       clap_convention: str = "cos", negative: bool = False) -> list[ItemScore]:
    """Separate and score every validation item.

    Items are dicts with ``mixture`` and ``target`` (``(1, time)``), ``caption`` and
    ``snr_db`` (``source`` and ``noise`` ids are kept when present), as
    [`ValidationMixtures`][torchlass.data.ValidationMixtures] returns. The separator runs in eval
    mode on the whole clip (a separator with several outputs per query is scored on the first,
    the query's source); consecutive items of equal length are batched up to ``batch_size``
    (BatchNorm in eval mode makes the result independent of batching). Scores are
    computed in float32 as the evaluator's numpy code does (``eps`` of float32 in SI-SDR).

    Items without a ``target`` (real recordings, as
    [`RecordedMixtures`][torchlass.data.RecordedMixtures] returns) get no SDR family and
    need ``clap``. With ``clap``, every item also gets the CLAPScore of the estimate and of
    the mixture against its caption, both at ``sample_rate`` (the separator's rate: the two
    have the same bandwidth, so their difference measures the separation, not resampling).

    Args:
        separator: ``(mixture (batch, 1, time), condition (batch, dim)) -> (batch, 1, time)``.
        items: the validation mixtures.
        encoder: turns captions into conditions.
        device: where the separator runs.
        batch_size: clips per forward pass.
        progress: show a tqdm progress bar.
        clap: a CLAP model with its audio and text towers, the judge of CLAPScore.
        sample_rate: rate of the items in Hz (needed with ``clap``).
        clap_convention: ``"cos"`` (default), ``"hessel"`` or ``"percent"`` (see
            [`clap_similarity`][torchlass.metrics.clap_similarity]).
        negative: give each item's ``noise_caption`` (the interferer's caption) to the
            separator as a negative query (what to leave out); the separator must take
            one ([`takes_negative`][torchlass.separator.Separator.takes_negative]).

    Returns:
        One [`ItemScore`][torchlass.recipes.ItemScore] per item, in order.

    Raises:
        ShapeError: if the separator does not return ``(batch, sources, channels, time)``
            with the mixture's batch, channels and time (the first source is scored).
        ValueRangeError: if ``clap`` is given without ``sample_rate``, an item has no
            ``target`` and no ``clap`` was given (it could not be scored), or, with
            ``negative``, the separator takes no negative query or an item has no
            ``noise_caption``.
    """
    fn = "evaluate_separator"
    check_positive_int(batch_size, fn, "batch_size")
    if clap is not None:
        check_choice(clap_convention, fn, "clap_convention", ("cos", "hessel", "percent"))
        if sample_rate is None:
            raise ValueRangeError(f"{fn}(): argument 'sample_rate' expected the items' rate in "
                                  "Hz with 'clap', got None")
        check_positive_int(sample_rate, fn, "sample_rate")
    if negative and not getattr(separator, "takes_negative", False):
        raise ValueRangeError(
            f"{fn}(): argument 'negative' expected False for a separator without "
            "negative-query conditioning (the srpol_negative_query preset takes one), got True")
    from torchlass.metrics import clap_score, sdr, sdri, si_sdr

    was_training = separator.training
    separator.eval()
    scores: list[ItemScore] = []
    pending: list[tuple[int, Mapping[str, Any]]] = []

    def flush() -> None:
        mixture = torch.stack([it["mixture"] for _, it in pending]).to(device)
        target = (torch.stack([it["target"] for _, it in pending]).to(device)
                  if "target" in pending[0][1] else None)
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
        n = len(pending)
        rows: list[list[float | None]] = [[None] * 3 for _ in range(n)]
        if target is not None:
            est, tgt, mix = (t.float()[:, 0] for t in (estimate, target, mixture))
            rows = torch.stack([sdr(est, tgt), sdri(est, tgt, mix), si_sdr(est, tgt)],
                               1).cpu().tolist()
        claps: list[list[float | None]] = [[None] * 3 for _ in range(n)]
        if clap is not None:
            assert sample_rate is not None  # checked above, with clap
            captions = [it["caption"] for _, it in pending]
            pair = [clap_score(x.float(), captions, clap, sample_rate=sample_rate,
                               convention=clap_convention).cpu() for x in (estimate, mixture)]
            claps = torch.stack([pair[0], pair[1], pair[0] - pair[1]], 1).tolist()
        for (index, it), row, clap_row in zip(pending, rows, claps, strict=True):
            snr = it.get("snr_db")
            scores.append(ItemScore(
                index, str(it.get("source", "")), str(it.get("noise", "")), it["caption"],
                None if snr is None else float(snr), sdr=row[0], sdri=row[1], si_sdr=row[2],
                clap_estimate=clap_row[0], clap_mixture=clap_row[1],
                clap_improvement=clap_row[2],
                clap_convention=clap_convention if clap is not None else ""))
        pending.clear()

    iterator: Iterable[Mapping[str, Any]] = items
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(items, desc="evaluate", unit="clip", leave=False)
    try:
        for index, item in enumerate(iterator):
            if "target" not in item and clap is None:
                raise ValueRangeError(
                    f"{fn}(): item {index} has no 'target' (a mixture without a reference) "
                    "and no 'clap' model was given: it cannot be scored")
            if negative and not item.get("noise_caption"):
                raise ValueRangeError(
                    f"{fn}(): argument 'items' expected a 'noise_caption' in "
                    f"every item with negative=True, got none in item {index} (give the "
                    "recipe a noise_caption column)")
            if pending and (len(pending) == batch_size
                            or pending[0][1]["mixture"].shape != item["mixture"].shape
                            or ("target" in pending[0][1]) != ("target" in item)):
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

    Rows scored by CLAP add the means of their CLAPScore fields, under the names of
    [`clap_columns`][torchlass.recipes.evaluate.clap_columns]. A metric is averaged over
    the rows that have it (real recordings have no SDR) and left out where none has it;
    rows without an SNR belong to no bucket.

    Args:
        scores: from [`evaluate_separator`][torchlass.recipes.evaluate_separator].
        bucket_width: width of the SNR buckets in dB (see
            [`snr_bucket`][torchlass.recipes.snr_bucket]).

    Returns:
        ``{"all": {"sdr", "sdri", "si_sdr", "count"}, "[-15, -10)": {...}, ...}``, buckets
        in increasing SNR order; means are plain arithmetic means in dB.

    Raises:
        ShapeError: if ``scores`` is empty.
        ValueRangeError: if the rows mix CLAPScore conventions.

    Examples:
        >>> rows = [ItemScore(0, "a", "b", "dog", -2.0, 4.0, 6.0, 3.0),
        ...         ItemScore(1, "c", "d", "rain", 7.0, 8.0, 1.0, 7.0)]
        >>> summarize(rows)["all"]
        {'sdr': 6.0, 'sdri': 3.5, 'si_sdr': 5.0, 'count': 2}
        >>> real = [ItemScore(0, "r.wav", "", "dog", None, None, None, None, 0.5, 0.25, 0.25,
        ...                   "cos")]
        >>> summarize(real)["all"]
        {'clapscore_cos_estimate': 0.5, 'clapscore_cos_mixture': 0.25, \
'clapscore_cos_improvement': 0.25, 'count': 1}
    """
    if not scores:
        raise ShapeError("summarize(): argument 'scores' expected at least one row, got 0")
    conventions = sorted({r.clap_convention for r in scores if r.clap_convention})
    if len(conventions) > 1:
        raise ValueRangeError(f"summarize(): argument 'scores' expected one CLAPScore "
                              f"convention, got {conventions}")
    fields = {m: m for m in METRICS}
    if conventions:
        fields.update(zip(clap_columns(conventions[0]), (f"clap_{p}" for p in _CLAP_PARTS),
                          strict=True))

    def means(rows: Sequence[ItemScore]) -> dict[str, float]:
        out: dict[str, Any] = {}
        for name, field in fields.items():
            values = [getattr(r, field) for r in rows if getattr(r, field) is not None]
            if values:
                out[name] = math.fsum(values) / len(values)
        out["count"] = len(rows)
        return out

    table = {"all": means(scores)}
    with_snr = [r for r in scores if r.snr_db is not None]
    lows = sorted({math.floor(r.snr_db / bucket_width) for r in with_snr})  # type: ignore[operator]
    for low in lows:
        rows = [r for r in with_snr if math.floor(r.snr_db / bucket_width) == low]  # type: ignore[operator]
        table[snr_bucket(low * bucket_width, width=bucket_width)] = means(rows)
    return table


def format_table(columns: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """Format one or more summaries side by side (``{"trained": summarize(...), ...}``).

    The first block is the challenge table (rows SDR, SDRi, SI-SDR over all mixtures;
    ``n/a`` where no mixture had a reference); then, where CLAP scored the rows, CLAPScore
    of the estimate, of the mixture and their difference, headed by its convention; then
    SDRi per SNR bucket with the number of mixtures in each.

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
        >>> real = [ItemScore(0, "r.wav", "", "dog", None, None, None, None, 0.5, 0.25, 0.25,
        ...                   "cos")]
        >>> print(format_table({"model": summarize(real)}))
        metric (dB)           model
        SDR                     n/a
        SDRi                    n/a
        SI-SDR                  n/a
        <BLANKLINE>
        CLAPScore (cos)       model
        estimate             0.5000
        mixture              0.2500
        improvement          0.2500
    """
    names = list(columns)
    width = max(9, *(len(n) for n in names))
    keys = [k for n in names for k in columns[n]["all"]]
    conventions = list(dict.fromkeys(k[len("clapscore_"):-len("_estimate")] for k in keys
                                     if k.startswith("clapscore_") and k.endswith("_estimate")))
    first = max([12] + [len(f"CLAPScore ({c})") + 2 for c in conventions])

    def row(label: str, entries: Sequence[Mapping[str, float]], key: str, digits: int) -> str:
        cells = "".join("n/a".rjust(width + 1) if e.get(key) is None
                        else f"{e[key]:{width + 1}.{digits}f}" for e in entries)
        return label.ljust(first) + cells

    def head(title: str) -> str:
        return title.ljust(first) + "".join(n.rjust(width + 1) for n in names)

    totals = [columns[n]["all"] for n in names]
    lines = [head("metric (dB)")]
    for key, label in zip(METRICS, ("SDR", "SDRi", "SI-SDR"), strict=True):
        lines.append(row(label, totals, key, 2))
    for convention in conventions:
        lines += ["", head(f"CLAPScore ({convention})")]
        for key, label in zip(clap_columns(convention), _CLAP_PARTS, strict=True):
            lines.append(row(label, totals, key, 4))
    buckets = [b for b in columns[names[0]] if b != "all"]
    if buckets:
        lines += ["", head("SDRi by SNR") + "clips".rjust(9)]
    for bucket in buckets:
        lines.append(row(bucket, [columns[n][bucket] for n in names], "sdri", 2)
                     + f"{columns[names[0]][bucket]['count']:9d}")
    return "\n".join(lines)


def write_item_csv(path: str | Path, scores: Sequence[ItemScore]) -> None:
    """Write one row per item (index, ids, caption, SNR, the SDR family in dB, CLAPScore).

    Rows come from [`item_row`][torchlass.recipes.evaluate.item_row]: a value that does not
    exist (SDR of a real recording) is an empty cell, and the CLAPScore columns, named with
    their convention, are there when CLAP scored the rows.
    """
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    rows = [item_row(score) for score in scores]
    names = list(dict.fromkeys(k for r in rows for k in r)) or [
        f for f in ItemScore.__dataclass_fields__ if not f.startswith("clap_")]
    with file.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
