"""LAION-CLAP's HTSAT weights on ``transformers``' ``ClapAudioModel``: sizes, names, checks.

LAION's ``audio_branch`` (``HTSAT_Swin_Transformer``) and ``transformers``' ``ClapAudioModel``
are the same network under other names: ``bn0`` is ``batch_norm``, a Swin block's
``norm1``/``norm2`` are ``layernorm_before``/``layernorm_after``, ``attn.qkv`` (one fused
``Linear``, rows ``[q; k; v]``) is three ``Linear``\\ s, ``attn.proj`` is
``attention.output.dense``, ``mlp.fc1``/``mlp.fc2`` are ``intermediate.dense``/
``output.dense``. Every size is read from the weight shapes (heads and window from the
relative-position tables); only the spectrogram image size (256 in every LAION
configuration) and the patch stride (= the patch size, 4) are not stored.

The checkpoint also holds tensors that are not trained weights: the frozen STFT kernels and
mel filter bank of the front-end and the Swin blocks' relative-position indices and
shifted-window masks. They are checked against the formulas (a mismatch means the
checkpoint was made with another front-end or window layout) and not loaded. The AudioSet
classifier head (``tscam_conv``, ``head``) is not part of the embedding and is skipped.
Any other key is an error, so a feature-fusion checkpoint is refused, not half-loaded.

Where ``transformers`` and LAION differ, this follows LAION (the checkpoints were trained
with it): ``transformers`` 5.x resizes a mel axis shorter than ``spec_size // freq_ratio``
back to the *original* frame count, LAION to the resized one
([`mel_to_image`][torchlass.query.htsat.mel_to_image]). With 64 mel bins and a 256 image,
as in every published checkpoint, the two agree.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from torchlass.errors import CheckpointError
from torchlass.query.clap_mel import (
    CLAP_CLIP_SAMPLES,
    CLAP_F_MAX,
    CLAP_F_MIN,
    CLAP_HOP_LENGTH,
    CLAP_N_FFT,
    CLAP_SAMPLE_RATE,
    slaney_mel_filterbank,
)
from torchlass.stft import make_window
from torchlass.stft.dft import analysis_basis

__all__ = ["build_htsat", "htsat_config", "mel_to_image"]

_FN = "load_clap_audio_encoder"
_BRANCH = "audio_branch."
_STFT_KEYS = ("spectrogram_extractor.stft.conv_real.weight",
              "spectrogram_extractor.stft.conv_imag.weight")
_MEL_KEY = "logmel_extractor.melW"
_HEAD = ("tscam_conv.", "head.")  # LAION's AudioSet classifier, unused by the embedding
_BLOCK = re.compile(r"^layers\.(\d+)\.blocks\.(\d+)\.")
_RENAMES = ((".norm1.", ".layernorm_before."), (".norm2.", ".layernorm_after."),
            (".attn.proj.", ".attention.output.dense."), (".mlp.fc1.", ".intermediate.dense."),
            (".mlp.fc2.", ".output.dense."), (".attn.", ".attention.self."))
_BUFFER_RTOL = 1e-6  # relative to the largest entry; stored in float32 (1 ulp ~ 6e-8)
_SHOWN = 8


def _shape(state: Mapping, key: str) -> tuple[int, ...]:
    value = state.get(_BRANCH + key, state.get(key))
    if not isinstance(value, torch.Tensor):
        raise CheckpointError(f"{_FN}(): the audio tower has no tensor {key!r}")
    return tuple(value.shape)


def _depths(state: Mapping) -> list[int]:
    blocks: dict[int, set[int]] = {}
    for key in map(str, state):
        if key.startswith(_BRANCH) and (m := _BLOCK.match(key[len(_BRANCH):])) is not None:
            blocks.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    numbered = sorted(blocks) == list(range(len(blocks))) and all(
        b == set(range(len(b))) for b in blocks.values())
    if not blocks or not numbered:
        got = {i: sorted(b) for i, b in sorted(blocks.items())}
        raise CheckpointError(f"{_FN}(): the audio tower's Swin stages and blocks expected to "
                              f"be numbered 0..n-1, got {got}")
    return [len(blocks[i]) for i in range(len(blocks))]


def htsat_config(state: Mapping, spec_size: int) -> Any:
    """``transformers.ClapAudioConfig`` with every size read from LAION's weight shapes.

    Args:
        state: the tower's tensors keyed ``audio_branch.*`` and ``audio_projection.*``.
        spec_size: side of HTSAT's square spectrogram image.

    Raises:
        CheckpointError: a size-giving weight is missing, the stages or blocks are not
            numbered ``0..n-1``, the patch kernel is not square on one channel (feature
            fusion), the windows differ between stages, or ``spec_size`` cannot hold the
            mel bins and the 1001 frames of a 10-s clip.
    """
    from transformers import ClapAudioConfig

    embed, channels, patch, patch_w = _shape(state, "patch_embed.proj.weight")
    if channels != 1 or patch != patch_w:
        raise CheckpointError(f"{_FN}(): the audio tower's patch embedding expected a square "
                              f"kernel on 1 channel, got shape {(embed, channels, patch, patch_w)}"
                              " (a feature-fusion checkpoint is not supported)")
    depths = _depths(state)
    tables = [_shape(state, f"layers.{i}.blocks.0.attn.relative_position_bias_table")
              for i in range(len(depths))]
    side = math.isqrt(tables[0][0])
    window = (side + 1) // 2
    if side * side != tables[0][0] or side % 2 == 0 or any(t[0] != tables[0][0] for t in tables):
        raise CheckpointError(f"{_FN}(): the relative-position tables expected (2 w - 1)^2 rows "
                              f"with one window w in every stage, got {[t[0] for t in tables]}")
    mels = _shape(state, "bn0.weight")[0]
    frames = 1 + CLAP_CLIP_SAMPLES // CLAP_HOP_LENGTH
    if spec_size < mels or spec_size * (spec_size // mels) < frames:
        raise CheckpointError(f"{_FN}(): argument 'spec_size' expected an image side s with "
                              f"s >= {mels} (the mel bins) and s * (s // {mels}) >= {frames} "
                              f"(the frames of a 10-s clip), got {spec_size}")
    features = embed * 2 ** (len(depths) - 1)
    return ClapAudioConfig(
        window_size=window, num_mel_bins=mels, spec_size=spec_size, hidden_act="gelu",
        patch_size=patch, patch_stride=(patch, patch), hidden_size=features,
        projection_dim=_shape(state, "audio_projection.2.weight")[0], depths=depths,
        num_attention_heads=[t[1] for t in tables], enable_fusion=False,
        patch_embeds_hidden_size=embed,
        enable_patch_layer_norm=_BRANCH + "patch_embed.norm.weight" in state,
        mlp_ratio=_shape(state, "layers.0.blocks.0.mlp.fc1.weight")[0] / embed,
        qkv_bias=_BRANCH + "layers.0.blocks.0.attn.qkv.bias" in state,
        layer_norm_eps=1e-5, drop_path_rate=0.0, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, num_hidden_layers=len(depths))


def _transformers_names(state: Mapping) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """LAION's ``audio_branch.*`` as ``ClapAudioModel`` weights, and the non-weights apart."""
    weights: dict[str, torch.Tensor] = {}
    buffers: dict[str, Any] = {}
    for key, value in state.items():
        name = str(key)
        if not name.startswith(_BRANCH):
            continue
        name = name[len(_BRANCH):]
        if name in (*_STFT_KEYS, _MEL_KEY) or name.endswith(
                (".attn.relative_position_index", ".attn_mask")):
            buffers[name] = value
            continue
        if name.startswith(_HEAD):
            continue
        name = "audio_encoder." + ("batch_norm." + name[4:] if name.startswith("bn0.") else name)
        for old, new in _RENAMES:
            name = name.replace(old, new)
        if ".attention.self.qkv." in name and isinstance(value, torch.Tensor):
            for part, chunk in zip(("query", "key", "value"), value.chunk(3), strict=True):
                weights[name.replace(".qkv.", f".{part}.")] = chunk
        else:
            weights[name] = value
    return weights, buffers


