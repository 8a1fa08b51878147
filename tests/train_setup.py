"""Shared set-up of the training tests: a tiny configuration, in-memory data, DDP model."""

from __future__ import annotations

import torch

from torchlass.data import TensorCaptionDataset
from torchlass.recipes import Trainer, apply_overrides, get_config

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


def params(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


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
