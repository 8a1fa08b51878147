"""Run a separator on sound files: any rate, any channel count, any length, many files.

[`separate_file`][torchlass.inference.separate_file] streams one file through a
separator chunk by chunk (memory bounded by the chunk), resampling to the model's rate and
back block-wise without seams, and writes one float WAV per query (and residual) at the
input's rate and channel count. [`separate_files`][torchlass.inference.separate_files]
does it for many files with the queries embedded once, a progress bar, and per-file errors
collected instead of raised. A query is a caption or an example clip
([`AudioQuery`][torchlass.query.AudioQuery]), each with an optional negative query for a
separator trained with them. ``torchlass separate`` is a thin shell over these.
"""

from torchlass.inference.batch import SeparationSummary, expand_inputs, separate_files
from torchlass.inference.files import (
    DTYPES,
    SeparatedFile,
    model_sample_rate,
    output_name,
    output_names,
    separate_file,
)
from torchlass.inference.loading import load_separator
from torchlass.inference.queries import embed_conditions, takes_negative
from torchlass.inference.stream import BlockResampler, ForwardReader

__all__ = [
    "DTYPES",
    "BlockResampler",
    "ForwardReader",
    "SeparatedFile",
    "SeparationSummary",
    "embed_conditions",
    "expand_inputs",
    "load_separator",
    "model_sample_rate",
    "output_name",
    "output_names",
    "separate_file",
    "separate_files",
    "takes_negative",
]
