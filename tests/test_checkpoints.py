"""Loading the DCASE 2024 baseline checkpoint in each accepted form, each error, and export."""

from __future__ import annotations

import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from baseline_reference import (
    LAYOUT_SHA256,
    analytic_kernels,
    baseline_layout,
    layout_sha256,
    make_test_weights,
)

from torchlass import Separator
from torchlass.checkpoints import (
    PREFIX,
    export_dcase2024_baseline,
    load_dcase2024_baseline,
    read_checkpoint,
)
from torchlass.errors import CheckpointError

STFT_KEYS = tuple(analytic_kernels())
# The decoders' second BatchNorm and the FiLM layer feeding it, never used
# (docs/baseline.md#unused-decoder-batchnorm-and-film).
UNUSED = tuple(k for k, _, _ in baseline_layout()
               if re.match(r"base\.decoder_block\d\.bn2\.|film\.decoder_block\d->beta2\.", k))


@pytest.fixture(scope="module")
def weights():
    return make_test_weights()


@pytest.fixture(scope="module")
def loaded(weights):
    return load_dcase2024_baseline(weights)


def test_test_layout_is_the_original_registration():
    layout = baseline_layout()
    assert layout_sha256(layout) == LAYOUT_SHA256  # pinned: 332 keys in the original's order
    assert len(layout) == 332 and len({k for k, _, _ in layout}) == 332
    # docs/baseline.md: 29,594,693 parameters and 21,801 buffer elements; 824,000 unused
    # parameters (decoder bn2 and its FiLM layers, with the bn2 buffers here).
    numel = {k: math.prod(s) for k, s, _ in layout}
    assert sum(numel.values()) == 29_594_693 + 21_801
    bn2_params = sum(n for k, n in numel.items() if k in UNUSED
                     and k.endswith((".weight", ".bias")))
    assert bn2_params == 824_000
    assert [k for k, s, d in layout if d == "int64"] == [
        k for k in numel if k.endswith("num_batches_tracked")]


def test_test_weights_are_deterministic_and_plausible(weights):
    again = make_test_weights()
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    firsts = [float(v.flatten()[0]) for k, v in weights.items() if k.endswith("conv2.weight")]
    assert len(set(firsts)) == len(firsts) == 13  # every key draws its own values
    for key, value in weights.items():
        if key.endswith("running_var"):
            assert bool((value >= 0.5).all() and (value < 1.5).all()), key
        elif value.dim() >= 2 and key not in STFT_KEYS:  # fan_in: all but the first dim
            assert float(value.abs().max()) <= (3 / value[0].numel()) ** 0.5, key


