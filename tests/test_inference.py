"""Separating real files: block-wise resampling, streaming, channels, formats, folders, errors.

References are whole-file computations: ``scipy.signal.resample_poly`` on the whole signal
and, for real networks, :meth:`Separator.separate` on the whole (resampled) mixture.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.signal import resample_poly

from tests.test_docs import run_page
from torchlass import Separator
from torchlass.data.audio import AudioFileError
from torchlass.errors import ShapeError, TorchlassError, ValueRangeError
from torchlass.inference import (
    BlockResampler,
    ForwardReader,
    expand_inputs,
    output_name,
    separate_file,
    separate_files,
)
from torchlass.query import HashedTextEncoder

RATES = [(44100, 16000), (16000, 44100), (48000, 32000), (22050, 16000), (32000, 44100)]


class PointWise(torch.nn.Module):
    """A stand-in separator: a point-wise non-linearity scaled by the query's first entry.

    Point-wise, so chunking cannot change it and any seam comes from the streaming.
    """

    channels = 1
    chunk_align = 160

    def __init__(self, sample_rate=16000, n_fft=64):
        super().__init__()
        self.sample_rate = sample_rate
        self.stft = torch.nn.Module()
        self.stft.n_fft = n_fft
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x, c):
        self.calls.append(tuple(x.shape))
        return torch.tanh(3 * x) * c[:, :1, None]


def write(path, seconds, rate, channels=1, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    data = (0.3 * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, **kwargs)
    return sf.read(path, dtype="float32", always_2d=True)[0]  # what the codec kept


def tiny_separator(**options):
    torch.manual_seed(0)
    options = {"condition_size": 16, **options}
    sep = Separator.srpol_system1(n_fft=64, hop_length=16, stem_width=2,
                                  widths=(2, 4), pools=((2, 2), (2, 2)), sample_rate=8000,
                                  **options)
    return sep.eval()


@pytest.mark.parametrize(("orig", "new"), RATES)
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, 400), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_block_resampler_joins_to_the_whole_file_result(orig, new, cuts, seed):
    x = np.random.default_rng(seed).standard_normal((2, 1500))
    whole = resample_poly(x, new // np.gcd(orig, new), orig // np.gcd(orig, new), axis=-1)
    r = BlockResampler(orig, new)
    assert r.output_length(x.shape[-1]) == whole.shape[-1]
    bounds = sorted({0, whole.shape[-1], *(c % whole.shape[-1] for c in np.cumsum(cuts))})
    padded = np.pad(x, ((0, 0), (5000, 5000)))  # zeros outside, as resample_poly assumes
    parts = []
    for m0, m1 in itertools.pairwise(bounds):
        n0, n1 = r.input_span(m0, m1)
        assert n0 % r.down == 0
        parts.append(r(padded[:, 5000 + n0:5000 + n1], n0, m0, m1))
    np.testing.assert_allclose(np.concatenate(parts, axis=-1), whole, atol=1e-12)


def test_forward_reader():
    data = np.arange(20, dtype=np.float32).reshape(10, 2)
    pos = [0]

    def read(n):
        pos[0] += n
        return data[pos[0] - n:pos[0]]

    reader = ForwardReader(2, 10, read)
    np.testing.assert_array_equal(reader.get(-2, 3), [[0, 0, 0, 2, 4], [0, 0, 1, 3, 5]])
    np.testing.assert_array_equal(reader.get(8, 12)[0], [16, 18, 0, 0])
    with pytest.raises(ValueError, match="frame 1 was already dropped"):
        reader.get(1, 2)
    short = ForwardReader(1, 10, lambda n: np.zeros((3, 1)))
    with pytest.raises(EOFError, match="the signal ended after 3 of 10 frames"):
        short.get(0, 5)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (16000, 3), (48000, 1)])
def test_streamed_equals_whole_file_and_residual_keeps_the_rest(tmp_path, rate, channels):
    x = write(tmp_path / "in.wav", 2.3, rate, channels, subtype="FLOAT").T.astype(np.float64)
    model = PointWise()
    condition = torch.tensor([[0.5], [2.0]])
    done = separate_file(model, tmp_path / "in.wav", ["quiet", "loud"], condition=condition,
                         out_dir=tmp_path / "out", residual=True, chunk_seconds=0.5,
                         overlap_seconds=0.1)
    assert len(model.calls) > 3 and {c[0] for c in model.calls} == {2 * channels}
    g = np.gcd(rate, 16000)
    at_model = resample_poly(x, 16000 // g, rate // g, axis=-1)
    for k, scale in enumerate((0.5, 2.0)):
        expected = resample_poly(np.tanh(3 * at_model) * scale, rate // g, 16000 // g,
                                 axis=-1)[:, :x.shape[-1]]
        got, got_rate = sf.read(done.targets[k], always_2d=True)
        assert got_rate == rate and got.shape == x.T.shape
        assert sf.info(str(done.targets[k])).subtype == "FLOAT"
        np.testing.assert_allclose(got.T, expected, atol=2e-6 * scale)
        rest, _ = sf.read(done.residuals[k], always_2d=True)
        np.testing.assert_allclose(rest.T, x - expected, atol=2e-6 * scale)
    assert done.targets[0].name == "in_quiet.wav"
    assert done.residuals[1].name == "in_loud_residual.wav"
    assert not list((tmp_path / "out").glob("*.part"))


def test_content_above_the_models_nyquist_stays_in_the_residual(tmp_path):
    rate, t = 44100, np.arange(44100) / 44100
    low, high = 0.3 * np.sin(2 * np.pi * 440 * t), 0.3 * np.sin(2 * np.pi * 12000 * t)
    sf.write(tmp_path / "mix.wav", (low + high).astype(np.float32), rate, subtype="FLOAT")

    class Identity(PointWise):
        def forward(self, x, c):
            return x

    done = separate_file(Identity(), tmp_path / "mix.wav", ["all"], condition=torch.ones(1, 1),
                         out_dir=tmp_path, residual=True)
    estimate, _ = sf.read(done.targets[0])
    rest, _ = sf.read(done.residuals[0])
    middle = slice(2000, -2000)  # away from the zero-padded edges of the resampler
    np.testing.assert_allclose(estimate[middle], low[middle], atol=1e-2)
    np.testing.assert_allclose(rest[middle], high[middle], atol=1e-2)


@pytest.mark.parametrize("channels", [1, 2])
def test_real_network_streamed_equals_separate_on_the_whole_file(tmp_path, channels):
    sep = tiny_separator()
    x = write(tmp_path / "in.wav", 1.9, 8000, channels, subtype="FLOAT").T
    encoder = HashedTextEncoder(dim=16)
    done = separate_file(sep, tmp_path / "in.wav", ["a dog", "rain"], encoder,
                         out_dir=tmp_path, chunk_seconds=0.5, overlap_seconds=0.1,
                         batch_size=3)
    condition = encoder(["a dog", "rain"])
    with torch.no_grad():
        for c in range(channels):
            whole = sep.separate(torch.from_numpy(x[c:c + 1]), condition, chunk_seconds=0.5,
                                 overlap_seconds=0.1)
            for k in range(2):
                got, _ = sf.read(done.targets[k], always_2d=True)
                np.testing.assert_allclose(got[:, c], whole[k, 0, 0].numpy(), atol=1e-5)


def test_multichannel_and_multisource_models(tmp_path):
    write(tmp_path / "st.wav", 0.6, 8000, 2, subtype="FLOAT")
    stereo = tiny_separator(channels=2, num_sources=2)
    encoder = HashedTextEncoder(dim=16)
    done = separate_file(stereo, tmp_path / "st.wav", ["a dog"], encoder, out_dir=tmp_path)
    x = torch.from_numpy(sf.read(tmp_path / "st.wav", dtype="float32")[0].T.copy())
    with torch.no_grad():
        first = stereo(x[None], encoder(["a dog"]))[0, 0]  # (sources, channels, time)
    np.testing.assert_allclose(sf.read(done.targets[0])[0].T, first.numpy(), atol=1e-5)
    write(tmp_path / "three.wav", 0.6, 8000, 3)
    with pytest.raises(ShapeError, match=r"has 3 channel\(s\), the separator takes 1 or 2"):
        separate_file(stereo, tmp_path / "three.wav", ["a dog"], encoder, out_dir=tmp_path)


@pytest.mark.parametrize("fmt", ["FLAC", "OGG"])
def test_flac_and_ogg_inputs(tmp_path, fmt):
    path = tmp_path / f"in.{fmt.lower()}"
    x = write(path, 0.7, 22050, 2, format=fmt)
    done = separate_file(PointWise(), path, ["a"], condition=torch.ones(1, 1),
                         out_dir=tmp_path, residual=True)
    got, rate = sf.read(done.targets[0])
    rest, _ = sf.read(done.residuals[0])
    assert rate == 22050 and got.shape == x.shape
    np.testing.assert_allclose(got + rest, x, atol=1e-6)  # residual: the mixture as read


def test_bfloat16_is_close_to_float32(tmp_path):
    sep = tiny_separator()
    write(tmp_path / "in.wav", 0.8, 8000, subtype="FLOAT")
    encoder = HashedTextEncoder(dim=16)
    f32 = separate_file(sep, tmp_path / "in.wav", ["a dog"], encoder, out_dir=tmp_path / "a")
    b16 = separate_file(sep, tmp_path / "in.wav", ["a dog"], encoder, out_dir=tmp_path / "b",
                        dtype="bfloat16")
    a, b = sf.read(f32.targets[0])[0], sf.read(b16.targets[0])[0]
    assert np.isfinite(b).all() and not np.array_equal(a, b)
    assert np.linalg.norm(a - b) < 0.1 * np.linalg.norm(a)


def test_bad_files_raise_one_line_errors_and_leave_nothing(tmp_path):
    model, c = PointWise(n_fft=1024), torch.ones(1, 1)

    def run(path):
        return separate_file(model, path, ["a"], condition=c, out_dir=tmp_path / "out")

    with pytest.raises(FileNotFoundError, match=r"audio file not found: .*none\.wav"):
        run(tmp_path / "none.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF....not a wav")
    with pytest.raises(AudioFileError, match=r"cannot read .*junk\.wav"):
        run(tmp_path / "junk.wav")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 16000)
    with pytest.raises(ShapeError, match=r"empty\.wav' has no samples"):
        run(tmp_path / "empty.wav")
    write(tmp_path / "short.wav", 0.05, 44100)
    with pytest.raises(ShapeError, match=r"too short: 800 samples at 16000 Hz, fewer than one "
                                         r"STFT frame \(1024 samples, 0\.064 s\)"):
        run(tmp_path / "short.wav")
    write(tmp_path / "ok.wav", 0.5, 16000)
    with pytest.raises(ValueRangeError, match="'dtype' expected one of"):
        separate_file(model, tmp_path / "ok.wav", ["a"], condition=c, dtype="float16")
    with pytest.raises(ValueRangeError, match="'overlap' expected an int"):
        separate_file(model, tmp_path / "ok.wav", ["a"], condition=c, overlap_seconds=9)
    with pytest.raises(TorchlassError, match="'encoder' is needed without 'condition'"):
        separate_file(model, tmp_path / "ok.wav", ["a"])
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_output_names_and_input_expansion(tmp_path):
    assert output_name("x/Rain day.flac", "Rain, on a ROOF") == "Rain day_rain_on_a_roof.wav"
    assert output_name("a.wav", "!!!") == "a_query.wav"
    folder = tmp_path / "rec"
    folder.mkdir()
    for name in ("b.wav", "a.flac", "notes.txt"):
        (folder / name).write_bytes(b"")
    (folder / "sub").mkdir()
    assert expand_inputs([folder]) == [folder / "a.flac", folder / "b.wav"]
    assert expand_inputs([str(folder / "*.wav"), folder / "b.wav"]) == [folder / "b.wav"]
    assert expand_inputs([str(folder / "*.ogg")]) == []


def test_separate_files_embeds_once_and_counts_failures(tmp_path, capsys):
    folder = tmp_path / "rec"
    folder.mkdir()
    for i in range(3):
        write(folder / f"c{i}.wav", 0.4 + 0.1 * i, [8000, 16000, 44100][i], i + 1)
    (folder / "broken.wav").write_bytes(b"RIFF")
    (tmp_path / "other").mkdir()
    write(tmp_path / "other" / "c0.wav", 0.3, 8000)  # same output names as rec/c0.wav

    class Counting(HashedTextEncoder):
        calls = 0

        def __call__(self, captions):
            Counting.calls += 1
            return super().__call__(captions)

    summary = separate_files(tiny_separator(), [folder, str(tmp_path / "other" / "*.wav")],
                             ["a dog", "rain"], Counting(dim=16), out_dir=tmp_path / "out",
                             residual=True, progress=True)
    assert Counting.calls == 1
    assert [d.input.name for d in summary.done] == ["c0.wav", "c1.wav", "c2.wav"]
    assert [(p.name, "cannot read" in why) for p, why in summary.failed[:1]] == [
        ("broken.wav", True)]
    assert "would overwrite those of" in summary.failed[1][1]
    assert len(list((tmp_path / "out").iterdir())) == 12  # 3 files x 2 queries x 2
    for d in summary.done:
        info = sf.info(str(d.targets[1]))
        assert (info.samplerate, info.channels) == (d.sample_rate, d.channels)
    assert "s audio" in capsys.readouterr().err  # the progress bar
    with pytest.raises(TorchlassError, match="expected at least one file"):
        separate_files(tiny_separator(), [str(folder / "*.mp3")], ["a"], HashedTextEncoder(16))


# --- a published checkpoint with test weights: the command line and the guide -------------


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The DCASE baseline's one-file layout with test weights (ResUNet30 + a tiny CLAP, text
    tower with 12 heads and HTSAT audio tower, under ``query_encoder.model.``), a tokenizer
    folder and a 44.1 kHz stereo file."""
    pytest.importorskip("transformers")
    from audio_tower_fixtures import write_clap_checkpoint
    from text_tower_fixtures import write_tokenizer

    from torchlass.checkpoints import export_dcase2024_baseline

    root = tmp_path_factory.mktemp("published")
    torch.manual_seed(0)
    separator = export_dcase2024_baseline(Separator.dcase2024_baseline())["state_dict"]
    write_clap_checkpoint(root / "dcase2024_baseline.ckpt", dim=512, extra=separator)
    write_tokenizer(root / "roberta-base")
    (root / "recordings").mkdir()
    write(root / "recordings" / "street.wav", 0.3, 44100, 2, subtype="FLOAT")
    return root


