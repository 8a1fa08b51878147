"""``torch.export`` of a separator with dynamic batch and time.

[`export_program`][torchlass.export.export_program] traces a
[`Separator`][torchlass.separator.Separator] in its exportable form
([`exportable`][torchlass.export.exportable]) into a `torch.export.ExportedProgram` whose batch and
time dimensions stay symbolic: one program serves every length from one frame-pooling block up. The
program holds the separator's own weights and buffers; running it equals the eager model to float32
rounding. A separator that takes a negative query
([`srpol_negative_query`][torchlass.separator.Separator.srpol_negative_query]) is traced with
its third input, ``negative`` (a row of zeros: none), batch-dynamic like the condition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
from torch import nn

from torchlass.errors import TorchlassError
from torchlass.export.mode import ComplexViews, exportable

__all__ = ["ExportSignature", "export_program", "export_signature"]


@dataclass(frozen=True)
class ExportSignature:
    """What a deployed graph needs to know about its separator.

    Attributes:
        sample_rate: in Hz.
        channels: mixture channels.
        num_sources: estimates per query (the output has a sources axis when above 1).
        condition_size: size of the query embedding.
        min_length: shortest input in samples: one full frame of ``n_fft`` and one
            frame-pooling block of ``align`` (0.32 s for the baseline).
        align: chunk starts a chunked run should use (hop times the network's frame
            pooling factor), as
            [`torchlass.Separator.separate`][torchlass.separator.Separator.separate] does.
        takes_negative: the graph has a third input, ``negative`` ``(batch,
            condition_size)``, the negative query (a row of zeros: none).
    """

    sample_rate: int
    channels: int
    num_sources: int
    condition_size: int
    min_length: int
    align: int
    takes_negative: bool = False


def export_signature(separator: nn.Module) -> ExportSignature:
    """Read the [`ExportSignature`][torchlass.export.ExportSignature] of a
    [`Separator`][torchlass.separator.Separator].

    Raises:
        TorchlassError: the separator has no ``n_fft``/``hop_length`` on its STFT or no
            ``condition_size`` on its backbone.
    """
    stft, backbone = getattr(separator, "stft", None), getattr(separator, "backbone", None)
    n_fft, hop = getattr(stft, "n_fft", None), getattr(stft, "hop_length", None)
    query = getattr(separator, "query", None)
    # With a negative query the backbone reads [condition, negative]: the query size is
    # the caller's condition size.
    condition_size = (getattr(query, "query_size", None) if query is not None
                      else getattr(backbone, "condition_size", None))
    if n_fft is None or hop is None or condition_size is None:
        raise TorchlassError(
            "export_signature(): argument 'separator' expected a torchlass Separator whose "
            "stft has n_fft and hop_length and whose backbone has condition_size, got "
            f"{type(separator).__name__}"
        )
    align = int(hop) * int(getattr(backbone, "frame_factor", 1))
    return ExportSignature(
        sample_rate=int(cast(int, separator.sample_rate)),
        channels=int(cast(int, separator.channels)),
        num_sources=int(getattr(separator, "num_sources", 1)),
        condition_size=int(condition_size), min_length=max(int(n_fft), align), align=align,
        takes_negative=bool(getattr(separator, "takes_negative", False)),
    )


def export_program(separator: nn.Module) -> torch.export.ExportedProgram:
    """Trace ``separator`` with `torch.export.export`, batch and time dynamic.

    The trace runs in eval mode with the convolution STFT
    ([`exportable`][torchlass.export.exportable]); the separator is left as it was. Shape facts the
    symbolic solver cannot prove for every length (the U-Net's frame padding is a ceiling division)
    become runtime assertions in the program instead of specialising it to the example length.

    Args:
        separator: a [`Separator`][torchlass.separator.Separator] (any preset).

    Returns:
        The program: ``(mixture (batch, channels, time), condition (batch,
        condition_size)[, negative (batch, condition_size)]) -> estimate (batch, [sources,]
        channels, time)``, for ``batch >= 1`` and ``time >= min_length``
        ([`ExportSignature`][torchlass.export.ExportSignature]); ``negative`` only for a
        separator that takes one.

    Raises:
        TorchlassError: ``separator`` is not a torchlass Separator (see
            [`export_signature`][torchlass.export.export_signature]).

    Examples:
        >>> from torchlass import Separator
        >>> sep = Separator.srpol_system1(condition_size=8, n_fft=256, hop_length=64,
        ...                               stem_width=4, widths=(4,), pools=((2, 2),))
        >>> program = export_program(sep)
        >>> x, c = torch.randn(3, 1, 5001), torch.randn(3, 8)
        >>> bool((program.module()(x, c) - sep.eval()(x, c)).abs().max() < 1e-5)
        True
    """
    signature = export_signature(separator)
    batch = torch.export.Dim("batch", min=1)
    time = torch.export.Dim("time", min=signature.min_length)
    generator = torch.Generator().manual_seed(0)
    # Batch 2 and an odd length: a hint of 1 or a multiple of the hop would specialise.
    mixture = torch.randn(2, signature.channels, signature.sample_rate + 1,
                          generator=generator)
    condition = torch.randn(2, signature.condition_size, generator=generator)
    inputs: tuple[torch.Tensor, ...] = (mixture, condition)
    dynamic: dict[str, dict[int, torch.export.Dim]] = {"mixture": {0: batch, 2: time},
                                                       "condition": {0: batch}}
    if signature.takes_negative:
        inputs += (torch.randn(2, signature.condition_size, generator=generator),)
        dynamic["negative"] = {0: batch}
    with exportable(separator), ComplexViews():
        return torch.export.export(
            separator, inputs, dynamic_shapes=dynamic,
            prefer_deferred_runtime_asserts_over_guards=True,
        )
