"""torchlass.data: caption lists, audio I/O, datasets, validation recipe, synthetic sounds.

References: files written with soundfile and csv/json by hand, scipy's resample_poly called
directly, the docs/baseline.md#evaluation formulas in float64 numpy.
"""

from __future__ import annotations

import csv
import json
import warnings

import numpy as np
import pytest
import soundfile as sf
import torch
from helpers import np64, np_challenge_mix
from helpers import write_noise_wav as wav
from scipy.signal import resample_poly

from torchlass.data import (
    SYNTHETIC_CAPTIONS,
    AudioFileError,
    CaptionedAudio,
    CaptionedAudioDataset,
    MissingAudioWarning,
    ShortAudioWarning,
    TensorCaptionDataset,
    ValidationMixtures,
    collate_captioned,
    fit_length,
    read_audio,
    read_audiocaps_csv,
    read_clotho_csv,
    read_dcase_json,
    read_validation_recipe,
    resample,
    synthesize,
    synthetic_collection,
    write_audio,
    write_validation_recipe,
)
from torchlass.data.validation import RecipeRow
from torchlass.errors import DTypeError, ShapeError, TorchlassError, ValueRangeError

# -- caption lists -------------------------------------------------------------------------

def test_dcase_json_concatenates_files_and_resolves_paths(tmp_path):
    for name in ("a", "b", "c"):
        wav(tmp_path / f"{name}.wav")
    (tmp_path / "one.json").write_text(json.dumps(
        {"data": [{"wav": "a.wav", "caption": "a dog"}, {"wav": "b.wav", "caption": "rain"}]}))
    (tmp_path / "two.json").write_text(json.dumps(
        {"data": [{"wav": str(tmp_path / "c.wav"), "caption": " bells "}]}))
    items = read_dcase_json([tmp_path / "one.json", tmp_path / "two.json"], audio_dir=tmp_path)
    assert [i.caption for i in items] == ["a dog", "rain", "bells"]
    assert [i.path.name for i in items] == ["a.wav", "b.wav", "c.wav"]
    assert all(i.path.is_file() for i in items)