def _same_state(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_every_accepted_form_loads_the_same_weights(weights, loaded, tmp_path):
    assert not loaded.training and next(loaded.parameters()).dtype == torch.float32
    assert (loaded.stft.n_fft, loaded.stft.hop_length, loaded.sample_rate) == (1024, 160, 16000)
    query_encoder = {"query_encoder.model.text_branch.weight": torch.zeros(3)}
    lightning = {"state_dict": {PREFIX + k: v for k, v in weights.items()} | query_encoder,
                 "pytorch-lightning_version": "2.0.0", "global_step": 200000}
    path = tmp_path / "baseline.ckpt"
    torch.save(lightning, path)
    essential = {k: v for k, v in weights.items() if k not in STFT_KEYS + UNUSED}
    forms = [lightning, str(path), path, {PREFIX + k: v for k, v in weights.items()}, essential]
    for form in forms:
        assert _same_state(load_dcase2024_baseline(form), loaded)


def test_kernels_are_transposed_to_freq_frames(weights, loaded):
    ours = loaded.backbone.decoders[0].up.weight  # (in, out, freq 2, frames 1) here
    theirs = weights["base.decoder_block1.conv1.weight"]  # (in, out, frames 1, freq 2)
    assert ours.shape == (384, 384, 2, 1) and theirs.shape == (384, 384, 1, 2)
    assert torch.equal(ours, theirs.transpose(-1, -2))
    bn0 = loaded.features.norm
    assert torch.equal(bn0.running_var, weights["base.bn0.running_var"])


def test_missing_unexpected_and_misshapen_keys_are_listed(weights):
    state = {PREFIX + k: v for k, v in weights.items()}
    del state[PREFIX + "base.pre_conv.bias"]
    state["ss_model.base.extra.weight"] = torch.zeros(1)
    state["other.weight"] = torch.zeros(1)
    state[PREFIX + "base.bn0.weight"] = torch.zeros(512)
    pattern = (r"load_dcase2024_baseline\(\): argument 'source' does not match the DCASE 2024 "
               r"baseline's ResUNet30 layout: 1 missing key\(s\): ss_model.base.pre_conv.bias; "
               r"2 unexpected key\(s\): other.weight, ss_model.base.extra.weight; 1 shape "
               r"mismatch\(es\): ss_model.base.bn0.weight expected shape \(513,\), got \(512,\)")
    with pytest.raises(CheckpointError, match=pattern):
        load_dcase2024_baseline({"state_dict": state})


@pytest.mark.parametrize(("edit", "message"), [
    (lambda s: s.pop("film.decoder_block2->beta1.weight"),
     r"1 missing key\(s\): film.decoder_block2->beta1.weight$"),
    (lambda s: s.update({"base.encoder_block7.conv_block1.bn1.weight": torch.ones(3)}),
     r"1 unexpected key\(s\): base.encoder_block7.conv_block1.bn1.weight$"),
    (lambda s: s.update({"base.after_conv.weight": torch.ones(2, 32, 1, 1)}),
     r"base.after_conv.weight expected shape \(3, 32, 1, 1\), got \(2, 32, 1, 1\)$"),
    (lambda s: s.update({"base.decoder_block1.bn2.weight": torch.ones(3)}),
     r"base.decoder_block1.bn2.weight expected shape \(384,\), got \(3,\)$"),
    (lambda s: s.update({"base.bn0.bias": [0.0] * 513}),
     r"base.bn0.bias expected a tensor, got list$"),
])
def test_each_layout_error(weights, edit, message):
    state = dict(weights)
    edit(state)
    with pytest.raises(CheckpointError, match=message):
        load_dcase2024_baseline(state)


def test_wrong_stft_kernels_are_rejected(weights):
    state = dict(weights)
    n = torch.arange(1024, dtype=torch.float64)
    hamming = 0.54 - 0.46 * torch.cos(2 * torch.pi * n / 1024)
    state["base.istft.ola_window"] = (hamming**2).float()
    with pytest.raises(CheckpointError, match=r"holds a frozen STFT kernel base.istft.ola_window "
                                              r"that differs from the periodic-Hann DFT kernel"):
        load_dcase2024_baseline(state)
    state = dict(weights)
    state["base.stft.conv_imag.weight"] = -weights["base.stft.conv_imag.weight"]
    with pytest.raises(CheckpointError, match=r"kernel base.stft.conv_imag.weight that differs"):
        load_dcase2024_baseline(state)
    state["base.stft.conv_imag.weight"] = torch.zeros(513, 1, 512)
    with pytest.raises(CheckpointError, match=r"base.stft.conv_imag.weight expected shape "
                                              r"\(513, 1, 1024\), got \(513, 1, 512\)"):
        load_dcase2024_baseline(state)


def test_unreadable_sources(tmp_path):
    with pytest.raises(CheckpointError, match=r"argument 'source' expected a path, a checkpoint "
                                              r"dict or a state_dict, got list"):
        load_dcase2024_baseline([1, 2])
    with pytest.raises(CheckpointError, match=r"expected 'state_dict' to be a mapping of tensors, "
                                              r"got int"):
        load_dcase2024_baseline({"state_dict": 3})
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "callback": CheckpointError("not a tensor")}, path)
    with pytest.raises(CheckpointError) as err:
        load_dcase2024_baseline(path)
    assert str(err.value) == (
        f"read_checkpoint(): cannot read {str(path)!r}: it holds objects other than tensors "
        "and plain containers, which are not unpickled because that could run code "
        "(Unsupported global: GLOBAL torchlass.errors.CheckpointError)")
    # a user who trusts the file loads it and passes the result
    with torch.serialization.safe_globals([CheckpointError]):
        trusted = torch.load(path, weights_only=True)
    with pytest.raises(CheckpointError, match=r"missing key\(s\)"):
        load_dcase2024_baseline(trusted)


# -- read_checkpoint: the one reader of every loader ---------------------------------------

def _touch(path):
    Path(path).touch()


