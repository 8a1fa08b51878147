"""The NOLA condition of the inverse STFT, evaluated once per configuration.

The inverse divides by the overlap-added squared window ``sum_t w^2[n - t * hop_length]``
and exists exactly where that envelope is non-zero (NOLA). The envelope depends on the
window, the hop, the number of frames, centring and the requested length, never on the
spectrogram, so its minimum over the output is computed once (on the CPU, in float64) and
cached: for a named window by name, for a window tensor by the tensor itself and its
version counter, so an in-place change to the window is seen. After the first call an
[`istft`][torchlass.stft.istft] on the GPU no longer waits for the device to answer.
"""

from __future__ import annotations

import torch
from torch.utils.weak import WeakIdKeyDictionary

# (n_fft, hop_length, frames, center, length): with the window, all the envelope depends on.
Layout = tuple[int, int, int, bool, int | None]

_MAX_ENTRIES = 256  # per cache; cleared when full (configurations rarely vary that much)
_BY_NAME: dict[tuple[object, ...], float] = {}
_BY_TENSOR: WeakIdKeyDictionary = WeakIdKeyDictionary()  # window -> {(version, ...): minimum}


def envelope_minimum(window: torch.Tensor, layout: Layout) -> float:
    """Smallest ``|envelope|`` over the output samples (``inf`` for an empty output).

    A window shorter than ``n_fft`` is centred and zero-padded, as `torch.istft`
    does; with ``center`` the first and last ``n_fft // 2`` samples are not part of the
    output, and ``length`` cuts it (samples past the last frame have a zero envelope).
    """
    n_fft, hop_length, frames, center, length = layout
    left = (n_fft - window.shape[0]) // 2
    w2 = torch.zeros(n_fft, dtype=torch.float64)
    w2[left:left + window.shape[0]] = window.detach().to("cpu", torch.float64) ** 2
    total = n_fft + hop_length * (frames - 1)
    envelope = torch.nn.functional.fold(
        w2[None, :, None].expand(1, n_fft, frames), output_size=(1, total),
        kernel_size=(1, n_fft), stride=(1, hop_length),
    ).flatten()
    start = n_fft // 2 if center else 0
    stop = total - (n_fft // 2 if center else 0) if length is None else start + length
    region = envelope[start:min(stop, total)]
    return float(region.abs().min()) if region.numel() else float("inf")


def cached_envelope_minimum(window: str | torch.Tensor, resolved: torch.Tensor,
                            layout: Layout) -> float:
    """`envelope_minimum` of ``resolved``, remembered for the same window and layout.

    ``window`` is what the caller passed (a name or a tensor) and ``resolved`` the tensor
    built from it in the compute dtype and device. An inference-mode window tensor has no
    version counter and is evaluated every time.
    """
    built: tuple[object, ...] = (resolved.dtype, resolved.device, resolved.shape[0], layout)
    if isinstance(window, str):
        cache: dict[tuple[object, ...], float] = _BY_NAME
        key = (window, *built)
    else:
        try:
            version = window._version
        except RuntimeError:  # inference tensors do not track in-place changes
            return envelope_minimum(resolved, layout)
        cache = _BY_TENSOR.setdefault(window, {})
        key = (version, *built)
    minimum = cache.get(key)
    if minimum is None:
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()
        minimum = cache[key] = envelope_minimum(resolved, layout)
    return minimum
