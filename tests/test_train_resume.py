"""Trainer checkpoints: exact resumption and fine-tuning from another run's weights."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from train_setup import dataset, params, tiny_config

from torchlass.errors import CheckpointError
from torchlass.recipes import CHECKPOINT_FORMAT, Trainer, load_checkpoint


def global_rng_states():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()  # noqa: NPY002


def assert_same_rng_states(a, b):
    assert torch.equal(a[0], b[0])
    assert a[1][0] == b[1][0] and np.array_equal(a[1][1], b[1][1]) and a[1][2:] == b[1][2:]
    assert a[2] == b[2]


def plain(value):
    """Only tensors and plain containers, as weights_only=True loads them."""
    if isinstance(value, dict):
        return all(isinstance(k, str | int) and plain(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(plain(v) for v in value)
    return value is None or isinstance(value, torch.Tensor | str | int | float | bool)


def test_resume_is_exact(tmp_path):
    """6 steps straight == 3 steps, checkpoint, a new Trainer resumed, 3 more (bitwise)."""
    straight = Trainer(tiny_config(tmp_path / "a", "train.steps=6", "data.pairing=disjoint"),
                       train_set=dataset(), progress=False)
    straight.fit()
    first = Trainer(tiny_config(tmp_path / "b", "train.steps=6", "data.pairing=disjoint"),
                    train_set=dataset(), progress=False)
    first.fit(steps=3)  # 12 clips / batch 4: resumes mid-epoch
    np.random.standard_normal()  # noqa: NPY002 (caches a second Gaussian: has_gauss = 1)
    random.gauss(0.0, 1.0)  # and Python's (gauss_next)
    saved = global_rng_states()
    path = first.save_checkpoint(tmp_path / "mid.pt")
    torch.manual_seed(123)  # disturb every global RNG: the checkpoint restores them
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    second = Trainer(tiny_config(tmp_path / "b", "train.steps=6", "data.pairing=disjoint"),
                     train_set=dataset(), progress=False)
    second.resume(path)
    assert second.step == 3
    assert_same_rng_states(global_rng_states(), saved)
    second.fit()
    a, b = params(straight.model), params(second.model)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for sa, sb in zip(straight.optimizer.state_dict()["state"].values(),
                      second.optimizer.state_dict()["state"].values(), strict=True):
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert straight.scheduler.state_dict() == second.scheduler.state_dict()
    assert torch.equal(straight.mixer.state_dict()["generator"],
                       second.mixer.state_dict()["generator"])
    log = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss,lr") and len(log) == 7


def test_checkpoint_holds_only_tensors_and_plain_containers(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "train.steps=2"), train_set=dataset(),
                      progress=False)
    trainer.fit()
    raw = torch.load(tmp_path / "checkpoint.pt", weights_only=True)  # torch's own safe load
    assert plain(raw) and raw["format"] == CHECKPOINT_FORMAT and raw["step"] == 2
    assert {"torch", "numpy", "python"} <= set(raw["rng"])
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state.keys() == raw.keys()


def test_load_checkpoint_errors(tmp_path):
    trainer = Trainer(tiny_config(tmp_path / "run"), train_set=dataset(), progress=False)
    good = trainer.state_dict()
    cases = {
        "baseline.pt": ({"state_dict": {}},
                        f"expected a torchlass training checkpoint (format {CHECKPOINT_FORMAT!r})"
                        " to resume, got a model without a training state (fine-tune from it "
                        "with train.init_from)"),
        "old.pt": ({"format": "torchlass-train-v1"},
                   f"expected format {CHECKPOINT_FORMAT!r} (a torchlass training checkpoint), "
                   "got 'torchlass-train-v1'"),
        "partial.pt": ({**{k: v for k, v in good.items() if k != "rng"}, "step": "3"},
                       "is a torchlass training checkpoint with entries missing or of the "
                       "wrong type: 'step' (str), 'rng' (missing)"),
        "other.pt": ({"weights": torch.zeros(2), "a": 1},
                     f"expected a torchlass training checkpoint (format {CHECKPOINT_FORMAT!r}) "
                     "or the DCASE 2024 baseline's (keys 'state_dict', 'ss_model.*' or "
                     "'base.*'), got keys 'weights', 'a'"),
    }
    for name, (content, reason) in cases.items():
        torch.save(content, tmp_path / name)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        assert str(err.value) == f"load_checkpoint(): {str(tmp_path / name)!r} {reason}"
    other = Trainer(tiny_config(tmp_path / "wide", "model.widths=4,8"), train_set=dataset(),
                    progress=False)
    with pytest.raises(CheckpointError) as err:
        other.load_state_dict(good)
    assert str(err.value).startswith(
        "Trainer.load_state_dict(): the weights in the checkpoint do not fit the model: "
        "Error(s) in loading state_dict for Separator: Missing key(s) in state_dict: ")
    assert "\n" not in str(err.value)


def test_finetune_from_checkpoint_without_warmup(tmp_path):
    source = Trainer(tiny_config(tmp_path / "src", "train.steps=2"), train_set=dataset(),
                     progress=False)
    source.fit()
    cfg = tiny_config(tmp_path / "ft", "train.steps=1", "optim.schedule=constant",
                      "optim.lr=1e-4", f"train.init_from={tmp_path / 'src' / 'checkpoint.pt'}",
                      "train.seed=99")
    tuned = Trainer(cfg, train_set=dataset(), progress=False)
    before = params(source.model)
    assert all(torch.equal(before[k], v) for k, v in tuned.model.state_dict().items())
    assert tuned.step == 0 and tuned.optimizer.param_groups[0]["lr"] == 1e-4
    assert not tuned.optimizer.state
    bad = tiny_config(tmp_path / "x", "model.widths=4,8",
                      f"train.init_from={tmp_path / 'src' / 'checkpoint.pt'}")
    with pytest.raises(CheckpointError, match="do not fit the model"):
        Trainer(bad, train_set=dataset(), progress=False)
