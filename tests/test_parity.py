"""Parity with the DCASE 2024 baseline's own output (shared parity case, float32 and float64).

The committed fixture holds the inputs and the original code's outputs of
``shared/reference/dcase2024_baseline/parity_case_a.npz`` (2 x 1 s at 16 kHz; 101 frames,
not a multiple of 32); the weights come from the deterministic rule in
``baseline_reference.make_test_weights``. For lengths the parity case lacks (not a multiple
of the hop, or exactly 32 frames) the reference is ``baseline_reference.reference_forward``,
the original's forward pass written from SPEC.md in its own layout, itself checked against
the parity case here.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from baseline_reference import FIXTURE, REFERENCE_DIR, make_test_weights, reference_forward

from torchlass.checkpoints import load_dcase2024_baseline


@pytest.fixture(scope="module")
def weights():
    return make_test_weights()


@pytest.fixture(scope="module")
def case():
    with np.load(FIXTURE) as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="module")
def baseline(weights):
    return load_dcase2024_baseline(weights)


@pytest.fixture(scope="module")
def baseline64(baseline):
    return copy.deepcopy(baseline).double()


def test_fixture_is_the_shared_parity_case(case):
    path = REFERENCE_DIR / "parity_case_a.npz"
    if not path.exists():
        pytest.skip(f"shared reference not found at {path} (CI clones shared/ beside the repo)")
    with np.load(path) as shared:
        for key, value in case.items():
            np.testing.assert_array_equal(value.numpy(), shared[key])


def test_float32_parity(baseline, case):
    with torch.no_grad():
        out = baseline(case["mixture"], case["condition"])
    assert out.dtype == torch.float32 and out.shape == (2, 1, *case["mixture"].shape[1:])
    out = out[:, 0]
    # The original's float32 output used torchlibrosa's conv STFT (1 ulp off the exact DFT).
    torch.testing.assert_close(out, case["waveform_f32"], rtol=0, atol=1e-5)
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
