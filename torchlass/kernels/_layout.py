"""Host-side planning of strided, broadcast element-wise kernels (no Triton import).

An element-wise kernel reads and writes several tensors that share one broadcast shape but
not one memory layout: mask planes sliced from a network output, a spectrogram in the
frequency-fastest layout `torch.stft` returns, a gradient that autograd expanded
from a scalar. `plan_tiles` describes all of them by strides alone (a broadcast dim
has stride 0, so nothing is copied), merges the dims every operand walks contiguously, and
splits the result into up to three outer dims and a two-dimensional tile ``(P, Q)``. Each
operand is read along its own fastest tile axis (``fast_p``), so a kernel mixing a
time-fastest mask with a frequency-fastest spectrogram still makes coalesced accesses.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import torch

from torchlass.errors import DeviceError

#: Outer dims a kernel decomposes its program id into (besides the tile dims ``P, Q``).
OUTER_DIMS = 3
#: Elements per program (the tile is ``block_p x block_q``): 8 per thread of the default
#: 4 warps, enough independent loads to hide memory latency while the 5-8 operands of a
#: mask kernel (float64 arithmetic included) still fit in registers.
TILE_ELEMENTS = 1024
#: Largest tile extent along ``P``. 32 float32 values are 128 bytes, one full memory
#: transaction per warp, for an operand contiguous along ``P`` (read transposed); the
#: other ``1024 / 32 = 32`` elements along ``Q`` give the same for one contiguous along
#: ``Q``. A shorter ``P`` gets a power-of-two block that fits it, and ``Q`` the rest.
MAX_BLOCK_P = 32
_INT32_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class TilePlan:
    """Sizes and per-operand strides (in elements) of a tiled element-wise launch.

    ``sizes`` is ``(D0, D1, D2, P, Q)``; ``strides[i]`` the five strides of operand ``i``;
    ``fast_p[i]`` whether operand ``i`` is contiguous along ``P`` rather than ``Q``.
    """

    sizes: tuple[int, int, int, int, int]
    strides: tuple[tuple[int, int, int, int, int], ...]
    fast_p: tuple[bool, ...]
    block_p: int
    block_q: int
    wide: bool

    @property
    def grid(self) -> tuple[int]:
        d0, d1, d2, p, q = self.sizes
        return (d0 * d1 * d2 * -(-p // self.block_p) * -(-q // self.block_q),)

    def operand(self, i: int) -> tuple[int, int, int, int, int]:
        """The five strides of operand ``i``, in kernel argument order."""
        return self.strides[i]


def element_strides(t: torch.Tensor, shape: tuple[int, ...]) -> tuple[int, ...]:
    """Strides of ``t`` broadcast to ``shape``, in elements (a broadcast dim gets 0).

    A complex element counts once: kernels address a complex operand through its
    `torch.view_as_real` view and double its offsets themselves, which tells the
    compiler that each (re, im) pair is 8-byte aligned (a stride of 2 passed from the host
    would not).
    """
    sizes = t.shape
    lead = (0,) * (len(shape) - len(sizes))
    return lead + tuple(0 if n == 1 else s for n, s in zip(sizes, t.stride(), strict=True))


def check_kernel_device(fn: str, **tensors: torch.Tensor) -> None:
    """Require one CUDA device for all ``tensors`` (any device under ``TRITON_INTERPRET=1``)."""
    if len({t.device for t in tensors.values()}) > 1:
        names = ", ".join(f"'{n}' on {t.device}" for n, t in tensors.items())
        raise DeviceError(f"{fn}(): arguments expected tensors on one device, got {names}")
    name, first = next(iter(tensors.items()))
    if first.device.type != "cuda" and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        raise DeviceError(
            f"{fn}(): argument '{name}' expected a CUDA tensor (CPU tensors run only under "
            f"Triton's interpreter, TRITON_INTERPRET=1), got device {first.device}; the eager "
            "torchlass functions handle every device"
        )


@functools.lru_cache(maxsize=512)
def plan_tiles(shape: tuple[int, ...], strides: tuple[tuple[int, ...], ...],
               complex_flags: tuple[bool, ...]) -> TilePlan | None:
    """Plan a launch over ``shape`` for operands with the given element strides.

    Returns None when, after merging, more than ``OUTER_DIMS + 2`` dims remain (callers then
    make their inputs contiguous, which always merges to one dim). Plans are cached: a
    training loop repeats the same few layouts.
    """
    dims = [(size, [s[d] for s in strides]) for d, size in enumerate(shape) if size != 1]
    merged: list[tuple[int, list[int]]] = []
    for size, st in dims:
        if merged:
            prev_size, prev_st = merged[-1]
            if all(ps == s * size for ps, s in zip(prev_st, st, strict=True)):
                merged[-1] = (prev_size * size, st)
                continue
        merged.append((size, st))
    if len(merged) > OUTER_DIMS + 2:
        return None
    n = len(strides)
    while len(merged) < OUTER_DIMS + 2:
        merged.insert(0, (1, [0] * n))
    sizes = tuple(size for size, _ in merged)
    per_operand = tuple(tuple(st[i] for _, st in merged) for i in range(n))
    p, q = sizes[-2], sizes[-1]
    fast_p = tuple(_fast_along_p(st[-2], st[-1], p, q) for st in per_operand)
    block_p = min(MAX_BLOCK_P, _next_pow2(p))
    block_q = TILE_ELEMENTS // block_p
    reach = [  # largest offset in scalars (complex offsets are doubled in the kernel)
        (1 + int(cplx)) * sum((size + block) * abs(s) for size, s, block in
                              zip(sizes, st, (1, 1, 1, block_p, block_q), strict=True))
        for st, cplx in zip(per_operand, complex_flags, strict=True)
    ]
    return TilePlan(
        sizes=sizes,  # type: ignore[arg-type]
        strides=per_operand,  # type: ignore[arg-type]
        fast_p=fast_p,
        block_p=block_p,
        block_q=block_q,
        wide=max(reach) > _INT32_LIMIT,
    )


def _fast_along_p(sp: int, sq: int, p: int, q: int) -> bool:
    """Whether an operand moves less in memory along ``P`` than along ``Q``."""
    if p == 1 or sp == 0:
        return False
    if q == 1 or sq == 0:
        return True
    return sp < sq


def _next_pow2(n: int) -> int:
    return 1 << max(0, (n - 1).bit_length())


def empty_like_layout(shape: tuple[int, ...], dtype: torch.dtype, like: torch.Tensor
                      ) -> torch.Tensor:
    """Uninitialised tensor of ``shape``; frequency-fastest when ``like`` is.

    `torch.stft` returns spectrograms whose last two dims ``(freq, frames)`` are stored
    frequency-fastest; keeping that layout for a masked spectrogram lets the inverse FFT
    read it without a transposing copy.
    """
    if (len(shape) >= 2 and like.dim() >= 2 and like.shape[-2] > 1 and like.shape[-1] > 1
            and like.stride(-2) < like.stride(-1)):
        out = torch.empty(*shape[:-2], shape[-1], shape[-2], dtype=dtype, device=like.device)
        return out.transpose(-1, -2)
    return torch.empty(shape, dtype=dtype, device=like.device)


def grad_buffer(inp: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype,
                like: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Where a kernel writes the gradient of ``inp``, and whether it must still be reduced.

    An input of the full broadcast ``shape`` gets its gradient directly, in its own dtype
    and layout; a broadcast input gets a buffer of the full shape in ``dtype`` (the compute
    precision) that the caller sums down with `torch.Tensor.sum_to_size`.
    """
    if tuple(inp.shape) == tuple(shape):
        return torch.empty_like(inp), False
    return empty_like_layout(shape, dtype, like), True
