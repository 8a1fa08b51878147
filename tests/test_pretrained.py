"""Pretrained folders: round trips of every preset, and every way a folder can be bad."""

from __future__ import annotations

import json
import pickle
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from torchlass import Separator
from torchlass.errors import CheckpointError, TorchlassError
from torchlass.masks import MagPhaseMaskHead
from torchlass.nn import MagnitudeFeatures, ResUNet
from torchlass.pretrained import save_pretrained
from torchlass.separator import PRESETS
from torchlass.stft import ISTFT, STFT

SMALL = {"condition_size": 8, "stem_width": 4, "widths": (4, 8), "pools": ((2, 2), (2, 1))}


def _trained(separator: Separator) -> Separator:
    """Weights and BatchNorm statistics away from their initial values."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for value in separator.state_dict().values():
            if value.is_floating_point():
                value.add_(0.1 * torch.randn(value.shape, generator=g)).abs_()
            else:
                value.fill_(7)
    return separator.eval()


def _same_state(a: Separator, b: Separator) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.fixture
def folder(tmp_path):
    save_pretrained(_trained(Separator.dcase2024_baseline(**SMALL)), tmp_path / "model")
    return tmp_path / "model"


def _fails(folder, pattern):
    with pytest.raises(CheckpointError) as info:
        Separator.from_pretrained(folder)
    message = str(info.value)
    assert "\n" not in message and re.fullmatch(pattern, message), message


@pytest.mark.parametrize(("name", "options"), [
    ("dcase2024_baseline", SMALL),
    ("dcase2024_baseline", SMALL | {"n_fft": 2048, "hop_length": 320, "sample_rate": 32000}),
    ("srpol_system1", SMALL | {"bound": "sigmoid", "channels": 2, "film_scale": True}),
    ("complex_ratio_mask", SMALL | {"num_sources": 2, "n_fft": 512, "hop_length": 128,
                                    "sample_rate": 8000, "freq_fit": "pad"}),
    ("srpol_negative_query", SMALL | {"film_scale": True}),
])
def test_round_trip_of_every_preset(tmp_path, name, options):
    original = _trained(getattr(Separator, name)(**options))
    assert original.save_pretrained(tmp_path / "x") == tmp_path / "x"
    loaded = Separator.from_pretrained(tmp_path / "x")
    assert type(loaded) is Separator and not loaded.training
    assert _same_state(loaded, original) and loaded.preset == original.preset
    assert loaded.sample_rate == original.sample_rate == options.get("sample_rate", 16000)
    assert (loaded.stft.n_fft, loaded.stft.hop_length) == (original.stft.n_fft,
                                                           original.stft.hop_length)
    mixture = torch.randn(2, original.channels, 3000)
    condition = torch.randn(2, 8)
    with torch.no_grad():
        assert torch.equal(loaded(mixture, condition), original(mixture, condition))


def test_every_preset_is_covered():
    assert sorted(PRESETS) == ["complex_ratio_mask", "dcase2024_baseline", "srpol_negative_query",
                               "srpol_system1"]


def test_config_names_the_preset_and_every_option(folder):
    config = json.loads((folder / "config.json").read_text())
    assert config == {
        "format": "torchlass.pretrained", "version": 1, "preset": "dcase2024_baseline",
        "options": {"channels": 1, "num_sources": 1, "condition_size": 8, "n_fft": 1024,
                    "hop_length": 160, "sample_rate": 16000, "check_finite": True,
                    "stem_width": 4, "widths": [4, 8], "pools": [[2, 2], [2, 1]],
                    "film_scale": False, "freq_fit": "crop"},
    }
    assert load_file(folder / "model.safetensors").keys() == Separator.dcase2024_baseline(
        **SMALL).state_dict().keys()


def test_the_current_sample_rate_is_saved(tmp_path):
    separator = Separator.dcase2024_baseline(**SMALL)
    separator.sample_rate = 22050
    assert Separator.from_pretrained(separator.save_pretrained(tmp_path)).sample_rate == 22050


def test_a_hand_composed_separator_cannot_be_saved(tmp_path):
    separator = Separator(ResUNet(1, 3, **SMALL), features=MagnitudeFeatures(129),
                          head=MagPhaseMaskHead(1), stft=STFT(256, 64), istft=ISTFT(256, 64))
    with pytest.raises(TorchlassError, match=r"save_pretrained\(\): argument 'separator' "
                                             r"expected a Separator built by one of the presets "
                                             r"\['dcase2024_baseline', 'srpol_system1', "
                                             r"'complex_ratio_mask', 'srpol_negative_query'\], "
                                             r"got Separator composed"):
        save_pretrained(separator, tmp_path)


def _edit_config(folder, edit):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda c: c.update(format="pytorch"),
     r"expected a JSON object with \"format\": \"torchlass.pretrained\""),
    (lambda c: c.update(version=2), r"expected \"version\": 1, got 2"),
    (lambda c: c.update(preset="__import__"),
     r"expected \"preset\" among \['dcase2024_baseline', 'srpol_system1', "
     r"'complex_ratio_mask', 'srpol_negative_query'\], got '__import__'"),
    (lambda c: c.update(options=[1, 2]), r"expected \"options\" to be a JSON object, got \[1, 2\]"),
    (lambda c: c["options"].update(dropout=0.1),
     r"dcase2024_baseline has no option 'dropout'"),
    (lambda c: c["options"].update(check_finite=[]),
     r"option 'check_finite' of dcase2024_baseline expected a JSON boolean, got \[\]"),
    (lambda c: c["options"].update(n_fft=1024.0),
     r"option 'n_fft' of dcase2024_baseline expected a JSON integer, got 1024.0"),
    (lambda c: c["options"].update(pools=[[2], [2]]),
     r"options do not build a dcase2024_baseline separator \(.*\)"),
    (lambda c: c["options"].update(sample_rate=0),
     r"options do not build a dcase2024_baseline separator \(Separator\(\): argument "
     r"'sample_rate' .*\)"),
    (lambda c: c["options"].update(condition_size=16),
     r"does not match the separator config.json describes: 12 bad tensor\(s\): "
     r"backbone.encoders.0.block.film1.shift.weight expected torch.float32 of shape \(4, 16\), "
     r"got torch.float32 of shape \(4, 8\), .*"),
])
def test_a_tampered_config_fails_in_one_line(folder, edit, reason):
    _edit_config(folder, edit)
    name = "model.safetensors" if "bad tensor" in reason else "config.json"
    _fails(folder, rf"from_pretrained\(\): '{re.escape(str(folder / name))}': {reason}")


@pytest.mark.parametrize(("edit", "reason"), [
    (lambda s: s.update({"features.norm.weight": torch.ones(3)}),
     r"1 bad tensor\(s\): features.norm.weight expected torch.float32 of shape \(513,\), "
     r"got torch.float32 of shape \(3,\)"),
    (lambda s: s.update({"features.norm.num_batches_tracked": torch.ones(())}),
     r"1 bad tensor\(s\): features.norm.num_batches_tracked expected torch.int64 of shape "
     r"\(\), got torch.float32 of shape \(\)"),
    (lambda s: s["backbone.stem.bias"].fill_(float("nan")),
     r"1 bad tensor\(s\): backbone.stem.bias holds NaN or Inf"),
    (lambda s: s.pop("backbone.out_conv.weight"),
     r"1 missing key\(s\): backbone.out_conv.weight"),
    (lambda s: s.update({"backbone.extra": torch.zeros(1)}),
     r"1 unexpected key\(s\): backbone.extra"),
])
def test_tampered_tensors_fail_in_one_line(folder, edit, reason):
    path = folder / "model.safetensors"
    state = load_file(path)
    edit(state)
    save_file(state, path)
    _fails(folder, rf"from_pretrained\(\): '{re.escape(str(path))}': does not match the "
                   rf"separator config.json describes: {reason}")


class _Payload:
    """Unpickling this would create a file: it must never happen."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_missing_bad_and_pickled_files(folder, tmp_path):
    _fails(tmp_path / "nowhere", rf"from_pretrained\(\): '{re.escape(str(tmp_path))}/nowhere': "
                                 r"not a folder")
    (folder / "config.json").write_text("{\"format\": \"torchlass.pretrained\",")
    _fails(folder, r"from_pretrained\(\): '.*config.json': not valid JSON \(Expecting "
                   r"property name enclosed in double quotes: line 1 column 35 \(char 34\)\)")
    (folder / "config.json").unlink()
    _fails(folder, r"from_pretrained\(\): '.*config.json': file not found")

    again = save_pretrained(Separator.dcase2024_baseline(**SMALL), tmp_path / "again")
    weights = again / "model.safetensors"
    marker = tmp_path / "code_ran"
    weights.write_bytes(pickle.dumps({"state_dict": _Payload(marker)}))
    _fails(again, r"from_pretrained\(\): '.*model.safetensors': not a readable safetensors "
                  r"file \(.*\)")
    assert not marker.exists()
    weights.write_bytes(b"")
    _fails(again, r"from_pretrained\(\): '.*model.safetensors': not a readable safetensors "
                  r"file \(.*\)")
    weights.unlink()
    _fails(again, r"from_pretrained\(\): '.*model.safetensors': file not found")