@pytest.mark.slow
def test_guide_and_query_page_run_with_test_weights(published, monkeypatch, capsys):
    monkeypatch.chdir(published)
    run_page("docs/guides/separate_files.md")
    assert capsys.readouterr().out.splitlines() == [
        "street.wav 44100 2 ['street_a_dog_barking.wav', 'street_speech.wav']",
        "0 failed",
        "street_a_dog_barking.wav street_a_dog_barking_residual.wav",
        "2 ['take2_speech.wav', 'take2_audio_street.wav', 'take2_speech_2.wav']",
        "44100 True True",
    ]
    run_page("docs/api/query.md")
    assert capsys.readouterr().out.splitlines() == ["(2, 512)"]
    run_page("docs/guides/queries.md")
    assert capsys.readouterr().out.splitlines() == [
        "(2, 512) 44100 2", "(2, 1, 1, 4800)", "(1, 1, 1, 4800) True", "(1,) True True"]


def cli(capsys, *argv):
    from torchlass.cli import main

    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.slow
def test_cli_one_checkpoint_file_with_a_tokenizer(published, tmp_path, capsys):
    ckpt, tok = published / "dcase2024_baseline.ckpt", published / "roberta-base"
    code, out, err = cli(capsys, "separate", "--checkpoint", ckpt, "--tokenizer", tok,
                         "--query", "a dog barking", "--query", "speech", "--input",
                         published / "recordings", tmp_path / "none.wav", "--residual",
                         "--out-dir", tmp_path / "out", "--no-progress")
    assert code == 1
    assert out.strip() == f"separated 1 of 2 file(s) into {tmp_path / 'out'}; 1 failed"
    assert err.splitlines() == [f"torchlass separate: error: {tmp_path / 'none.wav'}: "
                                f"separate_file(): audio file not found: "
                                f"'{tmp_path / 'none.wav'}'"]
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["street_a_dog_barking.wav", "street_a_dog_barking_residual.wav",
                     "street_speech.wav", "street_speech_residual.wav"]
    mix, rate = sf.read(published / "recordings" / "street.wav")
    dog, dog_rate = sf.read(tmp_path / "out" / "street_a_dog_barking.wav")
    rest, _ = sf.read(tmp_path / "out" / "street_a_dog_barking_residual.wav")
    assert dog_rate == rate and dog.shape == mix.shape and np.abs(dog).max() > 0
    np.testing.assert_allclose(dog + rest, mix, atol=1e-6)
    code, out, err = cli(capsys, "separate", "--checkpoint", ckpt, "--tokenizer", tok,
                         "--query", "rain", "--input", published / "recordings" / "street.wav",
                         "--output", tmp_path / "rain.wav", "--batch-size", "1")
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'rain.wav'} (0.30 s, 44100 Hz, 2 channel(s))")


