"""torchlass.recipes training: schedules, configurations, losses, the Trainer (exact resume,
fine-tuning, clipping, bf16, validation) and DDP with gloo against one process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from torchlass.data import Mixture, TensorCaptionDataset
from torchlass.errors import CheckpointError, ShapeError, TorchlassError, ValueRangeError
from torchlass.recipes import (
    PRESETS,
    Trainer,
    apply_overrides,
    baseline_warmup,
    build_scheduler,
    build_separator,
    config_to_toml,
    get_config,
    linear_warmup,
    load_checkpoint,
    load_config,
    separation_loss,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model.n_fft=64", "model.hop_length=32", "model.stem_width=2", "model.widths=2,4",
        "model.pools=2x2,2x2", "model.condition_size=16", "query.encoder=hashed",
        "data.batch_size=4", "data.num_workers=0", "data.segment_seconds=0.05",
        "model.sample_rate=8000", "optim.schedule=linear_warmup", "optim.warmup_steps=2",
        "train.log_every=1", "train.val_every=0", "train.checkpoint_every=0"]


def tiny_config(tmp_path, *extra, preset="srpol_system1"):
    return apply_overrides(get_config(preset), [*TINY, f"train.out_dir={tmp_path}", *extra])


def dataset(n=12, length=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    captions = ["a dog barking", "rain falling", "a bell ringing", "birds chirping"]
    return TensorCaptionDataset(0.2 * torch.randn(n, 1, length, generator=g),
                                [captions[i % 4] for i in range(n)])


# -- schedules ---------------------------------------------------------------------------

def test_baseline_warmup_learning_rates():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    sched = build_scheduler(opt, "baseline_warmup", warmup_steps=10)
    lrs = []
    for _ in range(45):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [1e-6] * 10 + [1e-5] * 10 + [1e-4] * 10 + [1e-3] * 15
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert [baseline_warmup(s) for s in (9999, 10000, 29999, 30000)] == [0.001, 0.01, 0.1, 1.0]


def test_linear_and_constant_schedules():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=2.0)
    sched = build_scheduler(opt, "linear_warmup", warmup_steps=4)
    lrs = []
    for _ in range(6):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [0.5, 1.0, 1.5, 2.0, 2.0, 2.0]
    assert linear_warmup(0, warmup_steps=1) == 1.0
    const = build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3),
                            "constant")
    assert const.get_last_lr() == [0.3]
    with pytest.raises(ValueRangeError, match="'name' expected one of"):
        build_scheduler(opt, "cosine")


# -- configurations ----------------------------------------------------------------------

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
    assert get_config("srpol_system3").optim.schedule == "linear_warmup"
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
    assert model(torch.randn(2, 1, 400), torch.randn(2, 16)).shape == (2, 1, 400)
    with pytest.raises(ValueRangeError, match="'architecture' expected one of"):
        build_separator(tiny_config(tmp_path, "model.architecture=unet").model)


def test_baseline_has_no_mask_bound(tmp_path):
    cfg = tiny_config(tmp_path, "model.architecture=dcase2024_baseline", "model.mask_bound=tanh")
    with pytest.raises(ValueRangeError, match="'mask_bound' expected '' for the dcase2024"):
        build_separator(cfg.model)


# -- losses ------------------------------------------------------------------------------

def test_separation_losses_numerics():
    rng = np.random.default_rng(1)
    t, i, e = (rng.standard_normal((4, 1, 64)) for _ in range(3))
    batch = Mixture(torch.from_numpy(t + i), torch.from_numpy(t), torch.from_numpy(i),
                    torch.zeros(4))
    l1 = separation_loss("l1", torch.from_numpy(e), batch)
    np.testing.assert_allclose(float(l1), np.mean(np.abs(e - t)), rtol=1e-12)
    sdr = separation_loss("sdr", torch.from_numpy(e), batch, sdr_lambda=0.9)
    eps = np.finfo(np.float64).eps

    def np_snr(x, s):
        return 10 * np.log10((np.sum(s**2) + eps) / (np.sum((s - x) ** 2) + eps))

    def np_si_snr(x, s):
        x, s = x - x.mean(), s - s.mean()
        proj = (np.dot(x, s) + eps) / (np.dot(s, s) + eps) * s
        return 10 * np.log10((np.sum(proj**2) + eps) / (np.sum((x - proj) ** 2) + eps))

    expected = np.mean([-0.9 * np_snr(e[b, 0], t[b, 0]) - 0.1 * np_si_snr(e[b, 0], t[b, 0])
                        for b in range(4)])
    np.testing.assert_allclose(float(sdr), expected, rtol=1e-6)
    with pytest.raises(ShapeError, match="'mixit' expected an estimate of shape"):
        separation_loss("mixit", torch.from_numpy(e), batch)
    with pytest.raises(ShapeError, match="'l1' expected an estimate of the target's shape"):
        separation_loss("l1", torch.zeros(4, 2, 1, 64), batch)
    with pytest.raises(ValueRangeError, match="'name' expected one of"):
        separation_loss("l2", torch.from_numpy(e), batch)


# -- the trainer -------------------------------------------------------------------------

def params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


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


def test_training_reduces_the_loss(tmp_path):
    trainer = Trainer(tiny_config(tmp_path, "train.steps=40", "optim.lr=3e-3", "train.loss=l1",
                                  "train.log_every=10"), train_set=dataset(), progress=False)
    rows = trainer.fit()
    assert rows[-1]["loss"] < rows[0]["loss"]


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
    with pytest.raises(CheckpointError, match="expected a torchlass training checkpoint"):
        torch.save({"state_dict": {}}, tmp_path / "other.pt")
        load_checkpoint(tmp_path / "other.pt")


# -- DDP with gloo -----------------------------------------------------------------------

WORKER = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_train import ddp_setup
    trainer = ddp_setup({out!r}, batch_size=2)
    trainer.fit()
    if trainer.dist.rank == 0:
        torch.save(trainer.model.state_dict(), {out!r} + "/ddp.pt")
""")


