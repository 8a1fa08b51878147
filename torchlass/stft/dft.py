"""The STFT and its inverse as strided convolutions: the exportable front-end.

ONNX has an STFT operator (opset 17) but no inverse, and `torch.stft` exports only
with real outputs, so a graph of a whole separator needs another formulation. Here the
windowed DFT is a `conv1d` whose ``2 * bins`` kernels are
``w[n] cos(2 pi k n / n_fft)`` and ``-w[n] sin(2 pi k n / n_fft)`` (stride ``hop_length``),
and the inverse is one `conv_transpose1d` that does the inverse
DFT, the synthesis window and the overlap-add together, followed by the division by the
window envelope ``sum_t w^2[n - t * hop_length]``. The envelope is itself a transposed
convolution of ``w^2`` over the frames, so it is computed inside the graph for whatever
length comes in. Both equal `torch.stft`/`torch.istft` (the conventions of
[`stft`][torchlass.stft.stft]) to float32 rounding; they cost one GEMM each, about
``2 * bins * n_fft`` multiply-adds per frame. [`STFT`][torchlass.stft.STFT] and
[`ISTFT`][torchlass.stft.ISTFT] take this path when their ``exportable`` attribute is set.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from torchlass.checks import check_dtype, check_min_length, check_ndim, compute_dtype
from torchlass.checks import check_finite as _check_finite
from torchlass.errors import ShapeError

__all__ = ["analysis_basis", "istft_dft", "stft_dft", "synthesis_basis"]

# The envelope floor of torchlass.stft.istft (and torch.istft): samples no frame covers.
_NOLA_FLOOR = 1e-11


def _min_signal_length(n_fft: int, center: bool, pad_mode: str) -> tuple[int, str]:
    """Shortest signal `torch.stft` accepts for these options, with the reason."""
    if not center:
        return n_fft, f"center=False needs one full frame of n_fft = {n_fft} samples"
    pad = n_fft // 2
    if pad_mode == "reflect":
        return pad + 1, f"reflect padding of n_fft // 2 = {pad} samples needs more samples"
    if pad_mode == "circular":
        return max(pad, 1), f"circular padding of n_fft // 2 = {pad} samples"
    return 1, "the signal must not be empty"



def is_tracing() -> bool:
    """A torch.compile or torch.export trace is running: skip data-dependent checks."""
    return torch.compiler.is_compiling() or torch.compiler.is_exporting()


def _padded_window(window: torch.Tensor, n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    """``window`` centred and zero-padded to ``n_fft`` samples (as torch.stft does), in
    ``dtype`` on its device."""
    left = (n_fft - window.shape[0]) // 2
    return F.pad(window.to(dtype), (left, n_fft - window.shape[0] - left))


def _phases(n_fft: int, device: torch.device) -> torch.Tensor:
    """``2 pi k n / n_fft`` for ``k <= n_fft // 2`` and ``n < n_fft``, reduced modulo 2 pi.

    ``k n`` is reduced modulo ``n_fft`` in integers first, so every angle is exact to
    float64 rounding whatever the size.
    """
    k = torch.arange(n_fft // 2 + 1, dtype=torch.int64, device=device)[:, None]
    n = torch.arange(n_fft, dtype=torch.int64, device=device)[None, :]
    return (k * n % n_fft).to(torch.float64) * (2 * math.pi / n_fft)


def analysis_basis(window: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Convolution kernels of the windowed one-sided DFT (computed in float64).

    Rows ``k < bins`` are ``w[n] cos(2 pi k n / n_fft)`` (the real parts), rows ``bins + k``
    are ``-w[n] sin(2 pi k n / n_fft)`` (the imaginary parts), ``bins = n_fft // 2 + 1``.

    Args:
        window: real window of at most ``n_fft`` samples (centred and zero-padded).
        n_fft: DFT size in samples.

    Returns:
        float64 kernels on the window's device; cast them to the compute dtype once.

    Shape:
        ``window``: ``(win_length,)``; output: ``(2 * bins, 1, n_fft)``.

    Examples:
        >>> analysis_basis(torch.ones(4), 4)[:, 0].round(decimals=12) + 0.0
        tensor([[ 1.,  1.,  1.,  1.],
                [ 1.,  0., -1.,  0.],
                [ 1., -1.,  1., -1.],
                [ 0.,  0.,  0.,  0.],
                [ 0., -1.,  0.,  1.],
                [ 0.,  0.,  0.,  0.]], dtype=torch.float64)
    """
    w = _padded_window(window.detach(), n_fft, torch.float64)
    phase = _phases(n_fft, w.device)
    return torch.cat([w * phase.cos(), -w * phase.sin()])[:, None, :]


