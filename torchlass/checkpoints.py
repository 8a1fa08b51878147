"""Load the AudioSep / DCASE 2024 Task 9 checkpoints into a `Separator`, and back.

AudioSep's ``ResUNet30`` (32 kHz) and the DCASE 2024 baseline built on it (16 kHz) save a
Lightning checkpoint whose separation network lives under ``state_dict`` with keys
``ss_model.`` + the network's own names, next to the frozen CLAP query encoder
(``query_encoder.*``). Both have the same 332 keys; only ``bn0`` and the frozen STFT/iSTFT
kernels and window follow the STFT size, which is how
[`load_audiosep`][torchlass.checkpoints.load_audiosep] tells them apart
([`STFT_LAYOUTS`][torchlass.checkpoints.STFT_LAYOUTS]). Their own loader uses
``strict=False`` and silently ignores any mismatch (docs/baseline.md#checkpoint-layout);
these loaders match every key and shape and say what is wrong. The network's 2-d kernels are
stored for ``(frames, freq)`` maps and torchlass runs on ``(freq, frames)``, so they are
transposed on the way in and out; the frozen STFT kernels stored with them are checked
against the analytic ones and dropped.
[`export_audiosep`][torchlass.checkpoints.export_audiosep] writes the original layout back,
every key included.
"""

from __future__ import annotations

import math
import os
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, cast

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
from torchlass.stft import ISTFT, STFT

__all__ = [
    "PREFIX",
    "STFT_LAYOUTS",
    "StftLayout",
    "export_audiosep",
    "export_dcase2024_baseline",
    "load_audiosep",
    "load_dcase2024_baseline",
    "read_checkpoint",
]

#: Key prefix of the separation network in the baseline's Lightning checkpoint.
PREFIX = "ss_model."
_IGNORED_PREFIX = "query_encoder."
_BN_LEAVES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_STFT = "<stft>"  # role of the frozen STFT/iSTFT kernels
_UNUSED = "<unused>"  # role of the decoders' never-used bn2 and the FiLM layer feeding it
_LIGHTNING_VERSION = "2.0.0"  # the baseline's pinned trainer; its loader reads this key
_KERNEL_RTOL = 1e-6  # relative to the largest entry; torchlibrosa's kernels are 1 ulp off
_SHOWN = 20  # keys listed per kind of problem in an error message


class StftLayout(NamedTuple):
    """The STFT a published ``ResUNet30`` checkpoint was trained with (periodic Hann, centred)."""

    owner: str  #: whose model, as a possessive for messages ("AudioSep's")
    sample_rate: int  #: Hz
    n_fft: int  #: samples
    hop_length: int  #: samples


#: Frequency bins of the frozen STFT kernels (and of ``bn0``) -> the STFT they mean.
STFT_LAYOUTS: dict[int, StftLayout] = {
    513: StftLayout("the DCASE 2024 baseline's", 16000, 1024, 160),
    1025: StftLayout("AudioSep's", 32000, 2048, 320),
}
_BASELINE = STFT_LAYOUTS[513]
_BIN_KEYS = ("base.stft.conv_real.weight", "base.bn0.running_mean", "base.bn0.weight")

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


def _kernel_shapes(n_fft: int) -> dict[str, tuple[int, ...]]:
    """The shapes of `_analytic_stft_kernels` without computing them."""
    bins = n_fft // 2 + 1
    return {"base.stft.conv_real.weight": (bins, 1, n_fft),
            "base.stft.conv_imag.weight": (bins, 1, n_fft),
            "base.istft.ola_window": (n_fft,),
            "base.istft.conv_real.weight": (n_fft, n_fft, 1),
            "base.istft.conv_imag.weight": (n_fft, n_fft, 1)}


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
    kernels = _kernel_shapes(cast(STFT, separator.stft).n_fft)
    layout: Layout = [(key, _STFT, shape) for key, shape in kernels.items()]
    for theirs, ours in pairs + films:
        shape = unused[theirs] if ours == _UNUSED else _their_shape(ours_state[ours].shape)
        layout.append((theirs, ours, shape))
    return layout


