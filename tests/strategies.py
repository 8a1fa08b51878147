"""Hypothesis strategies that draw the test data itself: shapes, values, scales, SNRs, DC.

Every composite draws the numbers that make up a signal (not only a seed for
``torch.randn``), so a failing case shrinks to a short, readable array: a tone of a drawn
frequency plus drawn samples, at a drawn scale and DC offset. Sizes are capped
(``MAX_LENGTH`` samples, ``MAX_SIDE`` per leading dimension) to keep every example fast.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

MAX_LENGTH = 64
MAX_SIDE = 3

#: Overall signal scales: six decades around 1.
scales = st.floats(1e-3, 1e3)
#: Target-to-noise ratios in dB.
snrs_db = st.floats(-20.0, 40.0)
#: DC offsets relative to the signal's scale.
dc_offsets = st.floats(-2.0, 2.0)
unit_floats = st.floats(-1.0, 1.0, allow_nan=False, width=64)


def lead_shapes(min_dims: int = 0, max_dims: int = 2) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading (batch-like) dimensions, each 1 to ``MAX_SIDE``."""
    return st.lists(st.integers(1, MAX_SIDE), min_size=min_dims, max_size=max_dims).map(tuple)


def _tone(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """A unit cosine of 1 to ``(length - 1) // 2`` whole cycles along the last dim: zero
    mean and energy ``length / 2`` whatever the drawn phase (``length >= 3``)."""
    length = shape[-1]
    cycles = draw(st.integers(1, max((length - 1) // 2, 1)))
    phase = draw(st.floats(0.0, 2 * math.pi))
    tone = np.cos(2 * np.pi * cycles * np.arange(length) / length + phase)
    return np.broadcast_to(tone, shape)


@st.composite
def waveforms(draw: st.DrawFn, *, lead: tuple[int, ...] | None = None, min_length: int = 3,
              max_length: int = MAX_LENGTH, scale: st.SearchStrategy[float] = scales,
              dc: st.SearchStrategy[float] = dc_offsets) -> torch.Tensor:
    """A float64 ``(*lead, time)`` signal: ``scale * (tone + samples + dc)``.

    The tone keeps the signal's energy away from 0 however the drawn samples (in [-1, 1])
    and DC offset shrink.
    """
    lead = draw(lead_shapes()) if lead is None else lead
    shape = (*lead, draw(st.integers(min_length, max_length)))
    samples = draw(arrays(np.float64, shape, elements=unit_floats))
    x = draw(scale) * (_tone(draw, shape) + samples + draw(dc))
    return torch.from_numpy(np.ascontiguousarray(x))


def _orthogonal(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``x`` less its projection on ``target`` per row; a row of ``x`` parallel to its target
    is replaced by a ramp, or an alternating sequence (they cannot both be parallel to it)."""
    n = torch.arange(target.shape[-1], dtype=target.dtype)
    candidates = [x, (n - n.mean()).expand_as(target), (1 - 2 * (n % 2)).expand_as(target)]
    energy = target.pow(2).sum(-1, keepdim=True)
    out = None
    for c in reversed(candidates):
        residual = c - (c * target).sum(-1, keepdim=True) / energy * target
        left = residual.pow(2).sum(-1, keepdim=True) > 1e-6 * c.pow(2).sum(-1, keepdim=True)
        out = residual if out is None else torch.where(left, residual, out)
    return out


@st.composite
def signal_pairs(draw: st.DrawFn, *, lead: tuple[int, ...] | None = None,
                 min_length: int = 3, max_length: int = MAX_LENGTH,
                 scale: st.SearchStrategy[float] = scales,
                 snr_db: st.SearchStrategy[float] = snrs_db,
                 dc: st.SearchStrategy[float] = dc_offsets,
                 ) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(estimate, target, snr_db)``: a drawn target plus drawn noise orthogonal to it,
    scaled per row so that the target-to-noise energy ratio is ``snr_db``. Orthogonal
    noise makes SNR, SDR and (without mean removal) SI-SDR all equal ``snr_db``."""
    target = draw(waveforms(lead=lead, min_length=min_length, max_length=max_length,
                            scale=scale, dc=dc))
    shape = tuple(target.shape)
    noise = _tone(draw, shape) + draw(arrays(np.float64, shape, elements=unit_floats))
    noise = _orthogonal(torch.from_numpy(np.ascontiguousarray(noise)), target)
    ratio = draw(snr_db)
    energy = target.pow(2).sum(-1, keepdim=True) / noise.pow(2).sum(-1, keepdim=True)
    return target + noise * torch.sqrt(energy * 10 ** (-ratio / 10)), target, ratio


@st.composite
def spectra(draw: st.DrawFn, *, shape: tuple[int, ...] | None = None, min_dims: int = 1,
            max_dims: int = 3, scale: st.SearchStrategy[float] = scales) -> torch.Tensor:
    """A complex128 spectrum with drawn real and imaginary parts in ``[-scale, scale]``, of
    ``shape`` or of ``min_dims`` to ``max_dims`` drawn dimensions."""
    shape = draw(lead_shapes(min_dims, max_dims)) if shape is None else shape
    parts = draw(arrays(np.float64, (2, *shape), elements=unit_floats))
    return draw(scale) * torch.complex(*torch.from_numpy(parts))


def logits(shape: tuple[int, ...], bound: float = 6.0) -> st.SearchStrategy[torch.Tensor]:
    """Float64 mask logits of ``shape``, each in ``[-bound, bound]``."""
    elements = st.floats(-bound, bound, allow_nan=False, width=64)
    return arrays(np.float64, shape, elements=elements).map(torch.from_numpy)


@st.composite
def captions(draw: st.DrawFn) -> str:
    """One to six lower-case words (function words among them, maybe), joined by drawn
    spacing or commas, maybe upper-cased."""
    words = draw(st.lists(st.from_regex(r"[a-z]{1,8}", fullmatch=True), min_size=1, max_size=6))
    text = draw(st.sampled_from([" ", "  ", ", "])).join(words)
    return text.upper() if draw(st.booleans()) else text
