"""Every documented example runs as written: docstring Examples (doctest) of every torchlass
module and the Python blocks of README.md and every docs page, found by walking the package
and the docs folder, so a new module or page is tested without being listed here."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import torch

import torchlass

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", flags=re.DOTALL | re.MULTILINE)


def torchlass_modules() -> list[str]:
    """Every module of the package (``__main__`` runs the CLI on import, so not it)."""
    found = pkgutil.walk_packages(torchlass.__path__, prefix="torchlass.")
    names = ["torchlass", *(m.name for m in found)]
    return sorted(n for n in names if not n.endswith("__main__"))


def python_blocks(page: str) -> list[str]:
    return BLOCK.findall((ROOT / page).read_text(encoding="utf-8"))


def pages_with_python() -> list[str]:
    pages = ["README.md", *(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("docs/**/*.md")))]
    return [page for page in pages if python_blocks(page)]


def run_page(page: str) -> None:
    """Run the page's Python blocks in order, in one namespace."""
    namespace: dict[str, object] = {}
    for i, block in enumerate(python_blocks(page)):
        exec(compile(block, f"{page}[python block {i}]", "exec"), namespace)


def test_discovery_finds_what_it_should():
    modules, pages = torchlass_modules(), pages_with_python()
    assert {"torchlass.stft.transform", "torchlass.recipes.config",
            "torchlass.kernels.masks"} <= set(modules)
    assert {"README.md", "docs/api/separator.md", "docs/guides/training.md"} <= set(pages)
    assert python_blocks("docs/api/separator.md")[0].startswith("import torch\n")


@pytest.mark.parametrize("name", torchlass_modules())
def test_docstring_examples(name):
    torch.manual_seed(0)
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def _custom_separator(out: list[str]) -> None:
    assert out[0] == "torch.Size([4, 1, 1, 8000])" and out[-1] == "torch.Size([4, 1, 1, 8000])"
    assert out[1].startswith("L1 after 20 steps: ")


def _srpol_systems(out: list[str]) -> None:
    assert out == ["332", "torch.Size([2, 1, 1, 32000])"]


def _kernels(out: list[str]) -> None:
    assert out == ["False"]  # a CPU tensor never takes the fused path


# Pages whose printed lines are checked too; the SRPOL guide builds three full ResUNet30s.
def _published_models(out: list[str]) -> None:
    assert out == ["32000 2048 320", "(1, 1, 1, 32000)", "['config.json', 'model.safetensors']"]


PRINTS = {"docs/guides/custom_separator.md": _custom_separator,
          "docs/guides/published_models.md": _published_models,
          "docs/guides/srpol_systems.md": _srpol_systems,
          "docs/api/kernels.md": _kernels}
SLOW = {"docs/guides/srpol_systems.md", "docs/api/separator.md"}
# Pages whose own tests run them: beside published-model test files (test_inference), or
# with their printed results checked against separate (test_export).
WITH_FILES = {"docs/api/query.md", "docs/guides/separate_files.md", "docs/guides/deployment.md",
              "docs/guides/queries.md"}


@pytest.mark.parametrize("page", [
    pytest.param(page, marks=[pytest.mark.slow] if page in SLOW else [])
    for page in pages_with_python() if page not in WITH_FILES])
def test_page_examples_run(page, capsys):
    run_page(page)
    out = capsys.readouterr().out.splitlines()
    if page in PRINTS:
        PRINTS[page](out)
