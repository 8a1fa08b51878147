"""Load the DCASE 2024 Task 9 baseline checkpoint into a
[`Separator`][torchlass.separator.Separator], and back.

The baseline (AudioSep's ``ResUNet30`` at 16 kHz) saves a Lightning checkpoint whose
separation network lives under ``state_dict`` with keys ``ss_model.`` + the network's own
names, next to the frozen CLAP query encoder (``query_encoder.*``). Its own loader uses
``strict=False`` and silently ignores any mismatch (SPEC.md sections 8 and 9);
[`load_dcase2024_baseline`][torchlass.checkpoints.load_dcase2024_baseline] matches every key and
shape and says what is wrong. The network's 2-d kernels are stored for ``(frames, freq)`` maps and
torchlass runs on ``(freq, frames)``, so they are transposed on the way in and out; the frozen STFT
kernels stored with them are checked against the analytic ones and dropped.
[`export_dcase2024_baseline`][torchlass.checkpoints.export_dcase2024_baseline] writes the original
layout back, every key included.
"""

from __future__ import annotations

import math
import os
import pickle
from collections.abc import Mapping
from typing import Any, cast

import torch
from torch import nn

from torchlass.errors import CheckpointError
from torchlass.nn import (
    DecoderBlock,
    EncoderBlock,
    FiLM,
    MagnitudeFeatures,
    ResidualBlock,
    ResUNet,
)
from torchlass.separator import Separator

__all__ = ["PREFIX", "export_dcase2024_baseline", "load_dcase2024_baseline"]

#: Key prefix of the separation network in the baseline's Lightning checkpoint.
PREFIX = "ss_model."
_IGNORED_PREFIX = "query_encoder."
_BN_LEAVES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_STFT = "<stft>"  # role of the frozen STFT/iSTFT kernels
_UNUSED = "<unused>"  # role of the decoders' never-used bn2 and the FiLM layer feeding it
_BASELINE_N_FFT = 1024
_LIGHTNING_VERSION = "2.0.0"  # the baseline's pinned trainer; its loader reads this key
_KERNEL_RTOL = 1e-6  # relative to the largest entry; torchlibrosa's kernels are 1 ulp off
_SHOWN = 20  # keys listed per kind of problem in an error message

Layout = list[tuple[str, str, tuple[int, ...]]]


def _analytic_stft_kernels(n_fft: int) -> dict[str, torch.Tensor]:
    """torchlibrosa's frozen kernels for a periodic Hann window, exact in float64."""
    n = torch.arange(n_fft, dtype=torch.float64)
    window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)
    k = torch.arange(n_fft)
    angle = 2 * math.pi * ((k[:, None] * k[None, :]) % n_fft).double() / n_fft
    bins = n_fft // 2 + 1
    return {
        "base.stft.conv_real.weight": (torch.cos(angle[:bins]) * window)[:, None, :],
        "base.stft.conv_imag.weight": (-torch.sin(angle[:bins]) * window)[:, None, :],
        "base.istft.ola_window": window**2,
        # inverse DFT with its 1/N factor and the synthesis window of output sample b (rows)
        "base.istft.conv_real.weight": (torch.cos(angle) / n_fft * window[:, None])[..., None],
        "base.istft.conv_imag.weight": (torch.sin(angle) / n_fft * window[:, None])[..., None],
    }


def _bn(theirs: str, ours: str) -> list[tuple[str, str]]:
    return [(f"{theirs}.{leaf}", f"{ours}.{leaf}") for leaf in _BN_LEAVES]


def _pair(theirs: str, ours: str, leaves: tuple[str, ...] = ("weight", "bias")) -> list:
    return [(f"{theirs}.{leaf}", f"{ours}.{leaf}") for leaf in leaves]


def _block(theirs: str, ours: str, block: ResidualBlock) -> list[tuple[str, str]]:
    pairs = _bn(f"{theirs}.bn1", f"{ours}.norm1") + _bn(f"{theirs}.bn2", f"{ours}.norm2")
    pairs += _pair(f"{theirs}.conv1", f"{ours}.conv1", ("weight",))
    pairs += _pair(f"{theirs}.conv2", f"{ours}.conv2", ("weight",))
    if isinstance(block.shortcut, nn.Conv2d):
        pairs += _pair(f"{theirs}.shortcut", f"{ours}.shortcut")
    return pairs