class NoNormBackbone(torch.nn.Module):
    """A backbone without BatchNorm: with gloo, statistics would differ per process."""

    def __init__(self, condition_size):
        super().__init__()
        self.conv = torch.nn.Conv2d(2, 8, 3, padding=1)
        self.film = torch.nn.Linear(condition_size, 8)
        self.out = torch.nn.Conv2d(8, 2, 3, padding=1)

    def forward(self, x, condition):
        h = torch.tanh(self.conv(x) + self.film(condition)[:, :, None, None])
        return self.out(h)


def ddp_setup(out_dir, *, batch_size):
    from torchlass.masks import RealImagMaskHead
    from torchlass.nn import RealImagFeatures
    from torchlass.separator import Separator
    from torchlass.stft import ISTFT, STFT

    cfg = apply_overrides(get_config("srpol_system1"), [
        *TINY, f"data.batch_size={batch_size}", "data.pairing=disjoint", "train.steps=3",
        "train.out_dir=", "optim.lr=1e-2", "train.loss=sdr", "optim.grad_clip_norm=0.5"])
    torch.manual_seed(0)
    model = Separator(NoNormBackbone(16), features=RealImagFeatures(33, normalize=False),
                      head=RealImagMaskHead(), stft=STFT(64, 32), istft=ISTFT(64, 32),
                      sample_rate=8000)
    return Trainer(cfg, train_set=dataset(n=8), separator=model, device="cpu", progress=False)


@pytest.mark.slow
def test_ddp_gloo_two_processes_equal_one_process_on_the_global_batch(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER.format(tests=str(ROOT / "tests"), out=str(tmp_path)))
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script)], capture_output=True, text=True, timeout=240, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    ddp = torch.load(tmp_path / "ddp.pt")
    single = ddp_setup(str(tmp_path), batch_size=4)
    assert single.dist.world_size == 1
    start = params(single.model)
    single.fit()
    changed = False
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(ddp[key], value, rtol=1e-5, atol=1e-6)
        changed |= not torch.equal(start[key], value)
    assert changed
