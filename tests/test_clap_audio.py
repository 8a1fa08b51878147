"""CLAP's audio tower (HTSAT) on transformers, from the weights in a checkpoint.

The weights are random, written in LAION-CLAP's key layout by ``audio_tower_fixtures``. The
reference below is LAION's whole audio embedding written out from the formulas in float64
on the LAION-named tensors -- input rule, framing, Hann window, rfft, Slaney mel, dB, bn0,
bicubic resize, mel-to-image fold, patch embedding, Swin blocks (windows, relative position
bias, shifted windows and their mask), patch merging, pooling, projection -- with nothing
from torchlass or transformers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from audio_tower_fixtures import (
    DEPTHS,
    DIM,
    HEADS,
    HOP,
    N_FFT,
    PATCH,
    SPEC,
    WINDOW,
    audio_tower_state,
    hann,
    relative_position_index,
    shift_labels,
    slaney_filterbank,
    window_tokens,
    write_clap_checkpoint,
)
from scipy.signal import resample_poly
from text_tower_fixtures import tower_state, write_tokenizer

from torchlass.errors import (
    CheckpointError,
    DTypeError,
    NonFiniteError,
    ShapeError,
    TorchlassError,
    ValueRangeError,
)
from torchlass.query import (
    AudioEncoder,
    AudioQuery,
    ClapEncoder,
    TextEncoder,
    embed_queries,
    load_clap_audio_encoder,
    load_clap_encoder,
    load_clap_text_encoder,
)
from torchlass.query.clap_mel import clap_log_mel, slaney_mel_filterbank

pytest.importorskip("transformers")
L = 480000  # 10 s at 48 kHz


@pytest.fixture(scope="module")
def state():
    return audio_tower_state()


@pytest.fixture(scope="module")
def tower(state):
    return load_clap_audio_encoder({"state_dict": {f"query_encoder.model.{k}": v
                                                   for k, v in state.items()}})


# --- the reference -----------------------------------------------------------------------

def laion_input(x: np.ndarray) -> np.ndarray:
    """LAION's int16 round trip on float32, then repeatpad to 10 s (one mono clip)."""
    x = (np.clip(x.astype(np.float32), -1.0, 1.0) * 32767.0).astype(np.int16) / 32767.0
    x = x.astype(np.float32).astype(np.float64)
    if x.size < L:
        x = np.tile(x, L // x.size)
        x = np.concatenate([x, np.zeros(L - x.size)])
    return x


def log_mel(x: np.ndarray, mels: int = 64) -> np.ndarray:
    padded = np.pad(x, N_FFT // 2, mode="reflect")
    frames = 1 + (padded.size - N_FFT) // HOP
    idx = np.arange(frames)[:, None] * HOP + np.arange(N_FFT)[None, :]
    power = np.abs(np.fft.rfft(padded[idx] * hann(N_FFT), axis=-1)) ** 2
    return 10 * np.log10(np.maximum(power @ slaney_filterbank(mels), 1e-10))  # (frames, mels)


def bicubic_rows(x: np.ndarray, size: int) -> np.ndarray:
    """Resize axis 0 with Keys' cubic (a = -0.75), align_corners=True, clamped borders."""
    n, a = x.shape[0], -0.75
    src = np.arange(size) * (n - 1) / (size - 1)
    base = np.floor(src).astype(int)
    t = src - base

    def k(d):
        d = np.abs(d)
        return np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                        np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))

    out = np.zeros((size, *x.shape[1:]))
    for off in (-1, 0, 1, 2):
        out += k(t - off)[:, None] * x[np.clip(base + off, 0, n - 1)]
    return out


def ln(x, s, p):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + 1e-5) * s[f"{p}.weight"] + s[f"{p}.bias"]


def lin(x, s, p):
    out = x @ s[f"{p}.weight"].T
    return out + s[f"{p}.bias"] if f"{p}.bias" in s else out


def gelu(x):
    from scipy.special import erf

    return 0.5 * x * (1 + erf(x / math.sqrt(2)))


