"""The named configurations: SRPOL's systems as their DCASE 2024 report gives them, the
challenge baseline, the loss variants; each builds, and each runs as a user types it."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from torchlass.cli import main
from torchlass.data import write_audio
from torchlass.recipes import PRESETS, Trainer, build_separator, get_config
from torchlass.recipes.config import SRPOL_TRAIN_LISTS, checkpoint_path

SRPOL_LISTS = ("lists/fsd50k_dev_auto_caption.json", "lists/clotho_v2.1_dev.json",
               "lists/audiocaps.json")

# The report's table (section 5.4) and section 4: (architecture, loss, lr, schedule, steps,
# (preset, step) a fine-tune starts from, the step of the checkpoint SRPOL submitted).
REPORTED = {
    "srpol_system1": ("srpol_system1", "l1", 1e-3, "baseline_warmup", 1_200_000, None, 1_200_000),
    "srpol_system2": ("dcase2024_baseline", "l1", 1e-4, "constant", 100_000,
                      ("srpol_l1", 1_500_000), 1_600_000),
    "srpol_system3": ("dcase2024_baseline", "l1", 1e-3, "baseline_warmup", 1_084_000, None,
                      1_084_000),
    "srpol_system4": ("dcase2024_baseline", "l1", 1e-5, "constant", 40_000,
                      ("srpol_l1", 1_300_000), 1_340_000),
}
INIT = re.compile(r"^runs/(?P<preset>\w+)/checkpoint_step(?P<step>\d+)\.pt$")

# Only sizes change: the smallest network and data that still run every code path.
TINY = ["model.n_fft=64", "model.hop_length=32", "model.stem_width=2", "model.widths=2,4",
        "model.pools=2x2,2x2", "model.condition_size=16", "model.sample_rate=8000",
        "query.encoder=hashed", "data.batch_size=4", "data.num_workers=0",
        "data.segment_seconds=0.05", "train.log_every=1", "train.checkpoint_every=1",
        "train.steps=2"]


def fine_tune_origin(name):
    """``(preset, step)`` a fine-tuning preset starts from, or None."""
    init = get_config(name).train.init_from
    if not init:
        return None
    match = INIT.match(init)
    assert match, f"{name}: init_from {init!r} does not name a preset's checkpoint"
    return match["preset"], int(match["step"])


@pytest.mark.parametrize("name", [*REPORTED, "srpol_l1", "mixit", "sdr_loss", "baseline"])
def test_optimiser_is_adam_amsgrad_without_weight_decay(name):
    optim = get_config(name).optim
    assert (optim.weight_decay, optim.amsgrad, optim.betas, optim.eps) == (
        0.0, True, (0.9, 0.999), 1e-8)
    assert optim.grad_clip_norm == 0.0
    if fine_tune_origin(name) is None:  # from scratch: lr 1e-3, the 10k-step warm-up
        assert (optim.lr, optim.schedule, optim.warmup_steps) == (1e-3, "baseline_warmup", 10_000)
    else:  # fine-tuning: a lower lr, no warm-up
        assert optim.lr < 1e-3 and optim.schedule == "constant"


@pytest.mark.parametrize("name", list(REPORTED))
def test_srpol_systems_as_reported(name):
    arch, loss, lr, schedule, steps, origin, used = REPORTED[name]
    cfg = get_config(name)
    assert (cfg.model.architecture, cfg.train.loss) == (arch, loss)
    assert (cfg.optim.lr, cfg.optim.schedule, cfg.train.steps) == (lr, schedule, steps)
    assert cfg.data.train_lists == SRPOL_LISTS == SRPOL_TRAIN_LISTS
    assert cfg.data.list_format == "dcase_json"
    assert fine_tune_origin(name) == origin
    start = 0 if origin is None else origin[1]
    assert start + cfg.train.steps == used
    # Everything else is the baseline's: network, STFT, segment, batch, mixing.
    assert cfg.query == get_config("baseline").query
    assert cfg.model == type(cfg.model)(architecture=arch)
    assert (cfg.data.segment_seconds, cfg.data.batch_size, cfg.data.snr_range,
            cfg.data.integer_snr, cfg.data.pairing) == (10.0, 16, (-10.0, 10.0), True, "next")


@pytest.mark.parametrize("name", [n for n in PRESETS if fine_tune_origin(n)])
def test_fine_tunes_start_from_a_checkpoint_their_origin_writes(name):
    preset, step = fine_tune_origin(name)
    origin = get_config(preset)
    assert preset in PRESETS and fine_tune_origin(preset) is None
    assert step <= origin.train.steps and step % origin.train.checkpoint_every == 0
    assert get_config(name).train.init_from == checkpoint_path(origin, step)
    assert get_config(name).model == origin.model  # the weights fit


def test_loss_variants_and_baseline():
    l1, mixit, sdr = get_config("srpol_l1"), get_config("mixit"), get_config("sdr_loss")
    assert (mixit.train.loss, mixit.model.num_sources, mixit.model.architecture) == (
        "mixit", 2, "dcase2024_baseline")
    assert (sdr.train.loss, sdr.train.sdr_lambda) == ("sdr", 0.9)
    for cfg in (mixit, sdr):  # from scratch on the same data, as long as the L1 run
        assert not cfg.train.init_from and cfg.train.steps == l1.train.steps
        assert cfg.data == l1.data and cfg.optim == l1.optim
    base = get_config("baseline")
    assert (base.model.architecture, base.train.loss, base.train.steps) == (
        "dcase2024_baseline", "l1", 200_000)
    assert base.data.train_lists == ()  # the original config names only a template list
    assert get_config("complex_ratio_mask").model.architecture == "complex_ratio_mask"


def test_every_preset_writes_to_its_own_folder():
    folders = [cfg.train.out_dir for cfg in PRESETS.values()]
    assert folders == [f"runs/{name}" for name in PRESETS]


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_its_separator(name):
    cfg = get_config(name).model
    with torch.device("meta"):
        separator = build_separator(cfg)
    heads = {"dcase2024_baseline": "MagPhaseMaskHead", "srpol_system1": "RealImagMaskHead",
             "complex_ratio_mask": "ComplexRatioMaskHead",
             "srpol_negative_query": "RealImagMaskHead"}
    assert type(separator.head).__name__ == heads[cfg.architecture]
    assert separator.takes_negative == (get_config(name).data.negative_query_prob > 0)
    assert separator.stft.n_fft == 1024 and separator.stft.hop_length == 160


def _write_lists(root, captions):
    rng = np.random.default_rng(0)
    (root / "lists").mkdir()
    for k, path in enumerate(SRPOL_LISTS):
        entries = []
        for i, caption in enumerate(captions):
            wav = root / f"clip{k}_{i}.wav"
            write_audio(wav, torch.from_numpy(0.2 * rng.standard_normal((1, 4800))).float(), 8000)
            entries.append({"wav": wav.name, "caption": caption})
        (root / path).write_text(json.dumps({"data": entries}))


def test_presets_run_as_typed_and_fine_tunes_find_their_checkpoint(tmp_path, monkeypatch,
                                                                     capsys):
    # From the folder holding lists/, only the sizes overridden: a from-scratch run, then a
    # fine-tune from its checkpoint (the step scaled down with the run).
    monkeypatch.chdir(tmp_path)
    _write_lists(tmp_path, ["a dog barking", "rain falling"])
    sizes = [arg for item in TINY for arg in ("--set", item)]
    assert main(["train", "--config", "srpol_l1", "--no-progress", *sizes]) == 0, \
        capsys.readouterr().err
    origin = checkpoint_path(get_config("srpol_l1"), 2)
    assert (tmp_path / origin).is_file()
    code = main(["train", "--config", "srpol_system4", "--no-progress", *sizes,
                 "--set", f"train.init_from={origin}", "--set", "train.steps=1"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "runs/srpol_system4/checkpoint_step1.pt").is_file()


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_trains_with_its_optimiser_and_warm_up(tmp_path, name):
    # Sizes only (and no starting checkpoint): each preset's loss, separator and schedule run.
    from torchlass.data import TensorCaptionDataset
    from torchlass.recipes import apply_overrides

    cfg = apply_overrides(get_config(name), [*TINY, f"train.out_dir={tmp_path}",
                                             "train.init_from="])
    data = TensorCaptionDataset(0.1 * torch.randn(4, 1, 800), ["a dog", "rain"] * 2)
    trainer = Trainer(cfg, train_set=data, progress=False)
    rows = trainer.fit()
    assert all(np.isfinite(row["loss"]) for row in rows)
    assert isinstance(trainer.optimizer, torch.optim.AdamW)
    group = trainer.optimizer.param_groups[0]
    assert group["amsgrad"] and group["weight_decay"] == 0.0
    # From scratch: x0.001 during the first 10k steps; fine-tuning: the lower lr at once.
    expected = 1e-3 * 0.001 if fine_tune_origin(name) is None else get_config(name).optim.lr
    assert [row["lr"] for row in rows] == pytest.approx([expected] * 2, rel=1e-12)