_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 4096) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3), max_leaves=6)


@settings(max_examples=25, deadline=None)
@given(key=st.sampled_from(["channels", "num_sources", "condition_size", "n_fft", "hop_length",
                            "sample_rate", "check_finite", "stem_width", "widths", "pools",
                            "film_scale", "freq_fit", "dropout"]),
       value=_JSON_VALUES)
def test_any_option_value_loads_or_fails_in_one_line(tmp_path_factory, key, value):
    folder = tmp_path_factory.mktemp("drawn")
    save_pretrained(Separator.dcase2024_baseline(**SMALL), folder)
    _edit_config(folder, lambda c: c["options"].update({key: value}))
    try:
        loaded = Separator.from_pretrained(folder)
    except CheckpointError as err:
        assert "\n" not in str(err) and str(err).startswith("from_pretrained(): ")
    else:  # an accepted value is one the preset takes for what was saved
        assert json.loads(json.dumps(loaded.preset["options"][key])) == value


def test_a_configured_separator_round_trips(tmp_path):
    from torchlass.recipes import apply_overrides, build_separator, get_config

    config = apply_overrides(get_config("complex_ratio_mask"), [
        "model.sample_rate=32000", "model.n_fft=2048", "model.hop_length=320",
        "model.widths=4,8", "model.pools=2x2,2x1", "model.stem_width=4"])
    separator = build_separator(config.model)
    assert separator.preset["name"] == "complex_ratio_mask" and separator.sample_rate == 32000
    loaded = Separator.from_pretrained(separator.save_pretrained(tmp_path))
    assert loaded.sample_rate == 32000 and _same_state(loaded, separator)


