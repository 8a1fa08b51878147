"""The examples of torchlass.metrics and torchlass.losses (docstrings and API pages) run."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "api"

MODULES = [
    "torchlass.metrics.snr",
    "torchlass.metrics.si_sdr",
    "torchlass.metrics.bss",
    "torchlass.metrics.dcase",
    "torchlass.losses.waveform",
    "torchlass.losses.snr",
    "torchlass.losses.mixit",
    "torchlass.losses.pit",
    "torchlass.losses.modules",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    import torch

    torch.manual_seed(0)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


@pytest.mark.parametrize("page", ["metrics.md", "losses.md"])
def test_api_page_examples_run(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, f"{page} has no Python example"
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page}[python block {i}]", "exec"), namespace)
