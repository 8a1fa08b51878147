"""torchlass.recipes.evaluate: the challenge table on a synthetic recipe against a float64
numpy transcription of dcase_evaluator.py (docs/baseline.md#evaluation)."""

from __future__ import annotations

import csv
import json
import math

import metric_references as ref
import numpy as np
import pytest
import soundfile as sf
import torch
from clap_standins import StandInClap, np_audio_embedding, np_cosines, np_text_embedding
from helpers import np64, np_challenge_mix

from torchlass.data import (
    RecordedMixtures,
    ValidationMixtures,
    read_mixture_captions,
    read_validation_recipe,
)
from torchlass.errors import ShapeError, TorchlassError, ValueRangeError
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


# --- CLAPScore columns: synthetic mixtures and real recordings without references ---

def np_clap(audio, captions, rate):
    """CLAPScore ("cos") of a stand-in CLAP in float64 numpy: Xiao et al.'s formula."""
    return np_cosines(np_audio_embedding(audio, rate),
                      np.stack([np_text_embedding(c) for c in captions]))


def test_clap_columns_on_synthetic_mixtures(recipe, tmp_path):
    items = ValidationMixtures(read_validation_recipe(recipe / "lass_validation.csv"), recipe)
    clap = StandInClap()
    scores = evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), batch_size=4,
                                clap=clap, sample_rate=16000)
    assert {rate for _, rate in clap.calls} == {16000}
    plain = evaluate_separator(ScaledMixture(), items, HashedTextEncoder())
    for got, ref_row, row in zip(scores, reference_rows(recipe), read_validation_recipe(
            recipe / "lass_validation.csv"), strict=True):
        s, _ = sf.read(recipe / f"{row.source}.wav", dtype="float32")
        n, _ = sf.read(recipe / f"{row.noise}.wav", dtype="float32")
        x, _ = np_challenge_mix(s.astype(np.float64), n.astype(np.float64), row.snr_db)
        est = np_gain(row.caption) * x + 0.01 * np.roll(x, 3)
        expected = np_clap(np.stack([est, x])[:, None], [row.caption] * 2, 16000)
        assert got.clap_convention == "cos"
        assert got.clap_estimate == pytest.approx(expected[0], abs=1e-5)
        assert got.clap_mixture == pytest.approx(expected[1], abs=1e-5)
        assert got.clap_improvement == pytest.approx(expected[0] - expected[1], abs=1e-5)
        assert got.sdri == pytest.approx(ref_row[2], abs=1e-4)
    assert [s.sdr for s in scores] == pytest.approx([s.sdr for s in plain], abs=1e-5)
    table = summarize(scores)["all"]
    assert table["clapscore_cos_improvement"] == pytest.approx(
        np.mean([s.clap_improvement for s in scores]))
    write_item_csv(tmp_path / "items.csv", scores)
    with (tmp_path / "items.csv").open() as f:
        header = next(csv.reader(f))
    assert header == ["index", "source", "noise", "caption", "snr_db", "sdr", "sdri", "si_sdr",
                      "clapscore_cos_estimate", "clapscore_cos_mixture",
                      "clapscore_cos_improvement"]