def _their_shape(shape: torch.Size) -> tuple[int, ...]:
    """A 2-d kernel's shape for ``(frames, freq)`` maps: the last two sizes swapped."""
    return (*shape[:2], shape[3], shape[2]) if len(shape) == 4 else tuple(shape)


def _layout(separator: Separator) -> Layout:
    """``(their key, our key or role, their shape)`` in the original's state_dict order.

    The original registers, in order: the STFT and iSTFT kernels, ``bn0``, ``pre_conv``,
    the encoders and ``conv_block7a`` (each with a ``conv_block1``), the decoders (``conv1``
    = the transposed convolution, ``bn1``, ``conv_block2``, the unused ``bn2``),
    ``after_conv``, then one FiLM ``Linear`` per modulated BatchNorm in the same walk.
    """
    net = separator.backbone
    assert isinstance(net, ResUNet)
    pairs: list[tuple[str, str]] = _bn("base.bn0", "features.norm")
    pairs += _pair("base.pre_conv", "backbone.stem")
    films: list[tuple[str, str]] = []
    unused: dict[str, tuple[int, ...]] = {}
    levels = [(f"encoder_block{i}", f"backbone.encoders.{i - 1}.block",
               cast(EncoderBlock, e).block) for i, e in enumerate(net.encoders, 1)]
    levels.append(("conv_block7a", "backbone.bottleneck", net.bottleneck))
    for theirs, ours, block in levels:
        pairs += _block(f"base.{theirs}.conv_block1", ours, block)
        films += _pair(f"film.{theirs}->conv_block1->beta1", f"{ours}.film1.shift")
        films += _pair(f"film.{theirs}->conv_block1->beta2", f"{ours}.film2.shift")
    for i, module in enumerate(net.decoders, 1):
        decoder = cast(DecoderBlock, module)
        theirs, ours = f"decoder_block{i}", f"backbone.decoders.{i - 1}"
        width = decoder.norm.num_features
        pairs += _pair(f"base.{theirs}.conv1", f"{ours}.up", ("weight",))
        pairs += _bn(f"base.{theirs}.bn1", f"{ours}.norm")
        pairs += _block(f"base.{theirs}.conv_block2", f"{ours}.block", decoder.block)
        for leaf in _BN_LEAVES:
            key = f"base.{theirs}.bn2.{leaf}"
            unused[key] = () if leaf == "num_batches_tracked" else (width,)
            pairs.append((key, _UNUSED))
        films += _pair(f"film.{theirs}->beta1", f"{ours}.film.shift")
        unused[f"film.{theirs}->beta2.weight"] = (width, net.condition_size)
        unused[f"film.{theirs}->beta2.bias"] = (width,)
        films += [(f"film.{theirs}->beta2.{leaf}", _UNUSED) for leaf in ("weight", "bias")]
        films += _pair(f"film.{theirs}->conv_block2->beta1", f"{ours}.block.film1.shift")
        films += _pair(f"film.{theirs}->conv_block2->beta2", f"{ours}.block.film2.shift")
    pairs += _pair("base.after_conv", "backbone.out_conv")

    ours_state = separator.state_dict()
    kernels = _analytic_stft_kernels(_BASELINE_N_FFT)
    layout: Layout = [(key, _STFT, tuple(v.shape)) for key, v in kernels.items()]
    for theirs, ours in pairs + films:
        shape = unused[theirs] if ours == _UNUSED else _their_shape(ours_state[ours].shape)
        layout.append((theirs, ours, shape))
    return layout


def _baseline_on_meta() -> Separator:
    """The baseline's structure without memory or initialisation cost (for its layout)."""
    with torch.device("meta"):
        return Separator.dcase2024_baseline()


