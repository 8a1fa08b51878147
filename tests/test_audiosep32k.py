"""AudioSep's 32 kHz checkpoint layout: loading, export round trip and parity with AudioSep.

The fixture ``fixtures/audiosep32k_parity.npz`` is AudioSep's own ``ResUNet30`` (n_fft
2048, hop 320) run on the test weights of ``baseline_reference.make_test_weights``, made by
``fixtures/make_audiosep32k_parity.py`` (which says how). The tolerances are the 16 kHz
parity tests' (``test_parity.py``). ``baseline_reference.reference_forward``, written from
the formulas, is checked against the fixture and then serves for lengths it lacks.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from baseline_reference import (
    analytic_kernels,
    baseline_layout,
    make_test_weights,
    reference_forward,
    weights_sha256,
)

from torchlass import Separator
from torchlass.checkpoints import (
    PREFIX,
    STFT_LAYOUTS,
    export_audiosep,
    export_dcase2024_baseline,
    load_audiosep,
    load_dcase2024_baseline,
)
from torchlass.errors import CheckpointError
from torchlass.stft import STFT

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "audiosep32k_parity.npz"
N_FFT, HOP, RATE = 2048, 320, 32000


@pytest.fixture(scope="module")
def case():
    with np.load(FIXTURE) as data:
        return {k: data[k] if data[k].dtype.kind == "U" else torch.from_numpy(data[k])
                for k in data.files}


@pytest.fixture(scope="module")
def weights():
    return make_test_weights(baseline_layout(n_fft=N_FFT))


@pytest.fixture(scope="module")
def loaded(weights):
    return load_audiosep(weights)


@pytest.fixture(scope="module")
def loaded64(loaded):
    return copy.deepcopy(loaded).double()


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_fixture_was_made_from_these_weights_and_this_layout(case, weights):
    assert weights_sha256(weights) == str(case["weights_sha256"])
    # AudioSep's own state_dict: the 16 kHz keys, only bn0 and the STFT kernels differ
    original = [tuple(e) for e in json.loads(str(case["layout"]))]
    assert [list(e) for e in baseline_layout(n_fft=N_FFT)] == [list(e) for e in original]
    changed = {k for (k, s, _), (_, s16, _) in zip(original, baseline_layout(), strict=True)
               if s != s16}
    assert len(original) == 332
    assert changed == set(analytic_kernels()) | {f"base.bn0.{leaf}" for leaf in (
        "weight", "bias", "running_mean", "running_var")}


def test_the_stft_comes_from_the_kernel_shapes(loaded, weights):
    assert (loaded.stft.n_fft, loaded.stft.hop_length, loaded.istft.n_fft) == (N_FFT, HOP, N_FFT)
    assert loaded.sample_rate == RATE and not loaded.training
    assert loaded.features.norm.num_features == 1025
    assert STFT_LAYOUTS[1025].sample_rate == RATE and STFT_LAYOUTS[513].sample_rate == 16000
    # without the frozen kernels, bn0 tells the same
    kernels = set(analytic_kernels(N_FFT))
    stripped = {k: v for k, v in weights.items() if k not in kernels}
    assert _same_state(load_audiosep(stripped), loaded)


def test_float32_parity(loaded, case):
    with torch.no_grad():
        out = loaded(case["mixture"], case["condition"])[:, 0]
    assert out.dtype == torch.float32 and out.shape == case["mixture"].shape
    torch.testing.assert_close(out, case["waveform_f32"], rtol=0, atol=1e-5)
    torch.testing.assert_close(out.double(), case["waveform"], rtol=0, atol=1e-5)


def test_float64_parity(loaded64, case):
    with torch.no_grad():
        out = loaded64(case["mixture"].double(), case["condition"].double())[:, 0]
    torch.testing.assert_close(out, case["waveform"], rtol=0, atol=1e-7)


def test_reference_reproduces_the_fixture(weights, case):
    out = reference_forward(weights, case["mixture"][:1], case["condition"][:1],
                            n_fft=N_FFT, hop=HOP)
    torch.testing.assert_close(out, case["waveform"][:1], rtol=0, atol=1e-7)


@pytest.mark.parametrize("length", [9601, 10074])  # 31 frames (hop + 1), 32 frames (no padding)
def test_float64_parity_at_other_lengths(loaded64, weights, case, length):
    mixture = case["mixture"][1:, :, :length].double()
    condition = case["condition"][1:].double()
    with torch.no_grad():
        out = loaded64(mixture, condition)[:, 0]
    expected = reference_forward(weights, mixture, condition, n_fft=N_FFT, hop=HOP)
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-7)


def test_export_round_trip(weights, loaded, tmp_path):
    path = tmp_path / "audiosep.ckpt"
    checkpoint = export_audiosep(loaded, path)
    state = checkpoint["state_dict"]
    assert [k[len(PREFIX):] for k in state] == [k for k, _, _ in baseline_layout(n_fft=N_FFT)]
    for key, value in weights.items():
        if re.match(r"base\.decoder_block\d\.bn2\.|film\.decoder_block\d->beta2\.", key):
            continue  # the decoders' unused layers are written at their initial values
        assert torch.equal(state[PREFIX + key], value), key
    lightning = {"state_dict": state | {"query_encoder.model.text_branch.w": torch.zeros(2)}}
    for form in (path, lightning):
        assert _same_state(load_audiosep(form), loaded)


def test_the_16khz_layout_loads_too():
    weights = make_test_weights()
    separator = load_audiosep(weights)
    assert (separator.stft.n_fft, separator.stft.hop_length, separator.sample_rate) == (
        1024, 160, 16000)
    assert _same_state(separator, load_dcase2024_baseline(weights))
    assert list(export_audiosep(separator, lightning=False)) == list(weights)


def test_the_baseline_names_stay_16khz_only(weights, loaded):
    with pytest.raises(CheckpointError, match=(
            r"load_dcase2024_baseline\(\): argument 'source' does not match the DCASE 2024 "
            r"baseline's ResUNet30 layout: 9 shape mismatch\(es\): base.stft.conv_real.weight "
            r"expected shape \(513, 1, 1024\), got \(1025, 1, 2048\), .* \(its 1025 frequency "
            r"bins are AudioSep's layout at 32000 Hz: load it with load_audiosep\(\)\)$")):
        load_dcase2024_baseline(weights)
    with pytest.raises(CheckpointError, match=(
            r"export_dcase2024_baseline\(\): argument 'separator' expected the DCASE 2024 "
            r"baseline's architecture, which the original code loads: a centred periodic-Hann "
            r"STFT and ISTFT of n_fft = 1024 with hop 160 at 16000 Hz, got n_fft = 2048 with "
            r"hop 320 at 32000 Hz$")):
        export_dcase2024_baseline(loaded)


def test_mismatches_are_listed_against_the_32khz_layout(weights):
    state = {PREFIX + k: v for k, v in weights.items()}
    del state[PREFIX + "film.decoder_block3->beta1.bias"]
    state[PREFIX + "base.encoder_block7.conv_block1.bn1.weight"] = torch.ones(3)
    state[PREFIX + "base.bn0.bias"] = torch.zeros(513)
    with pytest.raises(CheckpointError, match=(
            r"load_audiosep\(\): argument 'source' does not match AudioSep's ResUNet30 layout: "
            r"1 missing key\(s\): ss_model.film.decoder_block3->beta1.bias; 1 unexpected "
            r"key\(s\): ss_model.base.encoder_block7.conv_block1.bn1.weight; 1 shape "
            r"mismatch\(es\): ss_model.base.bn0.bias expected shape \(1025,\), got \(513,\)$")):
        load_audiosep({"state_dict": state})


def test_unknown_stft_sizes_and_wrong_kernels_are_rejected(weights):
    state = dict(weights)
    state["base.stft.conv_real.weight"] = torch.zeros(257, 1, 512)
    with pytest.raises(CheckpointError, match=(
            r"load_audiosep\(\): argument 'source' holds base.stft.conv_real.weight with 257 "
            r"frequency bins \(shape \(257, 1, 512\)\), expected 513 \(n_fft = 1024, 16000 Hz\) "
            r"or 1025 \(n_fft = 2048, 32000 Hz\): not a ResUNet30 checkpoint of a known STFT")):
        load_audiosep(state)
    state = dict(weights)
    state["base.istft.conv_imag.weight"] = -weights["base.istft.conv_imag.weight"]
    with pytest.raises(CheckpointError, match=(
            r"holds a frozen STFT kernel base.istft.conv_imag.weight that differs from the "
            r"periodic-Hann DFT kernel \(n_fft = 2048\) by up to .*: the checkpoint was not made "
            r"with AudioSep's STFT")):
        load_audiosep(state)


@pytest.mark.parametrize(("options", "message"), [
    ({"n_fft": 2048, "hop_length": 160, "sample_rate": 32000},
     r"got n_fft = 2048 with hop 160 at 32000 Hz"),
    ({"n_fft": 2048, "hop_length": 320, "sample_rate": 44100},
     r"got n_fft = 2048 with hop 320 at 44100 Hz"),
    ({"n_fft": 512, "hop_length": 128, "sample_rate": 8000},
     r"got n_fft = 512 with hop 128 at 8000 Hz"),
])
def test_export_needs_a_published_stft(options, message):
    with torch.device("meta"):
        separator = Separator.dcase2024_baseline(**options)
    with pytest.raises(CheckpointError, match=(
            r"export_audiosep\(\): argument 'separator' expected AudioSep's or the DCASE 2024 "
            r"baseline's architecture, which the original code loads: a centred periodic-Hann STFT "
            r"and ISTFT of n_fft = 1024 with hop 160 at 16000 Hz or n_fft = 2048 with hop 320 "
            r"at 32000 Hz, " + message)):
        export_audiosep(separator)


def test_export_needs_a_hann_window():
    with torch.device("meta"):
        separator = Separator.dcase2024_baseline()
    separator.stft = STFT(1024, 160, window="hamming")
    with pytest.raises(CheckpointError, match=r"a centred periodic-Hann STFT and ISTFT of n_fft = "
                                              r"1024 with hop 160 at 16000 Hz, got n_fft = 1024 "
                                              r"with hop 160 at 16000 Hz with another window$"):
        export_dcase2024_baseline(separator)
