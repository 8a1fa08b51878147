"""Training configurations: nested dataclasses, named presets, TOML files, CLI overrides.

A [`Config`][torchlass.recipes.config.Config] has five sections: ``model`` (which
separator, STFT, widths), ``query`` (text encoder), ``data`` (caption lists, segment,
mixing, validation recipe), ``optim`` (Adam with AMSGrad, schedule, clipping) and
``train`` (steps, loss, precision, logging, checkpoints, the checkpoint a fine-tuning run
starts from). [`PRESETS`][torchlass.recipes.config.PRESETS] holds the named
configurations: the challenge baseline, SRPOL's four systems as their report describes
them, their MixIT and SDR-based-loss runs, the complex ratio mask and system 1 with negative
queries.
[`get_config`][torchlass.recipes.config.get_config] returns a fresh copy of one,
[`load_config`][torchlass.recipes.config.load_config] reads a TOML file (a
``preset = "name"`` key starts from that preset), and
[`apply_overrides`][torchlass.recipes.config.apply_overrides] changes any field from
``"section.field=value"`` strings, the value parsed to the field's type
(``"model.widths=8,16,32"``, ``"optim.lr=1e-4"``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torchlass.errors import TorchlassError

__all__ = [
    "PRESETS",
    "SRPOL_TRAIN_LISTS",
    "Config",
    "DataConfig",
    "ModelConfig",
    "OptimConfig",
    "QueryConfig",
    "TrainConfig",
    "apply_overrides",
    "checkpoint_path",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "get_config",
    "load_config",
]

_RESUNET30_WIDTHS = (32, 64, 128, 256, 384, 384)
_RESUNET30_POOLS = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (2, 1))


@dataclass
class ModelConfig:
    """The separator (see [`build_separator`][torchlass.recipes.build_separator]).

    Attributes:
        architecture: ``"dcase2024_baseline"`` (magnitude in, magnitude mask + phase
            rotation out), ``"srpol_system1"`` (real and imaginary parts in, real/imag
            ratio masks out) or ``"complex_ratio_mask"`` (real/imag in, true complex mask).
        sample_rate: in Hz.
        n_fft: DFT size in samples.
        hop_length: STFT hop in samples.
        condition_size: size of the text embedding.
        stem_width: width of the ResUNet's input convolution.
        widths: ResUNet encoder widths per level (the baseline's ResUNet30 by default).
        pools: ``(freq, frames)`` pooling per level.
        film_scale: full FiLM (scale and shift) instead of the baseline's shift only.
        num_sources: estimates per query (more than 1 only for MixIT: the first is the
            query's source).
        mask_bound: bound of the real/imag or complex mask (``""``: the head's default).
    """

    architecture: str = "dcase2024_baseline"
    sample_rate: int = 16000
    n_fft: int = 1024
    hop_length: int = 160
    condition_size: int = 512
    stem_width: int = 32
    widths: tuple[int, ...] = _RESUNET30_WIDTHS
    pools: tuple[tuple[int, int], ...] = _RESUNET30_POOLS
    film_scale: bool = False
    num_sources: int = 1
    mask_bound: str = ""


@dataclass
class QueryConfig:
    """The text encoder.

    Attributes:
        encoder: ``"clap"`` (LAION-CLAP's text tower from ``clap_checkpoint``) or
            ``"hashed"`` ([`HashedTextEncoder`][torchlass.query.HashedTextEncoder], no
            download).
        clap_checkpoint: path of the LAION-CLAP checkpoint file.
        clap_amodel: audio tower name the CLAP checkpoint was trained with.
    """

    encoder: str = "clap"
    clap_checkpoint: str = "music_speech_audioset_epoch_15_esc_89.98.pt"
    clap_amodel: str = "HTSAT-base"


@dataclass
class DataConfig:
    """Training data, mixing and validation.

    Attributes:
        train_lists: caption lists (files).
        list_format: ``"dcase_json"``, ``"clotho_csv"`` or ``"audiocaps_csv"``.
        audio_dir: folder the lists' audio paths are relative to (``""``: as listed).
        segment_seconds: training segment length in seconds.
        min_seconds: shortest clip kept, in seconds.
        batch_size: clips per step and process (the global batch is this times the
            number of processes).
        num_workers: data-loading worker processes.
        snr_range: ``(low, high)`` target-to-interferer SNR of training mixtures, dB.
        integer_snr: draw whole-dB SNRs (the baseline).
        pairing: ``"next"`` (the baseline) or ``"disjoint"`` (no shared label).
        negative_query_prob: probability that a training mixture's interferer caption is
            given to the model as a negative query (what to leave out), in ``[0, 1]``; more
            than 0 needs a model that takes one (``srpol_negative_query``).
        validation_recipe: a ``lass_synthetic_validation.csv``-style file (``""``: none).
        validation_audio_dir: folder of the recipe's ``<id>.wav`` files.
        validation_limit: evaluate only the first rows during training (0: all).
    """

    train_lists: tuple[str, ...] = ()
    list_format: str = "dcase_json"
    audio_dir: str = ""
    segment_seconds: float = 10.0
    min_seconds: float = 0.5
    batch_size: int = 16
    num_workers: int = 4
    snr_range: tuple[float, float] = (-10.0, 10.0)
    integer_snr: bool = True
    pairing: str = "next"
    negative_query_prob: float = 0.0
    validation_recipe: str = ""
    validation_audio_dir: str = ""
    validation_limit: int = 0


@dataclass
class OptimConfig:
    """The optimiser and the learning-rate schedule (the baseline's values by default).

    The optimiser is ``torch.optim.AdamW``; with the default ``weight_decay=0`` and
    ``amsgrad=True`` it is Adam with AMSGrad, as in the baseline and SRPOL's systems.

    Attributes:
        lr: base learning rate.
        weight_decay: AdamW's decoupled weight decay (0: plain Adam).
        amsgrad: use the AMSGrad variant.
        betas: Adam's ``(beta1, beta2)``.
        eps: Adam's epsilon.
        schedule: ``"baseline_warmup"`` (the baseline's stepped warm-up),
            ``"linear_warmup"`` or ``"constant"`` (no warm-up: fine-tuning).
        warmup_steps: see [`torchlass.recipes.schedule`][torchlass.recipes.schedule].
        grad_clip_norm: clip the global gradient norm to this (0: no clipping).
    """

    lr: float = 1e-3
    weight_decay: float = 0.0
    amsgrad: bool = True
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: str = "baseline_warmup"
    warmup_steps: int = 10000
    grad_clip_norm: float = 0.0


@dataclass
class TrainConfig:
    """The training loop.

    Attributes:
        steps: optimisation steps in total.
        loss: ``"l1"`` (waveform L1, the baseline), ``"sdr"`` (``-lam*SDR -
            (1-lam)*SI-SDR``) or ``"mixit"``.
        sdr_lambda: ``lam`` of the SDR-based loss.
        mixit_snr_max: soft SNR ceiling of the MixIT loss in dB.
        precision: ``"fp32"`` or ``"bf16"`` (autocast of the forward pass).
        seed: seed of the model initialisation, data order and mixing.
        init_from: checkpoint whose model weights start a fine-tuning run (``""``: none);
            the fine-tuning presets name another preset's checkpoint at a given step
            ([`checkpoint_path`][torchlass.recipes.config.checkpoint_path]).
        out_dir: folder for checkpoints, the CSV log and TensorBoard events.
        log_every: steps between log lines.
        val_every: steps between validations (0: never).
        checkpoint_every: steps between checkpoints (0: only at the end).
    """

    steps: int = 200000
    loss: str = "l1"
    sdr_lambda: float = 0.9
    mixit_snr_max: float = 30.0
    precision: str = "fp32"
    seed: int = 1234
    init_from: str = ""
    out_dir: str = "runs/train"
    log_every: int = 100
    val_every: int = 20000
    checkpoint_every: int = 20000


@dataclass
class Config:
    """A complete training configuration (see the module docstring)."""

    name: str = "baseline"
    model: ModelConfig = field(default_factory=ModelConfig)
    query: QueryConfig = field(default_factory=QueryConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


SRPOL_TRAIN_LISTS = ("lists/fsd50k_dev_auto_caption.json", "lists/clotho_v2.1_dev.json",
                     "lists/audiocaps.json")
"""SRPOL's training data (their report, section 2), as ``dcase_json`` lists: FSD50k dev with
the challenge's auto-captions (40,966 files, about 80 h), Clotho v2.1 dev (3,839 files,
about 24 h) and AudioCaps (43,703 files, about 120 h). The SRPOL guide says how to write
the Clotho and AudioCaps lists."""


def _derive(name: str, base: Config, **changes: dict[str, Any]) -> Config:
    """A copy of ``base`` named ``name``, writing to ``runs/<name>``, with ``changes``."""
    out = copy.deepcopy(base)
    out.name = name
    out.train.out_dir = f"runs/{name}"
    for section, values in changes.items():
        for key, value in values.items():
            setattr(getattr(out, section), key, value)
    return out


def checkpoint_path(config: Config, step: int) -> str:
    """Where a run of ``config`` writes its checkpoint at ``step`` (see the Trainer).

    Examples:
        >>> checkpoint_path(get_config("srpol_l1"), 1_300_000)
        'runs/srpol_l1/checkpoint_step1300000.pt'
    """
    return f"{config.train.out_dir}/checkpoint_step{step}.pt"


def _fine_tune(name: str, base: Config, step: int, lr: float, steps: int) -> Config:
    """Fine-tune ``base``'s checkpoint at ``step``: lower lr, no warm-up, fresh optimiser."""
    return _derive(name, base, optim={"lr": lr, "schedule": "constant"},
                   train={"steps": steps, "init_from": checkpoint_path(base, step)})


def _presets() -> dict[str, Config]:
    # The challenge baseline: its own lists are the user's (the original config names only
    # a template), 200k steps; Adam(AMSGrad) lr 1e-3, wd 0, the stepped 10k warm-up.
    baseline = _derive("baseline", Config(), train={"steps": 200_000})
    # SRPOL (report section 4): the same optimiser and warm-up, their three datasets.
    srpol = {"data": {"train_lists": SRPOL_TRAIN_LISTS}}
    system1 = _derive("srpol_system1", baseline, model={"architecture": "srpol_system1"},
                      train={"steps": 1_200_000}, **srpol)
    # One from-scratch L1 run of the baseline network; systems 2 and 4 fine-tune its
    # checkpoints at 1.5 M and 1.3 M steps (both multiples of checkpoint_every).
    l1 = _derive("srpol_l1", baseline, train={"steps": 1_500_000}, **srpol)
    return {
        "baseline": baseline,
        "srpol_system1": system1,
        "srpol_l1": l1,
        "srpol_system2": _fine_tune("srpol_system2", l1, 1_500_000, lr=1e-4, steps=100_000),
        "srpol_system3": _derive("srpol_system3", l1, train={"steps": 1_084_000}),
        "srpol_system4": _fine_tune("srpol_system4", l1, 1_300_000, lr=1e-5, steps=40_000),
        # From scratch on the same data; the report gives no step count, so as long as the
        # L1 run they are compared with.
        "mixit": _derive("mixit", l1, model={"num_sources": 2}, train={"loss": "mixit"}),
        "sdr_loss": _derive("sdr_loss", l1, train={"loss": "sdr", "sdr_lambda": 0.9}),
        # Not in the report: its conclusion's future work, on system 1's data and schedule.
        "complex_ratio_mask": _derive("complex_ratio_mask", system1,
                                      model={"architecture": "complex_ratio_mask"}),
        # Not in the report: system 1 told what to leave out (CLAPSep's negative query),
        # the interferer's caption on half of the mixtures.
        "srpol_negative_query": _derive("srpol_negative_query", system1,
                                        model={"architecture": "srpol_negative_query"},
                                        data={"negative_query_prob": 0.5}),
    }


PRESETS: dict[str, Config] = _presets()
"""The named configurations. The training guide says what each one changes; the SRPOL
guide gives what SRPOL's report measured with each of their systems."""


def get_config(name: str) -> Config:
    """A fresh copy of a named configuration from [`PRESETS`][torchlass.recipes.config.PRESETS].

    Raises:
        TorchlassError: for an unknown name (the message lists the known ones).

    Examples:
        >>> get_config("srpol_system1").model.architecture
        'srpol_system1'
    """
    if name not in PRESETS:
        raise TorchlassError(
            f"get_config(): argument 'name' expected one of {sorted(PRESETS)}, got {name!r}"
        )
    return copy.deepcopy(PRESETS[name])


def _parse(text: str, annotation: Any, where: str) -> Any:
    """Parse ``text`` to the type ``annotation`` (a field's type hint)."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        args = typing.get_args(annotation)
        parts = [p.strip() for p in text.strip("()[] ").split(",") if p.strip()]
        if len(args) == 2 and args[1] is Ellipsis:
            if typing.get_origin(args[0]) is tuple:  # pairs written "2x2,2x1"
                return tuple(_parse(p.replace("x", ","), args[0], where) for p in parts)
            return tuple(_parse(p, args[0], where) for p in parts)
        if len(parts) != len(args):
            raise TorchlassError(f"{where}: expected {len(args)} comma-separated values, "
                                 f"got {text!r}")
        return tuple(_parse(p, a, where) for p, a in zip(parts, args, strict=True))
    if annotation is bool:
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise TorchlassError(f"{where}: expected true or false, got {text!r}")
    try:
        return annotation(text)
    except ValueError as err:
        raise TorchlassError(f"{where}: expected a value of type {annotation.__name__}, "
                             f"got {text!r}") from err


def _field_types(section: object) -> dict[str, Any]:
    hints = typing.get_type_hints(type(section))
    return {f.name: hints[f.name] for f in dataclasses.fields(section)}  # type: ignore[arg-type]


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert a TOML value to a field's type."""
    if isinstance(value, str) and annotation is not str:
        return _parse(value, annotation, where)
    if typing.get_origin(annotation) is tuple and isinstance(value, list | tuple):
        args = typing.get_args(annotation)
        inner = [args[0]] * len(value) if args[-1] is Ellipsis else list(args)
        if len(inner) != len(value):
            raise TorchlassError(f"{where}: expected {len(inner)} values, got {value!r}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, inner, strict=True))
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    expected = annotation if isinstance(annotation, type) else object
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise TorchlassError(f"{where}: expected a {getattr(annotation, '__name__', annotation)}"
                             f", got {value!r}")
    return value


def _set(config: Config, key: str, value: Any, parse: Callable[..., Any], fn: str) -> None:
    section_name, _, name = key.partition(".")
    section = getattr(config, section_name, None) if section_name != "name" else None
    if key == "name":
        config.name = str(value)
        return
    if section is None or not dataclasses.is_dataclass(section) or not name:
        sections = [f.name for f in dataclasses.fields(config) if f.name != "name"]
        raise TorchlassError(f"{fn}(): unknown key {key!r}: expected 'name' or "
                             f"'<section>.<field>' with a section among {sections}")
    types_ = _field_types(section)
    if name not in types_:
        raise TorchlassError(f"{fn}(): unknown key {key!r}: fields of '{section_name}' "
                             f"are {sorted(types_)}")
    setattr(section, name, parse(value, types_[name], f"{fn}(): key {key!r}"))


def apply_overrides(config: Config, overrides: Iterable[str]) -> Config:
    """Return a copy of ``config`` with ``"section.field=value"`` overrides applied.

    Values are parsed to the field's type: numbers, ``true``/``false``, comma-separated
    tuples (``"model.widths=8,16,32"``), pairs as ``AxB`` (``"model.pools=2x2,2x1"``).

    Raises:
        TorchlassError: for a malformed override, an unknown key or a value of the wrong
            type.

    Examples:
        >>> cfg = apply_overrides(get_config("baseline"), ["optim.lr=1e-4", "train.steps=10"])
        >>> cfg.optim.lr, cfg.train.steps
        (0.0001, 10)
    """
    out = copy.deepcopy(config)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise TorchlassError(f"apply_overrides(): expected 'section.field=value', "
                                 f"got {item!r}")
        _set(out, key.strip(), value.strip(), _parse, "apply_overrides")
    return out


def config_to_dict(config: Config) -> dict[str, Any]:
    """The configuration as plain dicts, lists and numbers (for TOML, JSON, checkpoints)."""
    return dataclasses.asdict(config)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value)


def config_to_toml(config: Config) -> str:
    """The configuration as TOML that [`load_config`][torchlass.recipes.config.load_config] reads.

    Examples:
        >>> print(config_to_toml(get_config("baseline")).splitlines()[0])
        name = "baseline"
    """
    data = config_to_dict(config)
    lines = [f"name = {_toml_value(data.pop('name'))}"]
    for section, values in data.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def config_from_dict(data: dict[str, Any], *, base: Config | None = None) -> Config:
    """Build a configuration from nested dicts (missing fields keep ``base``'s values).

    Raises:
        TorchlassError: for unknown keys or values of the wrong type.
    """
    out = copy.deepcopy(base) if base is not None else Config()
    for key, value in data.items():
        if isinstance(value, dict):
            for name, inner in value.items():
                _set(out, f"{key}.{name}", inner, _coerce, "config_from_dict")
        else:
            _set(out, key, value, _coerce, "config_from_dict")
    return out


def load_config(path: str | Path) -> Config:
    """Read a TOML configuration; a top-level ``preset = "name"`` starts from that preset.

    Example file::

        preset = "srpol_system1"
        [optim]
        lr = 5e-4
        [data]
        train_lists = ["lists/clotho_dev.json", "lists/fsd50k_dev_auto_caption.json"]

    Raises:
        FileNotFoundError: if the file does not exist.
        TorchlassError: for TOML syntax errors, unknown keys or wrong types.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"load_config(): configuration file not found: {str(file)!r}")
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        tomllib = _import_tomli()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise TorchlassError(f"load_config(): {str(file)!r} is not valid TOML: {err}") from err
    preset = data.pop("preset", None)
    base = get_config(preset) if preset is not None else None
    return config_from_dict(data, base=base)


def _import_tomli() -> types.ModuleType:  # pragma: no cover - Python 3.10 only
    try:
        import tomli
    except ImportError as err:
        raise TorchlassError("load_config() needs Python 3.11+ or the tomli package") from err
    return tomli
