"""Put a separator in its exportable form for the length of a ``with`` block.

[`exportable`][torchlass.export.exportable] switches every module with an ``exportable`` attribute
(the [`STFT`][torchlass.stft.STFT] and [`ISTFT`][torchlass.stft.ISTFT] front-end) to its
convolution path and the separator to eval mode, and restores both afterwards: the eager,
compiled and exported models are one set of modules and weights.
[`ComplexViews`][torchlass.export.mode.ComplexViews] records the one complex operation the ONNX
exporter cannot translate (``unsqueeze`` of a complex tensor, used by the mask heads) as the
equivalent ``view``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, cast

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

__all__ = ["ComplexViews", "exportable"]


@contextmanager
def exportable(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, ``module`` runs its exportable front-end in eval mode.

    Args:
        module: a separator (or any module holding [`STFT`][torchlass.stft.STFT] /
            [`ISTFT`][torchlass.stft.ISTFT]).

    Yields:
        ``module`` itself, switched; its flags and training mode are restored on exit.

    Examples:
        >>> from torchlass import Separator
        >>> sep = Separator.dcase2024_baseline(condition_size=8, n_fft=256, hop_length=64,
        ...                                    stem_width=4, widths=(4,), pools=((2, 2),))
        >>> with exportable(sep):
        ...     sep.stft.exportable, sep.training
        (True, False)
        >>> sep.stft.exportable, sep.training
        (False, True)
    """
    switched = [m for m in module.modules() if isinstance(getattr(m, "exportable", None), bool)]
    before = [m.exportable for m in switched]
    training = module.training
    try:
        for m in switched:
            cast(Any, m).exportable = True  # the STFT modules' property, not a submodule
        yield module.eval()
    finally:
        for m, flag in zip(switched, before, strict=True):
            cast(Any, m).exportable = flag
        module.train(training)


class ComplexViews(TorchFunctionMode):
    """Trace ``unsqueeze`` of a complex tensor as the equal ``view``.

    The ONNX exporter holds a complex tensor as a real one with a trailing axis of two and
    has a complex translation for ``view`` but not for ``unsqueeze``. Inserting a size-one
    axis is a view of any strides, so the values are the same.
    """

    def __torch_function__(self, func: Any, types: Any, args: Any = (),
                           kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in (torch.Tensor.unsqueeze, torch.unsqueeze) and args[0].is_complex():
            x = args[0]
            dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
            dim = dim % (x.dim() + 1)
            return x.view(*x.shape[:dim], 1, *x.shape[dim:])
        return func(*args, **kwargs)
