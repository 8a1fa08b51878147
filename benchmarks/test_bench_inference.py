"""Benchmarks of separating files: ``separate_file`` against the bare forward pass, and memory.

Smoke mode (always): the baseline layouts at 1/8 of their widths on files of a second or
two. With ``--benchmark``: the full 16 kHz and 32 kHz presets on a 20 s, 44.1 kHz mono file
(``separate_file``: reading, resampling both ways, 10 s chunks with 1 s overlaps, writing)
and the bare forward pass on the same audio at the model's rate in 10 s pieces. The peak
memory check runs each length in its own process (``benchmarks/inference_scaling.py``,
which also prints the figures recorded in ``RESULTS.md``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import soundfile as sf
import torch

from benchmarks.inference_scaling import baseline, condition, memory, write_noise
from torchlass.data.audio import resample
from torchlass.inference import separate_file

pytestmark = pytest.mark.benchmark(group="inference")

LAYOUTS = ["16k", "32k"]


def _full(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--benchmark"))


@pytest.fixture
def long_file(request, tmp_path) -> Path:
    path = tmp_path / "long.wav"
    write_noise(path, 20.0 if _full(request) else 1.0, channels=1)
    return path


@pytest.mark.parametrize("layout", LAYOUTS)
def test_separate_file(benchmark, request, tmp_path, long_file, layout):
    sep, c = baseline(layout, tiny=not _full(request)), condition()
    done = benchmark.pedantic(separate_file, args=(sep, long_file, ["q"]),
                              kwargs={"condition": c, "out_dir": tmp_path}, rounds=1)
    benchmark.extra_info["audio_seconds"] = done.seconds
    assert sf.info(str(done.targets[0])).frames == sf.info(str(long_file)).frames


@pytest.mark.parametrize("layout", LAYOUTS)
def test_bare_forward(benchmark, request, long_file, layout):
    sep, c = baseline(layout, tiny=not _full(request)), condition()
    x = resample(torch.from_numpy(sf.read(long_file, dtype="float32")[0])[None], 44100,
                 sep.sample_rate)
    step = 10 * sep.sample_rate

    def forward() -> None:
        with torch.no_grad():
            for k in range(0, x.shape[-1], step):
                sep(x[None, :, k:k + step], c)

    benchmark.pedantic(forward, rounds=1)
    benchmark.extra_info["audio_seconds"] = x.shape[-1] / sep.sample_rate


def test_peak_memory_does_not_grow_with_the_file(request):
    """A longer file (10x with --benchmark), same chunks: the peak stays within 1.5x."""
    lengths = [3.0, 30.0] if _full(request) else [0.5, 2.0]
    chunk, overlap = (1.0, 0.25) if _full(request) else (0.5, 0.1)
    short, long = memory(lengths, layout="16k", chunk=chunk, overlap=overlap,
                         tiny=not _full(request))
    assert long["peak_mb"] <= 1.5 * short["peak_mb"], (short, long)