class Payload:
    """Unpickling it would create ``marker``: the reader must refuse before that happens."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (_touch, (str(self.marker),))


def _write(path, kind):
    """Write a file of the given ``kind``; returns the expected reason of the reader."""
    if kind == "missing":
        return "file not found"
    if kind == "empty":
        path.write_bytes(b"")
        return "the file is empty"
    if kind == "folder":
        path.mkdir()
        return ("it is a folder without config.json, expected a checkpoint file or a "
                "save_pretrained folder")
    if kind == "text":
        path.write_text("model weights, honestly\n")
        return "not a checkpoint written by torch.save"
    if kind == "plain pickle":
        path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
        return "not a checkpoint written by torch.save"
    if kind == "truncated":
        torch.save({"w": torch.arange(1000.0)}, path)
        path.write_bytes(path.read_bytes()[:300])
        return ("damaged zip archive, e.g. truncated (PytorchStreamReader failed reading zip "
                "archive: failed finding central directory)")
    if kind == "code":
        torch.save({"w": Payload(path.with_suffix(".ran"))}, path)
        return ("it holds objects other than tensors and plain containers, which are not "
                "unpickled because that could run code (Unsupported global: GLOBAL "
                "test_checkpoints._touch)")
    if kind == "numpy":
        torch.save({"rng": np.random.default_rng(0).random(3)}, path)
        return ("it holds objects other than tensors and plain containers, which are not "
                "unpickled because that could run code (Unsupported global: GLOBAL "
                "numpy._core.multiarray._reconstruct)")
    assert kind == "list"
    torch.save([torch.zeros(2)], path)
    return "expected a mapping at the top level, got list"


@pytest.mark.parametrize("kind", ["missing", "empty", "folder", "text", "plain pickle",
                                  "truncated", "code", "numpy", "list"])
def test_read_checkpoint_failures_are_one_line(tmp_path, kind):
    path = tmp_path / "model.pt"
    reason = _write(path, kind)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(path)
    assert str(err.value) == f"read_checkpoint(): cannot read {str(path)!r}: {reason}"
    assert not path.with_suffix(".ran").exists()  # nothing in the file was executed


def test_read_checkpoint_reads_tensors_and_plain_containers(tmp_path):
    state = {"w": torch.randn(3, 2, dtype=torch.float64), "step": 7, "name": "run",
             "nested": {"lr": [1e-3, None], "betas": (0.9, 0.999), "flag": True}}
    torch.save(state, tmp_path / "ok.pt")
    got = read_checkpoint(tmp_path / "ok.pt", map_location="cpu")
    assert torch.equal(got["w"], state["w"]) and got["w"].dtype == torch.float64
    assert {k: v for k, v in got.items() if k != "w"} == {k: v for k, v in state.items()
                                                         if k != "w"}
    assert read_checkpoint(state) is state  # a mapping in memory is passed through
    with pytest.raises(CheckpointError, match=r"^read_checkpoint\(\): argument 'source' expected "
                                              r"a path or a checkpoint mapping, got int$"):
        read_checkpoint(3)


def test_export_writes_the_original_layout(weights, loaded, tmp_path):
    path = tmp_path / "exported.ckpt"
    checkpoint = export_dcase2024_baseline(loaded, path)
    assert checkpoint["pytorch-lightning_version"] == "2.0.0"
    state = checkpoint["state_dict"]
    layout = [[k[len(PREFIX):], list(v.shape), str(v.dtype).removeprefix("torch.")]
              for k, v in state.items()]
    assert layout_sha256(layout) == LAYOUT_SHA256  # every key, in order, shape and dtype
    for key, value in weights.items():
        exported = state[PREFIX + key]
        if key in UNUSED:  # BatchNorm's initial values and zero FiLM layers
            fill = 1.0 if key.endswith(("bn2.weight", "bn2.running_var")) else 0.0
            assert torch.equal(exported, torch.full_like(value, fill)), key
        else:  # round trip bit for bit, the analytic STFT kernels included
            assert torch.equal(exported, value), key
    reloaded = torch.load(path, weights_only=True)
    assert reloaded.keys() == checkpoint.keys()
    assert _same_state(load_dcase2024_baseline(path), loaded)
    bare = export_dcase2024_baseline(loaded, lightning=False)
    assert list(bare) == [k for k, _, _ in baseline_layout()]


def test_export_after_fine_tuning_round_trips(loaded):
    tuned = Separator.dcase2024_baseline()
    tuned.load_state_dict(loaded.state_dict())
    with torch.no_grad():
        tuned.backbone.encoders[2].block.conv1.weight.mul_(1.5)
        tuned.features.norm.num_batches_tracked.fill_(7)
    again = load_dcase2024_baseline(export_dcase2024_baseline(tuned))
    assert _same_state(again, tuned) and not _same_state(again, loaded)


@pytest.mark.parametrize(("build", "message"), [
    (lambda: Separator.srpol_system1(), r"a ResUNet backbone on normalised MagnitudeFeatures"),
    (lambda: Separator.dcase2024_baseline(num_sources=2), r"a single-source MagPhaseMaskHead"),
    (lambda: Separator.dcase2024_baseline(film_scale=True), r"additive FiLM only"),
    (lambda: Separator.dcase2024_baseline(widths=(32, 64, 128, 256, 384, 512)),
     r"ResUNet30 with one channel, a 512-d condition and n_fft = 1024"),
])
def test_export_rejects_other_architectures(build, message):
    with torch.device("meta"):
        separator = build()
    with pytest.raises(CheckpointError, match=r"export_dcase2024_baseline\(\): argument "
                                              r"'separator' expected the DCASE 2024 baseline's "
                                              r"architecture, which the original code loads: "
                                              + message):
        export_dcase2024_baseline(separator)