@pytest.mark.slow
def test_cli_bad_checkpoints_and_tokenizers_are_one_line_errors(published, tmp_path, capsys):
    ckpt, tok = published / "dcase2024_baseline.ckpt", published / "roberta-base"
    wav = published / "recordings" / "street.wav"
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.ckpt").write_bytes(b"\x80\x02not a checkpoint")
    state = torch.load(ckpt, weights_only=True)["state_dict"]  # the separator, no CLAP
    torch.save({"state_dict": {k: v for k, v in state.items() if k.startswith("ss_model.")}},
               tmp_path / "other.ckpt")
    cases = [
        (["--checkpoint", ckpt, "--tokenizer", tmp_path / "empty"],
         "has no vocab.json and no merges.txt"),
        (["--checkpoint", tmp_path / "junk.ckpt", "--tokenizer", tok],
         "not a checkpoint written by torch.save"),
        (["--checkpoint", tmp_path / "junk.ckpt"], "not a checkpoint written by torch.save"),
        (["--checkpoint", tmp_path / "other.ckpt", "--tokenizer", tok],
         "expected one CLAP text tower"),
        (["--checkpoint", ckpt, "--tokenizer", tok, "--output", tmp_path / "x.wav",
          "--query", "b"], "--output names one file"),
        (["--checkpoint", ckpt, "--tokenizer", tok, "--chunk-seconds", "0.3",
          "--overlap-seconds", "0.1"],
         "separate_files(): argument 'align' expected at most"),
    ]
    # a training checkpoint saves numpy's RNG state: not tensors only
    torch.save({"rng": np.random.get_state()}, tmp_path / "training.pt")  # noqa: NPY002
    cases.append((["--checkpoint", tmp_path / "training.pt", "--tokenizer", tok],
                  "it holds objects other than tensors and plain containers"))
    for options, message in cases:
        code, _, err = cli(capsys, "separate", "--input", wav, "--query", "a", *options)
        assert code == 1 and len(err.splitlines()) == 1 and message in err, err
        assert err.startswith("torchlass separate: ")


