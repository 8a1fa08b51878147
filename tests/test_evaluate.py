"""torchlass.recipes.evaluate: the challenge table on a synthetic recipe against a float64
numpy transcription of dcase_evaluator.py (docs/baseline.md#evaluation)."""

from __future__ import annotations

import csv
import math

import metric_references as ref
import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import np64, np_challenge_mix

from torchlass.data import ValidationMixtures, read_validation_recipe
from torchlass.errors import ShapeError
from torchlass.query import HashedTextEncoder
from torchlass.recipes import (
    ItemScore,
    evaluate_separator,
    format_table,
    snr_bucket,
    summarize,
    write_item_csv,
)

CAPTIONS = ["a dog barking", "rain on a roof", "a church bell", "birds chirping"]
SNRS = [-15, -12, -7, -1, 0, 3, 8, 11, 15]


class ScaledMixture(torch.nn.Module):
    """A stand-in one-source separator: ``g(condition) * mixture + 0.01 * roll(mixture)``."""

    def forward(self, mixture, condition):
        gain = torch.sigmoid(4 * condition[:, :1])[:, :, None]
        return (gain * mixture + 0.01 * torch.roll(mixture, 3, dims=-1))[:, None]


def np_gain(caption):
    c = np64(HashedTextEncoder()([caption])[0, 0])
    return 1 / (1 + np.exp(-4 * c))


def np_scores(s, n, snr, caption):
    """dcase_evaluator.py in float64 (its eps is float32's: the audio is float32)."""
    x, s = np_challenge_mix(s, n, snr)
    est = np_gain(caption) * x + 0.01 * np.roll(x, 3)
    sdr = ref.challenge_sdr(est, s)
    return sdr, sdr - ref.challenge_sdr(x, s), ref.si_sdr(est, s, eps=ref.F32_EPS)


@pytest.fixture
def recipe(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(6):
        level = [0.02, 0.3, 0.9, 0.1, 0.05, 0.5][i]
        sf.write(tmp_path / f"id{i}.wav", (level * rng.standard_normal(4000)).astype(np.float32),
                 16000, subtype="FLOAT")
    lines = ["source,noise,snr,caption"] + [
        f"id{k % 6},id{(k + 2) % 6},{snr},{CAPTIONS[k % 4]}" for k, snr in enumerate(SNRS)]
    (tmp_path / "lass_validation.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def reference_rows(folder):
    rows = read_validation_recipe(folder / "lass_validation.csv")
    out = []
    for row in rows:
        s, _ = sf.read(folder / f"{row.source}.wav", dtype="float32")
        n, _ = sf.read(folder / f"{row.noise}.wav", dtype="float32")
        out.append((row.snr_db, *np_scores(s.astype(np.float64), n.astype(np.float64),
                                           row.snr_db, row.caption)))
    return out


def test_table_matches_the_numpy_evaluator(recipe):
    items = ValidationMixtures(read_validation_recipe(recipe / "lass_validation.csv"), recipe)
    scores = evaluate_separator(ScaledMixture(), items, HashedTextEncoder())
    expected = reference_rows(recipe)
    assert len(scores) == len(expected)
    for got, (snr, sdr, sdri, si) in zip(scores, expected, strict=True):
        assert got.snr_db == snr
        assert got.sdr == pytest.approx(sdr, abs=1e-4)
        assert got.sdri == pytest.approx(sdri, abs=1e-4)
        assert got.si_sdr == pytest.approx(si, abs=1e-4)
    table = summarize(scores)
    ref = np.array(expected)
    assert table["all"]["count"] == len(SNRS)
    for k, key in enumerate(("sdr", "sdri", "si_sdr"), start=1):
        assert table["all"][key] == pytest.approx(ref[:, k].mean(), abs=1e-4)
    buckets = {}
    for row in expected:
        buckets.setdefault(math.floor(row[0] / 5) * 5, []).append(row[2])
    assert [b for b in table if b != "all"] == [f"[{lo}, {lo + 5})" for lo in sorted(buckets)]
    for low, values in buckets.items():
        entry = table[f"[{low}, {low + 5})"]
        assert entry["count"] == len(values)
        assert entry["sdri"] == pytest.approx(np.mean(values), abs=1e-4)


def test_batching_does_not_change_scores(recipe):
    items = ValidationMixtures(read_validation_recipe(recipe / "lass_validation.csv"), recipe)
    one = evaluate_separator(ScaledMixture(), items, HashedTextEncoder())
    four = evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), batch_size=4)
    for a, b in zip(one, four, strict=True):
        assert a.index == b.index and a.sdr == pytest.approx(b.sdr, abs=1e-5)


def test_item_csv_and_table_text(recipe, tmp_path):
    items = ValidationMixtures(read_validation_recipe(recipe / "lass_validation.csv"), recipe)
    scores = evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), batch_size=3)
    write_item_csv(tmp_path / "out" / "items.csv", scores)
    with (tmp_path / "out" / "items.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(SNRS) and rows[2]["source"] == "id2"
    assert float(rows[4]["sdri"]) == pytest.approx(scores[4].sdri)
    text = format_table({"model": summarize(scores)})
    assert "SDRi" in text and "[-15, -10)" in text and "[15, 20)" in text
    assert f"{summarize(scores)['all']['sdr']:.2f}" in text


def test_summarize_arithmetic_and_buckets():
    rows = [ItemScore(i, "s", "n", "c", snr, sdr, sdri, si)
            for i, (snr, sdr, sdri, si) in enumerate(
                [(-10, 1.0, 2.0, 3.0), (-6, 3.0, 4.0, 5.0), (4.99, -1.0, 0.5, 1.0)])]
    table = summarize(rows)
    assert table["all"] == {"sdr": 1.0, "sdri": pytest.approx(6.5 / 3), "si_sdr": 3.0,
                            "count": 3}
    assert list(table) == ["all", "[-10, -5)", "[0, 5)"]
    assert table["[-10, -5)"]["sdri"] == 3.0
    assert summarize(rows, bucket_width=20)["[-20, 0)"]["count"] == 2
    assert snr_bucket(-0.5) == "[-5, 0)" and snr_bucket(0.0) == "[0, 5)"
    with pytest.raises(ShapeError, match="at least one row, got 0"):
        summarize([])


def test_several_sources_score_the_first_and_shape_errors():
    class TwoSources(torch.nn.Module):
        def forward(self, mixture, condition):
            return torch.stack([0.5 * mixture, mixture], dim=1)

    class Wrong(torch.nn.Module):
        def forward(self, mixture, condition):
            return mixture[:, None, :, :-1]

    item = {"mixture": torch.ones(1, 100) * 0.2, "target": torch.ones(1, 100) * 0.1,
            "caption": "a dog", "snr_db": 0.0}
    score = evaluate_separator(TwoSources(), [item], HashedTextEncoder())[0]
    # 0.5 * mixture is the target: the error power floors at 1e-10, mean(s^2) = 0.01 -> 80 dB
    assert score.sdr == pytest.approx(80.0)
    with pytest.raises(ShapeError, match=r"expected to return \(batch, sources, channels, time\) "
                                         r"with the mixture's \(1, 1, 100\) as \(batch, "
                                         r"channels, time\), got \(1, 1, 1, 99\)"):
        evaluate_separator(Wrong(), [item], HashedTextEncoder())


def test_evaluation_restores_train_mode():
    model = ScaledMixture().train()
    item = {"mixture": torch.randn(1, 50), "target": torch.randn(1, 50), "caption": "rain",
            "snr_db": 1.0}
    evaluate_separator(model, [item], HashedTextEncoder())
    assert model.training
