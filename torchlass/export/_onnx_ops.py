"""ONNX Script translations the exporter lacks (imported only by ``export_onnx``).

No ``from __future__ import annotations`` here: onnxscript reads the type annotations of
a scripted function as objects.
"""

import onnxscript
from onnxscript import INT64
from onnxscript import opset18 as op


@onnxscript.script()
def floordiv(self: INT64, other: INT64) -> INT64:
    """Python's ``//`` on int64 sizes: ONNX ``Div`` truncates, so step down by one where
    the division is inexact and the signs differ."""
    quotient = op.Div(self, other)
    remainder = op.Sub(self, op.Mul(quotient, other))
    zero = op.Constant(value_int=0)
    # onnxscript's stubs type Constant's output as any tensor type; it is INT64 here.
    inexact = op.Not(op.Equal(remainder, zero))  # type: ignore[type-var]
    signs_differ = op.Xor(op.Less(self, zero), op.Less(other, zero))  # type: ignore[type-var]
    return op.Sub(quotient, op.CastLike(op.And(inexact, signs_differ), quotient))
