"""The Examples sections of torchlass.nn, separator, checkpoints, and the SRPOL guide, run."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

MODULES = ["torchlass.nn.film", "torchlass.nn.resunet", "torchlass.nn.features",
           "torchlass.separator", "torchlass.checkpoints"]
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "srpol_systems.md"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    import torch

    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


@pytest.mark.slow
def test_srpol_guide_runs_and_prints_what_it_claims(capsys):
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"srpol_systems.md[python block {i}]", "exec"), namespace)
    assert capsys.readouterr().out.splitlines() == [
        "332", "torch.Size([2, 1, 32000])"]
