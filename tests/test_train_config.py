"""torchlass.recipes.config and build_separator: presets, overrides, TOML round trips."""

from __future__ import annotations

import pytest
import torch
from train_setup import tiny_config

from torchlass.errors import TorchlassError, ValueRangeError
from torchlass.recipes import (
    PRESETS,
    apply_overrides,
    build_separator,
    config_to_toml,
    get_config,
    load_config,
)


def test_presets_change_what_they_say():
    base = get_config("baseline")
    assert (base.model.architecture, base.train.loss, base.optim.schedule) == (
        "dcase2024_baseline", "l1", "baseline_warmup")
    assert (base.optim.lr, base.optim.weight_decay, base.optim.amsgrad) == (1e-3, 0.0, True)
    assert base.data.segment_seconds == 10.0 and base.data.batch_size == 16
    assert get_config("srpol_system1").model.architecture == "srpol_system1"
    for name in ("srpol_system2", "srpol_system4"):
        cfg = get_config(name)
        assert cfg.optim.schedule == "constant" and cfg.train.init_from
    assert get_config("srpol_system3").optim.schedule == "baseline_warmup"  # test_config_presets
    mixit, sdr = get_config("mixit"), get_config("sdr_loss")
    assert mixit.train.loss == "mixit" and mixit.model.num_sources == 2
    assert sdr.train.loss == "sdr" and sdr.train.sdr_lambda == 0.9
    assert get_config("complex_ratio_mask").model.architecture == "complex_ratio_mask"
    assert set(PRESETS) >= {"baseline", "srpol_system1", "srpol_system2", "srpol_system3",
                            "srpol_system4", "mixit", "sdr_loss", "complex_ratio_mask"}
    get_config("baseline").optim.lr = 5.0  # a copy: the preset is unchanged
    assert get_config("baseline").optim.lr == 1e-3


def test_overrides_parse_types():
    cfg = apply_overrides(get_config("baseline"), [
        "optim.lr=3e-4", "model.widths=8,16", "model.pools=2x2,2x1", "data.snr_range=-5,5",
        "optim.amsgrad=false", "data.train_lists=a.json,b.json", "name=mine"])
    assert cfg.optim.lr == 3e-4 and cfg.model.widths == (8, 16)
    assert cfg.model.pools == ((2, 2), (2, 1)) and cfg.data.snr_range == (-5.0, 5.0)
    assert cfg.optim.amsgrad is False and cfg.data.train_lists == ("a.json", "b.json")
    assert cfg.name == "mine"


@pytest.mark.parametrize(("override", "message"), [
    ("optim.nope=1", "unknown key 'optim.nope': fields of 'optim' are"),
    ("foo.bar=1", "unknown key 'foo.bar'"),
    ("train.steps=ten", "key 'train.steps': expected a value of type int, got 'ten'"),
    ("optim.amsgrad=maybe", "expected true or false, got 'maybe'"),
    ("data.snr_range=1,2,3", "expected 2 comma-separated values"),
    ("optim.lr", "expected 'section.field=value', got 'optim.lr'"),
])


def test_override_errors(override, message):
    with pytest.raises(TorchlassError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(get_config("baseline"), [override])


def test_toml_round_trip_and_preset_key(tmp_path):
    for name in PRESETS:
        (tmp_path / f"{name}.toml").write_text(config_to_toml(get_config(name)))
        assert load_config(tmp_path / f"{name}.toml") == get_config(name)
    (tmp_path / "mine.toml").write_text(
        'preset = "mixit"\n[optim]\nlr = 5e-4\n[model]\npools = [[2, 2], [2, 1]]\n')
    cfg = load_config(tmp_path / "mine.toml")
    assert cfg.train.loss == "mixit" and cfg.optim.lr == 5e-4 and cfg.model.pools[1] == (2, 1)
    (tmp_path / "bad.toml").write_text("[optim]\nlr = 'fast'\n")
    with pytest.raises(TorchlassError, match=r"key 'optim\.lr': expected a value of type float"):
        load_config(tmp_path / "bad.toml")
    (tmp_path / "worse.toml").write_text("[optim\n")
    with pytest.raises(TorchlassError, match="is not valid TOML"):
        load_config(tmp_path / "worse.toml")
    with pytest.raises(FileNotFoundError, match="configuration file not found"):
        load_config(tmp_path / "none.toml")


@pytest.mark.parametrize(("architecture", "head"), [
    ("dcase2024_baseline", "MagPhaseMaskHead"), ("srpol_system1", "RealImagMaskHead"),
    ("complex_ratio_mask", "ComplexRatioMaskHead")])


def test_build_separator(tmp_path, architecture, head):
    cfg = tiny_config(tmp_path, f"model.architecture={architecture}")
    model = build_separator(cfg.model)
    assert type(model.head).__name__ == head
    assert model(torch.randn(2, 1, 400), torch.randn(2, 16)).shape == (2, 1, 1, 400)
    with pytest.raises(ValueRangeError, match="'architecture' expected one of"):
        build_separator(tiny_config(tmp_path, "model.architecture=unet").model)


def test_baseline_has_no_mask_bound(tmp_path):
    cfg = tiny_config(tmp_path, "model.architecture=dcase2024_baseline", "model.mask_bound=tanh")
    with pytest.raises(ValueRangeError, match="'mask_bound' expected '' for the dcase2024"):
        build_separator(cfg.model)
