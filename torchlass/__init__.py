"""torchlass: PyTorch components for language-queried audio source separation.

The subpackages are imported on first use, so ``import torchlass`` costs little beyond
``import torch``: ``torchlass.stft``, ``torchlass.masks``, ``torchlass.metrics``,
``torchlass.losses``, ``torchlass.nn`` and the rest load when touched.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_SUBMODULES = {
    "checkpoints",
    "data",
    "errors",
    "kernels",
    "losses",
    "masks",
    "metrics",
    "nn",
    "pretrained",
    "query",
    "recipes",
    "separator",
    "stft",
}
_LAZY_ATTRS = {"Separator": "separator"}

__all__ = ["Separator", "__version__", *sorted(_SUBMODULES)]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_ATTRS:
        module = importlib.import_module(f"{__name__}.{_LAZY_ATTRS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'torchlass' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
