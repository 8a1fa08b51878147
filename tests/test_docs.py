"""Every documented example runs as written: docstring Examples (doctest) and the Python
blocks of README.md and the docs pages, so none of them can rot."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

DOCTEST_MODULES = [
    "torchlass.stft.transform", "torchlass.stft.features", "torchlass.stft.asteroid",
    "torchlass.masks.functional", "torchlass.masks.bounds", "torchlass.masks.heads",
    "torchlass.metrics.snr", "torchlass.metrics.si_sdr", "torchlass.metrics.bss",
    "torchlass.metrics.dcase",
    "torchlass.losses.waveform", "torchlass.losses.snr", "torchlass.losses.mixit",
    "torchlass.losses.pit", "torchlass.losses.modules",
    "torchlass.nn.film", "torchlass.nn.resunet", "torchlass.nn.features",
    "torchlass.separator", "torchlass.checkpoints", "torchlass.pretrained",
    "torchlass.data.audio", "torchlass.data.dataset", "torchlass.data.mixing",
    "torchlass.data.synthetic", "torchlass.query.cache", "torchlass.query.hashed",
    "torchlass.query.protocol", "torchlass.recipes.config", "torchlass.recipes.evaluate",
    "torchlass.recipes.model", "torchlass.recipes.sampler", "torchlass.recipes.schedule",
    "torchlass.recipes.trainer",
]


def python_blocks(page: str) -> list[str]:
    text = (ROOT / page).read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def run_page(page: str) -> None:
    """Run the page's Python blocks in order, in one namespace."""
    blocks = python_blocks(page)
    assert blocks, f"{page} has no Python example"
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{page}[python block {i}]", "exec"), namespace)


@pytest.mark.parametrize("name", DOCTEST_MODULES)
def test_docstring_examples(name):
    torch.manual_seed(0)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


@pytest.mark.parametrize("page", [
    "README.md", "docs/conventions.md", "docs/api/metrics.md", "docs/api/losses.md",
    "docs/guides/training.md", "docs/api/checkpoints.md",
])
def test_page_examples_run(page):
    run_page(page)


def test_custom_separator_guide_runs_and_prints_what_it_claims(capsys):
    run_page("docs/guides/custom_separator.md")
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "torch.Size([4, 1, 1, 8000])" and out[-1] == "torch.Size([4, 1, 1, 8000])"
    assert out[1].startswith("L1 after 20 steps: ")


@pytest.mark.slow
def test_srpol_guide_runs_and_prints_what_it_claims(capsys):
    run_page("docs/guides/srpol_systems.md")
    assert capsys.readouterr().out.splitlines() == ["332", "torch.Size([2, 1, 32000])"]


def test_published_models_guide_runs_and_prints_what_it_claims(capsys):
    run_page("docs/guides/published_models.md")
    assert capsys.readouterr().out.splitlines() == [
        "32000 2048 320", "(1, 1, 32000)", "['config.json', 'model.safetensors']"]
