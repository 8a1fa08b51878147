"""Run an exported ONNX separator with onnxruntime, in chunks like the eager one.

[`OnnxSeparator`][torchlass.export.OnnxSeparator] wraps an onnxruntime session of a graph from
[`export_onnx`][torchlass.export.export_onnx]: calling it maps tensors to tensors like the
separator it came from, so `torchlass.separate` chunks it with the same cross-fade,
and its [`separate`][torchlass.export.runtime.OnnxSeparator.separate] reads the chunk grid from the
graph's metadata as [`torchlass.Separator.separate`][torchlass.separator.Separator.separate] reads
it from the modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from torchlass.errors import ShapeError, ValueRangeError
from torchlass.separator import separate

__all__ = ["OnnxSeparator", "session_options"]


def session_options(threads: int | None = None) -> Any:
    """onnxruntime session options for this graph: every graph optimisation, sequential.

    Args:
        threads: intra-op threads (default: onnxruntime's choice, one per core).

    Returns:
        An ``onnxruntime.SessionOptions``.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return options


_METADATA = ("sample_rate", "channels", "num_sources", "condition_size", "min_length", "align",
             "takes_negative")


class OnnxSeparator:
    """An ONNX separator graph behind the call signature of
    [`Separator`][torchlass.separator.Separator].

    Args:
        path: ``.onnx`` file written by [`export_onnx`][torchlass.export.export_onnx].
        threads: intra-op threads of the session (default: onnxruntime's choice).
        providers: onnxruntime execution providers, in order of preference.

    Attributes:
        session: the ``onnxruntime.InferenceSession``.
        sample_rate, channels, num_sources, condition_size, min_length, align: read from
            the graph's metadata (see [`export_onnx`][torchlass.export.export_onnx]).
        takes_negative: whether the graph has a ``negative`` input (from the metadata; a
            graph without that entry has none).

    Shape:
        - mixture: ``(batch, channels, time)``, ``time >= min_length``
        - condition: ``(batch, condition_size)``
        - negative: ``(batch, condition_size)`` or ``None`` (zeros: no negative query)
        - output: ``(batch, channels, time)``, or ``(batch, sources, channels, time)``
    """

    def __init__(self, path: str | Path, *, threads: int | None = None,
                 providers: tuple[str, ...] = ("CPUExecutionProvider",)) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), session_options(threads),
                                            providers=list(providers))
        meta = {k: int(v) for k, v in self.session.get_modelmeta().custom_metadata_map.items()
                if k in _METADATA}
        self.sample_rate, self.channels = meta["sample_rate"], meta["channels"]
        self.num_sources, self.condition_size = meta["num_sources"], meta["condition_size"]
        self.min_length, self.align = meta["min_length"], meta["align"]
        self.takes_negative = bool(meta.get("takes_negative", 0))

    def __call__(self, mixture: torch.Tensor, condition: torch.Tensor,
                 negative: torch.Tensor | None = None) -> torch.Tensor:
        """Run the graph on float32 copies of the inputs; the output is on their device.

        A graph that takes a negative query gets zeros (none) when ``negative`` is None.
        """
        if negative is not None and not self.takes_negative:
            raise ValueRangeError(
                "OnnxSeparator(): argument 'negative' expected None: this graph has no "
                "negative input (export an srpol_negative_query separator for one), got a "
                f"tensor of shape {tuple(negative.shape)}")
        if mixture.dim() != 3 or mixture.shape[-1] < self.min_length:
            raise ShapeError(
                f"OnnxSeparator(): argument 'mixture' expected (batch, channels, time) with "
                f"time >= {self.min_length} samples, got shape {tuple(mixture.shape)}"
            )
        feeds = {"mixture": mixture.detach().float().cpu().numpy(),
                 "condition": condition.detach().float().cpu().numpy()}
        if self.takes_negative:
            feeds["negative"] = (torch.zeros_like(condition) if negative is None
                                 else negative).detach().float().cpu().numpy()
        (estimate,) = self.session.run(None, feeds)
        return torch.from_numpy(estimate).to(mixture.device)

    def separate(self, mixture: torch.Tensor, condition: torch.Tensor, *,
                 negative: torch.Tensor | None = None,
                 chunk_seconds: float = 10.0, overlap_seconds: float = 1.0,
                 residual: bool = False) -> torch.Tensor:
        """`torchlass.separate` of this graph, as
        [`torchlass.Separator.separate`][torchlass.separator.Separator.separate].

        Chunks start on multiples of the graph's ``align`` samples, so a chunked run
        equals the eager separator's chunked run.
        """
        return separate(self, mixture, condition, negative=negative,
                        chunk_length=round(chunk_seconds * self.sample_rate),
                        overlap=round(overlap_seconds * self.sample_rate), align=self.align,
                        residual=residual)