def _build(stft: StftLayout) -> Separator:
    """The baseline architecture (ResUNet30) with a published STFT layout."""
    return Separator.dcase2024_baseline(n_fft=stft.n_fft, hop_length=stft.hop_length,
                                        sample_rate=stft.sample_rate)


def _on_meta(stft: StftLayout) -> Separator:
    """`_build` without memory or initialisation cost (for its layout)."""
    with torch.device("meta"):
        return _build(stft)


def _is_hann(window: torch.Tensor) -> bool:
    """A periodic Hann window (a separator on the meta device has no values to check)."""
    if window.device.type == "meta":
        return True
    hann = torch.hann_window(window.numel(), periodic=True, dtype=torch.float64, device="cpu")
    return bool(torch.allclose(window.detach().to("cpu", torch.float64), hann, atol=1e-6))


def _stft_problem(separator: Separator, layouts: list[StftLayout]) -> str:
    """Why ``separator``'s STFT is none of ``layouts`` ("" if it is one)."""
    stft, istft = separator.stft, separator.istft
    hann = all(_is_hann(w) for w in (getattr(stft, "window", None), getattr(istft, "window", None))
               if isinstance(w, torch.Tensor))
    got = (f"n_fft = {getattr(stft, 'n_fft', '?')} with hop {getattr(stft, 'hop_length', '?')} "
           f"at {separator.sample_rate} Hz" + ("" if hann else " with another window"))
    for layout in layouts:
        same = (layout.n_fft, layout.hop_length, layout.n_fft, True)
        if (isinstance(stft, STFT) and isinstance(istft, ISTFT)
                and (stft.n_fft, stft.hop_length, stft.win_length, stft.center) == same
                and (istft.n_fft, istft.hop_length, istft.win_length, istft.center) == same
                and stft.pad_mode == "reflect" and separator.sample_rate == layout.sample_rate
                and hann):
            return ""
    wanted = " or ".join(f"n_fft = {s.n_fft} with hop {s.hop_length} at {s.sample_rate} Hz"
                         for s in layouts)
    return f"a centred periodic-Hann STFT and ISTFT of {wanted}, got {got}"


