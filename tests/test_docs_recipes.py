"""The Examples sections of torchlass.data, torchlass.query and torchlass.recipes, and the
Python blocks of the training guide, run as written."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

MODULES = [
    "torchlass.data.audio", "torchlass.data.dataset", "torchlass.data.mixing",
    "torchlass.data.synthetic", "torchlass.query.cache", "torchlass.query.hashed",
    "torchlass.query.protocol", "torchlass.recipes.config", "torchlass.recipes.evaluate",
    "torchlass.recipes.model", "torchlass.recipes.sampler", "torchlass.recipes.schedule",
    "torchlass.recipes.trainer",
]
GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guides" / "training.md"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    import torch

    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


def test_training_guide_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.DOTALL)
    assert blocks
    namespace: dict[str, object] = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"training.md[python block {i}]", "exec"), namespace)
