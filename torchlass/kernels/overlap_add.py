"""Inverse STFT whose overlap-add is one kernel.

``torch.istft`` multiplies every frame by the window, overlap-adds with a fold, builds the
squared-window envelope with a second fold, divides and trims: several passes over frames
``n_fft / hop_length`` times the size of the signal, and a device sync for its envelope
check. Here the frames come from one inverse real FFT (cuFFT) and a single kernel computes
each output sample as a gather over the frames that cover it::

    y[j] = sum_t w[n - t hop] f_t[n - t hop] / max(sum_t w^2[n - t hop], 1e-11),
    n = j + n_fft // 2 (centred) or j

so the window product, the envelope, the division and the trim cost no extra pass. Its
backward is the matching scatter, again one kernel: ``df_t[k] = w[k] g[n] / env[n]``.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from torchlass.checks import check_dtype, check_ndim, check_positive_int
from torchlass.errors import DTypeError, ShapeError
from torchlass.kernels._layout import check_kernel_device
from torchlass.kernels._tiles import cast_for_store, on_device

__all__ = ["fused_istft"]

# Samples per program. A program's loads walk OVERLAP = ceil(n_fft / hop) frames; 1024
# samples (8 per thread of the default 4 warps) keep enough loads in flight to hide
# memory latency, and a 10 s signal at 16 kHz still spreads over ~160 programs a row.
_BLOCK = 1024
# Floor on the squared-window envelope (torch.istft's NOLA bound, torchlibrosa's clamp).
ENVELOPE_FLOOR = tl.constexpr(1e-11)


@triton.jit
def _covering_frames_sum(w_ptr, frames, n, valid, T, N_FFT, HOP, OVERLAP, CD: tl.constexpr,
                         BLOCK: tl.constexpr, WITH_FRAMES: tl.constexpr):
    """``sum_t w[k] f_t[k]`` and the floored envelope ``max(sum_t w[k]^2, floor)``.

    The sums run over the frames ``t`` that cover output position ``n`` (``k = n - t HOP``,
    ``0 <= k < N_FFT``), at most ``OVERLAP`` of them, the last one ``min(n // HOP, T - 1)``.
    ``frames`` (a row of ``T x N_FFT`` contiguous samples) is read only when
    ``WITH_FRAMES``; the first sum is zero otherwise.
    """
    t_last = tl.minimum(n // HOP, T - 1)
    num = tl.full([BLOCK], 0.0, CD)
    env = tl.full([BLOCK], 0.0, CD)
    for i in range(0, OVERLAP):
        t = t_last - i
        k = n - t * HOP
        covered = valid & (t >= 0) & (k < N_FFT)
        w = tl.load(w_ptr + k, mask=covered, other=0.0).to(CD)
        if WITH_FRAMES:
            num += w * tl.load(frames + t * N_FFT + k, mask=covered, other=0.0).to(CD)
        env += w * w
    return num, tl.maximum(env, ENVELOPE_FLOOR)


@triton.jit
def _ola_forward_kernel(f_ptr, w_ptr, y_ptr, T, N_FFT, HOP, START, L, OVERLAP,
                        CD: tl.constexpr, BLOCK: tl.constexpr):
    """``y[j] = sum_t w f_t / env`` at ``n = j + START``: window, overlap-add, divide, trim.

    Eager reference: the overlap-add of [`istft`][torchlass.stft.istft] (and
    ``torch.istft``). Strides: all contiguous; frames ``(rows, T, N_FFT)``, window
    ``(N_FFT,)``, output ``(rows, L)``. Grid ``(cdiv(L, BLOCK), rows)``: a program writes
    ``BLOCK`` consecutive samples of one row.
    """
    row = tl.program_id(1).to(tl.int64)
    j = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = j < L
    num, env = _covering_frames_sum(w_ptr, f_ptr + row * T * N_FFT, j + START, inside, T,
                                    N_FFT, HOP, OVERLAP, CD, BLOCK, True)
    tl.store(y_ptr + row * L + j, cast_for_store(num / env, y_ptr.dtype.element_ty),
             mask=inside)


@triton.jit
def _ola_backward_kernel(g_ptr, w_ptr, df_ptr, T, N_FFT, HOP, START, L, OVERLAP,
                         CD: tl.constexpr, BLOCK: tl.constexpr):
    """``df_t[k] = w[k] g[n] / env[n]`` at ``n = t HOP + k`` (0 where ``n`` is trimmed).

    Eager reference: autograd through the overlap-add of
    [`istft`][torchlass.stft.istft]. Strides: all contiguous; output gradient
    ``(rows, L)``, window ``(N_FFT,)``, frame gradient ``(rows, T, N_FFT)``. Grid
    ``(cdiv(N_FFT, BLOCK), rows * T)``: a program writes ``BLOCK`` samples of one frame.
    """
    frame = tl.program_id(1).to(tl.int64)  # row * T + t
    t = frame % T
    k = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    in_frame = k < N_FFT
    n = t * HOP + k
    j = n - START
    kept = in_frame & (j >= 0) & (j < L)
    _, env = _covering_frames_sum(w_ptr, w_ptr, n, kept, T, N_FFT, HOP, OVERLAP, CD, BLOCK,
                                  False)
    w = tl.load(w_ptr + k, mask=in_frame, other=0.0).to(CD)
    g = tl.load(g_ptr + (frame // T) * L + j, mask=kept, other=0.0).to(CD)
    df = tl.where(kept, w * g / env, 0.0)
    tl.store(df_ptr + frame * N_FFT + k, cast_for_store(df, df_ptr.dtype.element_ty), mask=in_frame)


class _OverlapAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, frames: torch.Tensor, window: torch.Tensor, hop: int,
                start: int, length: int) -> torch.Tensor:
        rows, n_frames, n_fft = frames.shape
        cd = torch.float64 if frames.dtype == torch.float64 else torch.float32
        y = torch.empty(rows, length, dtype=frames.dtype, device=frames.device)
        ctx.save_for_backward(window)
        ctx.meta = (n_frames, n_fft, hop, start, length, cd)
        if y.numel():
            grid = (triton.cdiv(length, _BLOCK), rows)
            with on_device(frames):
                _ola_forward_kernel[grid](
                    frames, window, y, n_frames, n_fft, hop, start, length, -(-n_fft // hop),
                    CD=_tl_dtype(cd), BLOCK=_BLOCK,
                )
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None, None, None]:
        (window,) = ctx.saved_tensors
        n_frames, n_fft, hop, start, length, cd = ctx.meta
        rows = grad.shape[0]
        grad = grad.contiguous()
        df = torch.empty(rows, n_frames, n_fft, dtype=grad.dtype, device=grad.device)
        if df.numel():
            grid = (triton.cdiv(n_fft, _BLOCK), rows * n_frames)
            with on_device(grad):
                _ola_backward_kernel[grid](
                    grad, window, df, n_frames, n_fft, hop, start, length, -(-n_fft // hop),
                    CD=_tl_dtype(cd), BLOCK=_BLOCK,
                )
        return df, None, None, None, None


def _tl_dtype(dtype: torch.dtype) -> tl.dtype:
    return tl.float64 if dtype == torch.float64 else tl.float32


def fused_istft(
    spec: torch.Tensor,
    *,
    n_fft: int,
    hop_length: int,
    window: torch.Tensor,
    center: bool = True,
    length: int | None = None,
) -> torch.Tensor:
    """Inverse STFT as one inverse real FFT plus one overlap-add kernel.

    Equals [`torchlass.stft.istft`][torchlass.stft.istft] (and `torch.istft` with ``onesided=True``,
    ``normalized=False``): each frame's inverse DFT is weighted by the synthesis window,
    overlap-added and divided by the squared-window envelope, then trimmed by
    ``n_fft // 2`` samples when ``center``. The imaginary parts of the DC and Nyquist bins
    are ignored. The validation of [`torchlass.stft.istft`][torchlass.stft.istft] (NOLA condition,
    finite values, option ranges) is the caller's: this function checks only shapes and dtypes.
    A window that requires grad takes the `torch.istft` path (the kernel treats the
    window as a constant).

    Args:
        spec: one-sided complex spectrogram (complex64 or complex128).
        n_fft: DFT size in samples; ``spec`` has ``n_fft // 2 + 1`` bins.
        hop_length: frame step in samples.
        window: real synthesis window of at most ``n_fft`` samples (centred and
            zero-padded to ``n_fft`` like `torch.istft` does).
        center: the frames were centred (drop ``n_fft // 2`` samples at the start).
        length: output length in samples (trimmed or zero-padded); default
            ``hop_length * (frames - 1)`` when centred, ``n_fft + hop_length * (frames - 1)``
            otherwise.

    Returns:
        The real signal: float32 for complex64, float64 for complex128.

    Shape:
        ``spec``: ``(..., n_fft // 2 + 1, frames)``; output: ``(..., length)``.

    Raises:
        DTypeError: ``spec`` is not complex64/complex128 or ``window`` is not real.
        ShapeError: wrong number of bins, no frame, or a window longer than ``n_fft``.
        ValueRangeError: a non-positive ``n_fft``, ``hop_length`` or ``length``.
        DeviceError: the tensors are not on one CUDA device.

    Examples:
        >>> x = torch.randn(2, 4000)
        >>> w = torch.hann_window(512)
        >>> s = torch.stft(x, 512, 128, window=w, return_complex=True)
        >>> y = fused_istft(s, n_fft=512, hop_length=128, window=w, length=4000)  # doctest: +SKIP
        >>> bool(torch.allclose(x, y, atol=1e-5))  # doctest: +SKIP
        True
    """
    fn = "fused_istft"
    check_dtype(spec, fn, "spec", complex_=True)
    check_ndim(spec, fn, "spec", min_ndim=2, layout="(..., freq, frames)")
    check_dtype(window, fn, "window", complex_=False)
    check_positive_int(n_fft, fn, "n_fft")
    check_positive_int(hop_length, fn, "hop_length")
    if spec.dtype not in (torch.complex64, torch.complex128):
        raise DTypeError(f"{fn}(): argument 'spec' expected complex64 or complex128, "
                         f"got dtype {spec.dtype}")
    bins, n_frames = spec.shape[-2:]
    if bins != n_fft // 2 + 1 or n_frames == 0:
        raise ShapeError(
            f"{fn}(): argument 'spec' expected n_fft // 2 + 1 = {n_fft // 2 + 1} bins and at "
            f"least one frame, got shape {tuple(spec.shape)}"
        )
    if window.dim() != 1 or window.shape[0] > n_fft:
        raise ShapeError(f"{fn}(): argument 'window' expected a 1-d tensor of at most "
                         f"n_fft = {n_fft} samples, got shape {tuple(window.shape)}")
    total = n_fft + hop_length * (n_frames - 1)
    start = n_fft // 2 if center else 0
    if length is None:
        length = total - 2 * start
    check_positive_int(length, fn, "length")
    check_kernel_device(fn, spec=spec, window=window)
    if window.requires_grad:
        return torch.istft(spec, n_fft, hop_length, window.shape[0], window, center=center,
                           length=length)
    *batch, _, _ = spec.shape
    real = torch.float64 if spec.dtype == torch.complex128 else torch.float32
    left = (n_fft - window.shape[0]) // 2
    padded = torch.nn.functional.pad(window.to(spec.device, real),
                                     (left, n_fft - window.shape[0] - left))
    frames = torch.fft.irfft(spec.reshape(-1, bins, n_frames).transpose(-1, -2), n=n_fft)
    y = _OverlapAdd.apply(frames.contiguous(), padded.contiguous(), hop_length, start, length)
    return y.reshape(*batch, length)
