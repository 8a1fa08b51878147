"""Trainer checkpoints: exact resumption and fine-tuning from another run's weights."""

from __future__ import annotations

import pytest
import torch
from train_setup import dataset, params, tiny_config

from torchlass.errors import CheckpointError
from torchlass.recipes import Trainer, load_checkpoint


def test_resume_is_exact(tmp_path):
    straight = Trainer(tiny_config(tmp_path / "a", "train.steps=6", "data.pairing=disjoint"),
                       train_set=dataset(), progress=False)
    straight.fit()
    first = Trainer(tiny_config(tmp_path / "b", "train.steps=6", "data.pairing=disjoint"),
                    train_set=dataset(), progress=False)
    first.fit(steps=3)  # 12 clips / batch 4: resumes mid-epoch
    path = first.save_checkpoint(tmp_path / "mid.pt")
    torch.manual_seed(123)  # disturb the global RNG: the checkpoint restores it
    second = Trainer(tiny_config(tmp_path / "b", "train.steps=6", "data.pairing=disjoint"),
                     train_set=dataset(), progress=False)
    second.resume(path)
    assert second.step == 3
    second.fit()
    a, b = params(straight.model), params(second.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    for sa, sb in zip(straight.optimizer.state_dict()["state"].values(),
                      second.optimizer.state_dict()["state"].values(), strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    state = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    assert state["step"] == 6 and {"torch", "numpy", "python"} <= set(state["rng"])
    log = (tmp_path / "a" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,loss,lr") and len(log) == 7


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
