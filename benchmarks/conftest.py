"""Benchmark configuration.

``pytest benchmarks`` runs every benchmark once, untimed, as a smoke test (the default
``--benchmark-disable`` from ``pyproject.toml``). ``pytest benchmarks --benchmark`` times
them for real. pytest-benchmark has no ``--benchmark`` flag of its own: it is added here.
"""

from __future__ import annotations

import pytest
import torch


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--benchmark",
        action="store_true",
        default=False,
        help="time the benchmarks (default: run each once as a smoke test)",
    )


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
