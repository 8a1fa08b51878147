"""Prepared GPU check of the baseline separator: parity first, then train-step timings.

Run from the repository root on a CUDA machine::

    python benchmarks/gpu_resunet.py            # batch 16 x 10 s at 16 kHz, as the issue
    python benchmarks/gpu_resunet.py --tiny     # quick self-test (CPU if no GPU)

It prints markdown tables: parity of the loaded test weights against the committed fixture
(float32 with TF32 off, float64, channels_last, bfloat16, compiled), then one AdamW(amsgrad)
+ L1 train step of ResUNet30 per variant (fp32 TF32 off/on, bf16 autocast, bf16 +
channels_last, compiled), median milliseconds over timed steps and peak memory, then the
inference time of one 10 s clip.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from baseline_reference import FIXTURE, make_test_weights  # noqa: E402

from torchlass import Separator  # noqa: E402
from torchlass.checkpoints import load_dcase2024_baseline  # noqa: E402

TINY_WIDTHS = {"stem_width": 4, "widths": (4, 8, 16, 32, 48, 48)}


def _set_tf32(enabled: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parity(device: torch.device, *, tiny: bool, compile_: bool) -> list[tuple[str, float, str]]:
    """Max abs error against the original's outputs, per numeric setting."""
    with np.load(FIXTURE) as data:
        case = {k: torch.from_numpy(data[k]).to(device) for k in data.files
                if k != "weights_sha256"}
    sep = load_dcase2024_baseline(make_test_weights()).to(device)
    rows = []

    def check(name: str, model: Callable, dtype: torch.dtype, reference: str, atol: float,
              autocast: bool = False) -> None:
        with torch.no_grad(), torch.autocast(device.type, torch.bfloat16, enabled=autocast):
            out = model(case["mixture"].to(dtype), case["condition"].to(dtype))[:, 0]
        error = float((out.double() - case[reference].double()).abs().max())
        verdict = "info" if atol == float("inf") else ("ok" if error <= atol else "FAIL")
        rows.append((name, error, verdict))

    _set_tf32(False)
    check("float32, TF32 off vs waveform (atol 1e-5)", sep, torch.float32,
          "waveform", 1e-5)
    if tiny:  # the parity weights are the full ResUNet30: one float32 check is enough here
        return rows
    check("float64 vs waveform (atol 1e-7)", copy.deepcopy(sep).double(), torch.float64,
          "waveform", 1e-7)
    cl = copy.deepcopy(sep).to(memory_format=torch.channels_last)
    check("float32 channels_last vs waveform (atol 1e-5)", cl, torch.float32,
          "waveform", 1e-5)
    _set_tf32(True)
    check("float32, TF32 on vs waveform (info)", sep, torch.float32, "waveform", float("inf"))
    check("bf16 autocast + channels_last vs waveform (info)", cl, torch.float32, "waveform",
          float("inf"), autocast=True)
    if compile_:
        _set_tf32(False)
        check("compiled float32, TF32 off vs waveform (atol 1e-5)", torch.compile(sep),
              torch.float32, "waveform", 1e-5)
    return rows