def test_the_one_reader_takes_pretrained_folders_for_fine_tuning(tmp_path):
    from torchlass.checkpoints import read_checkpoint
    from torchlass.errors import CheckpointError
    from torchlass.recipes.trainer import checkpoint_kind, load_model_weights

    torch.manual_seed(1)
    saved = Separator.srpol_system1(condition_size=8, n_fft=64, hop_length=16, stem_width=2,
                                    widths=(2, 4), pools=((2, 2), (2, 2)), sample_rate=8000)
    folder = saved.save_pretrained(tmp_path / "model")
    data = read_checkpoint(folder)
    assert checkpoint_kind(data) == "pretrained"
    torch.manual_seed(2)
    fresh = Separator.srpol_system1(condition_size=8, n_fft=64, hop_length=16, stem_width=2,
                                    widths=(2, 4), pools=((2, 2), (2, 2)), sample_rate=8000)
    load_model_weights(fresh, folder)
    for key, value in saved.state_dict().items():
        assert torch.equal(fresh.state_dict()[key], value), key
    (tmp_path / "plain").mkdir()
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(tmp_path / "plain")
    assert str(err.value) == (f"read_checkpoint(): cannot read {str(tmp_path / 'plain')!r}: it "
                              "is a folder without config.json, expected a checkpoint file or "
                              "a save_pretrained folder")