def _check_architecture(separator: object, fn: str, layouts: list[StftLayout]) -> StftLayout:
    """Require ResUNet30 with one of ``layouts``: what the original code can load."""
    owner = layouts[0].owner if len(layouts) == 1 else "AudioSep's or the DCASE 2024 baseline's"
    problem = ""
    if not isinstance(separator, Separator):
        problem = f"a Separator, got {type(separator).__name__}"
    else:
        problem = _stft_problem(separator, layouts)
    if not problem:
        separator = cast(Separator, separator)
        stft = STFT_LAYOUTS[cast(STFT, separator.stft).n_fft // 2 + 1]
        reference = _on_meta(stft)
        if not isinstance(separator.backbone, ResUNet) or not isinstance(
                separator.features, MagnitudeFeatures) or separator.features.norm is None:
            problem = "a ResUNet backbone on normalised MagnitudeFeatures"
        elif type(separator.head) is not type(reference.head) or separator.num_sources != 1:
            problem = f"a single-source {type(reference.head).__name__}"
        elif any(isinstance(m, FiLM) and m.scale is not None for m in separator.modules()):
            problem = "additive FiLM only (the original has no FiLM scale)"
        elif _layout(separator) != _layout(reference):
            problem = f"ResUNet30 with one channel, a 512-d condition and n_fft = {stft.n_fft}"
    if problem:
        raise CheckpointError(f"{fn}(): argument 'separator' expected {owner} architecture, "
                              f"which the original code loads: {problem}")
    return stft


def _unpickling_reason(err: Exception) -> str:
    """The one informative line of ``torch.load``'s multi-paragraph weights-only message."""
    text = " ".join(str(err).split())
    marker = "WeightsUnpickler error:"
    detail = text.split(marker, 1)[1] if marker in text else text
    return detail.split(" was not an allowed global", 1)[0].split(" Check the", 1)[0].strip()


def _load_file(file: Path, map_location: Any) -> object:
    """``torch.load(weights_only=True)`` of a file, every failure as a reason in one line."""
    if not file.exists():
        raise CheckpointError(f"read_checkpoint(): cannot read {str(file)!r}: file not found")
    try:
        with file.open("rb") as f:
            head = f.read(4)
    except OSError as err:
        raise CheckpointError(f"read_checkpoint(): cannot read {str(file)!r}: "
                              f"{err.strerror or err}") from None
    if not head:
        raise CheckpointError(f"read_checkpoint(): cannot read {str(file)!r}: the file is empty")
    try:
        with warnings.catch_warnings():  # a foreign pickle's protocol warning is not ours
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        detail = _unpickling_reason(err)  # "Unsupported operand N" says nothing to a user
        reason = ("not a checkpoint written by torch.save" if "Unsupported global" not in detail
                  else "it holds objects other than tensors and plain containers, which are "
                  f"not unpickled because that could run code ({detail})")
    except OSError as err:
        reason = str(err.strerror or err)
    # Arbitrary bytes make torch.load fail in many ways (EOFError, KeyError, RuntimeError...).
    except Exception as err:
        first = " ".join(str(err).split()).split(". ", 1)[0]
        reason = (f"damaged zip archive, e.g. truncated ({first})" if head.startswith(b"PK")
                  else "not a checkpoint written by torch.save")
    raise CheckpointError(f"read_checkpoint(): cannot read {str(file)!r}: {reason}")


def read_checkpoint(source: str | os.PathLike | Mapping, *,
                    map_location: Any = "cpu") -> Mapping[str, Any]:
    """Read a checkpoint safely: the one reader of every torchlass loader.

    A path is read with ``torch.load(weights_only=True)``, which rebuilds tensors and
    plain containers (dict, list, tuple, str, numbers, None) and refuses anything else, so
    reading a file never runs code from it. A mapping (a checkpoint already in memory) is
    returned as it is. A folder written by
    [`save_pretrained`][torchlass.pretrained.save_pretrained] (JSON and safetensors, no
    pickle) is rebuilt by [`from_pretrained`][torchlass.pretrained.from_pretrained] and
    returned as ``{"format": "torchlass.pretrained", "separator": separator}``. To read a
    file you trust that holds other objects, load it with ``torch.load`` yourself and pass
    the result.

    Args:
        source: a ``torch.save`` file, a pretrained folder or an already-loaded checkpoint
            mapping.
        map_location: where tensors are placed, as for ``torch.load``.

    Returns:
        The checkpoint's top-level mapping.

    Raises:
        CheckpointError: in one line naming the file and the reason: the file is missing,
            empty, a folder that is not a pretrained one (or a bad one), unreadable, not
            written by ``torch.save``, a damaged archive,
            holds objects other than tensors and plain containers, or its top level is
            not a mapping.

    Examples:
        >>> read_checkpoint({"step": 3})["step"]
        3
        >>> read_checkpoint("x.pt")
        Traceback (most recent call last):
        ...
        torchlass.errors.CheckpointError: read_checkpoint(): cannot read 'x.pt': file not found
    """
    if isinstance(source, Mapping):
        return source
    if not isinstance(source, str | os.PathLike):
        raise CheckpointError("read_checkpoint(): argument 'source' expected a path or a "
                              f"checkpoint mapping, got {type(source).__name__}")
    file = Path(source)
    if file.is_dir():
        from torchlass import pretrained

        if not (file / pretrained.CONFIG_NAME).is_file():
            raise CheckpointError(f"read_checkpoint(): cannot read {str(file)!r}: it is a "
                                  f"folder without {pretrained.CONFIG_NAME}, expected a "
                                  "checkpoint file or a save_pretrained folder")
        return {"format": pretrained.FORMAT, "separator": pretrained.from_pretrained(file)}
    data = _load_file(file, map_location)
    if not isinstance(data, Mapping):
        raise CheckpointError(f"read_checkpoint(): cannot read {str(file)!r}: expected a "
                              f"mapping at the top level, got {type(data).__name__}")
    return data


def _read(source: object, map_location: Any, fn: str) -> Mapping:
    """The network's state_dict: a checkpoint's ``state_dict`` entry, or the mapping itself."""
    if not isinstance(source, str | os.PathLike | Mapping):
        raise CheckpointError(f"{fn}(): argument 'source' expected a path, a checkpoint dict or "
                              f"a state_dict, got {type(source).__name__}")
    checkpoint = read_checkpoint(source, map_location=map_location)
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{fn}(): argument 'source' expected 'state_dict' to be a mapping "
                              f"of tensors, got {type(state).__name__}")
    return state


