"""Fused GPU kernels (Triton) for the mask, STFT and loss hot paths.

Every function here computes exactly what an eager torchlass function computes, in fewer
passes over memory: the three mask families of [`torchlass.masks`][torchlass.masks.functional], the
separator features and the overlap-add of the inverse STFT of
[`torchlass.stft`][torchlass.stft.transform], and the one-pass statistics behind SI-SDR/SDR and
MixIT. They run on CUDA tensors (and, for tests, on CPU tensors under Triton's interpreter,
``TRITON_INTERPRET=1``). [`is_available`][torchlass.kernels.is_available] says whether the fused
path applies to given tensors; the public eager functions call it to dispatch. Triton is imported
only when a fused function is first used, so ``import torchlass`` stays cheap.
"""

from __future__ import annotations

import functools
import importlib
import os
from typing import Any

import torch

__all__ = [
    "fused_apply_complex_ratio_mask",
    "fused_apply_mag_phase_mask",
    "fused_apply_real_imag_mask",
    "fused_istft",
    "fused_magnitude_phase",
    "fused_mixture_gram",
    "fused_row_moments",
    "fused_si_sdr",
    "fused_snr",
    "is_available",
    "triton_importable",
]

_LAZY = {
    "fused_apply_complex_ratio_mask": "masks",
    "fused_apply_mag_phase_mask": "masks",
    "fused_apply_real_imag_mask": "masks",
    "fused_istft": "overlap_add",
    "fused_magnitude_phase": "features",
    "fused_mixture_gram": "reductions",
    "fused_row_moments": "reductions",
    "fused_si_sdr": "reductions",
    "fused_snr": "reductions",
}

#: Set ``TORCHLASS_KERNELS=0`` to force the eager path everywhere.
ENV_SWITCH = "TORCHLASS_KERNELS"


@functools.cache
def triton_importable() -> bool:
    """Whether ``import triton`` succeeds (checked once per process)."""
    try:
        importlib.import_module("triton")
    except ImportError:
        return False
    return True


def is_available(*tensors: object) -> bool:
    """Whether the fused kernels should handle these tensors.

    True when every argument is a tensor on a CUDA device, Triton can be imported, the
    fused path is not switched off with the environment variable ``TORCHLASS_KERNELS=0``
    and no ``torch.compile`` trace is running (the compiler fuses the eager code itself).
    CPU tensors always take the eager path (the Triton interpreter is for testing only);
    a non-tensor argument gives False, so that the eager function reports it.

    Args:
        *tensors: the inputs of the operation to dispatch.

    Returns:
        True if the fused kernels apply.

    Examples:
        >>> is_available(torch.zeros(3))
        False
    """
    if os.environ.get(ENV_SWITCH, "1") == "0":
        return False
    if not tensors or not all(isinstance(t, torch.Tensor) and t.is_cuda for t in tensors):
        return False
    if _compiling():
        return False
    return triton_importable()


def _compiling() -> bool:
    compiler = getattr(torch, "compiler", None)
    return bool(compiler is not None and getattr(compiler, "is_compiling", bool)())


def __getattr__(name: str) -> Any:
    """Import a fused function's module (and so Triton) on first use only."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)


def __dir__() -> list[str]:
    return sorted(__all__)