@pytest.fixture
def recordings(tmp_path):
    """Three real-recording stand-ins at other rates and channel counts, and their queries."""
    rng = np.random.default_rng(1)
    files = {"street.wav": (44100, 2, 0.3), "kitchen.flac": (16000, 1, 0.1),
             "park.wav": (22050, 1, 0.6)}
    for name, (rate, channels, level) in files.items():
        data = level * rng.standard_normal((rate // 4, channels)) + level
        sf.write(tmp_path / name, data, rate)
    (tmp_path / "queries.csv").write_text(
        "file,caption\nstreet.wav,a car horn\nstreet.wav,\"people talking, laughing\"\n"
        "kitchen.flac,a kettle\npark.wav,birds chirping\n")
    return tmp_path, files


def np_read_mono(path, rate):
    """A file as read for the separator: channel mean, resample_poly to ``rate``, float64."""
    from scipy.signal import resample_poly

    data, file_rate = sf.read(path, dtype="float32", always_2d=True)
    x = data.astype(np.float64).mean(axis=1)
    g = math.gcd(file_rate, rate)
    return resample_poly(x, rate // g, file_rate // g) if file_rate != rate else x


def test_recordings_are_scored_with_clap_only(recordings, tmp_path):
    folder, _ = recordings
    items = RecordedMixtures(read_mixture_captions(folder / "queries.csv", folder),
                             sample_rate=16000)
    scores = evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), batch_size=2,
                                clap=StandInClap(), sample_rate=16000)
    assert [s.source for s in scores] == ["street.wav", "street.wav", "kitchen.flac",
                                          "park.wav"]
    assert [s.caption for s in scores][1] == "people talking, laughing"
    for got in scores:
        assert (got.snr_db, got.sdr, got.sdri, got.si_sdr) == (None, None, None, None)
        x = np_read_mono(folder / got.source, 16000)
        est = np_gain(got.caption) * x + 0.01 * np.roll(x, 3)
        expected = np_clap(np.stack([est, x])[:, None], [got.caption] * 2, 16000)
        assert got.clap_estimate == pytest.approx(expected[0], abs=1e-5)
        assert got.clap_mixture == pytest.approx(expected[1], abs=1e-5)
    table = summarize(scores)
    assert list(table) == ["all"] and "sdr" not in table["all"]
    assert table["all"]["count"] == 4
    text = format_table({"model": table})
    assert "SDR" in text and "n/a" in text and "CLAPScore (cos)" in text
    assert f"{table['all']['clapscore_cos_estimate']:.4f}" in text
    assert "SDRi by SNR" not in text
    write_item_csv(tmp_path / "out.csv", scores)
    with (tmp_path / "out.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["sdr"] == rows[0]["snr_db"] == "" and rows[0]["noise"] == ""
    assert float(rows[3]["clapscore_cos_mixture"]) == pytest.approx(scores[3].clap_mixture)


def test_clap_convention_is_named_everywhere(recordings):
    folder, _ = recordings
    items = RecordedMixtures(read_mixture_captions(folder / "queries.csv", folder),
                             sample_rate=8000)
    cos = evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), clap=StandInClap(),
                             sample_rate=8000)
    hessel = evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), clap=StandInClap(),
                                sample_rate=8000, clap_convention="hessel")
    for a, b in zip(cos, hessel, strict=True):
        assert b.clap_estimate == pytest.approx(2.5 * max(a.clap_estimate, 0), abs=1e-6)
    assert "clapscore_hessel_estimate" in summarize(hessel)["all"]
    assert "CLAPScore (hessel)" in format_table({"m": summarize(hessel)})
    with pytest.raises(ValueRangeError, match=r"expected one CLAPScore convention, got "
                                              r"\['cos', 'hessel'\]"):
        summarize([*cos, *hessel])


def test_reference_free_items_need_clap(recordings):
    folder, _ = recordings
    items = RecordedMixtures(read_mixture_captions(folder / "queries.csv", folder),
                             sample_rate=8000)
    with pytest.raises(ValueRangeError, match=r"^evaluate_separator\(\): item 0 has no 'target' "
                       r"\(a mixture without a reference\) and no 'clap' model was given: it "
                       r"cannot be scored$"):
        evaluate_separator(ScaledMixture(), items, HashedTextEncoder())
    with pytest.raises(ValueRangeError, match=r"^evaluate_separator\(\): argument 'sample_rate' "
                       r"expected the items' rate in Hz with 'clap', got None$"):
        evaluate_separator(ScaledMixture(), items, HashedTextEncoder(), clap=StandInClap())


def test_read_mixture_captions_formats_and_errors(recordings):
    folder, _ = recordings
    (folder / "authors.csv").write_text("audio_file, text_query\npark.wav, birds chirping\n")
    assert read_mixture_captions(folder / "authors.csv", folder)[0].caption == "birds chirping"
    (folder / "list.json").write_text(json.dumps(
        {"data": [{"wav": "kitchen.flac", "caption": "a kettle"}]}))
    (item,) = read_mixture_captions(folder / "list.json", folder)
    assert (item.path, item.caption) == (folder / "kitchen.flac", "a kettle")
    (folder / "bad.csv").write_text("name,text\npark.wav,birds\n")
    with pytest.raises(TorchlassError, match=r"expected columns \['file', 'caption'\], missing "
                                             r"\['file', 'caption'\]"):
        read_mixture_captions(folder / "bad.csv", folder)
    (folder / "empty.csv").write_text("file,caption\npark.wav,\n")
    with pytest.raises(TorchlassError, match=r"expected a caption on every row, got an empty "
                                             r"one on line 2$"):
        read_mixture_captions(folder / "empty.csv", folder)
    (folder / "missing.csv").write_text("file,caption\npark.wav,birds\nnone.wav,rain\n")
    with pytest.raises(FileNotFoundError, match=r"1 of 2 audio files listed in .* were not "
                                                r"found \(first: '.*none.wav'\)"):
        read_mixture_captions(folder / "missing.csv", folder)
    (folder / "header.csv").write_text("file,caption\n")
    with pytest.raises(TorchlassError, match=r"expected at least one query, got none$"):
        read_mixture_captions(folder / "header.csv", folder)
    with pytest.raises(FileNotFoundError, match=r"caption list not found"):
        read_mixture_captions(folder / "nothing.csv", folder)