def _listing(label: str, items: list[str]) -> str:
    more = f" (+{len(items) - _SHOWN} more)" if len(items) > _SHOWN else ""
    return f"{len(items)} {label}: " + ", ".join(items[:_SHOWN]) + more


def _stft_layout_of(network: Mapping[str, tuple[str, Any]], fn: str) -> StftLayout | None:
    """The STFT layout a checkpoint's frozen kernels (or, without them, ``bn0``) imply.

    ``None`` when neither is there: the strict key check then reports them missing.
    """
    for key in _BIN_KEYS:
        if key in network and isinstance(network[key][1], torch.Tensor):
            name, value = network[key]
            bins = value.shape[0] if value.dim() > 0 else 0
            if bins not in STFT_LAYOUTS:
                known = " or ".join(f"{b} (n_fft = {s.n_fft}, {s.sample_rate} Hz)"
                                    for b, s in STFT_LAYOUTS.items())
                raise CheckpointError(f"{fn}(): argument 'source' holds {name} with {bins} "
                                      f"frequency bins (shape {tuple(value.shape)}), expected "
                                      f"{known}: not a ResUNet30 checkpoint of a known STFT")
            return STFT_LAYOUTS[bins]
    return None


def _load(source: str | os.PathLike | Mapping, fn: str, fixed: StftLayout | None,
          map_location: Any) -> Separator:
    """Strictly load a ResUNet30 checkpoint into a separator with the matching STFT.

    ``fixed`` forces one STFT layout (a checkpoint of the other is then listed as shape
    mismatches, with a hint); ``None`` takes it from the checkpoint's kernel shapes.
    """
    state = _read(source, map_location, fn)
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

    found = _stft_layout_of(network, fn)
    stft = fixed or found or _BASELINE
    layout = _layout(_on_meta(stft))
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
        hint = (f" (its {found.n_fft // 2 + 1} frequency bins are {found.owner} layout at "
                f"{found.sample_rate} Hz: load it with load_audiosep())"
                if found is not None and found != stft else "")
        raise CheckpointError(f"{fn}(): argument 'source' does not match {stft.owner} "
                              f"ResUNet30 layout: {'; '.join(problems)}{hint}")
    present = [key for key in _kernel_shapes(stft.n_fft) if key in network]
    kernels = _analytic_stft_kernels(stft.n_fft) if present else {}
    for key in present:
        name, value = network[key]
        expected = kernels[key]
        error = float((value.detach().to("cpu", torch.float64) - expected).abs().max())
        if error > _KERNEL_RTOL * float(expected.abs().max()):
            raise CheckpointError(
                f"{fn}(): argument 'source' holds a frozen STFT kernel {name} that differs "
                f"from the periodic-Hann DFT kernel (n_fft = {stft.n_fft}) by up to "
                f"{error:.3g}: the checkpoint was not made with {stft.owner} STFT"
            )
    separator = _build(stft)
    separator.load_state_dict(ours_state, strict=True)
    return separator.eval()


