"""The Examples sections of torchlass.stft and torchlass.masks run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "torchlass.stft.transform",
    "torchlass.stft.features",
    "torchlass.stft.asteroid",
    "torchlass.masks.functional",
    "torchlass.masks.bounds",
    "torchlass.masks.heads",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    import torch

    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
