"""Save a `Separator` as a folder that loads without running any code.

A pretrained folder holds ``config.json`` (the preset constructor's name and every option it was
called with, the sample rate among them) and ``model.safetensors`` (the state_dict). Neither is a
pickle: [`from_pretrained`][torchlass.pretrained.from_pretrained] parses JSON, calls one of the
[`PRESETS`][torchlass.separator.PRESETS] by name and reads raw tensors, so an untrusted folder
cannot run code. Anything wrong with the folder is one
[`CheckpointError`][torchlass.errors.CheckpointError] line naming the file and the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from torchlass.checkpoints import _listing
from torchlass.errors import CheckpointError, TorchlassError
from torchlass.separator import PRESETS, Separator

__all__ = ["CONFIG_NAME", "FORMAT", "WEIGHTS_NAME", "from_pretrained", "save_pretrained"]

#: The configuration file of a pretrained folder.
CONFIG_NAME = "config.json"
#: The weights file of a pretrained folder.
WEIGHTS_NAME = "model.safetensors"
#: ``config.json``'s ``"format"`` value; the version changes if the layout does.
FORMAT, _VERSION = "torchlass.pretrained", 1


_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", tuple: "array"}


def _json_value(value: Any) -> Any:
    """Tuples to lists (JSON has no tuples); the reader turns them back."""
    return [_json_value(v) for v in value] if isinstance(value, tuple | list) else value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def save_pretrained(separator: Separator, folder: str | Path) -> Path:
    """Write ``separator`` to ``folder`` (created if needed) as a pretrained folder.

    Args:
        separator: a separator built by a preset constructor
            ([`Separator.dcase2024_baseline`][torchlass.separator.Separator.dcase2024_baseline],
            [`srpol_system1`][torchlass.separator.Separator.srpol_system1],
            [`complex_ratio_mask`][torchlass.separator.Separator.complex_ratio_mask], or
            [`load_audiosep`][torchlass.checkpoints.load_audiosep]); its current
            ``sample_rate`` is saved.
        folder: the folder to write ``config.json`` and ``model.safetensors`` into
            (existing files of those names are replaced).

    Returns:
        The folder, as a `pathlib.Path`.

    Raises:
        TorchlassError: for a separator composed by hand (no preset to rebuild it from).

    Examples:
        >>> import tempfile
        >>> sep = Separator.srpol_system1(condition_size=8, n_fft=256, hop_length=64,
        ...                               stem_width=4, widths=(4, 8), pools=((2, 2), (2, 2)))
        >>> folder = save_pretrained(sep, tempfile.mkdtemp())
        >>> sorted(p.name for p in folder.iterdir())
        ['config.json', 'model.safetensors']
        >>> from_pretrained(folder).preset == sep.preset
        True
    """
    from safetensors.torch import save_file

    preset = getattr(separator, "preset", None)
    if not isinstance(separator, Separator) or preset is None:
        raise TorchlassError(
            "save_pretrained(): argument 'separator' expected a Separator built by one of "
            f"the presets {PRESETS}, got {type(separator).__name__} composed by hand; save "
            "its state_dict and rebuild it with the same code instead"
        )
    options = preset["options"] | {"sample_rate": separator.sample_rate}
    config = {"format": FORMAT, "version": _VERSION, "preset": preset["name"],
              "options": {k: _json_value(v) for k, v in options.items()}}
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share memory: give each its own contiguous copy
    state = {k: v.detach().to("cpu").contiguous().clone()
             for k, v in separator.state_dict().items()}
    save_file(state, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out


def _fail(path: Path, reason: str) -> CheckpointError:
    return CheckpointError(f"from_pretrained(): {str(path)!r}: {reason}")


def _read_config(path: Path) -> tuple[str, dict[str, Any]]:
    """``(preset name, options)`` from ``config.json``, every field checked."""
    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _fail(path, f"not valid JSON ({err})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise _fail(path, f"expected a JSON object with \"format\": \"{FORMAT}\"")
    if config.get("version") != _VERSION:
        raise _fail(path, f"expected \"version\": {_VERSION}, got {config.get('version')!r}")
    name, options = config.get("preset"), config.get("options")
    if name not in PRESETS:
        raise _fail(path, f"expected \"preset\" among {PRESETS}, got {name!r}")
    if not isinstance(options, dict):
        raise _fail(path, f"expected \"options\" to be a JSON object, got {options!r}")
    return name, {k: _tuples(v) for k, v in options.items()}


def _read_weights(path: Path, expected: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors of ``model.safetensors``, required to match ``expected`` key by key."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise _fail(path, "file not found")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise _fail(path, f"not a readable safetensors file ({err})") from None
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    mismatched = []
    for key in (k for k in expected if k in state):
        value, ours = state[key], expected[key]
        if value.shape != ours.shape or value.is_floating_point() != ours.is_floating_point():
            mismatched.append(f"{key} expected {ours.dtype} of shape {tuple(ours.shape)}, got "
                              f"{value.dtype} of shape {tuple(value.shape)}")
        elif value.is_floating_point() and not bool(torch.isfinite(value).all()):
            mismatched.append(f"{key} holds NaN or Inf")
    if missing or unexpected or mismatched:
        problems = [_listing(label, items) for label, items in (
            ("missing key(s)", missing), ("unexpected key(s)", unexpected),
            ("bad tensor(s)", mismatched)) if items]
        raise _fail(path, "does not match the separator config.json describes: "
                    + "; ".join(problems))
    return state


def from_pretrained(folder: str | Path) -> Separator:
    """Rebuild the separator that `save_pretrained` wrote to ``folder``.

    The preset named in ``config.json`` is called with its options, then the tensors of
    ``model.safetensors`` are checked key by key (shape, floating or integer, finite) and
    loaded.

    Args:
        folder: a folder holding ``config.json`` and ``model.safetensors``.

    Returns:
        The separator in eval mode on the CPU, float32, its ``sample_rate`` and ``preset``
        as saved.

    Raises:
        CheckpointError: one line naming the file and the reason: the folder or a file is
            missing, ``config.json`` is not valid JSON or names an unknown preset, an
            unknown option, an option of the wrong JSON type or values the preset rejects,
            ``model.safetensors`` is unreadable or its tensors do not match the described
            separator (missing, unexpected, misshapen or non-finite).
    """
    root = Path(folder)
    if not root.is_dir():
        raise _fail(root, "not a folder")
    config_path = root / CONFIG_NAME
    name, options = _read_config(config_path)
    with torch.device("meta"):  # the preset's recorded defaults say every option's type
        defaults = getattr(Separator, name)().preset["options"]
    for key, value in options.items():
        if key not in defaults:
            raise _fail(config_path, f"{name} has no option {key!r}")
        if type(value) is not type(defaults[key]):
            kind = _JSON_TYPES.get(type(defaults[key]), "value")
            raise _fail(config_path, f"option {key!r} of {name} expected a JSON {kind}, got "
                                     f"{json.dumps(value)}")
    try:
        separator = getattr(Separator, name)(**options)
    except Exception as err:  # the options are untrusted: any failure is the folder's fault
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise _fail(config_path, f"options do not build a {name} separator ({reason})") from None
    state = _read_weights(root / WEIGHTS_NAME, separator.state_dict())
    separator.load_state_dict(state, strict=True)
    return separator.eval()