def train_step(device: torch.device, *, batch: int, length: int, steps: int, warmup: int,
               tf32: bool, bf16: bool, channels_last: bool, compile_: bool,
               tiny: bool) -> tuple[float, float]:
    """Median step time (ms) and peak memory (GiB) of AdamW(amsgrad) + L1 train steps."""
    _set_tf32(tf32)
    torch.manual_seed(0)
    sep = Separator.dcase2024_baseline(check_finite=False, **(TINY_WIDTHS if tiny else {}))
    sep = sep.to(device).train()
    if channels_last:
        sep = sep.to(memory_format=torch.channels_last)
    model = torch.compile(sep) if compile_ else sep
    optimizer = torch.optim.AdamW(sep.parameters(), lr=1e-3, amsgrad=True)
    g = torch.Generator().manual_seed(0)
    mixture = (0.1 * torch.randn(batch, 1, length, generator=g)).to(device)
    target = (0.1 * torch.randn(batch, 1, length, generator=g)).to(device)
    condition = torch.nn.functional.normalize(torch.randn(batch, 512, generator=g)).to(device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = (model(mixture, condition)[:, 0] - target).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(warmup):
        step()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        _sync(device)
        times.append(1000 * (time.perf_counter() - start))
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    return statistics.median(times), peak


def inference(device: torch.device, *, length: int, steps: int, bf16: bool,
              tiny: bool) -> float:
    """Median time (ms) of one eval forward on a single clip."""
    _set_tf32(True)
    sep = Separator.dcase2024_baseline(check_finite=False, **(TINY_WIDTHS if tiny else {}))
    sep = sep.to(device).eval().to(memory_format=torch.channels_last)
    mixture = 0.1 * torch.randn(1, 1, length, device=device)
    condition = torch.ones(1, 512, device=device) / 512**0.5
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        with torch.inference_mode(), torch.autocast(device.type, torch.bfloat16, enabled=bf16):
            sep(mixture, condition)
        _sync(device)
        if i >= 2:
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="self-test: batch 1 x 0.3 s, 1/8 widths, 2 steps, float32 parity "
                             "only, no compiled variants unless --compile")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-compile", action="store_true", help="skip the compiled variants")
    parser.add_argument("--compile", action="store_true", help="compiled variants with --tiny")
    parser.add_argument("--skip-parity", action="store_true")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        args.batch, args.seconds, args.steps, args.warmup = 1, 0.3, 2, 1
    length = round(args.seconds * 16000)
    compile_ = not args.no_compile and (args.compile or not args.tiny)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# ResUNet30 separator on {name}, torch {torch.__version__}, "
          f"{datetime.date.today()}\n\ncommand: python {' '.join(sys.argv)}\n")

    failed = False
    if not args.skip_parity:
        print("| parity check | max abs error | |\n|---|---|---|")
        for check, error, verdict in parity(device, tiny=args.tiny, compile_=compile_):
            print(f"| {check} | {error:.2e} | {verdict} |")
            failed |= verdict == "FAIL"
        print()

    widths = "1/8-width ResUNet30" if args.tiny else "ResUNet30"
    print(f"| train step ({widths}, batch {args.batch} x {args.seconds:g} s, AdamW amsgrad, "
          "L1) | median ms | peak GiB |\n|---|---|---|")
    variants = [
        ("fp32, TF32 off", {"tf32": False, "bf16": False, "channels_last": False}),
        ("fp32, TF32 on", {"tf32": True, "bf16": False, "channels_last": False}),
        ("bf16 autocast", {"tf32": True, "bf16": True, "channels_last": False}),
        ("bf16 autocast + channels_last", {"tf32": True, "bf16": True, "channels_last": True}),
    ]
    if compile_:
        variants += [
            ("compiled fp32, TF32 on + channels_last",
             {"tf32": True, "bf16": False, "channels_last": True, "compile_": True}),
            ("compiled bf16 autocast + channels_last",
             {"tf32": True, "bf16": True, "channels_last": True, "compile_": True}),
        ]
    for label, options in variants:
        ms, peak = train_step(device, batch=args.batch, length=length, steps=args.steps,
                              warmup=args.warmup, tiny=args.tiny,
                              **{"compile_": False, **options})
        print(f"| {label} | {ms:.1f} | {peak:.2f} |", flush=True)
    print("\n| inference, one clip | median ms |\n|---|---|")
    for label, bf16 in (("fp32 (TF32 on) + channels_last", False),
                        ("bf16 autocast + channels_last", True)):
        ms = inference(device, length=length, steps=args.steps, bf16=bf16, tiny=args.tiny)
        print(f"| {label}, {args.seconds:g} s | {ms:.1f} |")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
