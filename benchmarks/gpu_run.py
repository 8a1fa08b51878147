"""Prepared GPU run of the fused kernels: check every kernel, then time every path.

Run from the repository root on a CUDA machine::

    python benchmarks/gpu_run.py --out benchmarks/results/kernels.md --plot kernels.png
    python benchmarks/gpu_run.py --tiny --out /tmp/kernels.md   # self-test (CPU: interpreter)

First each fused kernel is compared with the eager torchlass function (or torch) on random
data at the timed size: masks forward and gradients, features and their gradient, the
inverse STFT and its gradient, SI-SDR and its gradient, the MixIT Gram matrix and the
assignment and loss MixIT then picks. Then every path is timed with CUDA events (median
of ``--iters`` calls after warm-up): eager / ``torch.compile`` / fused, next to the memory
floor (bytes that must move, at the copy bandwidth measured on the same card). Sizes are
the issue's: spectrogram (16, 1, 1025, 1001) (16 x 10 s at 32 kHz, n_fft 2048, hop 320),
SI-SDR on 16 x 4 x 160000, MixIT with 8 estimates and 2 mixtures on 8 x 64000. Both
tables, with the card, versions, date and command, go to stdout and to ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

if not torch.cuda.is_available():  # CPU self-test: the kernels run in Triton's interpreter
    os.environ["TRITON_INTERPRET"] = "1"
# The public torchlass functions are the eager references: keep them off the fused path
# (on CUDA they would dispatch to it); `dispatched()` turns it on where that is measured.
os.environ["TORCHLASS_KERNELS"] = "0"

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import triton  # noqa: E402

from torchlass import kernels  # noqa: E402
from torchlass.losses import mixit as mixit_module  # noqa: E402
from torchlass.losses import mixit_loss, si_sdr_loss  # noqa: E402
from torchlass.masks import (  # noqa: E402
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
)
from torchlass.metrics import si_sdr  # noqa: E402
from torchlass.stft import istft, magnitude_phase, stft  # noqa: E402

Config = dict[str, Any]
Mask = Callable[..., torch.Tensor]
FULL: Config = {"batch": 16, "length": 320000, "n_fft": 2048, "hop": 320, "si_sdr": (16, 4, 160000),
        "mixit": (8, 8, 2, 64000)}
TINY: Config = {"batch": 2, "length": 2000, "n_fft": 64, "hop": 16, "si_sdr": (2, 2, 3000),
        "mixit": (2, 4, 2, 3000)}
FAMILIES: dict[str, tuple[Mask, Mask, int]] = {
    "mag-phase": (apply_mag_phase_mask, kernels.fused_apply_mag_phase_mask, 3),
    "real/imag": (apply_real_imag_mask, kernels.fused_apply_real_imag_mask, 2),
    "complex ratio": (apply_complex_ratio_mask, kernels.fused_apply_complex_ratio_mask, 2),
}
Row = tuple[str, dict[str, float | None], float]  # label, {impl: us}, floor bytes


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_us(fn: Callable[[], object], device: torch.device, iters: int, warmup: int) -> float:
    """Median time of ``fn`` in microseconds.

    On the GPU every call is bracketed by CUDA events and all calls are queued before one
    synchronisation (as ``triton.testing.do_bench`` does), so the host's launch overhead
    counts only where it leaves the GPU idle.
    """
    for _ in range(warmup):
        fn()
    _sync(device)
    if device.type == "cuda":
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(iters)]
        for start, end in events:
            start.record()
            fn()
            end.record()
        torch.cuda.synchronize(device)
        return statistics.median(start.elapsed_time(end) * 1e3 for start, end in events)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(times)


def copy_bandwidth(device: torch.device, nbytes: int) -> float:
    """Device copy rate in bytes/s (read + write), the reference for the memory floors."""
    src = torch.empty(nbytes // 4, device=device)
    dst = torch.empty_like(src)
    us = time_us(lambda: dst.copy_(src), device, 20, 3)
    return 2 * nbytes / (us * 1e-6)


def _rel_error(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = torch.as_tensor(got), torch.as_tensor(want)
    if got.is_complex():
        got, want = torch.view_as_real(got), torch.view_as_real(want)
    scale = float(want.double().abs().max()) or 1.0
    return float((got.double() - want.double()).abs().max()) / scale


def _grad(out: torch.Tensor | tuple[torch.Tensor, ...], inputs: list[torch.Tensor],
          cotangents: torch.Tensor | tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    return torch.autograd.grad(out, inputs, cotangents)


def mask_inputs(cfg: Config, device: torch.device, planes: int, freq_fastest: bool):
    """Spectrogram (batch, 1, 1, F, T) and planes sliced from one network output."""
    batch, bins = cfg["batch"], cfg["n_fft"] // 2 + 1
    frames = 1 + cfg["length"] // cfg["hop"]
    g = torch.Generator(device=device).manual_seed(0)
    if freq_fastest:
        spec = torch.randn(batch, 1, 1, frames, bins, dtype=torch.complex64, device=device,
                           generator=g).transpose(-1, -2)
    else:
        spec = torch.randn(batch, 1, 1, bins, frames, dtype=torch.complex64, device=device,
                           generator=g)
    net_out = torch.randn(batch, planes, bins, frames, device=device, generator=g)
    masks = list(net_out.reshape(batch, 1, 1, planes, bins, frames).unbind(3))
    return spec, [m.detach().requires_grad_(True) for m in masks]


ERRORS: list[str] = []  # failures of one check or timing, reported instead of aborting


def check_all(cfg: Config, device: torch.device) -> list[tuple[str, float, float]]:
    """(what, relative max error, tolerance) for every kernel against its reference."""
    rows: list[tuple[str, float, float]] = []
    for group in (_check_masks, _check_stft, _check_losses):
        try:
            rows += group(cfg, device)
        except Exception as exc:  # a kernel that fails to compile must not stop the run
            ERRORS.append(f"{group.__name__}: {type(exc).__name__}: {exc}")
            rows.append((f"{group.__name__} raised (see errors)", float("inf"), 0.0))
    return rows


def _check_masks(cfg: Config, device: torch.device) -> list[tuple[str, float, float]]:
    rows = []
    for name, (eager, fused, planes) in FAMILIES.items():
        spec, masks = mask_inputs(cfg, device, planes, freq_fastest=True)
        got, want = fused(spec, *masks), eager(spec, *masks)
        rows.append((f"{name} mask, forward", _rel_error(got, want), 1e-5))
        cot = torch.randn_like(want)
        for k, (a, b) in enumerate(zip(_grad(got, masks, cot), _grad(want, masks, cot),
                                       strict=True)):
            rows.append((f"{name} mask, gradient of plane {k}", _rel_error(a, b), 1e-5))
    return rows


def _check_stft(cfg: Config, device: torch.device) -> list[tuple[str, float, float]]:
    rows = []
    n_fft, hop = cfg["n_fft"], cfg["hop"]
    x = 0.1 * torch.randn(cfg["batch"], cfg["length"], device=device)
    window = torch.hann_window(n_fft, device=device)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True).requires_grad_(True)
    features, reference = kernels.fused_magnitude_phase(spec), magnitude_phase(spec)
    for label, a, b in zip(("magnitude", "cos", "sin"), features, reference, strict=True):
        rows.append((f"features, {label}", _rel_error(a, b), 1e-5))
    cots = tuple(torch.randn_like(w) for w in reference)
    rows.append(("features, gradient", _rel_error(_grad(features, [spec], cots)[0],
                                                 _grad(reference, [spec], cots)[0]), 1e-5))
    got = kernels.fused_istft(spec, n_fft=n_fft, hop_length=hop, window=window,
                              length=cfg["length"])
    want = torch.istft(spec, n_fft, hop, window=window, length=cfg["length"])
    rows.append(("iSTFT (vs torch.istft)", _rel_error(got, want), 1e-5))
    cot = torch.randn_like(want)
    rows.append(("iSTFT, gradient", _rel_error(_grad(got, [spec], cot)[0],
                                               _grad(want, [spec], cot)[0]), 1e-5))
    return rows


def _check_losses(cfg: Config, device: torch.device) -> list[tuple[str, float, float]]:
    rows = []
    target = torch.randn(*cfg["si_sdr"], device=device)
    estimate = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    got, want = kernels.fused_si_sdr(estimate, target), si_sdr(estimate, target)
    rows.append(("SI-SDR value (dB, absolute)", float((got - want).abs().max()), 1e-4))
    rows.append(("SI-SDR, gradient", _rel_error(_grad(got.sum(), [estimate], got.new_ones(()))[0],
                                                _grad(want.sum(), [estimate],
                                                      want.new_ones(()))[0]), 1e-4))
    estimates, mixtures = mixit_inputs(cfg, device)
    fused_gram = kernels.fused_mixture_gram(estimates, mixtures)
    eager_gram = mixit_module._inner_products(estimates, mixtures, torch.float64)
    for label, a, b in zip(("Gram", "cross", "power"), fused_gram, eager_gram, strict=True):
        rows.append((f"MixIT {label} (vs float64)", _rel_error(a, b), 1e-5))
    eager_loss, eager_assign = mixit_loss(estimates, mixtures, return_assignment=True)
    with dispatched():
        fused_loss, fused_assign = mixit_loss(estimates, mixtures, return_assignment=True)
    rows.append(("MixIT assignment mismatches", float((eager_assign != fused_assign).sum()), 0))
    rows.append(("MixIT loss (dB, absolute)", abs(float(fused_loss - eager_loss)), 1e-5))
    return rows


def mixit_inputs(cfg: Config, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    batch, num_est, num_mix, length = cfg["mixit"]
    g = torch.Generator(device=device).manual_seed(1)
    sources = torch.randn(batch, num_est, length, device=device, generator=g)
    mixtures = torch.stack([sources[:, 0::2].sum(1), sources[:, 1::2].sum(1)], dim=1)
    estimates = sources + 0.1 * torch.randn(sources.shape, device=device, generator=g)
    return estimates.requires_grad_(True), mixtures[:, :num_mix]


@contextlib.contextmanager
def dispatched() -> Iterator[None]:
    """Let the public functions dispatch to the fused kernels, on any device.

    The switch ``TORCHLASS_KERNELS=0`` set above lives in :func:`torchlass.kernels.is_available`;
    replacing the predicate routes CPU tensors too, so the self-test runs the dispatched
    paths in the interpreter.
    """
    original = kernels.is_available
    kernels.is_available = lambda *ts: bool(ts) and all(isinstance(t, torch.Tensor) for t in ts)
    try:
        yield
    finally:
        kernels.is_available = original


def time_all(cfg: Config, device: torch.device, iters: int, warmup: int, compile_: bool,
             compile_backward: bool) -> list[Row]:
    def t(fn: Callable[[], object]) -> float | None:
        try:
            return time_us(fn, device, iters, warmup)
        except Exception as exc:  # keep timing the other paths
            ERRORS.append(f"timing: {type(exc).__name__}: {exc}")
            return None

    rows: list[Row] = []
    for name, (eager, fused, planes) in FAMILIES.items():
        rows += _time_mask(name, eager, fused, planes, cfg, device, t, compile_,
                           compile_backward)
    eager, fused, planes = FAMILIES["mag-phase"]
    spec, masks = mask_inputs(cfg, device, planes, freq_fastest=True)
    with torch.no_grad():
        rows.append(("mag-phase mask, forward, spectrum from torch.stft (freq-fastest)", {
            "eager": t(lambda: eager(spec, *masks)), "fused": t(lambda: fused(spec, *masks)),
        }, spec.numel() * (16 + 4 * planes)))
    for group in (_time_stft, _time_losses):
        try:
            rows += group(cfg, device, t)
        except Exception as exc:
            ERRORS.append(f"{group.__name__}: {type(exc).__name__}: {exc}")
    return rows


def _time_mask(name: str, eager: Callable, fused: Callable, planes: int, cfg: Config,
               device: torch.device, t: Callable, compile_: bool, compile_backward: bool
               ) -> list[Row]:
    spec, masks = mask_inputs(cfg, device, planes, freq_fastest=False)
    compiled = torch.compile(eager, dynamic=False) if compile_ else None
    cot = torch.ones_like(spec)

    def forward(apply: Callable) -> float:
        with torch.no_grad():
            return t(lambda: apply(spec, *masks))

    def forward_backward(apply: Callable) -> float:
        return t(lambda: torch.autograd.grad(apply(spec, *masks), masks, cot))

    return [
        (f"{name} mask, forward", {
            "eager": forward(eager),
            "compile": forward(compiled) if compiled else None,
            "fused": forward(fused),
        }, spec.numel() * (16 + 4 * planes)),
        (f"{name} mask, forward+backward", {
            "eager": forward_backward(eager),
            "compile": forward_backward(compiled) if compiled and compile_backward else None,
            "fused": forward_backward(fused),
        }, spec.numel() * (32 + 12 * planes)),
    ]


def _time_stft(cfg: Config, device: torch.device, t: Callable) -> list[Row]:
    n_fft, hop, length = cfg["n_fft"], cfg["hop"], cfg["length"]
    x = 0.1 * torch.randn(cfg["batch"], length, device=device)
    window = torch.hann_window(n_fft, device=device)
    spec = torch.stft(x, n_fft, hop, window=window, return_complex=True)
    spec_bytes, signal_bytes = spec.numel() * 8, x.numel() * 4
    rows: list[Row] = []
    with torch.no_grad():
        rows.append(("torch.stft", {"eager": t(lambda: torch.stft(
            x, n_fft, hop, window=window, return_complex=True))}, signal_bytes + spec_bytes))
        rows.append(("features (mag, cos, sin) of a spectrum", {
            "eager": t(lambda: magnitude_phase(spec)),
            "fused": t(lambda: kernels.fused_magnitude_phase(spec)),
        }, spec_bytes * 5 // 2))
        rows.append(("STFT + features", {
            "eager": t(lambda: magnitude_phase(stft(x, n_fft=n_fft, hop_length=hop,
                                                    check_finite=False))),
            "fused": t(lambda: kernels.fused_magnitude_phase(torch.stft(
                x, n_fft, hop, window=window, return_complex=True))),
        }, signal_bytes + spec_bytes * 7 // 2))
        rows.append(("iSTFT (torch.istft | fused)", {
            "eager": t(lambda: torch.istft(spec, n_fft, hop, window=window, length=length)),
            "fused": t(lambda: kernels.fused_istft(spec, n_fft=n_fft, hop_length=hop,
                                                   window=window, length=length)),
        }, spec_bytes + signal_bytes))
        public = lambda: istft(spec, n_fft=n_fft, hop_length=hop, length=length)  # noqa: E731
        eager_us = t(public)
        with dispatched():
            fused_us = t(public)
        rows.append(("iSTFT (torchlass.stft.istft, checks on; fused = dispatched)", {
            "eager": eager_us, "fused": fused_us}, spec_bytes + signal_bytes))
    leaf = spec.detach().requires_grad_(True)
    cot = torch.ones_like(x)
    rows.append(("iSTFT forward+backward", {
        "eager": t(lambda: torch.autograd.grad(
            torch.istft(leaf, n_fft, hop, window=window, length=length), leaf, cot)),
        "fused": t(lambda: torch.autograd.grad(kernels.fused_istft(
            leaf, n_fft=n_fft, hop_length=hop, window=window, length=length), leaf, cot)),
    }, 2 * (spec_bytes + signal_bytes)))
    try:
        import asteroid_filterbanks as filterbanks
    except ImportError:
        return rows
    bank = filterbanks.STFTFB(n_filters=n_fft, kernel_size=n_fft, stride=hop)
    encoder, decoder = filterbanks.Encoder(bank).to(device), filterbanks.Decoder(bank).to(device)
    with torch.no_grad():
        encoded = encoder(x.unsqueeze(1))
        rows.append(("asteroid-filterbanks Encoder (conv1d STFT)",
                     {"eager": t(lambda: encoder(x.unsqueeze(1)))}, signal_bytes + spec_bytes))
        rows.append(("asteroid-filterbanks Decoder (conv1d iSTFT)",
                     {"eager": t(lambda: decoder(encoded))}, signal_bytes + spec_bytes))
    return rows


def _time_losses(cfg: Config, device: torch.device, t: Callable) -> list[Row]:
    target = torch.randn(*cfg["si_sdr"], device=device)
    estimate = (target + 0.1 * torch.randn_like(target)).requires_grad_(True)
    pair_bytes = 2 * target.numel() * 4
    rows: list[Row] = []
    with torch.no_grad():
        rows.append(("SI-SDR (torchlass.metrics.si_sdr)", {
            "eager": t(lambda: si_sdr(estimate, target, check_finite=False)),
            "fused": t(lambda: kernels.fused_si_sdr(estimate, target)),
        }, pair_bytes))
        try:
            from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio
            rows.append(("SI-SDR (torchmetrics)", {"eager": t(
                lambda: scale_invariant_signal_distortion_ratio(estimate, target))}, pair_bytes))
        except ImportError:
            pass
    rows.append(("SI-SNR loss forward+backward (si_sdr_loss)", {
        "eager": t(lambda: torch.autograd.grad(
            si_sdr_loss(estimate, target, check_finite=False), estimate)),
        "fused": t(lambda: torch.autograd.grad(
            -kernels.fused_si_sdr(estimate, target, zero_mean=True).mean(), estimate)),
    }, 2 * pair_bytes + target.numel() * 4))
    estimates, mixtures = mixit_inputs(cfg, device)
    mixit_bytes = (estimates.numel() + mixtures.numel()) * 4

    def everything_einsum() -> torch.Tensor:  # every assignment's remix at once
        num_mix, num_est = mixtures.shape[1], estimates.shape[1]
        table = mixit_module._assignment_table(num_mix, num_est)
        hot = mixit_module._one_hot(table, num_mix, estimates.dtype, device)
        remix = torch.einsum("knm,bmt->bknt", hot, estimates)
        error = (remix - mixtures.unsqueeze(1)).square().sum(-1)
        power = mixtures.square().sum(-1).unsqueeze(1)
        return (10 * torch.log10(error / power)).sum(-1).min(-1).values

    with torch.no_grad():
        rows.append(("MixIT search, all assignments in one einsum", {
            "eager": t(everything_einsum)}, mixit_bytes))
        rows.append(("MixIT Gram + inner products", {
            "eager": t(lambda: mixit_module._inner_products(estimates, mixtures,
                                                            torch.float32)),
            "fused": t(lambda: kernels.fused_mixture_gram(estimates, mixtures)),
        }, mixit_bytes))

    def loss_step() -> object:
        return torch.autograd.grad(mixit_loss(estimates, mixtures, check_finite=False),
                                   estimates)

    eager_us = t(loss_step)
    with dispatched():
        fused_us = t(loss_step)
    rows.append(("MixIT loss forward+backward (mixit_loss; fused = dispatched)", {
        "eager": eager_us, "fused": fused_us}, 3 * mixit_bytes))
    return rows


def _fmt(us: float | None) -> str:
    return "-" if us is None else f"{us:,.0f}" if us >= 100 else f"{us:.1f}"


def render(checks: list, rows: list[Row], bandwidth: float, header: list[str]) -> str:
    lines = [*header, "", "### Checks against the eager reference (random data, timed sizes)",
             "", "| check | error | tolerance | |", "|---|---|---|---|"]
    for what, err, tol in checks:
        lines.append(f"| {what} | {err:.2e} | {tol:.0e} | {'ok' if err <= tol else 'FAIL'} |")
    lines += ["", f"### Timings (median us; floor = bytes / {bandwidth / 1e12:.2f} TB/s copy "
              "rate measured on this card)", "",
              "| path | eager | torch.compile | fused | floor | fused / floor | "
              "eager / fused |", "|---|---|---|---|---|---|---|"]
    for label, times, floor_bytes in rows:
        floor = floor_bytes / bandwidth * 1e6
        eager, comp, fused = times.get("eager"), times.get("compile"), times.get("fused")
        ratio = f"{fused / floor:.2f}x" if fused else "-"
        speedup = f"{eager / fused:.1f}x" if fused and eager else "-"
        lines.append(f"| {label} | {_fmt(eager)} | {_fmt(comp)} | {_fmt(fused)} | "
                     f"{_fmt(floor)} | {ratio} | {speedup} |")
    if ERRORS:
        lines += ["", "### Errors", "", *(f"- {e}" for e in ERRORS)]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [r[0] for r in rows]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(rows) + 1))
    for i, impl in enumerate(("eager", "compile", "fused")):
        values = [r[1].get(impl) or 0.0 for r in rows]
        ax.barh([j + 0.27 * (i - 1) for j in range(len(rows))], values, height=0.27,
                label="torch.compile" if impl == "compile" else impl)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("median time per call (us, log scale)")
    ax.invert_yaxis()
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="markdown file to write")
    parser.add_argument("--plot", type=Path, help="also draw the timings into this PNG")
    parser.add_argument("--tiny", action="store_true", help="small sizes (self-test)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--compile-backward", action="store_true",
                        help="also time compiled forward+backward (slow to compile)")
    parser.add_argument("--iters", type=int, default=None, help="timed calls per path")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    cfg = TINY if args.tiny else FULL
    iters = args.iters or (2 if device.type == "cpu" else 50)
    warmup = 1 if device.type == "cpu" else 5
    compile_ = not args.no_compile and device.type == "cuda"
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (interpreter)"
    header = [
        f"## Fused kernels on {card}",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- torch {torch.__version__} (CUDA {torch.version.cuda}), triton {triton.__version__}",
        f"- command: `python {' '.join(['benchmarks/gpu_run.py', *(argv or sys.argv[1:])])}`",
        f"- sizes: spectrogram ({cfg['batch']}, 1, 1, {cfg['n_fft'] // 2 + 1}, "
        f"{1 + cfg['length'] // cfg['hop']}) complex64 (n_fft {cfg['n_fft']}, hop "
        f"{cfg['hop']}); SI-SDR {cfg['si_sdr']}; MixIT (batch, estimates, mixtures, time) = "
        f"{cfg['mixit']}; float32",
    ]
    torch.manual_seed(0)
    checks = check_all(cfg, device)
    bandwidth = copy_bandwidth(device, 1 << (30 if device.type == "cuda" else 24))
    rows = time_all(cfg, device, iters, warmup, compile_, args.compile_backward)
    text = render(checks, rows, bandwidth, header)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    if args.plot:
        plot(rows, args.plot)
    return 1 if ERRORS or any(err > tol for _, err, tol in checks) else 0


if __name__ == "__main__":
    raise SystemExit(main())
