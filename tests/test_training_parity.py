"""Training parity with the DCASE 2024 baseline: train-mode gradients and optimiser steps.

The reference is ``baseline_reference.reference_forward(..., training=True)``: the
original's forward pass written from its formulas in its own ``(frames, freq)`` layout and
key names, BatchNorm on batch statistics written out (no ``F.batch_norm``); SRPOL system 1
swaps its ends as SRPOL's report describes. Every parameter gradient of the
``Separator.dcase2024_baseline`` and ``Separator.srpol_system1`` presets in float64 is
compared with it on the same test weights and batch. The trainer's optimiser is compared
with AdamW + AMSGrad and the stepped warm-up written in numpy float64 from their formulas.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from baseline_reference import FIXTURE, baseline_layout, make_test_weights, reference_forward

from torchlass import Separator
from torchlass.data import TensorCaptionDataset
from torchlass.nn import FrequencyBatchNorm, MagnitudeFeatures
from torchlass.recipes import Trainer, apply_overrides, get_config
from torchlass.stft import magnitude_phase, stft

# ---------------------------------------------------------------- bn0 on the STFT's layout


def np_batch_norm_grads(x: np.ndarray, weight: np.ndarray, g: np.ndarray):
    """Train-mode BatchNorm over dim 1 of ``x`` (N, C, H, W): output and the gradients of
    ``sum(g * output)`` with respect to weight, bias and ``x``, in float64 from the formula.

    ``xhat = (x - mean) / sqrt(var + eps)`` with the biased variance over (N, H, W);
    ``d/dbias = sum g``, ``d/dweight = sum g xhat``,
    ``d/dx = weight / sqrt(var + eps) * (g - mean(g) - xhat mean(g xhat))``.
    """
    axes = (0, 2, 3)
    mean = x.mean(axis=axes, keepdims=True)
    std = np.sqrt(x.var(axis=axes, keepdims=True) + 1e-5)
    xhat = (x - mean) / std
    w = weight[None, :, None, None]
    grad_x = w / std * (g - g.mean(axis=axes, keepdims=True)
                        - xhat * (g * xhat).mean(axis=axes, keepdims=True))
    return (g * xhat).sum(axis=axes), g.sum(axis=axes), grad_x


def test_bn0_gradients_on_the_stft_layout():
    """bn0's gradients on the one-channel magnitude's layout equal the float64 formula.

    PyTorch 2.13's CPU ``batch_norm`` backward is wrong for an input with strides
    ``(N, 1, C, C)`` and a size-1 dimension, exactly the layout of
    ``magnitude_phase(stft(x))[0].transpose(1, 2)`` for one channel (the forward is right);
    ``FrequencyBatchNorm`` hands it a contiguous copy. Minimal reproducer
    (non-zero on PyTorch 2.13, CPU)::

        x = torch.randn(2, 7, 5, dtype=torch.float64).transpose(1, 2)[:, None].transpose(1, 2)
        # shape (2, 5, 1, 7), strides (35, 1, 5, 5)
        w = torch.ones(5, dtype=torch.float64, requires_grad=True)
        g = torch.randn(2, 5, 1, 7, dtype=torch.float64)
        grad = lambda t: torch.autograd.grad(
            (F.batch_norm(t, None, None, w, training=True) * g).sum(), w)[0]
        print(grad(x) - grad(x.contiguous()))
    """
    mag = magnitude_phase(stft(torch.randn(2, 1, 300, dtype=torch.float64), n_fft=16,
                               hop_length=4))[0]
    assert mag.transpose(1, 2).stride() == (684, 1, 9, 9)  # the (N, 1, C, C) pattern
    mag = mag.detach().requires_grad_()
    norm = FrequencyBatchNorm(9).double().train()
    torch.nn.init.normal_(norm.weight, 1.0, 0.3)
    g = torch.randn(2, 1, 9, 76, dtype=torch.float64)
    out = norm(mag)
    grads = torch.autograd.grad((out * g).sum(), (norm.weight, norm.bias, mag))
    # The formula acts on (N, C, H, W) with the bins as channels: (batch, bins, 1, frames).
    x_np, g_np = (t.detach().numpy().transpose(0, 2, 1, 3) for t in (mag, g))
    expected = np_batch_norm_grads(x_np, norm.weight.detach().numpy(), g_np)
    for got, want in zip(grads[:2], expected[:2], strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grads[2].numpy().transpose(0, 2, 1, 3), expected[2],
                               rtol=1e-10, atol=1e-12)


def test_dropped_nyquist_bin_gets_no_gradient():
    """Nothing after bn0 reads the Nyquist bin (the U-Net crops it), so its gradient is 0."""
    features = MagnitudeFeatures(9).double().train()
    spec = stft(torch.randn(2, 1, 300, dtype=torch.float64), n_fft=16, hop_length=4)
    (features(spec)[:, :, :-1] * torch.randn(2, 1, 8, 76, dtype=torch.float64)).sum().backward()
    assert features.norm.weight.grad[-1] == 0 and features.norm.bias.grad[-1] == 0
    assert bool((features.norm.weight.grad[:-1] != 0).all())


# ---------------------------------------------------------------- gradients of the baseline

# The original's key for each of ours: (pattern, replacement), the first match wins; levels
# count from 0 here and from 1 there. Inside blocks, our norm1/norm2 are its bn1/bn2.
_RENAMES = [
    (r"features\.norm\.", "base.bn0."),
    (r"backbone\.stem\.", "base.pre_conv."),
    (r"backbone\.out_conv\.", "base.after_conv."),
    (r"backbone\.encoders\.(?P<level>\d+)\.block\.film(?P<k>\d)\.shift\.",
     "film.encoder_block{level}->conv_block1->beta{k}."),
    (r"backbone\.encoders\.(?P<level>\d+)\.block\.", "base.encoder_block{level}.conv_block1."),
    (r"backbone\.bottleneck\.film(?P<k>\d)\.shift\.", "film.conv_block7a->conv_block1->beta{k}."),
    (r"backbone\.bottleneck\.", "base.conv_block7a.conv_block1."),
    (r"backbone\.decoders\.(?P<level>\d+)\.block\.film(?P<k>\d)\.shift\.",
     "film.decoder_block{level}->conv_block2->beta{k}."),
    (r"backbone\.decoders\.(?P<level>\d+)\.film\.shift\.", "film.decoder_block{level}->beta1."),
    (r"backbone\.decoders\.(?P<level>\d+)\.block\.", "base.decoder_block{level}.conv_block2."),
    (r"backbone\.decoders\.(?P<level>\d+)\.norm\.", "base.decoder_block{level}.bn1."),
    (r"backbone\.decoders\.(?P<level>\d+)\.up\.", "base.decoder_block{level}.conv1."),
]


def their_key(ours: str) -> str:
    """The original's state_dict key of our parameter or buffer ``ours``."""
    for pattern, replacement in _RENAMES:
        match = re.match(pattern, ours)
        if match:
            parts = match.groupdict()
            if "level" in parts:
                parts["level"] = str(int(parts["level"]) + 1)
            rest = ours[match.end():].replace("norm1.", "bn1.").replace("norm2.", "bn2.")
            return replacement.format(**parts) + rest
    raise KeyError(ours)