def swin_block(x, s, p, heads, shift):
    size, _, c = x.shape
    w = min(WINDOW, size)
    h = np.roll(ln(x, s, f"{p}norm1"), (-shift, -shift), axis=(0, 1))
    tokens = window_tokens(h, w)  # (windows, w*w, c)
    qkv = lin(tokens, s, f"{p}attn.qkv").reshape(*tokens.shape[:2], 3, heads, c // heads)
    q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))  # (windows, heads, n, d)
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(c // heads)
    table = s[f"{p}attn.relative_position_bias_table"]
    scores = scores + table[relative_position_index(w)].transpose(2, 0, 1)[None]
    if shift:
        labels = window_tokens(shift_labels(size, w, shift), w)
        scores = scores + np.where(labels[:, None, :, None] != labels[:, None, None, :],
                                   -100.0, 0.0)
    attn = np.exp(scores - scores.max(-1, keepdims=True))
    attn /= attn.sum(-1, keepdims=True)
    out = (attn @ v).transpose(0, 2, 1, 3).reshape(tokens.shape)
    out = lin(out, s, f"{p}attn.proj")
    grid = out.reshape(size // w, size // w, w, w, c).swapaxes(1, 2).reshape(size, size, c)
    x = x + np.roll(grid, (shift, shift), axis=(0, 1))
    return x + lin(gelu(lin(ln(x, s, f"{p}norm2"), s, f"{p}mlp.fc1")), s, f"{p}mlp.fc2")


def reference_window(x: np.ndarray, s: dict) -> np.ndarray:
    """Unit embedding of one prepared 10-s window, LAION's forward in float64."""
    b = "audio_branch."
    s = {k[len(b):] if k.startswith(b) else k: v.double().numpy() for k, v in s.items()}
    m = log_mel(x, s["bn0.weight"].size)
    m = (m - s["bn0.running_mean"]) / np.sqrt(s["bn0.running_var"] + 1e-5) * s[
        "bn0.weight"] + s["bn0.bias"]
    ratio = SPEC // m.shape[1]
    m = bicubic_rows(m, SPEC * ratio)  # (1024, mels)
    m = bicubic_rows(m.T, SPEC // ratio).T  # LAION resizes the mel axis to 256 // ratio too
    image = m.T.reshape(SPEC // ratio, ratio, SPEC).transpose(1, 0, 2).reshape(SPEC, SPEC)
    grid = SPEC // PATCH
    patches = image.reshape(grid, PATCH, grid, PATCH).transpose(0, 2, 1, 3).reshape(grid, grid,
                                                                                   -1)
    x = patches @ s["patch_embed.proj.weight"].reshape(-1, PATCH * PATCH).T
    x = ln(x + s["patch_embed.proj.bias"], s, "patch_embed.norm")
    for i, (depth, heads) in enumerate(zip(DEPTHS, HEADS, strict=True)):
        for j in range(depth):
            shift = WINDOW // 2 if j % 2 and x.shape[0] > WINDOW else 0
            x = swin_block(x, s, f"layers.{i}.blocks.{j}.", heads, shift)
        if i < len(DEPTHS) - 1:
            x = np.concatenate([x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]], -1)
            x = lin(ln(x, s, f"layers.{i}.downsample.norm"), s, f"layers.{i}.downsample.reduction")
    pooled = ln(x, s, "norm").reshape(-1, x.shape[-1]).mean(0)
    e = lin(np.maximum(lin(pooled, s, "audio_projection.0"), 0), s, "audio_projection.2")
    return e / np.linalg.norm(e)


def reference(clip48k: np.ndarray, s: dict) -> np.ndarray:
    """One mono 48-kHz clip: one window, or the renormalised mean over 10-s windows."""
    if clip48k.size <= L:
        return reference_window(laion_input(clip48k), s)
    starts = [*range(0, clip48k.size - L, L), clip48k.size - L]
    e = sum(reference_window(laion_input(clip48k[t:t + L]), s) for t in starts)
    return e / np.linalg.norm(e)


def close(got: torch.Tensor, expected: np.ndarray) -> None:
    torch.testing.assert_close(got.double(), torch.from_numpy(np.asarray(expected)),
                               rtol=1e-5, atol=1e-5)


# --- the tests ---------------------------------------------------------------------------

def test_ten_second_clips_match_the_formulas(tower, state, monkeypatch):
    g = torch.Generator().manual_seed(1)
    audio = 0.3 * torch.randn(2, L, generator=g)
    audio[1] *= torch.linspace(0.01, 1.5, L)  # quiet to clipped: int16 saturation included
    got = tower.embed_audio(audio, 48000)
    assert isinstance(tower, AudioEncoder) and tower.dim == DIM
    assert got.shape == (2, DIM) and got.dtype == torch.float32
    close(got, np.stack([reference(a.numpy(), state) for a in audio]))
    # the comparison can fail: without the shifted-window mask the reference moves ~7e-3
    monkeypatch.setitem(globals(), "shift_labels", lambda size, *_: np.zeros((size, size)))
    unmasked = torch.from_numpy(reference(audio[0].numpy(), state))
    assert float((unmasked - got[0].double()).abs().max()) > 1e-3


def test_short_stereo_clip_at_16k_is_averaged_resampled_and_repeat_padded(tower, state):
    g = torch.Generator().manual_seed(2)
    stereo = 0.2 * torch.randn(1, 2, 27_000, generator=g, dtype=torch.float64)  # 1.69 s
    mono48k = resample_poly(stereo[0].mean(0).numpy(), 3, 1)
    close(tower.embed_audio(stereo, 16000), reference(mono48k, state)[None])
    # float16 input is accepted too, channels first averaged in float64
    half = tower.embed_audio(stereo.half(), 16000)
    close(half, reference(resample_poly(stereo[0].half().double().mean(0).numpy(), 3, 1),
                          state)[None])


def test_long_clip_is_the_renormalised_mean_of_ten_second_windows(tower, state):
    g = torch.Generator().manual_seed(3)
    clip = torch.randn(1, 25 * 48000, generator=g) * torch.linspace(0.05, 0.5, 25 * 48000)
    got = tower(clip, 48000)
    close(got, reference(clip[0].numpy(), state)[None])
    first = tower(clip[:, :L], 48000)
    assert not torch.allclose(got, first, atol=1e-3)  # the later windows count
    # windows batched two at a time: the same embedding
    two = load_clap_audio_encoder(state, batch_size=2)
    torch.testing.assert_close(two(clip.expand(2, -1), 48000), got.expand(2, -1))


def test_sixty_mel_bins_follow_laions_mel_to_image_rule():
    # 256 // 60 = 4 segments of 256 frames and 64 rows: LAION resizes 60 -> 64 mel bins
    # after resizing 1001 -> 1024 frames (transformers' own rule would fail here)
    state = audio_tower_state(mels=60, seed=5)
    tower = load_clap_audio_encoder(state)
    clip = 0.2 * torch.randn(1, 7 * 48000)
    close(tower(clip, 48000), reference(clip[0].numpy(), state)[None])


def test_front_end_against_librosa_values():
    # librosa 0.10.2 filters.mel(sr=48000, n_fft=1024, n_mels=64, fmin=50, fmax=14000)
    fb = slaney_mel_filterbank(sample_rate=48000, n_fft=1024, n_mels=64, f_min=50.0,
                               f_max=14000.0)
    assert float(fb[3, 0]) == pytest.approx(0.005951485130935907, rel=1e-6)
    assert fb.sum(0)[[0, 31, 63]].tolist() == pytest.approx([0.0209633, 0.02090555, 0.02132807],
                                                            rel=1e-6)
    np.testing.assert_allclose(fb.numpy(), slaney_filterbank(), rtol=1e-12, atol=1e-15)
    g = torch.Generator().manual_seed(4)
    x = 0.3 * torch.randn(3000, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(clap_log_mel(x, fb).numpy(), log_mel(x.numpy()), atol=1e-9)


@pytest.mark.parametrize("prefix", ["", "module."])
def test_laion_layouts_give_the_same_tower(tmp_path, state, tower, prefix):
    torch.save({"state_dict": {prefix + k: v for k, v in state.items()}, "epoch": 15},
               tmp_path / "clap.pt")
    laion = load_clap_audio_encoder(tmp_path / "clap.pt")
    clip = 0.1 * torch.randn(1, 3, 9000)
    torch.testing.assert_close(laion(clip, 22050), tower(clip, 22050), rtol=0, atol=0)


def test_bad_audio_is_a_typed_error(tower):
    fn = "ClapAudioTower"
    cases = [
        (torch.zeros(16000), ShapeError, r"expected a non-empty \(n, time\) or \(n, channels, "
                                         r"time\) tensor, got shape \(16000,\)"),
        (torch.zeros(1, 0), ShapeError, r"expected a non-empty .* got shape \(1, 0\)"),
        (torch.zeros(0, 100), ShapeError, r"expected a non-empty .* got shape \(0, 100\)"),
        (torch.zeros(1, 100, dtype=torch.int16), DTypeError,
         "expected a floating-point tensor, got dtype torch.int16"),
        (torch.full((1, 100), math.nan), NonFiniteError, "expected finite values, got 100"),
    ]
    for audio, error, message in cases:
        with pytest.raises(error, match=rf"{fn}\(\): argument 'audio' " + message):
            tower.embed_audio(audio, 16000)
    with pytest.raises(ValueRangeError, match=rf"{fn}\(\): argument 'sample_rate' expected an "
                                              r"int >= 1, got 0"):
        tower.embed_audio(torch.zeros(1, 100), 0)
    with pytest.raises(DTypeError, match="'sample_rate' expected an int, got float"):
        tower.embed_audio(torch.zeros(1, 100), 16000.0)


def _corrupt(state, key, value):
    broken = dict(state)
    broken[key] = value
    return broken


def test_bad_checkpoints_are_clear_errors(state):
    b = "audio_branch."
    with pytest.raises(CheckpointError, match=r"expected one CLAP HTSAT audio tower .* found no"):
        load_clap_audio_encoder({"state_dict": {"ss_model.x": torch.zeros(1)}})
    mel = state[f"{b}logmel_extractor.melW"]
    with pytest.raises(CheckpointError, match=r"logmel_extractor\.melW differs from "
                                              r"LAION-CLAP's by up to"):
        load_clap_audio_encoder(_corrupt(state, f"{b}logmel_extractor.melW", mel.roll(1, 1)))
    real = f"{b}spectrogram_extractor.stft.conv_real.weight"
    with pytest.raises(CheckpointError, match=r"conv_real\.weight differs"):
        load_clap_audio_encoder(_corrupt(state, real, state[real] * 1.01))
    mask = f"{b}layers.0.blocks.1.attn_mask"
    with pytest.raises(CheckpointError, match=r"attn_mask differs"):
        load_clap_audio_encoder(_corrupt(state, mask, torch.zeros_like(state[mask])))
    fused = _corrupt(state, f"{b}patch_embed.mel_conv2d.weight", torch.zeros(8, 1, 4, 12))
    with pytest.raises(CheckpointError, match=r"1 unexpected: audio_encoder\.patch_embed\."
                                              r"mel_conv2d\.weight"):
        load_clap_audio_encoder(fused)
    missing = dict(state)
    del missing[f"{b}layers.1.blocks.0.mlp.fc2.bias"]
    missing["audio_projection.2.weight"] = torch.zeros(DIM, DIM + 1)
    with pytest.raises(CheckpointError, match=r"1 missing: audio_encoder\.layers\.1\.blocks\.0\."
                                              r"output\.dense\.bias; 1 mis-shaped"):
        load_clap_audio_encoder(missing)
    with pytest.raises(CheckpointError, match=r"'spec_size' expected an image side s with s >= "
                                              r"64 .* got 128"):
        load_clap_audio_encoder(state, spec_size=128)


# --- both towers from one file ------------------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return write_tokenizer(tmp_path_factory.mktemp("roberta_tokenizer"))


def test_one_file_gives_text_and_audio_in_one_encoder(tmp_path, tokenizer_dir):
    path = write_clap_checkpoint(tmp_path / "audiosep.ckpt")
    encoder = load_clap_encoder(path, tokenizer=tokenizer_dir)
    assert isinstance(encoder, TextEncoder) and isinstance(encoder, AudioEncoder)
    assert encoder.dim == DIM and encoder.text.max_length == 512
    text = load_clap_text_encoder(path, tokenizer=tokenizer_dir)
    audio = load_clap_audio_encoder(path)
    clip = 0.1 * torch.randn(2, 12000)
    rows = embed_queries(encoder, ["rain", AudioQuery(clip, 8000, "drip"), "dog a dog"])
    torch.testing.assert_close(rows[[0, 2]], text(["rain", "dog a dog"]))
    torch.testing.assert_close(rows[1], audio(clip[None], 8000)[0])
    with pytest.raises(CheckpointError, match=r"load_clap_audio_encoder\(\): argument "
                                              r"'checkpoint' expected one CLAP HTSAT audio tower"):
        load_clap_encoder({"state_dict": tower_state(514, dim=DIM, hidden=24)},
                          tokenizer=tokenizer_dir)


def test_load_separator_returns_the_joint_encoder_when_the_file_has_both(tmp_path,
                                                                           tokenizer_dir):
    from torchlass import Separator
    from torchlass.inference import load_separator

    folder = Separator.srpol_system1(
        n_fft=64, hop_length=16, stem_width=2, widths=(2, 4), pools=((2, 2), (2, 2)),
        sample_rate=8000, condition_size=DIM).save_pretrained(tmp_path / "model")
    both = write_clap_checkpoint(tmp_path / "clap.ckpt")
    _, encoder = load_separator(folder, tokenizer=tokenizer_dir, clap_checkpoint=both)
    assert isinstance(encoder.encoder, ClapEncoder)
    clip = AudioQuery(0.1 * torch.randn(4000), 8000, "drip")
    torch.testing.assert_close(embed_queries(encoder, [clip])[0],
                               load_clap_audio_encoder(both)(clip.waveform[None, None], 8000)[0])
    text_only = tmp_path / "text.pt"
    torch.save({"state_dict": {f"module.{k}": v
                               for k, v in tower_state(79, dim=DIM, hidden=24).items()}}, text_only)
    _, encoder = load_separator(folder, tokenizer=tokenizer_dir, clap_checkpoint=text_only)
    with pytest.raises(TorchlassError, match="embeds text only"):
        embed_queries(encoder, ["rain", clip])
