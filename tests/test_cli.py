"""The torchlass command line: help, errors, separate (WAV round trip), evaluate, train, demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from torchlass.cli import main
from torchlass.recipes import Trainer, apply_overrides, get_config, load_config
from torchlass.recipes.inference import load_for_inference

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.n_fft=64", "model.hop_length=32", "model.stem_width=2", "model.widths=2,4",
        "model.pools=2x2,2x2", "model.condition_size=16", "query.encoder=hashed",
        "model.sample_rate=8000", "data.batch_size=2", "data.num_workers=0",
        "data.segment_seconds=0.1", "train.steps=2", "train.val_every=0",
        "train.checkpoint_every=0", "optim.schedule=constant"]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from torchlass.data import TensorCaptionDataset

    out = tmp_path_factory.mktemp("ckpt")
    cfg = apply_overrides(get_config("srpol_system1"), [*TINY, f"train.out_dir={out}"])
    data = TensorCaptionDataset(0.1 * torch.randn(4, 1, 800), ["a dog", "rain"] * 2)
    Trainer(cfg, train_set=data, progress=False).fit()
    return out / "checkpoint.pt"


def wav(path, seconds, rate, seed=0, channels=1):
    rng = np.random.default_rng(seed)
    data = (0.2 * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, subtype="FLOAT")
    return data


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("command", ["demo", "train", "evaluate", "separate"])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: torchlass {command}") and "--" in text


def test_no_command_prints_help(capsys):
    code, out, _ = run(capsys)
    assert code == 2 and "demo" in out and "separate" in out


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "torchlass", "--help"], capture_output=True,
                            text=True, cwd=ROOT, check=True)
    assert "train" in result.stdout and "evaluate" in result.stdout


def test_separate_round_trip(tmp_path, capsys, checkpoint):
    data = wav(tmp_path / "in.wav", 1.7, 8000)
    code, out, err = run(capsys, "separate", "--checkpoint", str(checkpoint), "--input",
                         str(tmp_path / "in.wav"), "--query", "a dog", "--output",
                         str(tmp_path / "dog.wav"), "--chunk-seconds", "5")
    assert code == 0, err
    assert "wrote" in out
    got, rate = sf.read(tmp_path / "dog.wav", dtype="float32")
    assert rate == 8000 and got.shape == (data.shape[0],)
    loaded = load_for_inference(checkpoint)
    with torch.no_grad():
        direct = loaded.separator(torch.from_numpy(data.T.copy())[None],
                                  loaded.encoder(["a dog"]))
    np.testing.assert_allclose(got, direct[0, 0].numpy(), atol=1e-6)
    code, _, err = run(capsys, "separate", "--checkpoint", str(checkpoint), "--input",
                       str(tmp_path / "in.wav"), "--query", "a dog", "--output",
                       str(tmp_path / "dog2.wav"), "--residual", "--chunk-seconds", "5")
    assert code == 0, err
    rest, _ = sf.read(tmp_path / "dog2_residual.wav", dtype="float32")
    np.testing.assert_allclose(rest, data[:, 0] - direct[0, 0].numpy(), atol=1e-6)


def test_separate_long_input_in_chunks_and_resampling(tmp_path, capsys, checkpoint):
    data = wav(tmp_path / "in.wav", 2.5, 16000, channels=2)
    code, _, err = run(capsys, "separate", "--checkpoint", str(checkpoint), "--input",
                       str(tmp_path / "in.wav"), "--query", "rain", "--output",
                       str(tmp_path / "out.wav"), "--chunk-seconds", "0.5",
                       "--overlap-seconds", "0.1")
    assert code == 0, err
    got, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 16000 and got.shape == data.shape and np.isfinite(got).all()


def test_separate_errors(tmp_path, capsys, checkpoint):
    wav(tmp_path / "hi.wav", 0.5, 16000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not a wav")
    base = ["separate", "--checkpoint", str(checkpoint), "--query", "a dog", "--output",
            str(tmp_path / "o.wav"), "--input"]
    code, _, err = run(capsys, *base, str(tmp_path / "none.wav"))
    assert code == 1 and "audio file not found" in err
    code, _, err = run(capsys, *base, str(tmp_path / "junk.wav"))
    assert code == 1 and "cannot read" in err
    code, _, err = run(capsys, "separate", "--checkpoint", str(tmp_path / "no.pt"), "--query",
                       "x", "--output", "o.wav", "--input", str(tmp_path / "hi.wav"))
    assert code == 1 and "checkpoint not found" in err
    code, _, err = run(capsys, *base[:3], "--query", " ", "--output", "o.wav", "--input",
                       str(tmp_path / "hi.wav"))
    assert code == 1 and "--query expected a description" in err
    torch.save({"something": 1}, tmp_path / "other.pt")
    code, _, err = run(capsys, "separate", "--checkpoint", str(tmp_path / "other.pt"),
                       "--query", "x", "--output", "o.wav", "--input", str(tmp_path / "hi.wav"))
    assert code == 1 and "error" in err
    assert not (tmp_path / "o.wav").exists()


def test_evaluate_command(tmp_path, capsys, checkpoint):
    for i in range(3):
        wav(tmp_path / f"c{i}.wav", 0.3, 8000, seed=i)
    (tmp_path / "v.csv").write_text("source,noise,snr,caption\nc0,c1,-3,a dog\nc1,c2,7,rain\n")
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(checkpoint), "--recipe",
                         str(tmp_path / "v.csv"), "--audio-dir", str(tmp_path), "--items-csv",
                         str(tmp_path / "items.csv"), "--json", str(tmp_path / "t.json"),
                         "--no-progress")
    assert code == 0, err
    assert "SDRi" in out and "[-5, 0)" in out and "[5, 10)" in out
    assert len((tmp_path / "items.csv").read_text().splitlines()) == 3
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["all"]["count"] == 2
    code, _, err = run(capsys, "evaluate", "--checkpoint", str(checkpoint), "--recipe",
                       str(tmp_path / "none.csv"), "--audio-dir", str(tmp_path))
    assert code == 1 and "recipe not found" in err


def test_train_command(tmp_path, capsys):
    for i in range(4):
        wav(tmp_path / f"t{i}.wav", 0.6, 8000, seed=i)
    (tmp_path / "list.json").write_text(json.dumps({"data": [
        {"wav": f"t{i}.wav", "caption": c} for i, c in enumerate(["a dog", "rain", "bells",
                                                                   "a car"])]}))
    args = ["train", "--config", "srpol_system1", "--no-progress"]
    for item in [*TINY, f"train.out_dir={tmp_path / 'run'}",
                 f"data.train_lists={tmp_path / 'list.json'}", f"data.audio_dir={tmp_path}"]:
        args += ["--set", item]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    code, out, _ = run(capsys, *args, "--print-config")
    (tmp_path / "c.toml").write_text(out)
    assert code == 0 and load_config(tmp_path / "c.toml").data.audio_dir == str(tmp_path)
    code, _, err = run(capsys, "train", "--config", "baseline", "--set", "query.encoder=hashed")
    assert code == 1 and "no training data" in err
    code, out, _ = run(capsys, "train", "--list-configs")
    assert code == 0 and "srpol_system4" in out and "complex_ratio_mask" in out


def test_demo_quick(tmp_path, capsys):
    code, out, err = run(capsys, "demo", "--quick", "--out", str(tmp_path), "--no-progress")
    assert code == 0, err
    results = json.loads((tmp_path / "results.json").read_text())
    for column in ("trained", "untrained"):
        assert set(results[column]) == {"sdr", "sdri", "si_sdr"}
        assert all(np.isfinite(v) for v in results[column].values())
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "spectrograms.png").is_file()
    assert (tmp_path / "items.csv").is_file()
    assert (tmp_path / "heldout" / "validation.csv").is_file()
    assert len(list((tmp_path / "audio").glob("*_estimate.wav"))) >= 1
    assert "SDRi" in out and "untrained" in out and "trained" in out


def test_demo_rejects_bad_settings(tmp_path, capsys):
    code, _, err = run(capsys, "demo", "--steps", "0", "--out", str(tmp_path))
    assert code == 1 and "'settings.steps' expected an int >= 1, got 0" in err
