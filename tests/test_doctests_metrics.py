"""The Examples sections of torchlass.metrics and torchlass.losses run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

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