def _check_baseline_architecture(separator: object, fn: str) -> None:
    """Require the baseline's structure: what the original code can load."""
    reference = _baseline_on_meta()
    problem = ""
    if not isinstance(separator, Separator):
        problem = f"a Separator, got {type(separator).__name__}"
    elif not isinstance(separator.backbone, ResUNet) or not isinstance(
            separator.features, MagnitudeFeatures) or separator.features.norm is None:
        problem = "a ResUNet backbone on normalised MagnitudeFeatures"
    elif type(separator.head) is not type(reference.head) or separator.num_sources != 1:
        problem = f"a single-source {type(reference.head).__name__}"
    elif any(isinstance(m, FiLM) and m.scale is not None for m in separator.modules()):
        problem = "additive FiLM only (the original has no FiLM scale)"
    elif _layout(separator) != _layout(reference):
        problem = "ResUNet30 with one channel, a 512-d condition and n_fft = 1024"
    if problem:
        raise CheckpointError(f"{fn}(): argument 'separator' expected the DCASE 2024 baseline's "
                              f"architecture, which the original code loads: {problem}")


def _read(source: object, map_location: Any, weights_only: bool, fn: str) -> Mapping:
    if isinstance(source, str | os.PathLike):
        try:
            source = torch.load(source, map_location=map_location, weights_only=weights_only)
        except pickle.UnpicklingError as err:
            lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
            why = next((ln for ln in lines if "Unpickler error" in ln), lines[0] if lines else "")
            raise CheckpointError(
                f"{fn}(): argument 'source' could not be read with weights_only=True, it holds "
                f"objects other than tensors ({why}); if you trust the file, pass "
                "weights_only=False"
            ) from None
    if not isinstance(source, Mapping):
        raise CheckpointError(f"{fn}(): argument 'source' expected a path, a checkpoint dict or "
                              f"a state_dict, got {type(source).__name__}")
    state = source.get("state_dict", source)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{fn}(): argument 'source' expected 'state_dict' to be a mapping "
                              f"of tensors, got {type(state).__name__}")
    return state


def _listing(label: str, items: list[str]) -> str:
    more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return f"{len(items)} {label}: " + ", ".join(items[:_SHOWN]) + more


def load_dcase2024_baseline(source: str | os.PathLike | Mapping, *,
                            map_location: Any = "cpu", weights_only: bool = True) -> Separator:
    """Build the baseline [`Separator`][torchlass.separator.Separator] and load a baseline
    checkpoint into it.

    Accepts the official Lightning checkpoint (``{"state_dict": {"ss_model.<key>": ...,
    "query_encoder.<key>": ...}, ...}``, query-encoder entries ignored) or a bare
    ``ResUNet30`` state_dict with or without the ``ss_model.`` prefix, as a path or as an
    already-loaded object. Every network key must be present with its shape; the decoders'
    unused ``bn2`` and ``beta2`` entries and the frozen STFT/iSTFT kernels may be absent.
    Kernels present must equal the analytic periodic-Hann DFT kernels (to 1e-6 of their
    largest entry) and are then dropped: torchlass computes the STFT with ``torch.stft``.

    Args:
        source: path, Lightning checkpoint dict or state_dict.
        map_location: passed to ``torch.load`` for a path.
        weights_only: passed to ``torch.load``; only set ``False`` for a trusted file.

    Returns:
        [`Separator.dcase2024_baseline`][torchlass.separator.Separator.dcase2024_baseline] (16 kHz,
        ``n_fft = 1024``, hop 160) in eval mode, float32, holding the checkpoint's weights.

    Raises:
        CheckpointError: listing the missing and unexpected keys and the shape mismatches
            (each as named in ``source``), or naming an STFT kernel that differs from the
            analytic one, or when ``source`` is not a mapping of tensors.

    Examples:
        >>> sep = load_dcase2024_baseline(export_dcase2024_baseline(
        ...     Separator.dcase2024_baseline()))
        >>> sep.training
        False
    """
    fn = "load_dcase2024_baseline"
    state = _read(source, map_location, weights_only, fn)
    prefixed = any(str(k).startswith(PREFIX) for k in state)
    network: dict[str, tuple[str, Any]] = {}  # their key -> (name in source, value)
    unexpected: list[str] = []
    for key, value in state.items():
        name = str(key)
        if name.startswith(_IGNORED_PREFIX):
            continue
        if prefixed and not name.startswith(PREFIX):
            unexpected.append(name)
            continue
        network[name[len(PREFIX):] if prefixed else name] = (name, value)

    layout = _layout(_baseline_on_meta())
    known = {theirs for theirs, _, _ in layout}
    unexpected += [name for key, (name, _) in network.items() if key not in known]
    missing, mismatched, ours_state = [], [], {}
    for theirs, ours, shape in layout:
        if theirs not in network:
            if ours not in (_STFT, _UNUSED):
                missing.append(PREFIX + theirs if prefixed else theirs)
            continue
        name, value = network[theirs]
        if not isinstance(value, torch.Tensor):
            mismatched.append(f"{name} expected a tensor, got {type(value).__name__}")
        elif tuple(value.shape) != shape:
            mismatched.append(f"{name} expected shape {shape}, got {tuple(value.shape)}")
        elif ours not in (_STFT, _UNUSED):
            ours_state[ours] = value.transpose(-1, -2) if value.dim() == 4 else value
    if missing or unexpected or mismatched:
        problems = [_listing(label, items) for label, items in (
            ("missing key(s)", missing), ("unexpected key(s)", unexpected),
            ("shape mismatch(es)", mismatched)) if items]
        raise CheckpointError(f"{fn}(): argument 'source' does not match the DCASE 2024 "
                              f"baseline's ResUNet30 layout: {'; '.join(problems)}")
    for key, expected in _analytic_stft_kernels(_BASELINE_N_FFT).items():
        if key in network:
            name, value = network[key]
            error = float((value.detach().to("cpu", torch.float64) - expected).abs().max())
            if error > _KERNEL_RTOL * float(expected.abs().max()):
                raise CheckpointError(
                    f"{fn}(): argument 'source' holds a frozen STFT kernel {name} that differs "
                    f"from the periodic-Hann DFT kernel (n_fft = 1024) by up to {error:.3g}: "
                    "the checkpoint was not made with the baseline's STFT"
                )
    separator = Separator.dcase2024_baseline()
    separator.load_state_dict(ours_state, strict=True)
    return separator.eval()


