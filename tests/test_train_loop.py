"""The Trainer's loop: the loss falls, clipping, every loss under bf16, validation, errors."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from train_setup import dataset, tiny_config

from torchlass.errors import NonFiniteError, ShapeError, ValueRangeError
from torchlass.recipes import Trainer


def test_training_reduces_the_loss(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "train.steps=40", "optim.lr=3e-3", "train.loss=l1",
                                  "train.log_every=10"), train_set=dataset(), progress=False)
    rows = trainer.fit()
    assert rows[-1]["loss"] < rows[0]["loss"]


def test_gradient_clipping(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "optim.grad_clip_norm=1e-4", "train.loss=l1"),
                      train_set=dataset(), progress=False)
    stats = trainer.train_step(next(iter(trainer.loader())))
    total = torch.sqrt(sum(p.grad.pow(2).sum() for p in trainer.model.parameters()
                           if p.grad is not None))
    assert stats["grad_norm"] > 1e-4 and float(total) <= 1e-4 * (1 + 1e-5)


@pytest.mark.parametrize("loss", ["l1", "sdr", "mixit"])
def test_each_loss_and_bf16_trains(tmp_path, loss):
    extra = ["model.num_sources=2"] if loss == "mixit" else []
    trainer = Trainer(tiny_config(tmp_path, f"train.loss={loss}", "train.precision=bf16",
                                  "train.steps=2", *extra), train_set=dataset(), progress=False)
    rows = trainer.fit()
    assert np.isfinite(rows[-1]["loss"])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_periodic_validation(tmp_path):
    from torchlass.data import mix_at_snr

    g = torch.Generator().manual_seed(0)
    s, n = 0.1 * torch.randn(2, 1, 400, generator=g), 0.1 * torch.randn(2, 1, 400, generator=g)
    mixed = mix_at_snr(s, n, torch.tensor([0.0, 5.0]))
    items = [{"mixture": mixed.mixture[i], "target": mixed.target[i], "caption": "a dog",
              "snr_db": float(mixed.snr_db[i])} for i in range(2)]
    trainer = Trainer(tiny_config(tmp_path, "train.steps=4", "train.val_every=2",
                                  "train.log_every=100"),
                      train_set=dataset(), validation_set=items, progress=False)
    rows = trainer.fit()
    assert [r["step"] for r in rows] == [2, 4]
    assert all(np.isfinite(r["val_sdri"]) for r in rows)
    assert "val_si_sdr" in (tmp_path / "log.csv").read_text().splitlines()[0]


def test_trainer_errors(tmp_path):
    with pytest.raises(ValueRangeError, match=r"'train\.precision' expected one of"):
        Trainer(tiny_config(tmp_path, "train.precision=fp16"), train_set=dataset())
    with pytest.raises(ShapeError, match="at least the global batch of 4 items, got 3"):
        Trainer(tiny_config(tmp_path), train_set=dataset(n=3), progress=False).fit(steps=1)


def test_log_has_the_gradient_norm_without_clipping(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "train.steps=3", "optim.grad_clip_norm=0"),
                      train_set=dataset(), progress=False)
    stats = trainer.train_step(next(iter(trainer.loader())))
    expected = math.sqrt(sum(float(p.grad.double().pow(2).sum())
                             for p in trainer.model.parameters() if p.grad is not None))
    assert stats["grad_norm"] == pytest.approx(expected, rel=1e-5) and expected > 0
    trainer.fit()
    text = (tmp_path / "log.csv").read_text()
    assert "nan" not in text.lower()
    with (tmp_path / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["2", "3"]
    assert all(math.isfinite(float(r["grad_norm"])) and float(r["grad_norm"]) > 0
               for r in rows)
    assert all(r["val_sdr"] == "" for r in rows)  # empty: no validation at that step


class SqrtGain(torch.nn.Module):
    """Output 0 with an infinite gradient: d sqrt(g) / dg at g = 0."""

    def __init__(self):
        super().__init__()
        self.g = torch.nn.Parameter(torch.zeros(()))

    def forward(self, mixture, condition):
        return (mixture * torch.sqrt(self.g))[:, None]  # (batch, sources=1, channels, time)


def test_a_non_finite_gradient_stops_before_the_update(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "train.loss=l1"), train_set=dataset(),
                      separator=SqrtGain(), progress=False)
    with pytest.raises(NonFiniteError, match=r"^Trainer\.train_step\(\): the gradient norm is "
                                             r"(nan|inf) at step 1 \(loss [0-9.e-]+\); the "
                                             r"parameters were not updated: lower optim\.lr or "
                                             r"train in train\.precision=fp32$"):
        trainer.train_step(next(iter(trainer.loader())))
    assert trainer.step == 0 and float(trainer.model.g.detach()) == 0.0
    assert not trainer.optimizer.state
