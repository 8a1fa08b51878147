"""Inference through eager PyTorch, torch.compile, the torch.export program and onnxruntime.

One clip per setting, batch 1, float32, on the CPU with 2 threads (torch and onnxruntime
intra-op): 10 s at 16 kHz through the DCASE 2024 baseline (n_fft 1024, hop 160) and 5 s at
32 kHz through the same network with upstream AudioSep's STFT (n_fft 2048, hop 320). Each
case records the FLOPs of the graph it runs (``torch.utils.flop_counter``: convolutions and
matrix products; the exported graphs also count their DFT-as-convolution front-end) and,
when timed, the GFLOP/s reached; ``test_matmul_rate`` measures the 2-thread float32
matrix-product rate in the same run, the machine's ceiling for these networks. Smoke mode
(no ``--benchmark``) runs each case once on 0.5 s through a narrow network; the export and
compile cases still trace the model, so the module is marked slow.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from torchlass import Separator
from torchlass.export import OnnxSeparator, export_onnx, export_program, exportable

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

pytestmark = [pytest.mark.benchmark(group="export"), pytest.mark.slow]

THREADS = 2
CLIPS = {  # name: (sample_rate, n_fft, hop_length, seconds)
    "baseline_16k_10s": (16000, 1024, 160, 10.0),
    "audiosep_32k_5s": (32000, 2048, 320, 5.0),
}
SMOKE_SECONDS = 0.5
SMOKE_WIDTHS = {"stem_width": 4, "widths": (4, 4, 8, 8, 8, 8)}
ROUNDS = 2


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(before)


def _gflop(fn, *args) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn(*args)
    return counter.get_total_flops() / 1e9


@pytest.fixture(scope="module", params=sorted(CLIPS))
def clip(request, tmp_path_factory):
    """The separator, its input, the exported program and ONNX file, and FLOP counts."""
    full = request.config.getoption("--benchmark")
    rate, n_fft, hop, seconds = CLIPS[request.param]
    torch.manual_seed(0)
    sep = Separator.dcase2024_baseline(n_fft=n_fft, hop_length=hop, sample_rate=rate,
                                       check_finite=False,
                                       **({} if full else SMOKE_WIDTHS)).eval()
    length = round(rate * (seconds if full else SMOKE_SECONDS))
    g = torch.Generator().manual_seed(0)
    mixture = 0.1 * torch.randn(1, 1, length, generator=g)
    condition = torch.nn.functional.normalize(torch.randn(1, 512, generator=g))
    program = export_program(sep)
    path = export_onnx(sep, tmp_path_factory.mktemp("bench") / f"{request.param}.onnx",
                       program=program, check=False)
    eager_gflop = _gflop(sep, mixture, condition)
    with exportable(sep):
        graph_gflop = _gflop(sep, mixture, condition)
    with torch.no_grad():
        reference = sep(mixture, condition)
    return {"sep": sep, "mixture": mixture, "condition": condition, "program": program,
            "path": path, "gflop": {"eager": eager_gflop, "graph": graph_gflop},
            "reference": reference}


def _record(benchmark, gflop: float) -> None:
    benchmark.extra_info["GFLOP"] = round(gflop, 2)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        benchmark.extra_info["GFLOP/s"] = round(gflop / stats.stats.median, 2)


def _time(benchmark, request, fn):
    if not request.config.getoption("--benchmark"):
        return benchmark(fn)
    return benchmark.pedantic(fn, rounds=ROUNDS, warmup_rounds=0)  # warmed by the caller


def _runner(clip: dict, path_name: str):
    """The callable for one path, built (and compiled or loaded) outside the timing."""
    sep = clip["sep"]
    if path_name == "eager":
        return sep, clip["gflop"]["eager"]
    if path_name == "compile":
        return torch.compile(sep), clip["gflop"]["eager"]
    if path_name == "export":
        return clip["program"].module(), clip["gflop"]["graph"]
    return OnnxSeparator(Path(clip["path"]), threads=THREADS), clip["gflop"]["graph"]


@pytest.mark.parametrize("path_name", ["eager", "compile", "export", "onnxruntime"])
def test_inference(benchmark, request, clip, path_name):
    model, gflop = _runner(clip, path_name)
    mixture, condition = clip["mixture"], clip["condition"]

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return model(mixture, condition)

    run()  # compile / warm up outside the timing
    out = _time(benchmark, request, run)
    _record(benchmark, gflop)
    assert float((out - clip["reference"]).abs().max()) < 1e-4


def test_matmul_rate(benchmark, request):
    """The 2-thread float32 GEMM rate (2048 x 2048 x 2048), the ceiling for the rows above."""
    size = 2048 if request.config.getoption("--benchmark") else 256
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=g), torch.randn(size, size, generator=g)
    out = _time(benchmark, request, lambda: a @ b)
    _record(benchmark, 2 * size**3 / 1e9)
    assert out.shape == (size, size)
