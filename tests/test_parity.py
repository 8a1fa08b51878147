"""Parity with the DCASE 2024 baseline's forward pass (committed fixtures, float32 and float64).

The fixture ``fixtures/dcase2024_parity.npz`` holds two 1 s mixtures at 16 kHz (101 frames,
not a multiple of 32), their conditions and the output of
``baseline_reference.reference_forward`` -- the original's forward pass written from
docs/baseline.md in its own ``(frames, freq)`` layout and key names -- with the test
weights of ``baseline_reference.make_test_weights`` (``fixtures/make_fixtures.py`` writes
it). The same weights are loaded with ``load_dcase2024_baseline``, so these tests check
the key mapping, the kernel transposes and torchlass' forward pass against an independent
one. For lengths the fixture lacks (not a multiple of the hop, or exactly 32 frames) the
reference forward runs here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from baseline_reference import FIXTURE, make_test_weights, reference_forward, weights_sha256

from torchlass.checkpoints import load_dcase2024_baseline


@pytest.fixture(scope="module")
def weights():
    return make_test_weights()


@pytest.fixture(scope="module")
def case():
    with np.load(FIXTURE) as data:
        return {k: torch.from_numpy(data[k]) for k in data.files if k != "weights_sha256"}


@pytest.fixture(scope="module")
def baseline(weights):
    return load_dcase2024_baseline(weights)


@pytest.fixture(scope="module")
def baseline64(baseline):
    return copy.deepcopy(baseline).double()


def test_fixture_was_made_with_these_weights(weights):
    with np.load(FIXTURE) as data:
        assert str(data["weights_sha256"]) == weights_sha256(weights)


def test_float32_parity(baseline, case):
    with torch.no_grad():
        out = baseline(case["mixture"], case["condition"])
    assert out.dtype == torch.float32 and out.shape == (2, 1, *case["mixture"].shape[1:])
    out = out[:, 0]
    torch.testing.assert_close(out.double(), case["waveform"], rtol=0, atol=1e-5)


def test_float64_parity(baseline64, case):
    with torch.no_grad():
        out = baseline64(case["mixture"].double(), case["condition"].double())[:, 0]
    torch.testing.assert_close(out, case["waveform"], rtol=0, atol=1e-7)


@pytest.mark.parametrize("length", [4801, 5037])  # 31 frames (hop + 1), 32 frames (no padding)
def test_float64_parity_at_other_lengths(baseline64, weights, case, length):
    mixture = case["mixture"][1:, :, :length].double()
    condition = case["condition"][1:].double()
    with torch.no_grad():
        out = baseline64(mixture, condition)[:, 0]
    torch.testing.assert_close(out, reference_forward(weights, mixture, condition),
                               rtol=0, atol=1e-7)


def test_reference_reproduces_the_parity_case(weights, case):
    out = reference_forward(weights, case["mixture"][:1], case["condition"][:1])
    torch.testing.assert_close(out, case["waveform"][:1], rtol=0, atol=1e-7)