def export_dcase2024_baseline(separator: Separator, path: str | os.PathLike | None = None, *,
                              lightning: bool = True) -> dict[str, Any]:
    """Write a baseline separator in the original's checkpoint layout.

    Every key of the original ``ResUNet30(1, 1, 512)`` state_dict is written in its order
    and shape, float32 on the CPU: the network's weights (2-d kernels transposed back to
    ``(frames, freq)``), the analytic STFT/iSTFT kernels, and the decoders' unused
    ``bn2`` (at BatchNorm's initial values) and ``beta2`` (zeros) entries, so the original
    code loads the result with ``strict=True``.

    Args:
        separator: a separator with the baseline's architecture (as built by
            [`Separator.dcase2024_baseline`][torchlass.separator.Separator.dcase2024_baseline] or
            [`load_dcase2024_baseline`][torchlass.checkpoints.load_dcase2024_baseline]).
        path: if given, the result is also saved there with ``torch.save``.
        lightning: return a Lightning checkpoint (``{"state_dict": {"ss_model.<key>": ...},
            "pytorch-lightning_version": "2.0.0", ...}``) for ``AudioSep.load_from_checkpoint``;
            ``False`` returns the bare state_dict for ``ResUNet30.load_state_dict``.

    Returns:
        The checkpoint dict (what was saved).

    Raises:
        CheckpointError: if ``separator`` does not have the baseline's architecture.
    """
    _check_baseline_architecture(separator, "export_dcase2024_baseline")
    ours_state = separator.state_dict()
    kernels = _analytic_stft_kernels(_BASELINE_N_FFT)
    state: dict[str, torch.Tensor] = {}
    for theirs, ours, shape in _layout(separator):
        if ours == _STFT:
            value = kernels[theirs]
        elif ours == _UNUSED:
            leaf = theirs.rsplit(".", 1)[1]
            fill = 1.0 if leaf in ("weight", "running_var") and ".bn2." in theirs else 0.0
            value = torch.full(shape, fill)
        else:
            value = ours_state[ours].detach()
            value = value.transpose(-1, -2) if value.dim() == 4 else value
        dtype = torch.int64 if theirs.endswith("num_batches_tracked") else torch.float32
        state[theirs] = value.to("cpu", dtype).contiguous().clone()
    checkpoint: dict[str, Any] = state
    if lightning:
        checkpoint = {"state_dict": {PREFIX + k: v for k, v in state.items()},
                      "pytorch-lightning_version": _LIGHTNING_VERSION,
                      "epoch": 0, "global_step": 0}
    if path is not None:
        torch.save(checkpoint, path)
    return checkpoint