def _shift_mask(height: int, width: int, window: int, shift: int) -> torch.Tensor:
    """Swin's shifted-window mask: 0 within a region of the rolled map, -100 across."""
    def region(size: int) -> torch.Tensor:
        i = torch.arange(size)
        return (i >= size - window).long() + (i >= size - shift).long()

    labels = region(height)[:, None] * 3 + region(width)[None, :]
    windows = labels.reshape(height // window, window, width // window, window)
    windows = windows.permute(0, 2, 1, 3).reshape(-1, window * window)
    differs = windows[:, None, :] != windows[:, :, None]
    return torch.zeros(differs.shape).masked_fill(differs, -100.0)


def _check_buffers(buffers: Mapping[str, Any], config: Any, model: nn.Module) -> None:
    """Compare the stored non-weights with the formulas; raise on the first disagreement."""
    basis = analysis_basis(make_window("hann", CLAP_N_FFT, dtype=torch.float64), CLAP_N_FFT)
    bins = CLAP_N_FFT // 2 + 1
    expected: dict[str, torch.Tensor] = {
        _STFT_KEYS[0]: basis[:bins], _STFT_KEYS[1]: basis[bins:],
        _MEL_KEY: slaney_mel_filterbank(sample_rate=CLAP_SAMPLE_RATE, n_fft=CLAP_N_FFT,
                                        n_mels=config.num_mel_bins, f_min=CLAP_F_MIN,
                                        f_max=CLAP_F_MAX)}
    ours = model.state_dict()
    resolution = config.spec_size // config.patch_stride[0]
    for i, depth in enumerate(config.depths):
        size = resolution // 2 ** i
        window = min(config.window_size, size)
        for j in range(depth):
            expected[f"layers.{i}.blocks.{j}.attn.relative_position_index"] = ours[
                f"audio_encoder.layers.{i}.blocks.{j}.attention.self.relative_position_index"]
            if j % 2 and size > config.window_size:
                expected[f"layers.{i}.blocks.{j}.attn_mask"] = _shift_mask(
                    size, size, window, config.window_size // 2)
    for name, value in buffers.items():
        want = expected.get(name)
        if want is None:
            raise CheckpointError(f"{_FN}(): the audio tower holds {_BRANCH}{name}, which this "
                                  "layout does not have (a block without a shifted window?)")
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(want.shape):
            got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointError(f"{_FN}(): {_BRANCH}{name} expected shape "
                                  f"{tuple(want.shape)}, got {got}")
        error = float((value.detach().double() - want.double()).abs().max())
        if error > _BUFFER_RTOL * (float(want.abs().max()) or 1.0):
            raise CheckpointError(
                f"{_FN}(): {_BRANCH}{name} differs from LAION-CLAP's by up to {error:.3g}: the "
                "checkpoint was not made with HTSAT's front-end (periodic Hann STFT of 1024 "
                "samples, hop 480, Slaney mel 50-14000 Hz at 48 kHz) and Swin windows")


def mel_to_image(x: torch.Tensor, *, spec_size: int, freq_ratio: int) -> torch.Tensor:
    """LAION's ``reshape_wav2img``: fold ``freq_ratio`` time segments of a mel map into rows.

    The map is first resized (bicubic, ``align_corners=True``) to ``spec_size * freq_ratio``
    frames and ``spec_size // freq_ratio`` mel bins where it is shorter; the time axis is
    then cut into ``freq_ratio`` consecutive segments stacked along the mel axis.

    Shape:
        ``x``: ``(batch, 1, frames, mels)``, ``frames <= spec_size * freq_ratio``; output:
        ``(batch, 1, spec_size, spec_size)``.
    """
    frames, mels = spec_size * freq_ratio, spec_size // freq_ratio
    if x.shape[2] < frames:
        x = F.interpolate(x, (frames, x.shape[3]), mode="bicubic", align_corners=True)
    if x.shape[3] < mels:
        x = F.interpolate(x, (x.shape[2], mels), mode="bicubic", align_corners=True)
    batch, channels = x.shape[:2]
    x = x.transpose(2, 3).reshape(batch, channels, mels, freq_ratio, frames // freq_ratio)
    return x.transpose(2, 3).reshape(batch, channels, mels * freq_ratio, frames // freq_ratio)


def _problems(missing: list[str], unexpected: list[str], mismatched: list[str]) -> str:
    out = []
    for label, items in (("missing", missing), ("unexpected", unexpected),
                         ("mis-shaped", mismatched)):
        if items:
            more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
            out.append(f"{len(items)} {label}: {', '.join(items[:_SHOWN])}{more}")
    return "; ".join(out)


def build_htsat(state: Mapping, *, spec_size: int = 256) -> tuple[nn.Module, nn.Sequential,
                                                                   torch.Tensor]:
    """Rebuild LAION-CLAP's audio tower from its weights, strictly.

    Args:
        state: the tower's tensors keyed ``audio_branch.*`` and ``audio_projection.*``.
        spec_size: side of HTSAT's square spectrogram image (not stored in the weights).

    Returns:
        ``(htsat, projection, filterbank)``: a ``transformers.ClapAudioModel`` (eval mode,
        LAION's mel-to-image rule), ``Linear -> ReLU -> Linear``, and the float64 mel filter
        bank ``(513, mels)``.

    Raises:
        CheckpointError: a weight missing, unexpected or mis-shaped, sizes that do not fit
            HTSAT, or a front-end/window buffer that differs from the formulas.
    """
    from transformers import ClapAudioModel

    config = htsat_config(state, spec_size)
    htsat = ClapAudioModel(config)
    features, out = config.hidden_size, config.projection_dim
    projection = nn.Sequential(nn.Linear(features, out), nn.ReLU(), nn.Linear(out, out))
    weights, buffers = _transformers_names(state)
    weights.update({k: v for k, v in state.items() if str(k).startswith("audio_projection.")})
    ours = {k: v for k, v in htsat.state_dict().items()
            if not k.endswith(".relative_position_index")}
    ours.update({f"audio_projection.{k}": v for k, v in projection.state_dict().items()})
    mismatched = [f"{k} expected {tuple(ours[k].shape)}, got {tuple(weights[k].shape)}"
                  for k in ours if k in weights and tuple(weights[k].shape) != tuple(ours[k].shape)]
    problems = _problems(sorted(set(ours) - set(weights)), sorted(set(weights) - set(ours)),
                         mismatched)
    if problems:
        raise CheckpointError(f"{_FN}(): the checkpoint's audio tower does not match an HTSAT "
                              f"+ projection layout (names as in transformers): {problems}")
    _check_buffers(buffers, config, htsat)
    htsat.load_state_dict({k: v for k, v in weights.items() if k.startswith("audio_encoder.")},
                          strict=False)
    projection.load_state_dict({k[len("audio_projection."):]: v for k, v in weights.items()
                                if k.startswith("audio_projection.")})
    encoder: Any = htsat.audio_encoder
    encoder.reshape_mel2img = functools.partial(
        mel_to_image, spec_size=spec_size, freq_ratio=spec_size // config.num_mel_bins)
    filterbank = slaney_mel_filterbank(sample_rate=CLAP_SAMPLE_RATE, n_fft=CLAP_N_FFT,
                                       n_mels=config.num_mel_bins, f_min=CLAP_F_MIN,
                                       f_max=CLAP_F_MAX)
    return htsat.eval(), projection.eval(), filterbank
