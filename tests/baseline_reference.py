"""Test helpers for the DCASE 2024 baseline: its checkpoint layout, test weights, a reference.

Everything here is written from the formulas of ``docs/baseline.md`` and is independent of
``torchlass``:

- :func:`baseline_layout` lists the ``ResUNet30(1, 1, 512)`` state_dict as the original
  registers it (docs/baseline.md#checkpoint-layout), key, shape and dtype;
- :func:`make_test_weights` fills that layout with deterministic test values (this
  module's own rule: one generator per key, seeded from the key's BLAKE2b digest);
- :func:`reference_forward` is the original's forward pass in its own ``(frames, freq)``
  layout on its own key names, with ``torch.stft``/``torch.istft``: the parity fixtures
  (``fixtures/make_fixtures.py``) are its outputs, and it gives reference outputs for
  lengths the fixtures lack. With
  ``training=True`` it is the train-mode pass (BatchNorm on batch statistics, written out
  from its formula), whose gradients the training-parity tests compare.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "dcase2024_parity.npz"
# sha256 of json.dumps(baseline_layout()) (the 332 [key, shape, dtype] entries), pinned.
LAYOUT_SHA256 = "9b4625b058784114342638668832012f89ccc5281548b6b11bad29f774929785"

N_FFT, HOP = 1024, 160
WIDTHS = (32, 64, 128, 256, 384, 384)
POOLS_TF = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2))  # (frames, freq), as the original


def _bn(prefix: str, n: int) -> list:
    leaves = [(f"{prefix}.{leaf}", [n], "float32")
              for leaf in ("weight", "bias", "running_mean", "running_var")]
    return [*leaves, (f"{prefix}.num_batches_tracked", [], "int64")]


def _conv_block(prefix: str, cin: int, cout: int) -> list:
    entries = _bn(f"{prefix}.bn1", cin) + _bn(f"{prefix}.bn2", cout)
    entries += [(f"{prefix}.conv1.weight", [cout, cin, 3, 3], "float32"),
                (f"{prefix}.conv2.weight", [cout, cout, 3, 3], "float32")]
    if cin != cout:
        entries += [(f"{prefix}.shortcut.weight", [cout, cin, 1, 1], "float32"),
                    (f"{prefix}.shortcut.bias", [cout], "float32")]
    return entries


def baseline_layout(widths: tuple[int, ...] = WIDTHS, condition_size: int = 512, *,
                    in_channels: int = 1, planes: int = 3, n_fft: int = N_FFT
                    ) -> list[tuple[str, list[int], str]]:
    """The original ``ResUNet30(1, 1, 512).state_dict()`` entries, in registration order.

    Other ``widths`` (six levels, the first also the ``pre_conv`` width) and
    ``condition_size`` give the same layout at another size, for cheaper tests;
    ``in_channels=2, planes=2`` is SRPOL system 1's network (real and imaginary parts in,
    two ratio-mask planes out). ``n_fft`` changes only the frozen STFT/iSTFT kernels and
    ``bn0`` (AudioSep at 32 kHz: 2048); every other key and shape is the same.
    """
    f = n_fft // 2 + 1
    base = [("base.stft.conv_real.weight", [f, 1, n_fft], "float32"),
            ("base.stft.conv_imag.weight", [f, 1, n_fft], "float32"),
            ("base.istft.ola_window", [n_fft], "float32"),
            ("base.istft.conv_real.weight", [n_fft, n_fft, 1], "float32"),
            ("base.istft.conv_imag.weight", [n_fft, n_fft, 1], "float32")]
    base += _bn("base.bn0", f)
    stem, deepest = widths[0], widths[-1]
    base += [("base.pre_conv.weight", [stem, in_channels, 1, 1], "float32"),
             ("base.pre_conv.bias", [stem], "float32")]
    film: list[tuple[str, int]] = []
    ins = [stem, *widths[:-1]]
    for i, (cin, cout) in enumerate(zip(ins, widths, strict=True), 1):
        base += _conv_block(f"base.encoder_block{i}.conv_block1", cin, cout)
        film += [(f"encoder_block{i}->conv_block1->beta1", cin),
                 (f"encoder_block{i}->conv_block1->beta2", cout)]
    base += _conv_block("base.conv_block7a.conv_block1", deepest, deepest)
    film += [("conv_block7a->conv_block1->beta1", deepest),
             ("conv_block7a->conv_block1->beta2", deepest)]
    outs = widths[::-1]
    for i, (cin, cout) in enumerate(zip([deepest, *outs[:-1]], outs, strict=True), 1):
        kt, kf = POOLS_TF[::-1][i - 1]
        p = f"base.decoder_block{i}"
        base += [(f"{p}.conv1.weight", [cin, cout, kt, kf], "float32")]
        base += _bn(f"{p}.bn1", cin)
        base += _conv_block(f"{p}.conv_block2", 2 * cout, cout)
        base += _bn(f"{p}.bn2", cin)
        film += [(f"decoder_block{i}->beta1", cin), (f"decoder_block{i}->beta2", cin),
                 (f"decoder_block{i}->conv_block2->beta1", 2 * cout),
                 (f"decoder_block{i}->conv_block2->beta2", cout)]
    base += [("base.after_conv.weight", [planes, stem, 1, 1], "float32"),
             ("base.after_conv.bias", [planes], "float32")]
    for name, n in film:
        base += [(f"film.{name}.weight", [n, condition_size], "float32"),
                 (f"film.{name}.bias", [n], "float32")]
    return base


def layout_sha256(entries: list) -> str:
    """Hash of a layout as ``json.dumps`` writes it (compared with the pinned one)."""
    return hashlib.sha256(json.dumps([list(e) for e in entries]).encode()).hexdigest()


def analytic_kernels(n_fft: int = N_FFT) -> dict[str, torch.Tensor]:
    """Exact DFT x periodic-Hann kernels in the torchlibrosa layout, float64 math -> float32."""
    n = torch.arange(n_fft, dtype=torch.float64)
    w = 0.5 - 0.5 * torch.cos(2 * math.pi * n / n_fft)
    k = torch.arange(n_fft)
    angle = 2 * math.pi * ((k[:, None] * k[None, :]) % n_fft).double() / n_fft
    half = n_fft // 2 + 1
    kernels = {
        "base.stft.conv_real.weight": (torch.cos(angle[:half]) * w)[:, None, :],
        "base.stft.conv_imag.weight": (-torch.sin(angle[:half]) * w)[:, None, :],
        "base.istft.ola_window": w**2,
        "base.istft.conv_real.weight": (torch.cos(angle) / n_fft * w[:, None])[:, :, None],
        "base.istft.conv_imag.weight": (torch.sin(angle) / n_fft * w[:, None])[:, :, None],
    }
    return {key: v.float().contiguous() for key, v in kernels.items()}


def _generator(key: str) -> torch.Generator:
    """A generator of its own per key, so a value does not depend on the others' order."""
    seed = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
    return torch.Generator().manual_seed(seed >> 1)  # manual_seed takes < 2**63