WIDTHS = (4, 8, 8, 8, 8, 8)  # ResUNet30's six levels and pooling at a small width
CONDITION = 16


@pytest.mark.parametrize(("system", "in_channels", "planes"), [
    ("dcase2024_baseline", 1, 3), ("srpol_system1", 2, 2)])
def test_every_train_mode_gradient_matches_the_original_in_float64(system, in_channels, planes):
    """The preset in train mode, float64, L1 loss: every gradient as the reference's.

    The layout is ResUNet30's (six levels, the original's pooling, ``n_fft = 1024``, hop
    160) at widths 4 to 8 and a 16-d condition, filled with the deterministic test weights.
    Parameters with an exactly zero gradient (1x1 shortcut biases, each followed by a
    train-mode BatchNorm that removes any constant) are compared in absolute terms.
    """
    layout = baseline_layout(WIDTHS, CONDITION, in_channels=in_channels, planes=planes)
    weights = make_test_weights(layout)
    ours = getattr(Separator, system)(condition_size=CONDITION, stem_width=WIDTHS[0],
                                      widths=WIDTHS)
    ours.load_state_dict({name: weights[their_key(name)].transpose(-1, -2)
                          if value.dim() == 4 else weights[their_key(name)]
                          for name, value in ours.state_dict().items()})
    ours = ours.double().train()
    with np.load(FIXTURE) as data:
        mixture = torch.from_numpy(data["mixture"])[:, :, :4801].double()  # 31 frames
    condition = torch.nn.functional.normalize(torch.randn(2, CONDITION, dtype=torch.float64))
    target = 0.5 * torch.roll(mixture, 7, dims=-1)

    (ours(mixture, condition)[:, 0] - target).abs().mean().backward()
    leaves = {k: v.double().requires_grad_() for k, v in weights.items()
              if v.is_floating_point() and not k.startswith(("base.stft", "base.istft"))
              and not k.endswith(("running_mean", "running_var"))}
    reference = reference_forward({**weights, **leaves}, mixture, condition, training=True,
                                  system="baseline" if system == "dcase2024_baseline" else system)
    (reference - target).abs().mean().backward()

    zero = []
    for name, param in ours.named_parameters():
        key = their_key(name)
        got = param.grad.transpose(-1, -2) if param.dim() == 4 else param.grad
        want = leaves[key].grad
        scale = float(want.norm())
        if scale < 1e-15:  # exactly zero: round-off only
            assert float(got.norm()) < 1e-15, (name, key)
            zero.append(name)
        else:
            error = float((got - want).norm()) / scale
            assert error < 1e-10, (name, key, error)
    assert all(name.endswith("shortcut.bias") for name in zero) and len(zero) >= 3
    assert ours.features.norm.weight.grad[-1] == 0  # the U-Net never reads the Nyquist bin


