"""torchlass.recipes.datasets: the data a configuration names, as Trainer users build it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from train_setup import tiny_config

from torchlass.data import CaptionedAudioDataset, ValidationMixtures
from torchlass.errors import ValueRangeError
from torchlass.recipes import Trainer, build_train_set, build_validation_set

RATE = 8000


def clip(path, seconds, seed):
    data = (0.1 * np.random.default_rng(seed).standard_normal(round(seconds * RATE)))
    sf.write(path, data.astype(np.float32), RATE, subtype="FLOAT")
    return data.astype(np.float32)


def config(tmp_path, *extra):
    return tiny_config(tmp_path / "run", "data.segment_seconds=1.0", "data.min_seconds=0.1",
                       *extra)


def test_dcase_json_lists_are_concatenated_and_read_at_the_model_rate(tmp_path):
    clips = {f"c{i}.wav": clip(tmp_path / f"c{i}.wav", 0.3 + 0.1 * i, i) for i in range(3)}
    (tmp_path / "a.json").write_text(json.dumps({"data": [
        {"wav": "c0.wav", "caption": "a dog"}, {"wav": "c1.wav", "caption": "rain"}]}))
    (tmp_path / "b.json").write_text(json.dumps({"data": [{"wav": "c2.wav",
                                                           "caption": "a bell"}]}))
    cfg = config(tmp_path, f"data.train_lists={tmp_path / 'a.json'},{tmp_path / 'b.json'}",
                 f"data.audio_dir={tmp_path}")
    data = build_train_set(cfg)
    assert isinstance(data, CaptionedAudioDataset) and len(data) == 3
    assert [data[i]["caption"] for i in range(3)] == ["a dog", "rain", "a bell"]
    for i, expected in enumerate(clips.values()):  # shorter than the segment: end-padded
        waveform = data[i]["waveform"]
        assert waveform.shape == (1, RATE)
        np.testing.assert_array_equal(waveform[0, :expected.size].numpy(), expected)
        assert not waveform[0, expected.size:].any()


def test_clotho_and_audiocaps_csv(tmp_path):
    clip(tmp_path / "x.wav", 0.5, 0)
    clip(tmp_path / "yt1.wav", 0.5, 1)
    (tmp_path / "clotho.csv").write_text(
        "file_name,caption_1,caption_2\nx.wav,a dog barks,a dog barking loudly\n")
    cfg = config(tmp_path, "data.list_format=clotho_csv", f"data.audio_dir={tmp_path}",
                 f"data.train_lists={tmp_path / 'clotho.csv'}")
    data = build_train_set(cfg)
    assert [data[i]["caption"] for i in range(len(data))] == ["a dog barks",
                                                               "a dog barking loudly"]
    (tmp_path / "ac.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n7,yt1,30,rain on a roof\n")
    cfg = config(tmp_path, "data.list_format=audiocaps_csv", f"data.audio_dir={tmp_path}",
                 f"data.train_lists={tmp_path / 'ac.csv'}")
    assert [item["caption"] for item in build_train_set(cfg)] == ["rain on a roof"]


@pytest.mark.parametrize(("extra", "message"), [
    (("data.train_lists=",),
     "build_train_set(): argument 'config' expected data.train_lists to name at least "
     "one caption list (e.g. lists/clotho_dev.json), got ()"),
    (("data.train_lists=l.json", "data.list_format=tsv"),
     "build_train_set(): argument 'config.data.list_format' expected one of 'dcase_json', "
     "'clotho_csv', 'audiocaps_csv', got 'tsv'"),
    (("data.train_lists=l.csv", "data.list_format=clotho_csv"),
     "build_train_set(): argument 'config' expected data.audio_dir (the folder of the audio) "
     "with data.list_format='clotho_csv', got ''"),
])
def test_train_set_errors(tmp_path, extra, message):
    with pytest.raises(ValueRangeError) as err:
        build_train_set(config(tmp_path, *extra))
    assert str(err.value) == message


def test_validation_set_and_a_trainer_built_from_the_config(tmp_path):
    for i in range(4):
        clip(tmp_path / f"v{i}.wav", 0.4, 10 + i)
    (tmp_path / "list.json").write_text(json.dumps({"data": [
        {"wav": f"v{i}.wav", "caption": c} for i, c in enumerate(["a dog", "rain", "a bell",
                                                                   "a car"])]}))
    (tmp_path / "recipe.csv").write_text("source,noise,snr,caption\nv0,v1,5,a dog\n"
                                         "v2,v3,-5,a bell\n")
    cfg = config(tmp_path, f"data.train_lists={tmp_path / 'list.json'}",
                 f"data.audio_dir={tmp_path}", f"data.validation_recipe={tmp_path / 'recipe.csv'}",
                 f"data.validation_audio_dir={tmp_path}", "data.segment_seconds=0.1",
                 "train.steps=2", "train.val_every=2")
    assert build_validation_set(config(tmp_path)) is None
    validation = build_validation_set(cfg)
    assert isinstance(validation, ValidationMixtures) and len(validation) == 2
    assert validation.sample_rate == RATE and validation[1]["snr_db"] == -5.0
    trainer = Trainer(cfg, train_set=build_train_set(cfg), validation_set=validation,
                      progress=False)
    rows = trainer.fit()
    assert rows[-1]["step"] == 2 and np.isfinite(rows[-1]["val_sdri"])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