def make_test_weights(entries: list | None = None) -> dict[str, torch.Tensor]:
    """Deterministic test state_dict for a layout (values near a trained network's scale).

    Per key, a generator seeded from the key's BLAKE2b digest draws, in float32:
    convolution and linear weights uniform in ``±sqrt(3 / fan_in)`` (unit gain; for the
    decoders' transposed convolutions ``fan_in = shape[1] * kh * kw``), 1-d biases
    ``0.05 * U(-1, 1)``, BatchNorm weight ``0.8 + 0.4 U``, bias ``0.1 * U(-1, 1)``, running
    mean ``0.05 * N(0, 1)``, running variance ``0.5 + U`` (``U`` uniform in [0, 1)),
    ``num_batches_tracked`` 0. The frozen STFT kernels are the exact ones, as in a real
    checkpoint.
    """
    entries = baseline_layout() if entries is None else entries
    keys = {key for key, _, _ in entries}
    window = next((s for k, s, _ in entries if k == "base.istft.ola_window"), [N_FFT])
    fixed = analytic_kernels(window[0])
    out = {}
    for key, shape, _ in entries:
        if key in fixed:
            out[key] = fixed[key].clone()
            continue
        prefix, _, leaf = key.rpartition(".")
        g = _generator(key)
        uniform = torch.rand(shape, generator=g)  # [0, 1)
        if f"{prefix}.running_mean" in keys:  # a BatchNorm entry
            if leaf == "num_batches_tracked":
                out[key] = torch.zeros((), dtype=torch.int64)
            elif leaf == "running_mean":
                out[key] = 0.05 * torch.randn(shape, generator=g)
            else:
                out[key] = {"weight": 0.8 + 0.4 * uniform, "bias": 0.1 * (2 * uniform - 1),
                            "running_var": 0.5 + uniform}[leaf]
        elif len(shape) >= 2:
            transposed = key.startswith("base.decoder_block") and key.endswith(".conv1.weight")
            fan_in = math.prod(shape[1:]) if not transposed else shape[1] * math.prod(shape[2:])
            out[key] = math.sqrt(3.0 / fan_in) * (2 * uniform - 1)
        else:
            out[key] = 0.05 * (2 * uniform - 1)
    return out


def weights_sha256(weights: dict[str, torch.Tensor]) -> str:
    """One digest of every tensor's key and bytes (ties a fixture to the weights it used)."""
    digest = hashlib.sha256()
    for key in sorted(weights):
        digest.update(key.encode() + weights[key].contiguous().numpy().tobytes())
    return digest.hexdigest()


def _bn_apply(x: torch.Tensor, sd: dict, prefix: str, training: bool = False) -> torch.Tensor:
    weight, bias = sd[f"{prefix}.weight"][:, None, None], sd[f"{prefix}.bias"][:, None, None]
    if training:  # batch statistics (biased variance) per channel, by the formula
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        var = (x - mean).square().mean(dim=(0, 2, 3), keepdim=True)
        return (x - mean) / torch.sqrt(var + 1e-5) * weight + bias
    return F.batch_norm(x, sd[f"{prefix}.running_mean"], sd[f"{prefix}.running_var"],
                        sd[f"{prefix}.weight"], sd[f"{prefix}.bias"], training=False, eps=1e-5)


