"""The NOLA check of ``istft``: its envelope, and its verdict cached per window and layout."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.weak import WeakIdKeyDictionary

from torchlass.errors import ValueRangeError
from torchlass.stft import ISTFT, _nola, istft, make_window, stft


def np_envelope_minimum(window, n_fft, hop, frames, center, length):
    """``min |sum_t w^2[n - t hop]|`` over the output samples, by the definition."""
    w = np.zeros(n_fft)
    left = (n_fft - len(window)) // 2
    w[left:left + len(window)] = np.asarray(window, dtype=np.float64)
    total = n_fft + hop * (frames - 1)
    envelope = np.zeros(total)
    for t in range(frames):
        envelope[t * hop:t * hop + n_fft] += w**2
    start = n_fft // 2 if center else 0
    stop = total - start if length is None else min(start + length, total)
    region = envelope[start:stop]
    return float(np.abs(region).min()) if region.size else float("inf")


@pytest.mark.parametrize(("name", "win", "n_fft", "hop", "frames", "center", "length"), [
    ("hann", 32, 32, 8, 5, True, None),
    ("hann", 32, 32, 8, 5, False, None),
    ("blackman", 20, 32, 8, 26, True, 215),
    ("hamming", 12, 16, 16, 3, True, 40),
    ("hann", 16, 16, 4, 1, True, None),
    ("rectangular", 8, 8, 8, 4, False, 0),
])
def test_envelope_minimum_matches_the_definition(name, win, n_fft, hop, frames, center,
                                                 length):
    window = make_window(name, win, dtype=torch.float64)
    got = _nola.envelope_minimum(window, (n_fft, hop, frames, center, length))
    want = np_envelope_minimum(window.numpy(), n_fft, hop, frames, center, length)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@pytest.fixture
def evaluations(monkeypatch) -> list:
    """Empty the caches and record every envelope evaluation."""
    monkeypatch.setattr(_nola, "_BY_NAME", {})
    monkeypatch.setattr(_nola, "_BY_TENSOR", WeakIdKeyDictionary())
    seen: list = []
    evaluate = _nola.envelope_minimum

    def counting(window, layout):
        seen.append(layout)
        return evaluate(window, layout)

    monkeypatch.setattr(_nola, "envelope_minimum", counting)
    return seen


def test_verdict_is_computed_once_per_window_and_layout(evaluations):
    spec = stft(torch.randn(2, 300), n_fft=32, hop_length=8)  # 38 frames
    for _ in range(3):
        istft(spec, n_fft=32, hop_length=8)
    assert evaluations == [(32, 8, 38, True, None)]
    istft(spec, n_fft=32, hop_length=8, length=300)
    istft(spec[..., :20], n_fft=32, hop_length=8)
    istft(spec, n_fft=32, hop_length=8, window="hamming")
    assert len(evaluations) == 4
    module = ISTFT(32, 8)
    for _ in range(3):
        module(spec, length=300)
    assert len(evaluations) == 5  # a window tensor: cached by the tensor itself
    istft(spec.to(torch.complex128), n_fft=32, hop_length=8, window=module.window)
    assert len(evaluations) == 6  # the window in another dtype is checked again


def test_in_place_change_to_a_window_is_seen(evaluations):
    window = torch.ones(8)
    spec = stft(torch.randn(100), n_fft=8, hop_length=4, window=window)
    istft(spec, n_fft=8, hop_length=4, window=window)
    istft(spec, n_fft=8, hop_length=4, window=window)
    assert len(evaluations) == 1
    window[3::4] = 0.0  # zeros at every multiple of the hop: NOLA fails
    with pytest.raises(ValueRangeError, match=r"istft\(\): .*NOLA condition"):
        istft(spec, n_fft=8, hop_length=4, window=window)
    window.fill_(1.0)
    istft(spec, n_fft=8, hop_length=4, window=window)
    assert len(evaluations) == 3


def test_inference_mode_windows_are_checked_every_time(evaluations):
    with torch.inference_mode():
        good, bad = torch.ones(8), torch.tensor([1.0, 1, 1, 0, 1, 1, 1, 0])
        spec = stft(torch.randn(100), n_fft=8, hop_length=4, window=good)
        for _ in range(2):
            istft(spec, n_fft=8, hop_length=4, window=good)
        with pytest.raises(ValueRangeError, match="NOLA"):
            istft(spec, n_fft=8, hop_length=4, window=bad)
    assert len(evaluations) == 3
