"""Benchmark configuration.

``pytest benchmarks`` runs every benchmark once, untimed, as a smoke test (the default
``--benchmark-disable`` from ``pyproject.toml``). ``pytest benchmarks --benchmark`` times
them for real. pytest-benchmark has no ``--benchmark`` flag of its own: it is added here
and switches its ``benchmark_disable`` option off before the plugin reads it (both modes
are checked: disabled benchmarks report no statistics, enabled ones do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

from torchlass import kernels


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--benchmark",
        action="store_true",
        default=False,
        help="time the benchmarks (default: run each once as a smoke test)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--benchmark"):
        config.option.benchmark_disable = False
        config.option.benchmark_enable = True


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every benchmark runs on the CPU, and on CUDA when one is present."""
    return torch.device(request.param)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work so that the timed call includes it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def report_bandwidth(benchmark: object, floor_bytes: int) -> None:
    """Record the memory floor and, when timed, the effective bandwidth in ``extra_info``.

    ``floor_bytes`` is the least traffic the operation needs (each input read once, each
    output written once); ``GB/s`` is that divided by the median time, so it is comparable
    to the card's copy bandwidth.
    """
    info = benchmark.extra_info  # type: ignore[attr-defined]
    info["floor_MB"] = round(floor_bytes / 1e6, 3)
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        info["GB/s"] = round(floor_bytes / stats.stats.median / 1e9, 2)


def time_call(benchmark: Any, device: torch.device, fn: Callable[[], Any],
              floor_bytes: int) -> Any:
    """Time ``fn`` with the GPU synchronised inside each call; record its memory floor."""

    def timed() -> Any:
        out = fn()
        synchronize(device)
        return out

    out = benchmark(timed)
    report_bandwidth(benchmark, floor_bytes)
    return out


@pytest.fixture
def kernel_path(monkeypatch: pytest.MonkeyPatch, device: torch.device
                ) -> Callable[[str], None]:
    """``kernel_path(impl)`` routes the public torchlass functions for this case.

    ``"eager"`` (and ``"compile"``) keep them on their eager path (``TORCHLASS_KERNELS=0``);
    ``"fused"`` leaves their dispatch to the fused kernels on, and skips where those do not
    run (CPU tensors: the Triton interpreter is for tests only).
    """

    def select(impl: str) -> None:
        if impl != "fused":
            monkeypatch.setenv(kernels.ENV_SWITCH, "0")
        elif not kernels.is_available(torch.empty(0, device=device)):
            pytest.skip("the fused kernels run on CUDA tensors with Triton installed")

    return select
