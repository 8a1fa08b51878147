"""ONNX graphs of a separator: waveform and query embedding in, separated waveform out.

[`export_onnx`][torchlass.export.export_onnx] converts the
[`export_program`][torchlass.export.export_program] of a separator with the ``torch.onnx`` exporter
(which needs the ``onnx`` and ``onnxscript`` packages: ``pip install torchlass[export]``). The graph
maps ``mixture`` float32 ``(batch, channels, time)`` and ``condition`` float32
``(batch, condition_size)`` (and, for a separator that takes a negative query, ``negative``
float32 ``(batch, condition_size)``, zeros for none) to ``estimate`` float32 ``(batch, [sources,]
channels, time)``, with batch and time dynamic. The STFT and its inverse are convolutions
([`torchlass.stft.dft`][torchlass.stft.dft]) and the inverse's window envelope is computed in the
graph for the length that comes in.

Opset 18 is the target: it is the opset the exporter's operator library is written for
(a lower one would go through a version converter that may fail), it has every operator
the graph uses (``Conv``/``ConvTranspose``, ``Pad`` with reflection and negative pads,
``ReduceMean`` with axes as an input), and onnxruntime has run it since 1.14 (2023). The
graph does not use ONNX's own ``STFT`` (opset 17), which has no inverse.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

from torch import nn

from torchlass.errors import TorchlassError
from torchlass.export.program import export_program, export_signature

__all__ = ["INPUT_NAMES", "OPSET", "OUTPUT_NAMES", "export_onnx"]

OPSET = 18
"""ONNX opset of the exported graphs (see the module description for why)."""
INPUT_NAMES = ("mixture", "condition")
NEGATIVE_INPUT_NAME = "negative"
"""The third input of the graph of a separator that takes a negative query."""
OUTPUT_NAMES = ("estimate",)


def export_onnx(separator: nn.Module, path: str | Path, *,
                program: Any = None, optimize: bool = True, check: bool = True) -> Path:
    """Write the ONNX graph of ``separator`` to ``path`` (opset [`OPSET`][torchlass.export.OPSET]).

    The graph's metadata (``custom_metadata_map`` in onnxruntime) records the
    [`ExportSignature`][torchlass.export.ExportSignature]: ``sample_rate``, ``channels``,
    ``num_sources``, ``condition_size``, ``min_length``, ``align`` (the chunk grid a
    chunked run uses) and ``takes_negative`` (``1`` when the graph has the ``negative``
    input), all as decimal strings.

    Args:
        separator: a [`Separator`][torchlass.separator.Separator] (any preset); left as it was.
        path: the ``.onnx`` file to write (its folder must exist).
        program: the separator's [`export_program`][torchlass.export.export_program], if already
            traced (saves tracing it again).
        optimize: let the exporter fold constants and remove redundant nodes.
        check: run `onnx.checker.check_model` on the written file.

    Returns:
        ``path`` as a `Path`.

    Raises:
        TorchlassError: ``separator`` is not a torchlass Separator.
        ImportError: ``onnx`` or ``onnxscript`` is not installed.
    """
    import torch

    # The exporter's translation of ``//`` on sizes is ONNX Div, which truncates toward
    # zero; the U-Net's frame padding is a ceiling division, -(-frames // factor).
    from torchlass.export._onnx_ops import floordiv

    signature = export_signature(separator)
    if program is None:
        program = export_program(separator)
    onnx_program = torch.onnx.export(
        program, dynamo=True, opset_version=OPSET,
        input_names=[*INPUT_NAMES, *([NEGATIVE_INPUT_NAME] if signature.takes_negative else [])],
        output_names=list(OUTPUT_NAMES), optimize=optimize, verbose=False,
        custom_translation_table={operator.floordiv: floordiv},
    )
    if onnx_program is None:  # only the legacy (dynamo=False) exporter returns None
        raise TorchlassError("export_onnx(): torch.onnx.export returned no program")
    onnx_program.model.metadata_props.update(
        {key: str(int(value) if isinstance(value, bool) else value)
         for key, value in vars(signature).items()})
    path = Path(path)
    onnx_program.save(path)
    if check:
        import onnx

        onnx.checker.check_model(str(path), full_check=True)
    return path
