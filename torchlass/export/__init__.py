"""Deployment: ``torch.export`` programs and ONNX graphs of every separator.

[`export_program`][torchlass.export.export_program] gives a `torch.export.ExportedProgram` and
[`export_onnx`][torchlass.export.export_onnx] an ONNX file (opset
[`OPSET`][torchlass.export.OPSET]); both map
``(mixture (batch, channels, time), condition (batch, condition_size))`` to the separated waveform
with batch and time dynamic, for every preset (baseline magnitude/phase mask, SRPOL system 1
real/imag masks, complex ratio mask, several sources). The STFT runs as convolutions, a switch
inside [`STFT`][torchlass.stft.STFT]/[`ISTFT`][torchlass.stft.ISTFT]
([`exportable`][torchlass.export.exportable]), so the graphs hold the separator's own weights.
[`OnnxSeparator`][torchlass.export.OnnxSeparator] runs a graph with onnxruntime, chunked like
`torchlass.separate`; [`save_embeddings`][torchlass.export.save_embeddings] stores query embeddings
for it.
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