@pytest.mark.slow
def test_text_tower_from_a_laion_checkpoint_next_to_the_separator(published, tmp_path):
    from text_tower_fixtures import tower_state

    from torchlass.inference import load_separator

    torch.save({"state_dict": {f"module.{k}": v for k, v in
                               tower_state(79, seed=3, dim=512, hidden=24).items()}},
               tmp_path / "clap.pt")
    separator, encoder = load_separator(published / "dcase2024_baseline.ckpt",
                                        tokenizer=published / "roberta-base",
                                        clap_checkpoint=tmp_path / "clap.pt")
    own = load_separator(published / "dcase2024_baseline.ckpt",
                         tokenizer=published / "roberta-base")[1]
    assert separator.sample_rate == 16000 and not separator.training
    assert encoder.encoder.max_length == 77 and own.encoder.text.max_length == 512
    assert not torch.allclose(encoder(["rain"]), own(["rain"]))


@pytest.mark.slow
def test_cli_pretrained_folder_with_a_laion_text_tower(published, tmp_path, capsys):
    from text_tower_fixtures import tower_state

    torch.save({"state_dict": {f"module.{k}": v for k, v in
                               tower_state(79, seed=3, dim=512, hidden=24).items()}},
               tmp_path / "clap.pt")
    folder = tiny_separator(condition_size=512).save_pretrained(tmp_path / "model")
    wav = published / "recordings" / "street.wav"
    base = ["separate", "--checkpoint", folder, "--input", wav, "--query", "rain"]
    code, _, err = cli(capsys, *base, "--tokenizer", published / "roberta-base",
                       "--output", tmp_path / "rain.wav")
    assert (code, err.splitlines()) == (1, [
        f"torchlass separate: CheckpointError: load_separator(): {str(folder)!r} is a pretrained "
        "folder, which holds no text tower: pass clap_checkpoint (a LAION-CLAP .pt or an "
        "AudioSep/DCASE checkpoint) with the tokenizer"])
    code, out, err = cli(capsys, *base, "--tokenizer", published / "roberta-base",
                         "--clap-checkpoint", tmp_path / "clap.pt",
                         "--output", tmp_path / "rain.wav")
    assert code == 0, err
    assert out.startswith(f"wrote {tmp_path / 'rain.wav'} (0.30 s, 44100 Hz, 2 channel(s))")


