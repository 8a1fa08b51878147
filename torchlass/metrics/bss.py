"""BSS-eval v3 single-source SDR: the distortion-filter SDR of mir_eval and torchmetrics.

The estimate is projected by least squares onto the span of the reference delayed by
``0 .. filter_length - 1`` samples (Vincent et al. 2006); the SDR is the energy of that
projection over the energy of what is left. Everything runs in float64 for evaluation; the
result comes back in the inputs' precision (float32 for float32 and half inputs).
The normal equations (a Toeplitz matrix of the reference's autocorrelation) are built
with one real FFT per signal and solved by Cholesky, and the residual is formed
explicitly, so the value does not saturate at high SDR.
"""

from __future__ import annotations

import torch

from torchlass.checks import check_positive_int, check_signals, result_dtype

__all__ = ["bss_sdr"]

_ROWS_PER_SOLVE = 16  # bounds the (rows, L, L) float64 Toeplitz batch in memory


def bss_sdr(
    estimate: torch.Tensor,
    target: torch.Tensor,
    *,
    filter_length: int = 512,
    check_finite: bool = True,
) -> torch.Tensor:
    """BSS-eval v3 signal-to-distortion ratio of one source (dB), for evaluation only.

    With ``P`` the orthogonal projector onto the delays ``0 .. filter_length - 1`` of the
    target (signals zero-padded to ``time + filter_length - 1``),
    ``SDR = 10 log10( ||P s_hat||^2 / ||s_hat - P s_hat||^2 )``, the ``sdr`` of
    ``mir_eval.separation.bss_eval_sources`` for a single source and of torchmetrics'
    ``signal_distortion_ratio`` (same ``filter_length``). It is invariant to the scale and
    sign of the estimate, and a DC offset is partly absorbed by the filter.

    The FFT length is ``scipy.fft.next_fast_len(time + filter_length - 1)``. A silent
    target (the projection is undefined) or a silent estimate (0 / 0) gives NaN rather than
    an exception, so a batch still evaluates. An exact (filtered) copy gives a finite value
    of about 300 dB, where float64 rounding of the projection sets the floor, not ``+inf``.
    No gradient flows through the result.

    Args:
        estimate: Estimated signal, real floating point.
        target: Reference signal, same shape.
        filter_length: Number of filter taps allowed to distort the reference (samples).
        check_finite: Reject NaN/Inf inputs (synchronises a GPU).

    Returns:
        SDR in dB, one value per signal.

    Shape:
        ``(..., time)`` for both inputs; the result is ``(...)``.

    Raises:
        DTypeError: If an input is not a real floating-point tensor, or ``filter_length``
            is not an int.
        ShapeError: If the shapes differ or the time axis is empty.
        NonFiniteError: If an input holds NaN or Inf (``check_finite=True``).
        ValueRangeError: If ``filter_length < 1``.

    Examples:
        >>> t = torch.arange(64, dtype=torch.float64)
        >>> target = torch.sin(0.3 * t) + torch.sin(1.1 * t)
        >>> delayed = torch.roll(target, 1) * torch.tensor(0.5, dtype=torch.float64)
        >>> bss_sdr(delayed, target, filter_length=4) > 20
        tensor(True)
    """
    check_signals("bss_sdr", finite=check_finite, estimate=estimate, target=target)
    taps = check_positive_int(filter_length, "bss_sdr", "filter_length")
    *batch, length = target.shape
    with torch.no_grad():
        x = estimate.detach().reshape(-1, length).double()
        s = target.detach().reshape(-1, length).double()
        values = torch.cat([
            _bss_sdr_rows(x[i:i + _ROWS_PER_SOLVE], s[i:i + _ROWS_PER_SOLVE], taps)
            for i in range(0, s.shape[0], _ROWS_PER_SOLVE)
        ]) if s.shape[0] else s.new_zeros(0)
    return values.reshape(batch).to(result_dtype(estimate, target))


def _bss_sdr_rows(x: torch.Tensor, s: torch.Tensor, taps: int) -> torch.Tensor:
    """SDR of each row of ``x`` against the same row of ``s`` (float64, ``(rows, time)``)."""
    from scipy.fft import next_fast_len

    length = s.shape[-1]
    padded = length + taps - 1
    n_fft = next_fast_len(padded, real=True)
    # Unit-norm rows keep the normal equations well scaled; the SDR is scale invariant.
    x_norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    s_norm = torch.linalg.vector_norm(s, dim=-1, keepdim=True)
    silent = (x_norm.squeeze(-1) == 0) | (s_norm.squeeze(-1) == 0)
    x = x / torch.where(x_norm > 0, x_norm, 1.0)
    s = s / torch.where(s_norm > 0, s_norm, 1.0)

    s_spec = torch.fft.rfft(s, n=n_fft)
    x_spec = torch.fft.rfft(x, n=n_fft)
    # autocorr[k] = <s, s delayed by k>, crosscorr[k] = <x, s delayed by k>, k < taps
    autocorr = torch.fft.irfft(s_spec.abs().square(), n=n_fft)[:, :taps]
    crosscorr = torch.fft.irfft(x_spec * s_spec.conj(), n=n_fft)[:, :taps]
    lags = torch.arange(taps, device=s.device)
    gram = autocorr[:, (lags[:, None] - lags[None, :]).abs()]
    gram[silent] = torch.eye(taps, dtype=gram.dtype, device=gram.device)

    factor, info = torch.linalg.cholesky_ex(gram)
    filters = torch.cholesky_solve(crosscorr.unsqueeze(-1), factor).squeeze(-1)
    failed = info > 0  # numerically singular: fall back to an LU solve, as mir_eval does
    if bool(failed.any()):
        filters[failed] = torch.linalg.solve(gram[failed], crosscorr[failed])

    projection = torch.fft.irfft(torch.fft.rfft(filters, n=n_fft) * s_spec, n=n_fft)
    projection = projection[:, :padded]
    residual = -projection
    residual[:, :length] += x
    value = 10.0 * torch.log10(projection.square().sum(-1) / residual.square().sum(-1))
    return value.masked_fill(silent, float("nan"))