def synthesis_basis(window: torch.Tensor, n_fft: int) -> torch.Tensor:
    """Transposed-convolution kernels of the one-sided inverse DFT times the window.

    ``frame[n] = w[n] / n_fft * sum_k c_k (Re X_k cos(2 pi k n / n_fft) - Im X_k sin(2 pi
    k n / n_fft))`` with ``c_k = 1`` for the DC bin and (even ``n_fft``) the Nyquist bin,
    ``2`` otherwise: the Hermitian-symmetric inverse `torch.istft` computes, whose
    DC and Nyquist imaginary parts have no effect (their sine rows are zero).

    Args:
        window: real synthesis (= analysis) window of at most ``n_fft`` samples.
        n_fft: DFT size in samples.

    Returns:
        float64 kernels on the window's device.

    Shape:
        ``window``: ``(win_length,)``; output: ``(2 * bins, 1, n_fft)``.
    """
    w = _padded_window(window.detach(), n_fft, torch.float64)
    phase = _phases(n_fft, w.device)
    weight = torch.full((n_fft // 2 + 1, 1), 2.0, dtype=torch.float64, device=w.device)
    weight[0] = 1.0
    if n_fft % 2 == 0:
        weight[-1] = 1.0
    scale = weight / n_fft * w
    return torch.cat([scale * phase.cos(), -scale * phase.sin()])[:, None, :]


def stft_dft(
    x: torch.Tensor,
    basis: torch.Tensor,
    *,
    hop_length: int,
    center: bool = True,
    pad_mode: str = "reflect",
    check_finite: bool = True,
) -> torch.Tensor:
    """[`stft`][torchlass.stft.stft] as one strided convolution with
    [`analysis_basis`][torchlass.stft.dft.analysis_basis].

    Args:
        x: real signal (the basis is cast to its dtype; float16/bfloat16 run in float32).
        basis: kernels from [`analysis_basis`][torchlass.stft.dft.analysis_basis],
            ``(2 * bins, 1, n_fft)``.
        hop_length: frame step in samples.
        center: pad ``n_fft // 2`` samples on both sides first.
        pad_mode: padding mode used with ``center`` (``"reflect"`` in the presets).
        check_finite: reject NaN/Inf in ``x`` (skipped inside a compile or export trace).

    Returns:
        Complex spectrogram: complex128 for float64 input, complex64 otherwise.

    Shape:
        ``x``: ``(..., time)``; output: ``(..., bins, frames)``, ``frames = 1 + (time +
        2 * (n_fft // 2) - n_fft) // hop_length`` when centred.

    Raises:
        DTypeError: ``x`` is not a real floating-point tensor.
        ShapeError: ``x`` is 0-d or too short for the padding.
        NonFiniteError: ``x`` holds NaN/Inf (with ``check_finite``).

    Examples:
        >>> x = torch.randn(2, 4000)
        >>> spec = stft_dft(x, analysis_basis(torch.hann_window(512), 512).float(),
        ...                 hop_length=128)
        >>> ref = torch.stft(x, 512, 128, window=torch.hann_window(512), return_complex=True)
        >>> bool((spec - ref).abs().max() < 1e-3)
        True
    """
    fn = "stft"
    check_dtype(x, fn, "x", complex_=False)
    check_ndim(x, fn, "x", min_ndim=1, layout="(..., time)")
    n_fft = basis.shape[-1]
    bins = basis.shape[0] // 2
    pad = n_fft // 2 if center else 0
    minimum, why = _min_signal_length(n_fft, center, pad_mode)
    check_min_length(x, fn, "x", minimum, why=why)
    if check_finite and not is_tracing():
        _check_finite(x, fn, "x")
    x = x.to(compute_dtype(x.dtype))  # as stft(): half precision in float32
    *batch, time = x.shape
    # Explicit sizes rather than -1: an inferred size costs a divisibility guard that
    # torch.export cannot prove for a symbolic number of frames.
    flat = x.reshape(math.prod(batch), 1, time)
    if pad:
        flat = F.pad(flat, (pad, pad), mode=pad_mode)
    out = F.conv1d(flat, basis.to(x.dtype), stride=hop_length)  # (N, 2 * bins, frames)
    spec = torch.complex(out[:, :bins], out[:, bins:])
    return spec.reshape(*batch, bins, spec.shape[-1])


def istft_dft(
    spec: torch.Tensor,
    basis: torch.Tensor,
    window: torch.Tensor,
    *,
    hop_length: int,
    center: bool = True,
    length: int | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """[`istft`][torchlass.stft.istft] as one transposed convolution and an in-graph envelope.

    The overlap-added frames (inverse DFT times the window,
    [`synthesis_basis`][torchlass.stft.dft.synthesis_basis]) are divided by the envelope
    ``sum_t w^2[n - t * hop_length]``, itself a transposed convolution of ``w^2`` over ``frames``
    ones, so the normalisation follows a dynamic number of frames. The envelope is floored at 1e-11
    (never a division by zero; the NOLA condition is checked by [`ISTFT`][torchlass.stft.ISTFT]
    outside traces).

    Args:
        spec: one-sided complex spectrogram, complex64 or complex128.
        basis: kernels from [`synthesis_basis`][torchlass.stft.dft.synthesis_basis],
            ``(2 * bins, 1, n_fft)``.
        window: the window, zero-padded to ``n_fft`` samples.
        hop_length: frame step in samples.
        center: the spectrogram was computed with centred frames.
        length: output length in samples (zero-padded past the last frame); by default
            as [`istft`][torchlass.stft.istft].
        check_finite: reject NaN/Inf in ``spec`` (skipped inside a compile or export trace).

    Returns:
        Real signal of ``spec``'s precision.

    Shape:
        ``spec``: ``(..., bins, frames)``; output: ``(..., length)``.

    Raises:
        DTypeError: ``spec`` is not complex.
        ShapeError: ``spec`` has fewer than 2 dimensions, the wrong number of bins or no
            frame.
        NonFiniteError: ``spec`` holds NaN/Inf (with ``check_finite``).

    Examples:
        >>> w = torch.hann_window(512)
        >>> x = torch.randn(2, 4000)
        >>> spec = torch.stft(x, 512, 128, window=w, return_complex=True)
        >>> y = istft_dft(spec, synthesis_basis(w, 512).float(), w, hop_length=128,
        ...               length=4000)
        >>> bool((y - x).abs().max() < 1e-4)
        True
    """
    fn = "istft"
    check_dtype(spec, fn, "spec", complex_=True)
    check_ndim(spec, fn, "spec", min_ndim=2, layout="(..., freq, frames)")
    n_fft = basis.shape[-1]
    bins = basis.shape[0] // 2
    if spec.shape[-2] != bins:
        raise ShapeError(
            f"{fn}(): argument 'spec' expected n_fft // 2 + 1 = {bins} frequency bins "
            f"along dim -2, got {spec.shape[-2]} (shape {tuple(spec.shape)})"
        )
    check_min_length(spec, fn, "spec", 1, why="at least one frame")
    if check_finite and not is_tracing():
        _check_finite(spec, fn, "spec")
    *batch, _, frames = spec.shape
    flat = spec.reshape(math.prod(batch), bins, frames)
    parts = torch.cat([flat.real, flat.imag], dim=1)  # (N, 2 * bins, frames)
    dtype = parts.dtype
    frames_out = F.conv_transpose1d(parts, basis.to(dtype), stride=hop_length)
    w = _padded_window(window, n_fft, dtype)
    ones = torch.ones_like(parts[:1, :1])  # (1, 1, frames): follows a dynamic frame count
    envelope = F.conv_transpose1d(ones, (w * w)[None, None], stride=hop_length)
    y = frames_out / envelope.clamp(min=_NOLA_FLOOR)
    start = n_fft // 2 if center else 0
    if length is None:
        length = y.shape[-1] - 2 * start
    # Zero past the last frame, as torchlass.stft.istft. Padding by ``length`` (not by the
    # shortfall) keeps the slice provably in range for a symbolic length under export.
    y = F.pad(y, (0, length))
    return y[..., start:start + length].reshape(*batch, length)

