"""The torchlass command line: help, errors, separate (WAV round trip), evaluate, train, demo."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from clap_standins import StandInClap
from helpers import write_noise_wav

from torchlass import __version__
from torchlass.cli import main
from torchlass.inference import load_separator
from torchlass.recipes import (
    CHECKPOINT_FORMAT,
    Trainer,
    apply_overrides,
    get_config,
    load_checkpoint,
    load_config,
)

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
    return write_noise_wav(path, seconds, rate, channels=channels, seed=seed, level=0.2)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def fails(capsys, argv, line):
    """``argv`` exits with status 1 and prints exactly ``line`` (one line) on stderr."""
    code, out, err = run(capsys, *argv)
    assert (code, out, err) == (1, "", line + "\n")


def fails_with_prefix(capsys, argv, prefix):
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == "" and err.startswith(prefix), err
    assert err.count("\n") == 1 and err.endswith("\n"), err


@pytest.mark.parametrize("command", ["demo", "train", "evaluate", "separate"])
def test_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: torchlass {command}") and "--" in text


def test_no_command_prints_help(capsys):
    code, out, err = run(capsys)
    assert code == 2 and err == "" and out.startswith("usage: torchlass [-h] [--version]")
    assert all(c in out for c in ("demo", "train", "evaluate", "separate"))


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out == f"torchlass {__version__}\n"


def python_m(*argv):
    return subprocess.run([sys.executable, "-m", "torchlass", *argv], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


def test_python_dash_m(tmp_path):
    result = python_m("--help")
    assert result.returncode == 0 and "train" in result.stdout and "evaluate" in result.stdout
    result = python_m("--version")
    assert (result.returncode, result.stdout) == (0, f"torchlass {__version__}\n")
    # a real process: a corrupt checkpoint is one line on stderr, no traceback
    wav(tmp_path / "in.wav", 0.2, 8000)
    (tmp_path / "broken.pt").write_bytes(b"PK\x03\x04 half a checkpoint")
    result = python_m("separate", "--checkpoint", str(tmp_path / "broken.pt"), "--input",
                      str(tmp_path / "in.wav"), "--query", "a dog", "--output",
                      str(tmp_path / "out.wav"))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(
        f"torchlass separate: CheckpointError: read_checkpoint(): cannot read "
        f"{str(tmp_path / 'broken.pt')!r}: damaged zip archive, e.g. truncated ("), result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "out.wav").exists()


def test_separate_round_trip(tmp_path, capsys, checkpoint):
    data = wav(tmp_path / "in.wav", 1.7, 8000)
    code, out, err = run(capsys, "separate", "--checkpoint", str(checkpoint), "--input",
                         str(tmp_path / "in.wav"), "--query", "a dog", "--output",
                         str(tmp_path / "dog.wav"), "--chunk-seconds", "5")
    assert (code, err) == (0, "")
    assert out == f"wrote {tmp_path / 'dog.wav'} (1.70 s, 8000 Hz, 1 channel(s))\n"
    got, rate = sf.read(tmp_path / "dog.wav", dtype="float32")
    assert rate == 8000 and got.shape == (data.shape[0],)
    separator, encoder = load_separator(checkpoint)
    with torch.no_grad():
        direct = separator(torch.from_numpy(data.T.copy())[None], encoder(["a dog"]))
    np.testing.assert_allclose(got, direct[0, 0, 0].numpy(), atol=1e-6)
    code, _, err = run(capsys, "separate", "--checkpoint", str(checkpoint), "--input",
                       str(tmp_path / "in.wav"), "--query", "a dog", "--output",
                       str(tmp_path / "dog2.wav"), "--residual", "--chunk-seconds", "5")
    assert (code, err) == (0, "")
    rest, _ = sf.read(tmp_path / "dog2_residual.wav", dtype="float32")
    np.testing.assert_allclose(rest, data[:, 0] - direct[0, 0, 0].numpy(), atol=1e-6)


def test_separate_long_input_in_chunks_and_resampling(tmp_path, capsys, checkpoint):
    data = wav(tmp_path / "in.wav", 2.5, 16000, channels=2)
    code, _, err = run(capsys, "separate", "--checkpoint", str(checkpoint), "--input",
                       str(tmp_path / "in.wav"), "--query", "rain", "--output",
                       str(tmp_path / "out.wav"), "--chunk-seconds", "0.5",
                       "--overlap-seconds", "0.1")
    assert (code, err) == (0, "")
    got, rate = sf.read(tmp_path / "out.wav", dtype="float32")
    assert rate == 16000 and got.shape == data.shape and np.isfinite(got).all()


class Foreign:
    """A pickled custom class: refused without being unpickled."""


def test_separate_checkpoint_errors(tmp_path, capsys, checkpoint):
    wav(tmp_path / "in.wav", 0.5, 8000)
    files = {"empty.pt": b"", "text.pt": b"not a checkpoint at all\n"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save({"model": Foreign()}, tmp_path / "foreign.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    reasons = {
        "none.pt": "read_checkpoint(): cannot read {path!r}: file not found",
        "empty.pt": "read_checkpoint(): cannot read {path!r}: the file is empty",
        "text.pt": "read_checkpoint(): cannot read {path!r}: not a checkpoint written by "
                   "torch.save",
        "foreign.pt": "read_checkpoint(): cannot read {path!r}: it holds objects other than "
                      "tensors and plain containers, which are not unpickled because that "
                      "could run code (Unsupported global: GLOBAL test_cli.Foreign)",
        "list.pt": "read_checkpoint(): cannot read {path!r}: expected a mapping at the top "
                   "level, got list",
        "other.pt": "load_separator(): {path!r} expected a torchlass training checkpoint "
                    f"(format {CHECKPOINT_FORMAT!r}) or the DCASE 2024 baseline's (keys "
                    "'state_dict', 'ss_model.*' or 'base.*'), got keys 'something'",
    }
    for name, reason in reasons.items():
        path = str(tmp_path / name)
        fails(capsys, ["separate", "--checkpoint", path, "--input", str(tmp_path / "in.wav"),
                       "--query", "x", "--output", str(tmp_path / "o.wav")],
              "torchlass separate: CheckpointError: " + reason.format(path=path))
    # a training checkpoint whose weights do not fit its own configuration
    state = torch.load(checkpoint, weights_only=True)
    state["config"]["model"]["widths"] = [4, 8]
    torch.save(state, tmp_path / "mismatch.pt")
    fails_with_prefix(capsys, ["separate", "--checkpoint", str(tmp_path / "mismatch.pt"),
                               "--input", str(tmp_path / "in.wav"), "--query", "x",
                               "--output", str(tmp_path / "o.wav")],
                      "torchlass separate: CheckpointError: load_separator(): the weights "
                      f"in {str(tmp_path / 'mismatch.pt')!r} do not fit the model: Error(s) in "
                      "loading state_dict for Separator: ")
    assert not (tmp_path / "o.wav").exists()


def test_separate_input_device_and_output_errors(tmp_path, capsys, checkpoint):
    hi, inp, out = tmp_path / "hi.wav", tmp_path / "in.wav", tmp_path / "o.wav"
    wav(hi, 0.5, 16000)
    wav(inp, 0.5, 8000)
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not a wav")
    (tmp_path / "folder.wav").mkdir()

    def separate(*, ckpt=checkpoint, input_=inp, output=out, query="a dog", extra=()):
        return ["separate", "--checkpoint", str(ckpt), "--input", str(input_), "--query",
                query, "--output", str(output), *extra]

    prefix = "torchlass separate: "
    fails(capsys, separate(input_=tmp_path / "none.wav"),
          prefix + "FileNotFoundError: separate_file(): audio file not found: "
          f"{str(tmp_path / 'none.wav')!r}")
    fails_with_prefix(capsys, separate(input_=tmp_path / "junk.wav"),
                      prefix + "AudioFileError: separate_file(): cannot read "
                      f"{str(tmp_path / 'junk.wav')!r}: ")
    fails(capsys, separate(query=" "),
          prefix + "TorchlassError: --query expected a description of the sound, got ''")
    fails(capsys, separate(extra=("--device", "gpu")),
          prefix + "ValueRangeError: --device expected cpu, cuda, cuda:N or mps, got 'gpu'")
    if not torch.cuda.is_available():
        fails(capsys, separate(extra=("--device", "cuda")),
              prefix + "ValueRangeError: --device is 'cuda' but CUDA is not available on this "
              f"machine (torch {torch.__version__}); use cpu")
    # outputs are checked first: a missing checkpoint would be reported otherwise
    missing = tmp_path / "no.pt"
    fails(capsys, separate(ckpt=missing, output=tmp_path / "o.mp3"),
          prefix + "TorchlassError: --output expected a file ending in .wav, got "
          f"{str(tmp_path / 'o.mp3')!r}")
    fails(capsys, separate(ckpt=missing, output=inp),
          prefix + f"TorchlassError: --output is the input file {str(inp)!r}: choose another "
          "path (the input would be overwritten)")
    fails(capsys, separate(ckpt=missing, output=tmp_path / "folder.wav"),
          prefix + "TorchlassError: --output expected a file, got the folder "
          f"{str(tmp_path / 'folder.wav')!r}")
    fails(capsys, separate(ckpt=missing, output=hi / "o.wav"),
          prefix + f"TorchlassError: --output cannot be written: {str(hi)!r} is not a "
          "writable folder")
    assert not out.exists()


def test_evaluate_command(tmp_path, capsys, checkpoint):
    for i in range(3):
        wav(tmp_path / f"c{i}.wav", 0.3, 8000, seed=i)
    (tmp_path / "v.csv").write_text("source,noise,snr,caption\nc0,c1,-3,a dog\nc1,c2,7,rain\n")
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(checkpoint), "--recipe",
                         str(tmp_path / "v.csv"), "--audio-dir", str(tmp_path), "--items-csv",
                         str(tmp_path / "items.csv"), "--json", str(tmp_path / "t.json"),
                         "--no-progress")
    assert (code, err) == (0, "")
    assert "SDRi" in out and "[-5, 0)" in out and "[5, 10)" in out
    assert len((tmp_path / "items.csv").read_text().splitlines()) == 3
    table = json.loads((tmp_path / "t.json").read_text())
    assert table["all"]["count"] == 2
    fails(capsys, ["evaluate", "--checkpoint", str(checkpoint), "--recipe",
                   str(tmp_path / "none.csv"), "--audio-dir", str(tmp_path)],
          "torchlass evaluate: FileNotFoundError: read_validation_recipe(): recipe not found: "
          f"{str(tmp_path / 'none.csv')!r}")
    fails(capsys, ["evaluate", "--checkpoint", str(checkpoint), "--recipe",
                   str(tmp_path / "v.csv"), "--audio-dir", str(tmp_path), "--json",
                   str(tmp_path / "c0.wav" / "t.json")],
          f"torchlass evaluate: TorchlassError: --json cannot be written: "
          f"{str(tmp_path / 'c0.wav')!r} is not a writable folder")
    fails(capsys, ["evaluate", "--checkpoint", str(tmp_path / "v.csv"), "--recipe",
                   str(tmp_path / "v.csv"), "--audio-dir", str(tmp_path)],
          "torchlass evaluate: CheckpointError: read_checkpoint(): cannot read "
          f"{str(tmp_path / 'v.csv')!r}: not a checkpoint written by torch.save")


def test_evaluate_and_separate_share_the_sample_rate_rule(tmp_path, capsys, checkpoint):
    for i in range(2):
        wav(tmp_path / f"h{i}.wav", 0.3, 16000, seed=i)
    (tmp_path / "v.csv").write_text("source,noise,snr,caption\nh0,h1,0,a dog\n")
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--recipe", str(tmp_path / "v.csv"),
            "--audio-dir", str(tmp_path), "--no-progress"]
    code, out, err = run(capsys, *argv)
    assert code == 0 and "SDRi" in out
    assert err == ("torchlass evaluate: resampling 2 file(s) to the model's 8000 Hz "
                   "(scipy.signal.resample_poly)\n")


class StandInSeparator(torch.nn.Module):
    """A one-source separator at 8 kHz: half the mixture (the loader is monkeypatched)."""

    sample_rate = 8000

    def forward(self, mixture, condition):
        return 0.5 * mixture[:, None]


@pytest.fixture
def recordings(tmp_path):
    (tmp_path / "rec").mkdir()
    for name, rate, channels in (("a.wav", 44100, 2), ("b.wav", 8000, 1)):
        wav(tmp_path / "rec" / name, 0.25, rate, channels=channels, seed=len(name) + rate)
    (tmp_path / "q.csv").write_text("file,caption\na.wav,a dog\nb.wav,rain\na.wav,speech\n")
    return tmp_path


def test_evaluate_real_recordings_with_clapscore(recordings, capsys, monkeypatch):
    import torchlass.inference

    loaded = {}

    def fake_load(checkpoint, *, tokenizer=None, clap_checkpoint=None, device="cpu"):
        loaded.update(checkpoint=checkpoint, tokenizer=tokenizer, device=device)
        return StandInSeparator(), StandInClap()

    monkeypatch.setattr(torchlass.inference, "load_separator", fake_load)
    t = recordings
    code, out, err = run(capsys, "evaluate", "--checkpoint", "model.ckpt", "--tokenizer", "tok",
                         "--mixtures", str(t / "rec"), "--captions", str(t / "q.csv"),
                         "--items-csv", str(t / "items.csv"), "--json", str(t / "t.json"),
                         "--no-progress")
    assert code == 0, err
    assert loaded == {"checkpoint": "model.ckpt", "tokenizer": "tok", "device": torch.device(
        "cpu")}
    assert err == ("torchlass evaluate: resampling 1 file(s) to the model's 8000 Hz "
                   "(scipy.signal.resample_poly)\n")
    assert "CLAPScore (cos)" in out and "n/a" in out and "not computed" not in out
    rows = list(csv.DictReader((t / "items.csv").open()))
    assert [r["source"] for r in rows] == ["a.wav", "b.wav", "a.wav"]
    assert all(r["sdr"] == "" and r["snr_db"] == "" for r in rows)
    for r in rows:  # estimate = mixture / 2: the stand-in CLAP's cosine sees the same clip
        est, mix = float(r["clapscore_cos_estimate"]), float(r["clapscore_cos_mixture"])
        assert float(r["clapscore_cos_improvement"]) == pytest.approx(est - mix, abs=1e-6)
    table = json.loads((t / "t.json").read_text())["all"]
    assert table["count"] == 3 and "sdr" not in table
    assert table["clapscore_cos_mixture"] == pytest.approx(
        np.mean([float(r["clapscore_cos_mixture"]) for r in rows]), abs=1e-6)
    code, out, _ = run(capsys, "evaluate", "--checkpoint", "m.ckpt", "--mixtures",
                       str(t / "rec"), "--captions", str(t / "q.csv"), "--clap-convention",
                       "percent", "--no-progress")
    assert code == 0 and "CLAPScore (percent)" in out


def test_evaluate_real_recordings_errors(recordings, capsys, checkpoint):
    t = recordings
    real = ["evaluate", "--checkpoint", str(checkpoint), "--mixtures", str(t / "rec"),
            "--captions", str(t / "q.csv"), "--no-progress"]
    fails(capsys, real,
          "torchlass evaluate: TorchlassError: --mixtures: recordings without references are "
          "scored by CLAPScore, which needs CLAP's audio tower, and the encoder loaded with "
          f"{str(checkpoint)!r} (HashedTextEncoder) has none: give a checkpoint holding "
          "CLAP's towers with --tokenizer, or a CLAP judge with --judge and --judge-tokenizer")
    fails(capsys, [*real, "--judge", "clap.ckpt"],
          "torchlass evaluate: TorchlassError: --judge and --judge-tokenizer go together: the "
          "CLAP judge is built from the checkpoint with its RoBERTa tokenizer folder")
    fails(capsys, [*real, "--recipe", "v.csv"],
          "torchlass evaluate: TorchlassError: --mixtures/--captions (real recordings) and "
          "--recipe/--audio-dir (synthetic mixtures) are two evaluations: give one pair")
    fails(capsys, real[:5],
          "torchlass evaluate: TorchlassError: --mixtures and --captions go together: the "
          "folder of recordings and the list of their queries")
    fails(capsys, ["evaluate", "--checkpoint", str(checkpoint)],
          "torchlass evaluate: TorchlassError: give --recipe and --audio-dir (synthetic "
          "mixtures with references) or --mixtures and --captions (real recordings, scored by "
          "CLAPScore)")
    (t / "q2.csv").write_text("file,caption\nnone.wav,rain\n")
    fails(capsys, [*real[:5], "--captions", str(t / "q2.csv")],
          "torchlass evaluate: FileNotFoundError: read_mixture_captions(): 1 of 1 audio files "
          f"listed in {str(t / 'q2.csv')!r} were not found (first: "
          f"{str(t / 'rec' / 'none.wav')!r}); check the audio folder")


def test_evaluate_real_recordings_with_a_clap_judge(recordings, capsys, checkpoint):
    """A separator trained on the hashed encoder, scored by a CLAP judge of its own file."""
    pytest.importorskip("transformers")
    from audio_tower_fixtures import write_clap_checkpoint
    from text_tower_fixtures import write_tokenizer

    from torchlass.query import load_clap_encoder

    t = recordings
    judge, tok = write_clap_checkpoint(t / "clap.ckpt"), write_tokenizer(t / "tok")
    code, out, err = run(capsys, "evaluate", "--checkpoint", str(checkpoint), "--mixtures",
                         str(t / "rec"), "--captions", str(t / "q.csv"), "--judge", str(judge),
                         "--judge-tokenizer", str(tok), "--items-csv", str(t / "items.csv"),
                         "--no-progress")
    assert code == 0, err
    assert "CLAPScore (cos)" in out
    row = list(csv.DictReader((t / "items.csv").open()))[1]  # b.wav: 8 kHz mono, as the model
    clap = load_clap_encoder(judge, tokenizer=tok)
    mixture = torch.from_numpy(sf.read(t / "rec" / "b.wav", dtype="float32")[0])[None]
    a = clap.embed_audio(mixture, 8000).double().numpy()[0]
    text = clap(["rain"]).double().numpy()[0]
    cos = a @ text / np.linalg.norm(a) / np.linalg.norm(text)
    assert float(row["clapscore_cos_mixture"]) == pytest.approx(cos, abs=1e-5)


def test_evaluate_recipe_adds_clap_rows_with_an_audio_tower(tmp_path, capsys, monkeypatch):
    import torchlass.inference

    monkeypatch.setattr(torchlass.inference, "load_separator",
                        lambda *a, **k: (StandInSeparator(), StandInClap()))
    for i in range(2):
        wav(tmp_path / f"c{i}.wav", 0.2, 8000, seed=i)
    (tmp_path / "v.csv").write_text("source,noise,snr,caption\nc0,c1,-3,a dog\n")
    code, out, err = run(capsys, "evaluate", "--checkpoint", "m.ckpt", "--recipe",
                         str(tmp_path / "v.csv"), "--audio-dir", str(tmp_path), "--items-csv",
                         str(tmp_path / "items.csv"), "--no-progress")
    assert (code, err) == (0, "")
    assert "SDRi by SNR" in out and "CLAPScore (cos)" in out
    (row,) = csv.DictReader((tmp_path / "items.csv").open())
    assert row["sdr"] != "" and row["clapscore_cos_estimate"] != ""


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
    assert (code, err) == (0, "")
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    code, _, err = run(capsys, *args, "--set", "train.steps=3", "--resume",
                       str(tmp_path / "run" / "checkpoint.pt"))
    assert (code, err) == (0, "")
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3
    code, out, _ = run(capsys, *args, "--print-config")
    (tmp_path / "c.toml").write_text(out)
    assert code == 0 and load_config(tmp_path / "c.toml").data.audio_dir == str(tmp_path)
    (tmp_path / "empty.pt").write_bytes(b"")
    fails(capsys, [*args, "--resume", str(tmp_path / "empty.pt")],
          "torchlass train: CheckpointError: read_checkpoint(): cannot read "
          f"{str(tmp_path / 'empty.pt')!r}: the file is empty")
    fails(capsys, [*args, "--device", "tpu"],
          "torchlass train: ValueRangeError: --device expected cpu, cuda, cuda:N or mps, "
          "got 'tpu'")
    fails(capsys, ["train", "--config", "baseline", "--set", "query.encoder=hashed"],
          "torchlass train: ValueRangeError: build_train_set(): argument 'config' expected "
          "data.train_lists to name at least one caption list (e.g. lists/clotho_dev.json), "
          "got ()")
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
    assert "CLAPScore: not computed (no --clap-checkpoint given)" in out
    assert "CLAPScore (" not in out
    assert results["clapscore"] == {"computed": False, "reason": "no --clap-checkpoint given"}


def test_demo_reports_clapscore_with_a_clap_model(tmp_path, capsys):
    pytest.importorskip("transformers")
    from audio_tower_fixtures import write_clap_checkpoint
    from text_tower_fixtures import write_tokenizer

    clap_file = write_clap_checkpoint(tmp_path / "clap.ckpt")  # a tiny CLAP, both towers
    tokenizer = write_tokenizer(tmp_path / "tok")
    code, out, err = run(capsys, "demo", "--quick", "--steps", "2", "--out",
                         str(tmp_path / "out"), "--no-progress", "--clap-checkpoint",
                         str(clap_file), "--tokenizer", str(tokenizer))
    assert code == 0, err
    assert "CLAPScore (cos)" in out and "not computed" not in out
    clap = json.loads((tmp_path / "out" / "results.json").read_text())["clapscore"]
    assert clap["convention"] == "cos"
    for column in ("trained", "untrained"):
        values = clap[column]
        assert set(values) == {"clapscore_cos_estimate", "clapscore_cos_mixture",
                               "clapscore_cos_improvement"}
        assert all(-1 <= v <= 1 for v in values.values())
        # the mixtures are the same for both models, so is their CLAPScore
    assert clap["trained"]["clapscore_cos_mixture"] == clap["untrained"]["clapscore_cos_mixture"]
    rows = list(csv.DictReader((tmp_path / "out" / "items.csv").open()))
    assert rows[0]["clapscore_cos_estimate"] != ""


def test_demo_clap_option_errors(tmp_path, capsys, monkeypatch):
    import torchlass.query

    fails(capsys, ["demo", "--quick", "--out", str(tmp_path), "--clap-checkpoint", "c.pt"],
          "torchlass demo: TorchlassError: --clap-checkpoint and --tokenizer go together: "
          "CLAP's towers are built from the checkpoint with the RoBERTa tokenizer folder")
    monkeypatch.setattr(torchlass.query, "load_clap_encoder",
                        lambda source, *, tokenizer: torchlass.query.HashedTextEncoder(),
                        raising=False)
    fails(capsys, ["demo", "--quick", "--out", str(tmp_path), "--clap-checkpoint", "c.pt",
                   "--tokenizer", "tok"],
          "torchlass demo: TorchlassError: --clap-checkpoint: 'c.pt' holds no CLAP audio "
          "tower, which CLAPScore needs")
    assert not (tmp_path / "results.json").exists()


def test_demo_rejects_bad_settings(tmp_path, capsys):
    fails(capsys, ["demo", "--steps", "0", "--out", str(tmp_path)],
          "torchlass demo: ValueRangeError: run_demo(): argument 'settings.steps' expected "
          "an int >= 1, got 0")


def test_one_loader_for_training_checkpoints_and_clap_files(tmp_path, checkpoint):
    """A training checkpoint of a CLAP-conditioned model gets CLAP on transformers from the
    file its configuration names (both towers); CLAP files for a hashed model are refused."""
    pytest.importorskip("transformers")
    from audio_tower_fixtures import write_clap_checkpoint
    from text_tower_fixtures import write_tokenizer

    from torchlass.data import TensorCaptionDataset
    from torchlass.errors import TorchlassError
    from torchlass.query import HashedTextEncoder, embeds_audio, load_clap_encoder

    clap_file, tok = write_clap_checkpoint(tmp_path / "clap.pt"), write_tokenizer(tmp_path / "t")
    cfg = apply_overrides(get_config("srpol_system1"), [
        *TINY, f"train.out_dir={tmp_path / 'run'}", "model.condition_size=8",
        "query.encoder=clap", f"query.clap_checkpoint={clap_file}"])
    data = TensorCaptionDataset(0.1 * torch.randn(4, 1, 800), ["a dog", "rain"] * 2)
    Trainer(cfg, train_set=data, encoder=HashedTextEncoder(dim=8), progress=False).fit()
    separator, encoder = load_separator(tmp_path / "run" / "checkpoint.pt", tokenizer=tok)
    assert embeds_audio(encoder) and not separator.training
    torch.testing.assert_close(encoder(["rain"]),
                               load_clap_encoder(clap_file, tokenizer=tok)(["rain"]))
    with pytest.raises(TorchlassError, match=r"^load_separator\(\): '.*checkpoint\.pt' was "
                       r"trained with the hashed text encoder, which needs no file: leave out "
                       r"'tokenizer' and 'clap_checkpoint'"):
        load_separator(checkpoint, tokenizer=tok)