def test_missing_audio_reported_once_with_count(tmp_path):
    wav(tmp_path / "a.wav")
    entries = [{"wav": "a.wav", "caption": "x"}] + [
        {"wav": f"gone{i}.wav", "caption": "y"} for i in range(5)]
    (tmp_path / "l.json").write_text(json.dumps({"data": entries}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = read_dcase_json(tmp_path / "l.json", audio_dir=tmp_path)
    relevant = [w for w in caught if issubclass(w.category, MissingAudioWarning)]
    assert len(relevant) == 1
    assert "5 of 6 audio files" in str(relevant[0].message)
    assert len(items) == 1
    with pytest.raises(FileNotFoundError, match="5 of 6 audio files"):
        read_dcase_json(tmp_path / "l.json", audio_dir=tmp_path, on_missing="error")


def test_all_missing_raises_even_when_warning(tmp_path):
    (tmp_path / "l.json").write_text(json.dumps({"data": [{"wav": "x.wav", "caption": "y"}]}))
    with pytest.raises(FileNotFoundError, match="check the audio folder"):
        read_dcase_json(tmp_path / "l.json", audio_dir=tmp_path)


def test_dcase_json_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="caption list not found"):
        read_dcase_json(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text(json.dumps({"items": []}))
    with pytest.raises(TorchlassError, match=r"read_dcase_json\(\): .*expected"):
        read_dcase_json(tmp_path / "bad.json")
    with pytest.raises(ValueRangeError, match="on_missing"):
        (tmp_path / "ok.json").write_text(json.dumps({"data": []}))
        read_dcase_json(tmp_path / "ok.json", on_missing="skip")


def test_clotho_csv_one_item_per_caption(tmp_path):
    wav(tmp_path / "x y.wav")
    wav(tmp_path / "z.wav")
    with (tmp_path / "captions.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["file_name", *(f"caption_{i}" for i in range(1, 6))])
        w.writerow(["x y.wav", "c1", "c2", "c3", "c4", "c5"])
        w.writerow(["z.wav", "d1", "d2", "", "d4", "d5"])
    items = read_clotho_csv(tmp_path / "captions.csv", tmp_path)
    assert [i.caption for i in items] == ["c1", "c2", "c3", "c4", "c5", "d1", "d2", "d4", "d5"]
    assert items[0].path == tmp_path / "x y.wav"


def test_csv_missing_column(tmp_path):
    (tmp_path / "c.csv").write_text("name,caption\nx,y\n")
    with pytest.raises(TorchlassError, match=r"read_clotho_csv\(\): .*missing \['file_name'"):
        read_clotho_csv(tmp_path / "c.csv", tmp_path)


def test_audiocaps_csv_file_pattern(tmp_path):
    wav(tmp_path / "Yabc.wav")
    wav(tmp_path / "Ydef.wav")
    (tmp_path / "train.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n"
        "91139,abc,130,A man speaks\n"
        "58146,def,30,Water flows\n"
        "11111,ghi,0,Missing clip\n")
    with pytest.warns(MissingAudioWarning, match="1 of 3"):
        items = read_audiocaps_csv(tmp_path / "train.csv", tmp_path,
                                   file_pattern="Y{youtube_id}.wav")
    assert [(i.path.name, i.caption) for i in items] == [("Yabc.wav", "A man speaks"),
                                                          ("Ydef.wav", "Water flows")]
    with pytest.raises(TorchlassError, match="file_pattern"):
        read_audiocaps_csv(tmp_path / "train.csv", tmp_path, file_pattern="{vid}.wav")


# -- audio -------------------------------------------------------------------------------

def test_read_audio_downmix_and_resample_match_scipy(tmp_path):
    data = wav(tmp_path / "s.wav", seconds=0.3, rate=44100, channels=2)
    out = read_audio(tmp_path / "s.wav", sample_rate=16000)
    expected = resample_poly(data.astype(np.float64).mean(axis=1), 160, 441)
    assert out.shape == (1, expected.shape[0])
    np.testing.assert_allclose(out[0].numpy(), expected, atol=1e-6)


def test_read_audio_same_rate_is_exact(tmp_path):
    data = wav(tmp_path / "s.wav", rate=8000, channels=3)
    out = read_audio(tmp_path / "s.wav", sample_rate=8000, mono=False)
    assert out.shape == (3, 8000)
    assert torch.equal(out, torch.from_numpy(data.T.copy()))


def test_read_audio_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="audio file not found"):
        read_audio(tmp_path / "none.wav", sample_rate=16000)
    (tmp_path / "bad.wav").write_bytes(b"not audio at all")
    with pytest.raises(AudioFileError, match=r"read_audio\(\): cannot read"):
        read_audio(tmp_path / "bad.wav", sample_rate=16000)
    wav(tmp_path / "short.wav", seconds=0.4)
    with pytest.raises(ShapeError, match=r"expected at least 0.5 s \(8000 samples"):
        read_audio(tmp_path / "short.wav", sample_rate=16000, min_seconds=0.5)


def test_resample_length_and_identity():
    x = torch.randn(2, 441)
    assert resample(x, 44100, 16000).shape == (2, 160)
    assert resample(x, 16000, 16000) is x
    with pytest.raises(DTypeError, match=r"resample\(\): argument 'x'"):
        resample(torch.ones(3, dtype=torch.int64), 2, 1)


def test_fit_length_crop_is_a_window_and_pad_is_zeros():
    x = torch.arange(10.0)[None]
    g = torch.Generator().manual_seed(3)
    crop = fit_length(x, 4, generator=g)
    start = int(crop[0, 0])
    assert torch.equal(crop, x[:, start:start + 4])
    padded = fit_length(x, 13)
    assert torch.equal(padded[:, :10], x) and torch.equal(padded[:, 10:], torch.zeros(1, 3))
    starts = {int(fit_length(x, 4, generator=g)[0, 0]) for _ in range(200)}
    assert starts == set(range(7))  # uniform over every valid offset, ends included


def test_write_audio_round_trip(tmp_path):
    x = torch.randn(2, 123) * 2  # beyond [-1, 1]: float WAV keeps it
    write_audio(tmp_path / "o.wav", x, 8000)
    back, rate = sf.read(tmp_path / "o.wav", dtype="float32", always_2d=True)
    assert rate == 8000 and np.array_equal(back.T, x.numpy())
    with pytest.raises(ShapeError, match=r"write_audio\(\): argument 'x'"):
        write_audio(tmp_path / "o.wav", torch.zeros(1, 1, 4), 8000)


# -- datasets ----------------------------------------------------------------------------

def test_captioned_dataset_rejects_short_once_and_crops(tmp_path):
    wav(tmp_path / "long.wav", seconds=2.0)
    wav(tmp_path / "short.wav", seconds=0.3)
    wav(tmp_path / "ok.wav", seconds=0.6)
    (tmp_path / "bad.wav").write_bytes(b"xx")
    items = [CaptionedAudio(tmp_path / n, c) for n, c in
             (("long.wav", "a dog barks"), ("short.wav", "x"), ("ok.wav", "rain"),
              ("bad.wav", "y"))]
    with pytest.warns(ShortAudioWarning, match="skipped 1 item.* 1 unreadable"):
        ds = CaptionedAudioDataset(items, sample_rate=16000, segment_seconds=1.0)
    assert len(ds) == 2
    item = ds[0]
    assert item["waveform"].shape == (1, 16000) and item["labels"] == ("dog", "barks")
    assert torch.equal(ds[(0, 3)]["waveform"], ds[(0, 3)]["waveform"])  # deterministic
    crops = {float(ds[(0, e)]["waveform"][0, 0]) for e in range(8)}
    assert len(crops) > 1  # a different crop per epoch
    padded = ds[1]["waveform"]
    assert torch.equal(padded[:, 9600:], torch.zeros(1, 6400))


def test_captioned_dataset_none_left(tmp_path):
    wav(tmp_path / "short.wav", seconds=0.1)
    with pytest.warns(ShortAudioWarning), pytest.raises(ShapeError, match="got none out of 1"):
        CaptionedAudioDataset([CaptionedAudio(tmp_path / "short.wav", "x")])


def test_tensor_dataset_and_collate():
    ds = TensorCaptionDataset(torch.randn(3, 1, 5), ["a dog", "the rain", "bell"],
                              [("dog",), (), ("bell", "metal")])
    batch = collate_captioned([ds[0], ds[(2, 7)], ds[1]])
    assert batch["waveform"].shape == (3, 1, 5)
    assert batch["caption"] == ["a dog", "bell", "the rain"]
    assert batch["labels"] == [("dog",), ("bell", "metal"), ("rain",)]
    with pytest.raises(ShapeError, match="one entry per clip"):
        TensorCaptionDataset(torch.randn(3, 1, 5), ["a"])
    with pytest.raises(ShapeError, match=r"expected a 3-d tensor \(clips, 1, time\)"):
        TensorCaptionDataset(torch.randn(3, 5), ["a", "b", "c"])


# -- validation recipe -------------------------------------------------------------------

def test_validation_recipe_round_trip_and_mixtures(tmp_path):
    rng = np.random.default_rng(1)
    for i, scale in enumerate((0.05, 0.9, 0.2)):
        sf.write(tmp_path / f"clip{i}.wav", (scale * rng.standard_normal(1600)).astype(np.float32),
                 16000, subtype="FLOAT")
    rows = [RecipeRow("clip0", "clip1", -7.0, "a dog, barking"),
            RecipeRow("clip1", "clip2", 12.5, "rain")]
    write_validation_recipe(tmp_path / "v.csv", rows)
    assert read_validation_recipe(tmp_path / "v.csv") == rows
    ds = ValidationMixtures(rows, tmp_path, sample_rate=16000)
    for i, row in enumerate(rows):
        s, _ = sf.read(tmp_path / f"{row.source}.wav", dtype="float32")
        n, _ = sf.read(tmp_path / f"{row.noise}.wav", dtype="float32")
        x, s_ref = np_challenge_mix(s.astype(np.float64), n.astype(np.float64), row.snr_db)
        np.testing.assert_allclose(ds[i]["mixture"][0].numpy(), x, atol=1e-6)
        np.testing.assert_allclose(ds[i]["target"][0].numpy(), s_ref, atol=1e-6)
        assert ds[i]["caption"] == row.caption and ds[i]["snr_db"] == row.snr_db
    assert np.max(np.abs(ds[1]["mixture"].numpy())) == pytest.approx(0.9, abs=1e-6)


def test_validation_recipe_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="recipe not found"):
        read_validation_recipe(tmp_path / "none.csv")
    (tmp_path / "a.csv").write_text("source,noise,snr,caption\nx,y,loud,z\n")
    with pytest.raises(TorchlassError, match="line 2 expected a number in the snr column"):
        read_validation_recipe(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text("source,noise,snr,caption\nx,y,3\n")
    with pytest.raises(TorchlassError, match="line 2 expected 4 fields"):
        read_validation_recipe(tmp_path / "b.csv")


def test_validation_noise_fitted_to_source_length(tmp_path):
    wav(tmp_path / "s.wav", seconds=0.5)
    wav(tmp_path / "n.wav", seconds=0.25, seed=1)
    item = ValidationMixtures([RecipeRow("s", "n", 0.0, "x")], tmp_path)[0]
    assert item["mixture"].shape == (1, 8000)
    assert torch.equal(item["mixture"][:, 4000:], item["target"][:, 4000:])


# -- synthetic collection ----------------------------------------------------------------

def test_synthetic_collection_deterministic_and_distinct():
    a = synthetic_collection(2, seed=4, sample_rate=8000, num_samples=4000)
    b = synthetic_collection(2, seed=4, sample_rate=8000, num_samples=4000)
    c = synthetic_collection(2, seed=5, sample_rate=8000, num_samples=4000)
    assert len(a) == 2 * len(SYNTHETIC_CAPTIONS) >= 16
    assert all(torch.equal(x.waveform, y.waveform) and x.caption == y.caption
               for x, y in zip(a, b, strict=True))
    assert not any(torch.equal(x.waveform, y.waveform) for x, y in zip(a, c, strict=True))
    for clip in a:
        assert clip.waveform.shape == (1, 4000) and clip.waveform.dtype == torch.float32
        assert torch.isfinite(clip.waveform).all()
        assert 0 < clip.waveform.abs().max() <= 0.9
        rms_db = 20 * torch.log10(clip.waveform.pow(2).mean().sqrt())
        assert -31 < rms_db < -17
        assert clip.caption in SYNTHETIC_CAPTIONS[clip.kind]


def test_synthetic_spectra_overlap():
    """Every kind has energy in the 0.5-3 kHz band, so no fixed filter isolates one kind."""
    clips = synthetic_collection(1, seed=0, sample_rate=16000, num_samples=16000)
    for clip in clips:
        power = np.abs(np.fft.rfft(np64(clip.waveform[0]))) ** 2
        f = np.fft.rfftfreq(16000, 1 / 16000)
        band = power[(f > 500) & (f < 3000)].sum() / power.sum()
        assert band > 0.02, clip.kind


def test_synthesize_errors():
    with pytest.raises(ValueRangeError, match=r"synthesize\(\): argument 'kind'"):
        synthesize("cat", seed=0)
    with pytest.raises(ValueRangeError, match="at least 8000 Hz"):
        synthesize("dog", seed=0, sample_rate=4000)
