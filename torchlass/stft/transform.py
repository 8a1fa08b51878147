"""Short-time Fourier transform and its inverse, with the DCASE 2024 baseline's conventions.

[`stft`][torchlass.stft.stft] and [`istft`][torchlass.stft.istft] wrap `torch.stft`/`torch.istft`
with input checks that name the argument at fault, leading-dimension folding (``(..., time)`` in,
``(..., freq, frames)`` out) and one precision rule: float16/bfloat16 input is computed in
float32. The defaults (periodic Hann, ``center=True``, reflect padding, no scaling) are those
of the baseline (16 kHz, ``n_fft=1024``, ``hop_length=160``) and of upstream AudioSep
(32 kHz, 2048/320). [`STFT`][torchlass.stft.STFT] and [`ISTFT`][torchlass.stft.ISTFT] hold the
window as a buffer and call the functions. On CUDA tensors [`istft`][torchlass.stft.istft] does its
overlap-add with the fused kernel of [`torchlass.kernels`][torchlass.kernels] (one pass, same values
and gradients).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from torchlass import kernels
from torchlass.checks import (
    check_choice,
    check_dtype,
    check_min_length,
    check_ndim,
    check_positive_int,
    compute_dtype,
)
from torchlass.checks import check_finite as _check_finite
from torchlass.errors import DTypeError, ShapeError, ValueRangeError
from torchlass.stft._nola import Layout, cached_envelope_minimum
from torchlass.stft.dft import (
    _min_signal_length,
    analysis_basis,
    is_tracing,
    istft_dft,
    stft_dft,
    synthesis_basis,
)

__all__ = ["ISTFT", "STFT", "WINDOWS", "istft", "make_window", "stft"]

WINDOWS = ("hann", "hamming", "blackman", "rectangular")
"""Window names accepted by ``window=``; all are built *periodic* (DFT-even), like the baseline."""
PAD_MODES = ("reflect", "constant", "replicate", "circular")

# Smallest accepted value of the overlap-added squared window (the NOLA envelope); the same
# bound torch.istft and torchlibrosa clamp at.
_NOLA_FLOOR = 1e-11

_REAL_OF_COMPLEX = {
    torch.complex32: torch.float16,
    torch.complex64: torch.float32,
    torch.complex128: torch.float64,
}


def make_window(
    name: str,
    win_length: int,
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Build a periodic analysis window.

    Periodic ("DFT-even") windows drop the last sample of the symmetric window of length
    ``win_length + 1``; the periodic Hann window is ``w[n] = 0.5 - 0.5 cos(2 pi n / N)``.
    The window is evaluated in float64 and rounded once to ``dtype``, so it is the correctly
    rounded window in every dtype (``torch.hann_window`` in float32 is up to 3 ulp off).

    Args:
        name: one of [`WINDOWS`][torchlass.stft.WINDOWS].
        win_length: window length in samples.
        dtype: floating-point dtype of the window.
        device: device of the window.

    Returns:
        The window, shape ``(win_length,)``.

    Raises:
        ValueRangeError: unknown ``name`` or ``win_length < 1``.

    Examples:
        >>> make_window("hann", 4)
        tensor([0.0000, 0.5000, 1.0000, 0.5000])
    """
    check_choice(name, "make_window", "name", WINDOWS)
    check_positive_int(win_length, "make_window", "win_length")
    exact = torch.float64
    if name == "hann":
        w = torch.hann_window(win_length, periodic=True, dtype=exact, device=device)
    elif name == "hamming":
        w = torch.hamming_window(win_length, periodic=True, dtype=exact, device=device)
    elif name == "blackman":
        w = torch.blackman_window(win_length, periodic=True, dtype=exact, device=device)
    else:
        w = torch.ones(win_length, dtype=exact, device=device)
    return w.to(dtype)


def _check_config(fn: str, n_fft: object, hop_length: object, win_length: object) -> int:
    """Validate the integer options; return the effective ``win_length``."""
    check_positive_int(n_fft, fn, "n_fft")
    check_positive_int(hop_length, fn, "hop_length")
    if hop_length > n_fft:  # type: ignore[operator]
        raise ValueRangeError(
            f"{fn}(): argument 'hop_length' expected a value <= n_fft = {n_fft} "
            f"(frames would skip samples), got {hop_length}"
        )
    if win_length is None:
        return int(n_fft)  # type: ignore[call-overload]
    check_positive_int(win_length, fn, "win_length")
    if win_length > n_fft:  # type: ignore[operator]
        raise ValueRangeError(
            f"{fn}(): argument 'win_length' expected a value <= n_fft = {n_fft}, "
            f"got {win_length}"
        )
    return int(win_length)  # type: ignore[call-overload]


