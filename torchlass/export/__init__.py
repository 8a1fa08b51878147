"""Deployment: ``torch.export`` programs and ONNX graphs of every separator.

:func:`export_program` gives a :class:`torch.export.ExportedProgram` and
:func:`export_onnx` an ONNX file (opset :data:`OPSET`); both map ``(mixture (batch,
channels, time), condition (batch, condition_size))`` to the separated waveform with batch
and time dynamic, for every preset (baseline magnitude/phase mask, SRPOL system 1
real/imag masks, complex ratio mask, several sources). The STFT runs as convolutions, a
switch inside :class:`~torchlass.stft.STFT`/:class:`~torchlass.stft.ISTFT`
(:func:`exportable`), so the graphs hold the separator's own weights.
:class:`OnnxSeparator` runs a graph with onnxruntime, chunked like
:func:`torchlass.separate`; :func:`save_embeddings` stores query embeddings for it.
"""

from torchlass.export.embeddings import save_embeddings
from torchlass.export.mode import exportable
from torchlass.export.onnx import OPSET, export_onnx
from torchlass.export.program import ExportSignature, export_program, export_signature
from torchlass.export.runtime import OnnxSeparator, session_options

__all__ = [
    "OPSET",
    "ExportSignature",
    "OnnxSeparator",
    "export_onnx",
    "export_program",
    "export_signature",
    "exportable",
    "save_embeddings",
    "session_options",
]