def load_audiosep(source: str | os.PathLike | Mapping, *, map_location: Any = "cpu"
                  ) -> Separator:
    """Build the `Separator` an AudioSep-layout checkpoint needs and load the checkpoint into it.

    Accepts AudioSep's ``audiosep_base_4M_steps.ckpt`` (32 kHz) and the DCASE 2024 Task 9 baseline's
    checkpoint (16 kHz) in any of the forms
    [`load_dcase2024_baseline`][torchlass.checkpoints.load_dcase2024_baseline] takes: the Lightning
    checkpoint (``{"state_dict": {"ss_model.<key>": ..., "query_encoder.<key>": ...}, ...}``,
    query-encoder entries ignored) or a bare ``ResUNet30`` state_dict with or without the
    ``ss_model.`` prefix, as a path or an already-loaded object. The STFT comes from the frozen
    kernels' frequency bins (or ``bn0``'s, when the kernels were stripped), see
    [`STFT_LAYOUTS`][torchlass.checkpoints.STFT_LAYOUTS]: 513 bins is 16 kHz with ``n_fft = 1024``
    and hop 160, 1025 bins is 32 kHz with ``n_fft = 2048`` and hop 320. Loading is as strict as
    `load_dcase2024_baseline`'s.

    Args:
        source: path, Lightning checkpoint dict or state_dict. A path is read with
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint] (tensors and plain
            containers only).
        map_location: where a path's tensors are placed, as for ``torch.load``.

    Returns:
        [`Separator.dcase2024_baseline`][torchlass.separator.Separator.dcase2024_baseline]
        with the checkpoint's STFT and ``sample_rate``, in eval mode, float32, holding the
        checkpoint's weights.

    Raises:
        CheckpointError: on an STFT size other than 513 or 1025 bins, listing the missing
            and unexpected keys and the shape mismatches (each as named in ``source``),
            naming an STFT kernel that differs from the analytic one, or when ``source``
            is not a mapping of tensors.

    Examples:
        >>> with torch.device("meta"):  # the layout only: no memory, no initialisation
        ...     checkpoint = export_audiosep(Separator.dcase2024_baseline(
        ...         n_fft=2048, hop_length=320, sample_rate=32000), lightning=False)
        >>> checkpoint["base.bn0.running_var"].shape
        torch.Size([1025])
    """
    return _load(source, "load_audiosep", None, map_location)


def load_dcase2024_baseline(source: str | os.PathLike | Mapping, *,
                            map_location: Any = "cpu") -> Separator:
    """Build the baseline [`Separator`][torchlass.separator.Separator] and load a baseline
    checkpoint into it.

    Accepts the official Lightning checkpoint (``{"state_dict": {"ss_model.<key>": ...,
    "query_encoder.<key>": ...}, ...}``, query-encoder entries ignored) or a bare ``ResUNet30``
    state_dict with or without the ``ss_model.`` prefix, as a path or as an already-loaded object.
    Every network key must be present with its shape; the decoders' unused ``bn2`` and ``beta2``
    entries and the frozen STFT/iSTFT kernels may be absent. Kernels present must equal the analytic
    periodic-Hann DFT kernels (to 1e-6 of their largest entry) and are then dropped: torchlass
    computes the STFT with ``torch.stft``. Only the 16 kHz layout is accepted;
    [`load_audiosep`][torchlass.checkpoints.load_audiosep] also takes AudioSep's 32 kHz.

    Args:
        source: path, Lightning checkpoint dict or state_dict. A path is read with
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint] (tensors and plain
            containers only); load a trusted file holding other objects yourself and pass
            the result.
        map_location: where a path's tensors are placed, as for ``torch.load``.

    Returns:
        [`Separator.dcase2024_baseline`][torchlass.separator.Separator.dcase2024_baseline] (16 kHz,
        ``n_fft = 1024``, hop 160) in eval mode, float32, holding the checkpoint's weights.

    Raises:
        CheckpointError: listing the missing and unexpected keys and the shape mismatches
            (each as named in ``source``), or naming an STFT kernel that differs from the
            analytic one, or when ``source`` cannot be read (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]) or is not a mapping
            of tensors.

    Examples:
        >>> sep = load_dcase2024_baseline(export_dcase2024_baseline(
        ...     Separator.dcase2024_baseline()))
        >>> sep.training
        False
    """
    return _load(source, "load_dcase2024_baseline", _BASELINE, map_location)