@pytest.mark.slow
def test_cli_clip_query_with_the_audio_tower_in_the_checkpoint(published, tmp_path, capsys):
    """``--query-audio`` through the CLAP audio tower stored in the separator's checkpoint:
    the file written equals the separator run directly on the clip's embedding."""
    from torchlass.checkpoints import load_audiosep
    from torchlass.query import load_clap_encoder

    ckpt, tok = published / "dcase2024_baseline.ckpt", published / "roberta-base"
    clip = write(tmp_path / "bark.wav", 0.5, 22050, 2, seed=5)
    code, out, err = cli(capsys, "separate", "--checkpoint", ckpt, "--tokenizer", tok,
                         "--query-audio", tmp_path / "bark.wav", "--query", "rain", "--input",
                         published / "recordings" / "street.wav", "--out-dir", tmp_path / "out",
                         "--no-progress")
    assert code == 0, err
    assert out.strip() == f"separated 1 of 1 file(s) into {tmp_path / 'out'}"
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["street_audio_bark.wav", "street_rain.wav"]
    clap = load_clap_encoder(ckpt, tokenizer=tok)
    condition = clap.embed_audio(torch.from_numpy(clip.T)[None], 22050)
    mix, rate = sf.read(published / "recordings" / "street.wav", dtype="float32")
    at_model = torch.from_numpy(resample_poly(mix.T.astype(np.float64), 160, 441, axis=-1)).float()
    separator = load_audiosep(ckpt).eval()
    expected = separator.separate(at_model[:, None], condition.expand(2, -1))[:, 0, 0]
    expected = resample_poly(expected.double().numpy(), 441, 160, axis=-1)[:, :mix.shape[0]]
    got, got_rate = sf.read(tmp_path / "out" / "street_audio_bark.wav", dtype="float32")
    assert got_rate == rate
    np.testing.assert_allclose(got.T, expected, atol=2e-5)


