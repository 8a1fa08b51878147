"""Import :mod:`torchlass.kernels` for tests: compiled on a CUDA machine, interpreted elsewhere.

``TRITON_INTERPRET`` is read when Triton and the kernel modules decorate their functions,
so on a CPU-only machine it is set before either is imported and stays set for the session
(Triton imports some modules lazily at the first launch, and nothing can run compiled
Triton code there anyway). Kernel modules that imported Triton earlier in compiled mode
are dropped and imported again, once per session. The kernels use only Triton's core
builtins, so they are interpreted even if another test imported Triton first.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
from types import ModuleType

import pytest
import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
KERNEL_MODULES = ("masks", "features", "overlap_add", "reductions")


def import_kernels() -> ModuleType:
    """``torchlass.kernels`` with every kernel module loaded; skips without Triton."""
    if DEVICE.type == "cpu":
        os.environ["TRITON_INTERPRET"] = "1"
    pytest.importorskip("triton", reason="triton is not installed (optional dependency)")
    return _load()


@functools.cache
def _load() -> ModuleType:
    if DEVICE.type == "cpu":  # only modules that use Triton (DeviceError etc. stay unique)
        for name in [n for n, m in sys.modules.items()
                     if n.startswith("torchlass.kernels.") and "triton" in vars(m)]:
            del sys.modules[name]
    package = importlib.import_module("torchlass.kernels")
    for sub in KERNEL_MODULES:
        importlib.import_module(f"torchlass.kernels.{sub}")
    return package
