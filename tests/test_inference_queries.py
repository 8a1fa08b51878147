"""Separating files with example clips as queries and with negative queries (file level and CLI).

The stand-ins here are independent of the code under test: a point-wise separator whose
output is a known function of the query's and the negative query's first entries, and an
encoder whose text and audio embeddings are computed again, by hand, in the tests. The
expected files are the stand-in's formula on the whole file, resampled with
``scipy.signal.resample_poly`` as in ``test_inference.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from torchlass.errors import DTypeError, ShapeError, TorchlassError
from torchlass.inference import output_name, output_names, separate_file, separate_files
from torchlass.query import AudioQuery, CachedTextEncoder, HashedTextEncoder

MODEL_RATE = 16000
CAPTIONS = {"a dog": 0.5, "rain": 2.0, "speech": 1.5, "tv": -0.7, "music": 0.3}


class Negated(torch.nn.Module):
    """Point-wise stand-in taking a negative query: ``tanh(3 x) c0 + n0 x``.

    ``c0`` and ``n0`` are the first entries of the query's and the negative query's
    embeddings; no negative (None) counts as zeros. Every call is recorded.
    """

    takes_negative = True
    sample_rate = MODEL_RATE
    chunk_align = 160

    def __init__(self, channels=1):
        super().__init__()
        self.channels = channels
        self.stft = torch.nn.Module()
        self.stft.n_fft = 64
        self.calls: list[tuple[tuple[int, ...], torch.Tensor | None]] = []

    def forward(self, mixture, condition, negative=None):
        self.calls.append((tuple(mixture.shape), None if negative is None else negative.clone()))
        n0 = 0.0 if negative is None else negative[:, :1, None]
        return torch.tanh(3 * mixture) * condition[:, :1, None] + n0 * mixture


class TextOnly(Negated):
    """The same separator without negative queries: ``forward(mixture, condition)``."""

    takes_negative = False

    def forward(self, mixture, condition):
        return super().forward(mixture, condition)


class Encoder:
    """Stand-in CLAP with both towers; every call recorded.

    A caption embeds as ``[CAPTIONS[caption], 0, 1]``; a clip ``(n, channels, time)`` at
    ``rate`` as ``[10 mean + 1, rate / 16000, time / 1000]``.
    """

    dim = 3

    def __init__(self):
        self.text_calls: list[list[str]] = []
        self.audio_calls: list[tuple[tuple[int, ...], int]] = []

    def __call__(self, captions):
        self.text_calls.append(list(captions))
        return torch.tensor([[CAPTIONS[c], 0.0, 1.0] for c in captions])

    def embed_audio(self, audio, sample_rate):
        self.audio_calls.append((tuple(audio.shape), sample_rate))
        mean = audio.reshape(audio.shape[0], -1).double().mean(dim=1)
        return torch.stack([10 * mean + 1, torch.full_like(mean, sample_rate / 16000),
                            torch.full_like(mean, audio.shape[-1] / 1000)], dim=1).float()


def write(path, seconds, rate, channels=1, seed=0, level=0.3):
    rng = np.random.default_rng(seed)
    data = (level * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, subtype="FLOAT")
    return data.T.astype(np.float64)  # (channels, time)


def clip(seconds, rate, channels, seed):
    """An AudioQuery and its first embedding entry computed here, in float64."""
    rng = np.random.default_rng(seed)
    wave = (0.2 * rng.standard_normal((channels, round(seconds * rate))) + 0.05 * seed)
    return AudioQuery(torch.from_numpy(wave.astype(np.float32)), rate, f"clip {seed}"), \
        10 * wave.astype(np.float32).astype(np.float64).mean() + 1


def expected(x, rate, c0, n0):
    """The stand-in on the whole file at the model's rate, resampled back to ``rate``."""
    g = np.gcd(rate, MODEL_RATE)
    at_model = resample_poly(x, MODEL_RATE // g, rate // g, axis=-1) if rate != MODEL_RATE else x
    out = np.tanh(3 * at_model) * c0 + n0 * at_model
    if rate != MODEL_RATE:
        out = resample_poly(out, rate // g, MODEL_RATE // g, axis=-1)
    return out[:, :x.shape[-1]]


def read(path):
    data, _ = sf.read(path, always_2d=True)
    return data.T


@pytest.mark.parametrize(("rate", "channels", "model_channels"),
                         [(22050, 2, 1), (16000, 2, 2), (44100, 1, 1)])
def test_mixed_text_and_clip_queries_with_negatives(tmp_path, rate, channels, model_channels):
    x = write(tmp_path / "in.wav", 1.3, rate, channels)
    bark, bark_c0 = clip(0.4, 44100, 2, seed=1)
    hum, hum_c0 = clip(0.3, 8000, 1, seed=2)
    horn, horn_n0 = clip(0.2, 32000, 1, seed=3)
    queries = ["a dog", bark, "rain", hum]
    negatives = ["tv", None, horn, "music"]
    encoder, model = Encoder(), Negated(model_channels)
    done = separate_file(model, tmp_path / "in.wav", queries, encoder, negatives=negatives,
                         out_dir=tmp_path / "out", residual=True, chunk_seconds=0.5,
                         overlap_seconds=0.1, batch_size=3)
    # one text call for queries and negatives; one audio call per clip, in order
    assert encoder.text_calls == [["a dog", "rain", "tv", "music"]]
    assert encoder.audio_calls == [((1, 2, 17640), 44100), ((1, 1, 2400), 8000),
                                   ((1, 1, 6400), 32000)]
    c0 = [CAPTIONS["a dog"], bark_c0, CAPTIONS["rain"], hum_c0]
    n0 = [CAPTIONS["tv"], 0.0, horn_n0, CAPTIONS["music"]]
    assert [p.name for p in done.targets] == [
        "in_a_dog.wav", "in_audio_clip_1.wav", "in_rain.wav", "in_audio_clip_2.wav"]
    for k in range(4):
        want = expected(x, rate, c0[k], n0[k])
        np.testing.assert_allclose(read(done.targets[k]), want, atol=1e-5)
        np.testing.assert_allclose(read(done.residuals[k]), x - want, atol=1e-5)
    # the negatives reach the network beside their queries, repeated per channel like them
    rows = 4 * channels if model_channels == 1 else 4  # (query, channel) or query
    per_chunk = -(-rows // 3)  # forward calls per chunk with batch_size=3
    assert len(model.calls) > per_chunk and all(
        shape[1] == model_channels for shape, _ in model.calls)
    first_chunk = torch.cat([negative for _, negative in model.calls[:per_chunk]])
    per_row = np.repeat(n0, channels) if model_channels == 1 else np.array(n0)
    np.testing.assert_allclose(first_chunk[:, 0].numpy(), per_row, rtol=1e-6)


def test_no_negatives_equals_zero_rows_and_the_plain_separator(tmp_path):
    x = write(tmp_path / "in.wav", 0.8, 22050, 2)
    encoder = Encoder()
    runs = {}
    for key, model, negatives in [("none", Negated(), None), ("zeros", Negated(), [None, None]),
                                  ("plain", TextOnly(), None), ("plain0", TextOnly(), [None] * 2)]:
        runs[key] = (model, separate_file(model, tmp_path / "in.wav", ["a dog", "rain"],
                                          encoder, negatives=negatives,
                                          out_dir=tmp_path / key, chunk_seconds=0.5,
                                          overlap_seconds=0.1))
    assert all(neg is None for _, neg in runs["none"][0].calls)
    assert all(torch.equal(neg, torch.zeros_like(neg)) for _, neg in runs["zeros"][0].calls)
    for k, caption in enumerate(["a dog", "rain"]):
        want = expected(x, 22050, CAPTIONS[caption], 0.0)
        for _, done in runs.values():
            np.testing.assert_allclose(read(done.targets[k]), want, atol=1e-5)


def test_separate_files_embeds_once_and_passes_negatives(tmp_path):
    xs = [write(tmp_path / f"f{i}.wav", 0.5 + 0.2 * i, MODEL_RATE, 1, seed=i) for i in range(2)]
    bark, bark_c0 = clip(0.3, 48000, 2, seed=4)
    encoder = Encoder()
    summary = separate_files(Negated(), [tmp_path / "f0.wav", tmp_path / "f1.wav"],
                             [bark, "speech"], encoder, negatives=["tv", "tv"],
                             out_dir=tmp_path / "out", progress=False)
    assert not summary.failed
    assert encoder.text_calls == [["speech", "tv", "tv"]] and len(encoder.audio_calls) == 1
    for i, done in enumerate(summary.done):
        assert [p.name for p in done.targets] == [f"f{i}_audio_clip_4.wav", f"f{i}_speech.wav"]
        for k, c0 in enumerate([bark_c0, CAPTIONS["speech"]]):
            np.testing.assert_allclose(read(done.targets[k]),
                                       expected(xs[i], MODEL_RATE, c0, CAPTIONS["tv"]),
                                       atol=1e-5)


def test_real_network_with_a_clip_query_equals_separate_on_the_whole_file(tmp_path):
    from torchlass import Separator

    torch.manual_seed(0)
    sep = Separator.srpol_system1(n_fft=64, hop_length=16, stem_width=2, widths=(2, 4),
                                  pools=((2, 2), (2, 2)), sample_rate=8000,
                                  condition_size=Encoder.dim).eval()
    x = write(tmp_path / "in.wav", 1.1, 8000, 2)
    bark, _ = clip(0.3, 44100, 2, seed=6)
    encoder = Encoder()
    done = separate_file(sep, tmp_path / "in.wav", [bark, "rain"], encoder, out_dir=tmp_path,
                         chunk_seconds=0.5, overlap_seconds=0.1, batch_size=3)
    condition = torch.cat([Encoder().embed_audio(bark.waveform[None], 44100),
                           Encoder()(["rain"])])
    with torch.no_grad():
        for c in range(2):
            whole = sep.separate(torch.from_numpy(x[c:c + 1]).float(), condition,
                                 chunk_seconds=0.5, overlap_seconds=0.1)
            for k in range(2):
                np.testing.assert_allclose(read(done.targets[k])[c], whole[k, 0, 0].numpy(),
                                           atol=1e-5)


def test_negative_query_preset_on_a_file_equals_separate_on_the_whole_file(tmp_path):
    """A real srpol_negative_query network: per-query negatives (a caption, none) at file
    level equal Separator.separate with the negative rows (zeros for none)."""
    from torchlass import Separator

    torch.manual_seed(0)
    sep = Separator.srpol_negative_query(n_fft=64, hop_length=16, stem_width=2, widths=(2, 4),
                                         pools=((2, 2), (2, 2)), sample_rate=8000,
                                         condition_size=Encoder.dim).eval()
    with torch.no_grad():  # FiLM starts as the identity: give the queries an effect
        for name, p in sep.named_parameters():
            if ".film" in name:
                p.normal_(0.0, 0.5)
    x = write(tmp_path / "in.wav", 1.1, 8000, 1)
    done = separate_file(sep, tmp_path / "in.wav", ["a dog", "rain"], Encoder(),
                         negatives=["speech", None], out_dir=tmp_path, chunk_seconds=0.5,
                         overlap_seconds=0.1)
    condition = torch.tensor([[CAPTIONS["a dog"], 0.0, 1.0], [CAPTIONS["rain"], 0.0, 1.0]])
    negative = torch.tensor([[CAPTIONS["speech"], 0.0, 1.0], [0.0, 0.0, 0.0]])
    with torch.no_grad():
        whole = sep.separate(torch.from_numpy(x).float(), condition, negative=negative,
                             chunk_seconds=0.5, overlap_seconds=0.1)
        plain = sep.separate(torch.from_numpy(x).float(), condition,
                             chunk_seconds=0.5, overlap_seconds=0.1)
    for k in range(2):
        np.testing.assert_allclose(read(done.targets[k])[0], whole[k, 0, 0].numpy(), atol=1e-5)
    assert torch.equal(whole[1], plain[1]) and not torch.allclose(whole[0], plain[0])


def test_output_names_are_distinct_and_safe():
    bark = AudioQuery(torch.zeros(8), 16000, "bark")
    assert output_name("rec/st.wav", AudioQuery(torch.zeros(8), 8000, "../../etc/Bark.WAV")) \
        == "st_audio_etc_bark_wav.wav"
    assert output_name("st.wav", AudioQuery(torch.zeros(8), 8000, "狗")) == "st_audio.wav"
    names = output_names("st.wav", ["rain", "rain", bark, bark, "audio bark", "x residual", "x"])
    assert names == [
        "st_rain.wav", "st_rain_residual.wav",
        "st_rain_2.wav", "st_rain_2_residual.wav",
        "st_audio_bark.wav", "st_audio_bark_residual.wav",
        "st_audio_bark_2.wav", "st_audio_bark_2_residual.wav",
        "st_audio_bark_3.wav", "st_audio_bark_3_residual.wav",
        "st_x_residual.wav", "st_x_residual_residual.wav",
        "st_x_2.wav", "st_x_2_residual.wav",
    ]
    assert len(set(names)) == len(names)


def test_same_caption_twice_writes_two_files(tmp_path):
    x = write(tmp_path / "in.wav", 0.5, MODEL_RATE)
    done = separate_file(Negated(), tmp_path / "in.wav", ["speech", "speech"], Encoder(),
                         negatives=[None, "tv"], out_dir=tmp_path)
    assert [p.name for p in done.targets] == ["in_speech.wav", "in_speech_2.wav"]
    np.testing.assert_allclose(read(done.targets[1]),
                               expected(x, MODEL_RATE, 1.5, CAPTIONS["tv"]), atol=1e-5)


def test_errors_before_any_work(tmp_path):
    missing, out = tmp_path / "none.wav", tmp_path / "out"  # the file is never opened
    clip_ = AudioQuery(torch.zeros(1, 80), 8000, "bark")

    def fails(error, message, model=None, queries=("a dog",), encoder=None, **options):
        for call in (separate_file, separate_files):
            fn = call.__name__
            args = (missing,) if call is separate_file else ([missing],)
            with pytest.raises(error) as info:
                call(model or Negated(), *args, list(queries),
                     Encoder() if encoder is None else encoder,
                     out_dir=out, **options)
            assert str(info.value) == message.format(fn=fn)
        assert not out.exists()

    fails(TorchlassError, "{fn}(): argument 'negatives' was given, but the separator TextOnly "
          "takes no negative query (its takes_negative is not true): use a model trained with "
          "negative queries, or leave 'negatives' out", model=TextOnly(), negatives=["tv"])
    fails(ShapeError, "{fn}(): argument 'negatives' expected one entry per query (2), got 1",
          queries=("a dog", "rain"), negatives=["tv"])
    fails(DTypeError, "{fn}(): argument 'negatives' expected a list (one caption or None per "
          "query), got str", negatives="tv")
    fails(DTypeError, "{fn}(): argument 'negatives' expected captions (str), AudioQuery clips "
          "or None, got an item of type int", negatives=[3])
    fails(DTypeError, "{fn}(): argument 'queries' expected captions (str) and AudioQuery "
          "clips, got an item of type Tensor", queries=(torch.zeros(3),))
    fails(ShapeError, "{fn}(): argument 'queries' holds the clip 'e', expected a waveform "
          "(time,) or (channels, time) with samples, got shape (1, 0)",
          queries=(AudioQuery(torch.zeros(1, 0), 8000, "e"),))
    fails(DTypeError, "{fn}(): argument 'queries' holds the clip 'i', expected a real "
          "floating-point waveform, got torch.int64",
          queries=(AudioQuery(torch.zeros(5, dtype=torch.long), 8000, "i"),))
    fails(ShapeError, "{fn}(): argument 'negatives' holds the clip 'r', expected a positive "
          "int sample_rate, got 0", negatives=[AudioQuery(torch.zeros(5), 0, "r")])
    for encoder in (HashedTextEncoder(dim=3), CachedTextEncoder(HashedTextEncoder(dim=3))):
        fails(TorchlassError, "{fn}(): the clip 'bark' is a query, but the encoder "
              f"{type(encoder).__name__} embeds text only (a CLAP encoder with its audio tower "
              "embeds both)", queries=("rain", clip_), encoder=encoder)
        fails(TorchlassError, "{fn}(): the clip 'bark' is a query, but the encoder "
              f"{type(encoder).__name__} embeds text only (a CLAP encoder with its audio tower "
              "embeds both)", negatives=[clip_], encoder=encoder)


def test_precomputed_embeddings(tmp_path):
    x = write(tmp_path / "in.wav", 0.5, MODEL_RATE)
    condition, negative = torch.tensor([[2.0], [0.5]]), torch.tensor([[0.0], [-1.0]])
    done = separate_file(Negated(), tmp_path / "in.wav", ["p", "q"], condition=condition,
                         negative_condition=negative, out_dir=tmp_path)
    for k in range(2):
        np.testing.assert_allclose(read(done.targets[k]),
                                   expected(x, MODEL_RATE, condition[k, 0].item(),
                                            negative[k, 0].item()), atol=1e-5)
    path = tmp_path / "in.wav"
    with pytest.raises(ShapeError, match=r"^separate_file\(\): argument 'negative_condition' "
                                         r"expected shape \(2, dim\), one row per query, got "
                                         r"\(1, 1\)$"):
        separate_file(Negated(), path, ["p", "q"], condition=condition,
                      negative_condition=negative[:1])
    with pytest.raises(ShapeError, match=r"'condition' expected shape \(1, dim\).* got \(2, 1\)"):
        separate_file(Negated(), path, ["p"], condition=condition)
    with pytest.raises(TorchlassError, match=r"^separate_file\(\): argument 'negative_condition' "
                                             r"was given, but the separator TextOnly takes no"):
        separate_file(TextOnly(), path, ["p", "q"], condition=condition,
                      negative_condition=negative)
    with pytest.raises(TorchlassError, match="argument 'encoder' is needed without 'condition' "
                                             "and 'negative_condition'"):
        separate_file(Negated(), path, ["p", "q"], condition=condition, negatives=["tv", None])
    with pytest.raises(TorchlassError, match="give 'negatives' or 'negative_condition', not both"):
        separate_file(Negated(), path, ["p", "q"], Encoder(), negatives=["tv", None],
                      negative_condition=negative)


# --- the command line, with the loader replaced by the stand-ins ---------------------------


@pytest.fixture
def stand_ins(monkeypatch):
    """``torchlass separate`` loads these instead of a checkpoint."""
    loaded = {"separator": Negated(), "encoder": Encoder()}

    def load(checkpoint, *, tokenizer=None, clap_checkpoint=None, device="cpu"):
        loaded["args"] = (checkpoint, tokenizer, clap_checkpoint)
        return loaded["separator"], loaded["encoder"]

    monkeypatch.setattr("torchlass.inference.load_separator", load)
    return loaded


def cli(capsys, *argv):
    from torchlass.cli import main

    code = main(["separate", "--checkpoint", "model.ckpt", "--no-progress",
                 *(str(a) for a in argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_negatives_and_clip_queries_in_order(tmp_path, capsys, stand_ins):
    x = write(tmp_path / "in.wav", 0.6, 22050, 2)
    bark = write(tmp_path / "bark.wav", 0.3, 44100, 2, seed=5, level=0.1)
    code, out, err = cli(capsys, "--input", tmp_path / "in.wav", "--query", "a dog",
                         "--query-audio", tmp_path / "bark.wav", "--query", "rain",
                         "--negative", "tv", "--negative", "", "--negative", "music",
                         "--out-dir", tmp_path / "out")
    assert (code, err) == (0, ""), err
    assert out == f"separated 1 of 1 file(s) into {tmp_path / 'out'}\n"
    # the clip reaches the encoder at its own rate, with its channels
    assert stand_ins["encoder"].audio_calls == [((1, 2, 13230), 44100)]
    c0 = [CAPTIONS["a dog"], 10 * bark.astype(np.float32).mean() + 1, CAPTIONS["rain"]]
    n0 = [CAPTIONS["tv"], 0.0, CAPTIONS["music"]]
    for name, c, n in zip(["in_a_dog", "in_audio_bark", "in_rain"], c0, n0, strict=True):
        np.testing.assert_allclose(read(tmp_path / "out" / f"{name}.wav"),
                                   expected(x, 22050, c, n), atol=1e-5)
    # one --negative for all queries; --output with a clip query
    code, out, err = cli(capsys, "--input", tmp_path / "in.wav", "--query-audio",
                         tmp_path / "bark.wav", "--negative", "tv", "--output",
                         tmp_path / "one.wav")
    assert (code, err) == (0, ""), err
    assert out == f"wrote {tmp_path / 'one.wav'} (0.60 s, 22050 Hz, 2 channel(s))\n"
    np.testing.assert_allclose(read(tmp_path / "one.wav"),
                               expected(x, 22050, c0[1], CAPTIONS["tv"]), atol=1e-5)


def test_cli_one_line_errors(tmp_path, capsys, stand_ins):
    write(tmp_path / "in.wav", 0.3, MODEL_RATE)
    write(tmp_path / "bark.wav", 0.1, 8000)
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), 8000)
    base = ["--input", tmp_path / "in.wav", "--out-dir", tmp_path / "out"]
    prefix = "torchlass separate: "

    def fails(line, *argv):
        code, out, err = cli(capsys, *base, *argv)
        assert (code, out, err) == (1, "", prefix + line + "\n")

    fails("TorchlassError: expected at least one --query or --query-audio, got none")
    fails("TorchlassError: --negative expected one value for all queries or one per query "
          "(3), got 2", "--query", "a", "--query-audio", tmp_path / "bark.wav", "--query", "b",
          "--negative", "tv", "--negative", "music")
    fails("TorchlassError: --output names one file: give one --input file and one --query or "
          "--query-audio, or use --out-dir", "--query", "a", "--query-audio",
          tmp_path / "bark.wav", "--output", tmp_path / "o.wav")
    fails("FileNotFoundError: audio_info(): audio file not found: "
          f"{str(tmp_path / 'none.wav')!r}", "--query-audio", tmp_path / "none.wav")
    fails("TorchlassError: --query-audio expected a clip with samples, got the empty file "
          f"{str(tmp_path / 'empty.wav')!r}", "--query-audio", tmp_path / "empty.wav")
    stand_ins["encoder"] = CachedTextEncoder(HashedTextEncoder(dim=3))
    fails("TorchlassError: --query-audio needs CLAP's audio tower, but 'model.ckpt' with "
          "--tokenizer gives a text-only encoder (CachedTextEncoder): pass --tokenizer DIR "
          "with a checkpoint (or --clap-checkpoint) that holds CLAP's audio tower",
          "--query-audio", tmp_path / "bark.wav", "--tokenizer", tmp_path)
    stand_ins["encoder"], stand_ins["separator"] = Encoder(), TextOnly()
    fails("TorchlassError: --negative needs a separator trained with negative queries; "
          "'model.ckpt' gives one that takes none (TextOnly, takes_negative is not true)",
          "--query", "speech", "--negative", "tv")
    assert not (tmp_path / "out").exists()
    # an empty --negative is no negative query: fine for a separator that takes none
    code, _, err = cli(capsys, *base, "--query", "speech", "--negative", " ")
    assert (code, err) == (0, "")