@pytest.mark.slow
def test_cli_evaluate_real_recordings_with_clapscore(published, tmp_path, capsys):
    """``evaluate --mixtures``: CLAPScore of the estimate and of the mixture, from the CLAP
    stored in the checkpoint, against the cosine computed here from the encoder's outputs."""
    import csv

    from torchlass.checkpoints import load_audiosep
    from torchlass.query import load_clap_encoder

    ckpt, tok = published / "dcase2024_baseline.ckpt", published / "roberta-base"
    (tmp_path / "real").mkdir()
    write(tmp_path / "real" / "a.wav", 0.4, 16000, 1, seed=1)
    write(tmp_path / "real" / "b.wav", 0.4, 16000, 1, seed=2)
    (tmp_path / "captions.csv").write_text("file,caption\na.wav,a dog\nb.wav,rain\n",
                                           encoding="utf-8")
    code, out, err = cli(capsys, "evaluate", "--checkpoint", ckpt, "--tokenizer", tok,
                         "--mixtures", tmp_path / "real", "--captions",
                         tmp_path / "captions.csv", "--items-csv", tmp_path / "items.csv",
                         "--no-progress")
    assert code == 0, err
    assert "CLAPScore (cos)" in out
    rows = list(csv.DictReader((tmp_path / "items.csv").open(encoding="utf-8")))
    clap, separator = load_clap_encoder(ckpt, tokenizer=tok), load_audiosep(ckpt).eval()
    for row, name, caption in zip(rows, ("a", "b"), ("a dog", "rain"), strict=True):
        assert row["sdr"] == "" and row["caption"] == caption
        mix = torch.from_numpy(sf.read(tmp_path / "real" / f"{name}.wav",
                                       dtype="float32")[0])[None, None]
        est = separator(mix, clap([caption]))[:, 0]
        text = clap([caption]).double().numpy()[0]
        for key, audio in (("mixture", mix), ("estimate", est)):
            a = clap.embed_audio(audio[:, 0], 16000).double().numpy()[0]
            cos = a @ text / np.linalg.norm(a) / np.linalg.norm(text)
            assert float(row[f"clapscore_cos_{key}"]) == pytest.approx(cos, abs=1e-5)
        assert float(row["clapscore_cos_improvement"]) == pytest.approx(
            float(row["clapscore_cos_estimate"]) - float(row["clapscore_cos_mixture"]),
            abs=1e-6)