def _export(separator: Separator, stft: StftLayout, path: str | os.PathLike | None,
            lightning: bool) -> dict[str, Any]:
    ours_state = separator.state_dict()
    kernels = _analytic_stft_kernels(stft.n_fft)
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
        if value.device.type == "meta":  # a layout-only separator gives a layout-only file
            state[theirs] = torch.empty(value.shape, dtype=dtype, device="meta")
        else:
            state[theirs] = value.to("cpu", dtype).contiguous().clone()
    checkpoint: dict[str, Any] = state
    if lightning:
        checkpoint = {"state_dict": {PREFIX + k: v for k, v in state.items()},
                      "pytorch-lightning_version": _LIGHTNING_VERSION,
                      "epoch": 0, "global_step": 0}
    if path is not None:
        torch.save(checkpoint, path)
    return checkpoint


def export_audiosep(separator: Separator, path: str | os.PathLike | None = None, *,
                    lightning: bool = True) -> dict[str, Any]:
    """Write a ResUNet30 separator in the original AudioSep / DCASE checkpoint layout.

    Every key of the original ``ResUNet30(1, 1, 512)`` state_dict is written in its order and shape,
    float32 on the CPU: the network's weights (2-d kernels transposed back to ``(frames, freq)``),
    the analytic STFT/iSTFT kernels of the separator's ``n_fft``, and the decoders' unused ``bn2``
    (at BatchNorm's initial values) and ``beta2`` (zeros) entries, so the original code (AudioSep's
    at 32 kHz, the DCASE baseline's at 16 kHz) loads the result with ``strict=True``, and
    [`load_audiosep`][torchlass.checkpoints.load_audiosep] gives it back.

    Args:
        separator: a separator with the baseline's architecture and one of the STFTs of
            [`STFT_LAYOUTS`][torchlass.checkpoints.STFT_LAYOUTS] (as `load_audiosep` builds it).
        path: if given, the result is also saved there with ``torch.save``.
        lightning: return a Lightning checkpoint (``{"state_dict": {"ss_model.<key>": ...},
            "pytorch-lightning_version": "2.0.0", ...}``) for ``AudioSep.load_from_checkpoint``;
            ``False`` returns the bare state_dict for ``ResUNet30.load_state_dict``.

    Returns:
        The checkpoint dict (what was saved). A separator on the meta device gives meta
        tensors: the layout without the values.

    Raises:
        CheckpointError: if ``separator`` does not have ResUNet30's architecture with a
            published STFT (``n_fft``, hop and ``sample_rate`` together).
    """
    stft = _check_architecture(separator, "export_audiosep", list(STFT_LAYOUTS.values()))
    return _export(separator, stft, path, lightning)


def export_dcase2024_baseline(separator: Separator, path: str | os.PathLike | None = None, *,
                              lightning: bool = True) -> dict[str, Any]:
    """Write a 16 kHz baseline separator in the original's checkpoint layout.

    [`export_audiosep`][torchlass.checkpoints.export_audiosep] restricted to the DCASE 2024
    baseline's STFT (16 kHz, ``n_fft = 1024``, hop 160).

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
    stft = _check_architecture(separator, "export_dcase2024_baseline", [_BASELINE])
    return _export(separator, stft, path, lightning)