def reference_forward(state: dict, mixture: torch.Tensor, condition: torch.Tensor, *,
                      training: bool = False, system: str = "baseline", n_fft: int = N_FFT,
                      hop: int = HOP) -> torch.Tensor:
    """The baseline's forward (docs/baseline.md) in float64, ``(frames, freq)``.

    ``state`` holds the original's keys without the ``ss_model.`` prefix (float64 leaves
    that require grad receive the gradients); ``mixture`` is ``(batch, 1, time)``,
    ``condition`` ``(batch, 512)``; returns ``(batch, 1, time)``. ``training`` normalises
    with batch statistics, as the original in train mode (running statistics untouched).
    ``system="srpol_system1"`` swaps the ends as SRPOL's report describes its system 1:
    ``(Re Y, Im Y)`` as two input channels of ``bn0`` and the network, and two output planes
    bounded by tanh into real and imaginary ratio masks, ``X = M_re Re Y + j M_im Im Y``.
    AudioSep's 32 kHz model is the same with ``n_fft = 2048``, ``hop = 320``.
    """
    sd = {k: v.double() for k, v in state.items() if v.is_floating_point()}
    c = condition.double()
    batch, _, length = mixture.shape
    window = torch.hann_window(n_fft, periodic=True, dtype=torch.float64)
    spec = torch.stft(mixture.double().reshape(batch, length), n_fft, hop, window=window,
                      center=True, pad_mode="reflect", return_complex=True)
    spec = spec.transpose(1, 2)[:, None]  # (batch, 1, frames, freq)
    mag = torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=1e-10))
    cos, sin = spec.real / mag, spec.imag / mag
    frames = mag.shape[2]

    def lrelu_film(h: torch.Tensor, prefix: str, film: str) -> torch.Tensor:
        beta = F.linear(c, sd[f"film.{film}.weight"], sd[f"film.{film}.bias"])
        return F.leaky_relu(_bn_apply(h, sd, prefix, training) + beta[:, :, None, None], 0.01)

    def conv_block(h: torch.Tensor, prefix: str, film: str) -> torch.Tensor:
        y = F.conv2d(lrelu_film(h, f"{prefix}.bn1", f"{film}->beta1"),
                     sd[f"{prefix}.conv1.weight"], padding=1)
        y = F.conv2d(lrelu_film(y, f"{prefix}.bn2", f"{film}->beta2"),
                     sd[f"{prefix}.conv2.weight"], padding=1)
        if f"{prefix}.shortcut.weight" in sd:
            return y + F.conv2d(h, sd[f"{prefix}.shortcut.weight"], sd[f"{prefix}.shortcut.bias"])
        return y + h

    srpol = system == "srpol_system1"
    features = torch.cat([spec.real, spec.imag], 1) if srpol else mag
    h = _bn_apply(features.transpose(1, 3), sd, "base.bn0", training).transpose(1, 3)
    h = F.pad(h, (0, 0, 0, -frames % 32))[..., :-1]
    h = F.conv2d(h, sd["base.pre_conv.weight"], sd["base.pre_conv.bias"])
    skips = []
    for i in range(1, 7):
        h = conv_block(h, f"base.encoder_block{i}.conv_block1", f"encoder_block{i}->conv_block1")
        skips.append(h)
        h = F.avg_pool2d(h, POOLS_TF[i - 1])
    h = conv_block(h, "base.conv_block7a.conv_block1", "conv_block7a->conv_block1")
    for i in range(1, 7):
        p = f"base.decoder_block{i}"
        u = lrelu_film(h, f"{p}.bn1", f"decoder_block{i}->beta1")
        u = F.conv_transpose2d(u, sd[f"{p}.conv1.weight"], stride=POOLS_TF[6 - i])
        h = conv_block(torch.cat([u, skips[6 - i]], 1), f"{p}.conv_block2",
                       f"decoder_block{i}->conv_block2")
    z = F.conv2d(h, sd["base.after_conv.weight"], sd["base.after_conv.bias"])
    z = F.pad(z, (0, 1))[:, :, :frames]  # Nyquist logits 0, then crop the padded frames
    if srpol:
        out = torch.complex(torch.tanh(z[:, 0:1]) * spec.real, torch.tanh(z[:, 1:2]) * spec.imag)
        return torch.istft(out[:, 0].transpose(1, 2), n_fft, hop, window=window, center=True,
                           length=length)[:, None]
    m = torch.sigmoid(z[:, 0:1])
    p_r, p_i = torch.tanh(z[:, 1:2]), torch.tanh(z[:, 2:3])
    rho = torch.clamp(torch.sqrt(p_r**2 + p_i**2), min=1e-10)
    cos_m, sin_m = p_r / rho, p_i / rho
    out_mag = torch.relu(mag * m)
    out = torch.complex(out_mag * (cos * cos_m - sin * sin_m),
                        out_mag * (sin * cos_m + cos * sin_m))
    y = torch.istft(out[:, 0].transpose(1, 2), n_fft, hop, window=window, center=True,
                    length=length)
    return y[:, None]