# ---------------------------------------------------------------- optimiser steps of the trainer


def np_amsgrad_adamw(theta, grads, lrs, *, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
    """Parameters after AdamW with AMSGrad (Loshchilov and Hutter; Reddi et al.), float64.

    ``theta <- theta (1 - lr wd)``; ``m <- b1 m + (1 - b1) g``; ``v <- b2 v + (1 - b2) g^2``;
    ``vmax <- max(vmax, v)``; ``theta <- theta - lr (m / (1 - b1^t)) /
    (sqrt(vmax / (1 - b2^t)) + eps)``, for steps ``t = 1, 2, ...`` with the given gradients.
    """
    m, v, vmax = np.zeros_like(theta), np.zeros_like(theta), np.zeros_like(theta)
    out = [theta]
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), 1):
        theta = theta * (1 - lr * weight_decay)
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g**2
        vmax = np.maximum(vmax, v)
        denom = np.sqrt(vmax) / np.sqrt(1 - betas[1] ** t) + eps
        theta = theta - lr / (1 - betas[0] ** t) * m / denom
        out.append(theta)
    return out


def _baseline_trainer() -> Trainer:
    cfg = apply_overrides(get_config("baseline"), [
        "model.n_fft=128", "model.hop_length=32", "model.stem_width=4", "model.widths=4,8",
        "model.pools=2x2,2x2", "model.condition_size=16", "query.encoder=hashed",
        "data.batch_size=3", "data.num_workers=0", "train.out_dir=", "optim.warmup_steps=1",
        "optim.grad_clip_norm=0"])
    g = torch.Generator().manual_seed(3)
    clips = 0.1 * torch.randn(6, 1, 1500, generator=g)
    data = TensorCaptionDataset(clips, ["a dog", "rain", "a bell"] * 2)
    return Trainer(cfg, train_set=data, progress=False, device="cpu")


def test_trainer_steps_as_the_originals_amsgrad_adamw():
    """Five trainer steps move every parameter as the original's optimiser and warm-up would.

    The original: ``AdamW(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=True)`` and a LambdaLR scale of 0.001, 0.01, 0.1 for ``warmup_steps`` steps each,
    then 1, stepped every step. The update is applied in float64 to the trainer's own
    gradients; parameters whose exact gradient is zero (shortcut biases before a train-mode
    BatchNorm) are left out, since Adam turns their round-off into full-size steps.
    """
    trainer = _baseline_trainer()
    assert (trainer.config.optim.lr, tuple(trainer.config.optim.betas), trainer.config.optim.eps,
            trainer.config.optim.weight_decay, trainer.config.optim.amsgrad) == (
        1e-3, (0.9, 0.999), 1e-8, 0.0, True)
    names = [n for n, _ in trainer.model.named_parameters()]
    thetas = [{n: p.detach().double().numpy().copy()
               for n, p in trainer.model.named_parameters()}]
    grads, lrs = [], []
    for _, batch in zip(range(5), trainer.loader(), strict=False):
        lrs.append(trainer.train_step(batch)["lr"])
        grads.append({n: p.grad.double().numpy().copy()
                      for n, p in trainer.model.named_parameters()})
        thetas.append({n: p.detach().double().numpy().copy()
                       for n, p in trainer.model.named_parameters()})
    np.testing.assert_allclose(lrs, [1e-6, 1e-5, 1e-4, 1e-3, 1e-3], rtol=1e-12)

    scale = max(float(np.abs(g[n]).max()) for g in grads for n in names)
    live = [n for n in names if max(float(np.abs(g[n]).max()) for g in grads) > 1e-6 * scale]
    assert all(n.endswith("shortcut.bias") for n in set(names) - set(live))
    assert "features.norm.weight" in live
    for name in live:
        expected = np_amsgrad_adamw(thetas[0][name], [g[name] for g in grads], lrs)
        for t in range(1, 6):
            step = np.abs(expected[t] - expected[t - 1]).max()
            # float32 parameters: a few ulp of the parameter, and 1e-4 of the step
            tol = 4 * np.spacing(np.abs(expected[t]).astype(np.float32)).astype(np.float64)
            np.testing.assert_array_less(np.abs(thetas[t][name] - expected[t]),
                                         tol + 1e-4 * step + 1e-12, err_msg=f"{name} step {t}")