def _resolve_window(
    fn: str, window: str | torch.Tensor, win_length: int, dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """Turn ``window`` (a name or a tensor) into a real tensor of ``dtype`` on ``device``."""
    if isinstance(window, str):
        check_choice(window, fn, "window", WINDOWS)
        return make_window(window, win_length, dtype=dtype, device=device)
    if not isinstance(window, torch.Tensor):
        raise DTypeError(
            f"{fn}(): argument 'window' expected a window name or a torch.Tensor, "
            f"got {type(window).__name__}"
        )
    check_dtype(window, fn, "window", complex_=False)
    if window.dim() != 1 or window.shape[0] != win_length:
        raise ShapeError(
            f"{fn}(): argument 'window' expected a 1-d tensor of win_length = {win_length} "
            f"samples, got shape {tuple(window.shape)}"
        )
    return window.to(dtype=dtype, device=device)


def stft(
    x: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | torch.Tensor = "hann",
    center: bool = True,
    pad_mode: str = "reflect",
    check_finite: bool = True,
) -> torch.Tensor:
    """Short-time Fourier transform of a real signal (one-sided, unscaled).

    ``X[k, t] = sum_n w[n] x[t * hop_length + n] e^{-j 2 pi k n / n_fft}``, where ``x`` is
    padded by ``n_fft // 2`` samples on both sides when ``center`` is True and a window
    shorter than ``n_fft`` is zero-padded on both sides to ``n_fft``. There are
    ``n_fft // 2 + 1`` bins (0 to Nyquist) and ``1 + (padded - n_fft) // hop_length``
    frames, ``padded = time + 2 * (n_fft // 2)`` when centred (so ``1 + time // hop_length``
    for an even ``n_fft``), ``padded = time`` otherwise.

    Args:
        x: real signal.
        n_fft: DFT size in samples.
        hop_length: frame step in samples, at most ``n_fft``.
        win_length: window length in samples (default ``n_fft``).
        window: a name from [`WINDOWS`][torchlass.stft.WINDOWS] (built periodic) or a real tensor of
            ``win_length`` samples.
        center: pad the signal so that frame ``t`` is centred on sample ``t * hop_length``.
        pad_mode: ``"reflect"`` (default), ``"constant"``, ``"replicate"`` or
            ``"circular"``; used when ``center`` is True.
        check_finite: reject NaN/Inf in ``x`` (synchronises a GPU; switch off for speed).

    Returns:
        Complex spectrogram. float32 and float16/bfloat16 input give complex64 (half
        precision is computed in float32: PyTorch has no complex bfloat16 and few
        complex32 kernels); float64 gives complex128.

    Shape:
        ``x``: ``(..., time)``; output: ``(..., n_fft // 2 + 1, frames)``.

    Raises:
        DTypeError: ``x`` is not a real floating-point tensor, or ``window`` is not a name
            or a real tensor.
        ShapeError: ``x`` is 0-d or shorter than the padding mode allows, or ``window``
            does not have ``win_length`` samples.
        ValueRangeError: ``hop_length > n_fft``, ``win_length > n_fft``, a non-positive size,
            an unknown window name or padding mode.
        NonFiniteError: ``x`` holds NaN/Inf (with ``check_finite``).

    Examples:
        >>> spec = stft(torch.randn(2, 16000), n_fft=1024, hop_length=160)
        >>> spec.shape, spec.dtype
        (torch.Size([2, 513, 101]), torch.complex64)
    """
    fn = "stft"
    check_dtype(x, fn, "x", complex_=False)
    check_ndim(x, fn, "x", min_ndim=1, layout="(..., time)")
    win = _check_config(fn, n_fft, hop_length, win_length)
    check_choice(pad_mode, fn, "pad_mode", PAD_MODES)
    minimum, why = _min_signal_length(n_fft, center, pad_mode)
    check_min_length(x, fn, "x", minimum, why=why)
    if check_finite:
        _check_finite(x, fn, "x")
    dtype = compute_dtype(x.dtype)
    w = _resolve_window(fn, window, win, dtype, x.device)

    *batch, time = x.shape
    if x.numel() == 0:  # an empty batch: torch.stft's padding rejects it
        padded = time + 2 * (n_fft // 2) if center else time
        frames = 1 + (padded - n_fft) // hop_length
        return torch.zeros(*batch, n_fft // 2 + 1, frames, dtype=dtype.to_complex(),
                           device=x.device)
    flat = x.to(dtype).reshape(-1, time)
    spec = torch.stft(
        flat, n_fft, hop_length=hop_length, win_length=win, window=w, center=center,
        pad_mode=pad_mode, normalized=False, onesided=True, return_complex=True,
    )
    return spec.reshape(*batch, *spec.shape[-2:])


def _check_nola(
    fn: str, window: str | torch.Tensor, resolved: torch.Tensor, layout: Layout
) -> None:
    """Reject a window/hop pair whose overlap-added squared window vanishes in the output.

    The inverse divides by ``sum_t w^2[n - t * hop_length]``, so it exists exactly where
    that envelope is non-zero (the NOLA condition; COLA is not needed). The verdict does
    not depend on the data and is cached per window and layout. Inside a
    `torch.compile` trace it is skipped (the cache lookup would break the graph);
    `torch.istft` still refuses a vanishing envelope there.
    """
    if torch.compiler.is_compiling():
        return
    minimum = cached_envelope_minimum(window, resolved, layout)
    if minimum < _NOLA_FLOOR:
        _, hop_length, _, center, _ = layout
        raise ValueRangeError(
            f"{fn}(): arguments 'window' and 'hop_length' expected a pair whose overlap-added "
            f"squared window is non-zero at every output sample (NOLA condition), got "
            f"hop_length = {hop_length}, win_length = {resolved.shape[0]}, center = {center}, "
            f"minimum envelope {minimum:.3g}; the signal cannot be "
            "reconstructed (use a smaller hop_length, a window without zeros or center=True)"
        )


def istft(
    spec: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    win_length: int | None = None,
    window: str | torch.Tensor = "hann",
    center: bool = True,
    length: int | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Inverse of [`stft`][torchlass.stft.stft] by weighted overlap-add.

    Each frame's inverse DFT is multiplied by the synthesis window (the analysis window),
    overlap-added, and divided by the envelope ``sum_t w^2[n - t * hop_length]``: this
    inverts [`stft`][torchlass.stft.stft] exactly whenever the envelope is non-zero (NOLA), and is
    what the baseline's torchlibrosa ISTFT computes. The imaginary parts of the DC and Nyquist bins
    are ignored. With ``center`` the first ``n_fft // 2`` samples are dropped.

    Args:
        spec: one-sided complex spectrogram.
        n_fft: DFT size in samples; ``spec`` must have ``n_fft // 2 + 1`` bins.
        hop_length: frame step in samples, at most ``n_fft``.
        win_length: window length in samples (default ``n_fft``).
        window: a name from [`WINDOWS`][torchlass.stft.WINDOWS] or a real tensor of ``win_length``
            samples.
        center: the spectrogram was computed with ``center=True``.
        length: output length in samples (zero-padded past the end of the last frame); by
            default ``hop_length * (frames - 1) + n_fft - 2 * (n_fft // 2)`` when centred
            (``hop_length * (frames - 1)`` for an even ``n_fft``) and
            ``hop_length * (frames - 1) + n_fft`` otherwise. A single centred frame of an
            even ``n_fft`` therefore gives 0 samples by default (an empty output); pass
            ``length`` to recover its ``n_fft // 2`` samples.
        check_finite: reject NaN/Inf in ``spec`` (synchronises a GPU).

    Returns:
        Real signal: float32 for complex64, float64 for complex128, float16 for complex32
        (computed in float32).

    Shape:
        ``spec``: ``(..., n_fft // 2 + 1, frames)``; output: ``(..., length)``.

    Raises:
        DTypeError: ``spec`` is not complex, or ``window`` is not a name or a real tensor.
        ShapeError: ``spec`` has fewer than 2 dimensions, the wrong number of bins, no frame,
            or ``window`` does not have ``win_length`` samples.
        ValueRangeError: ``hop_length > n_fft``, a non-positive size, an unknown window or a
            window/hop pair violating NOLA.
        NonFiniteError: ``spec`` holds NaN/Inf (with ``check_finite``).

    Examples:
        >>> x = torch.randn(2, 16000)
        >>> y = istft(stft(x, n_fft=1024, hop_length=160), n_fft=1024, hop_length=160,
        ...           length=16000)
        >>> bool(torch.allclose(x, y, atol=1e-5))
        True
    """
    fn = "istft"
    check_dtype(spec, fn, "spec", complex_=True)
    check_ndim(spec, fn, "spec", min_ndim=2, layout="(..., freq, frames)")
    win = _check_config(fn, n_fft, hop_length, win_length)
    bins = n_fft // 2 + 1
    if spec.shape[-2] != bins:
        raise ShapeError(
            f"{fn}(): argument 'spec' expected n_fft // 2 + 1 = {bins} frequency bins "
            f"along dim -2, got {spec.shape[-2]} (shape {tuple(spec.shape)})"
        )
    check_min_length(spec, fn, "spec", 1, why="at least one frame")
    if length is not None:
        check_positive_int(length, fn, "length")
    if check_finite:
        _check_finite(spec, fn, "spec")
    out_dtype = _REAL_OF_COMPLEX[spec.dtype]
    compute = spec.to(torch.complex64) if spec.dtype == torch.complex32 else spec
    real_dtype = _REAL_OF_COMPLEX[compute.dtype]
    w = _resolve_window(fn, window, win, real_dtype, spec.device)
    frames = spec.shape[-1]
    _check_nola(fn, window, w, (n_fft, hop_length, frames, center, length))

    *batch, _, _ = spec.shape
    natural = hop_length * (frames - 1) + n_fft - (2 * (n_fft // 2) if center else 0)
    size = natural if length is None else length
    if spec.numel() == 0 or size == 0:  # an empty batch, or one centred frame of even n_fft
        return torch.zeros(*batch, size, dtype=out_dtype, device=spec.device)
    flat = compute.reshape(-1, bins, frames)
    if kernels.is_available(flat, w) and not w.requires_grad:  # the kernel's window is fixed
        y = kernels.fused_istft(flat, n_fft=n_fft, hop_length=hop_length, window=w,
                                center=center, length=length)
    else:
        # Past the last frame the output is zero-padded here, not by torch.istft (it warns).
        available = hop_length * (frames - 1) + n_fft - (n_fft // 2 if center else 0)
        y = torch.istft(
            flat, n_fft, hop_length=hop_length, win_length=win, window=w, center=center,
            normalized=False, onesided=True,
            length=None if length is None else min(length, available),
        )
        if length is not None and length > y.shape[-1]:
            y = torch.nn.functional.pad(y, (0, length - y.shape[-1]))
    return y.reshape(*batch, y.shape[-1]).to(out_dtype)


class _WindowedTransform(nn.Module):
    """The options, window and exportable DFT basis that `STFT` and `ISTFT` share.

    The window is a non-persistent buffer that stays exact in the buffer's dtype: a float32
    window cast to float64 keeps its float32 rounding (5e-8 off the float64 window), so a
    float64 copy is kept beside the buffer and the buffer is rebuilt from it whenever the
    module is moved or cast (``.to``, ``.double()``, ...). The convolution kernels of the
    exportable path (``dft_basis``) are built the same way, only while ``exportable`` is set
    (33 MB in float32 for a 2048-point transform, which eager use should not carry).
    """

    window: torch.Tensor
    dft_basis: torch.Tensor | None
    #: ``(window, n_fft) -> float64 kernels`` of the exportable path.
    _basis: Callable[[torch.Tensor, int], torch.Tensor]

    def __init__(
        self, n_fft: int, hop_length: int, win_length: int | None = None,
        window: str | torch.Tensor = "hann", center: bool = True, pad_mode: str = "reflect",
        *, check_finite: bool = True, exportable: bool = False,
    ) -> None:
        super().__init__()
        fn = type(self).__name__
        win = _check_config(fn, n_fft, hop_length, win_length)
        check_choice(pad_mode, fn, "pad_mode", PAD_MODES)
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win
        self.center, self.pad_mode, self.check_finite = center, pad_mode, check_finite
        exact = _resolve_window(fn, window, win, torch.float64, torch.device("cpu"))
        self._exact_window = exact.clone()  # a plain attribute: no cast or move touches it
        self.register_buffer("window", exact.float(), persistent=False)
        self.register_buffer("dft_basis", None, persistent=False)
        self.exportable = exportable

    @property
    def exportable(self) -> bool:
        """Whether ``forward`` takes the convolution path (ONNX / ``torch.export``)."""
        return self.dft_basis is not None

    @exportable.setter
    def exportable(self, value: bool) -> None:
        basis = type(self)._basis(self._exact_window, self.n_fft) if value else None
        self.dft_basis = None if basis is None else basis.to(self.window)

    def _apply(self, fn: Callable[[torch.Tensor], torch.Tensor],
               recurse: bool = True) -> _WindowedTransform:
        super()._apply(fn, recurse)
        self.window = self._exact_window.to(device=self.window.device, dtype=self.window.dtype)
        if self.dft_basis is not None:
            self.exportable = True  # rebuilt from the exact window in the new dtype
        return self


class STFT(_WindowedTransform):
    """Module form of [`stft`][torchlass.stft.stft], holding the window as a (non-persistent)
    buffer.

    The window is rebuilt from the constructor arguments, so it is not part of the
    ``state_dict``; it follows ``.to(device, dtype)`` and is exact in its dtype (a float64
    module computes with the float64 window, not a float32 one cast up).

    Args:
        n_fft: DFT size in samples.
        hop_length: frame step in samples.
        win_length: window length in samples (default ``n_fft``).
        window: a name from [`WINDOWS`][torchlass.stft.WINDOWS] or a real tensor of ``win_length``
            samples.
        center: centre the frames (pad ``n_fft // 2`` on both sides).
        pad_mode: padding mode used with ``center``.
        check_finite: reject NaN/Inf input.
        exportable: compute the transform as a strided convolution
            ([`stft_dft`][torchlass.stft.dft.stft_dft]), which ONNX and `torch.export.export`
            graphs can hold; the ``exportable`` attribute switches it later. Same values to
            float32 rounding.

    Shape:
        input ``(..., time)``; output complex ``(..., n_fft // 2 + 1, frames)``.

    Examples:
        >>> STFT(n_fft=512, hop_length=128)(torch.randn(3, 1, 4000)).shape
        torch.Size([3, 1, 257, 32])
    """

    _basis = staticmethod(analysis_basis)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return [`stft`][torchlass.stft.stft] of ``x`` with this module's options."""
        if self.dft_basis is not None:
            return stft_dft(x, self.dft_basis, hop_length=self.hop_length, center=self.center,
                            pad_mode=self.pad_mode, check_finite=self.check_finite)
        return stft(
            x, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=self.window, center=self.center, pad_mode=self.pad_mode,
            check_finite=self.check_finite,
        )

    def extra_repr(self) -> str:
        return (f"n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"win_length={self.win_length}, center={self.center}, pad_mode={self.pad_mode!r}")


class ISTFT(_WindowedTransform):
    """Module form of [`istft`][torchlass.stft.istft], holding the window as a (non-persistent)
    buffer.

    The window behaves as in [`STFT`][torchlass.stft.STFT].

    Args:
        n_fft: DFT size in samples.
        hop_length: frame step in samples.
        win_length: window length in samples (default ``n_fft``).
        window: a name from [`WINDOWS`][torchlass.stft.WINDOWS] or a real tensor of ``win_length``
            samples.
        center: the spectrogram was computed with centred frames.
        pad_mode: accepted for symmetry with [`STFT`][torchlass.stft.STFT]; the inverse does not
            pad.
        check_finite: reject NaN/Inf input.
        exportable: compute the inverse as a transposed convolution divided by an in-graph
            window envelope ([`istft_dft`][torchlass.stft.dft.istft_dft]); see
            [`STFT`][torchlass.stft.STFT].

    Shape:
        input complex ``(..., n_fft // 2 + 1, frames)``; output ``(..., length)``.

    Examples:
        >>> spec = torch.zeros(3, 257, 32, dtype=torch.complex64)
        >>> ISTFT(n_fft=512, hop_length=128)(spec, length=4000).shape
        torch.Size([3, 4000])
    """

    _basis = staticmethod(synthesis_basis)

    def forward(self, spec: torch.Tensor, length: int | None = None) -> torch.Tensor:
        """Return [`istft`][torchlass.stft.istft] of ``spec`` with this module's options."""
        if self.dft_basis is not None:
            if not is_tracing():  # the envelope is floored in the graph: refuse NOLA here
                frames = spec.shape[-1]
                layout = (self.n_fft, self.hop_length, frames, self.center, length)
                _check_nola("ISTFT", self.window, self.window, layout)
            return istft_dft(spec, self.dft_basis, self.window, hop_length=self.hop_length,
                             center=self.center, length=length, check_finite=self.check_finite)
        return istft(
            spec, n_fft=self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
            window=self.window, center=self.center, length=length,
            check_finite=self.check_finite,
        )

    def extra_repr(self) -> str:
        return (f"n_fft={self.n_fft}, hop_length={self.hop_length}, "
                f"win_length={self.win_length}, center={self.center}")
