"""torchlass.export and the exportable STFT path.

The convolution STFT/ISTFT against torch.stft/torch.istft (float64 kernels to 1e-10, the
modules' float32 kernels to float32 rounding); torch.export programs and onnxruntime
against the eager separator for every preset at an odd length, a few seconds and more than
30 s; the ONNX checker; the deployment guide (export, embeddings, chunked onnxruntime run
equal to torchlass.separate) run as written. Exporting costs tens of seconds per graph on
a shared two-core machine: each preset is traced once per module and the ONNX cases are
marked slow.
"""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_docs import run_page
from torchlass import Separator
from torchlass.cli import main
from torchlass.errors import ShapeError, TorchlassError
from torchlass.export import (
    OPSET,
    OnnxSeparator,
    export_onnx,
    export_program,
    export_signature,
    exportable,
    save_embeddings,
)
from torchlass.query import HashedTextEncoder
from torchlass.recipes import get_config
from torchlass.recipes.model import build_separator
from torchlass.stft import ISTFT, STFT, make_window
from torchlass.stft.dft import analysis_basis, istft_dft, stft_dft, synthesis_basis

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

FRONT_ENDS = [  # n_fft, hop_length, win_length, center, pad_mode, window
    (1024, 160, None, True, "reflect", "hann"),       # the DCASE 2024 baseline
    (2048, 320, None, True, "reflect", "hann"),       # upstream AudioSep
    (512, 128, 400, True, "constant", "hann"),        # a window shorter than n_fft
    (255, 64, None, False, "reflect", "hamming"),     # odd n_fft, no centring (NOLA: no zero)
]
FRONT_END_NAMES = ("n_fft", "hop", "win", "center", "pad_mode", "window")


def _signal(scale: float, offset: float, length: int, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(length)
    return scale * torch.randn(batch, length, dtype=torch.float64, generator=g) + offset


@pytest.mark.parametrize(FRONT_END_NAMES, FRONT_ENDS)
@settings(max_examples=4)
@given(scale=st.floats(1e-3, 1e3), offset=st.floats(-1.0, 1.0))
def test_float64_kernels_equal_torch_stft_and_istft(n_fft, hop, win, center, pad_mode, window,
                                                    scale, offset):
    x = _signal(scale, offset, 6001)
    w = make_window(window, win or n_fft, dtype=torch.float64)
    ref = torch.stft(x, n_fft, hop, win or n_fft, w, center=center, pad_mode=pad_mode,
                     return_complex=True)
    got = stft_dft(x, analysis_basis(w, n_fft), hop_length=hop, center=center,
                   pad_mode=pad_mode)
    assert got.dtype == torch.complex128
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-10 * ref.abs().max())
    length = 6001 if center else None
    y_ref = torch.istft(ref, n_fft, hop, win or n_fft, w, center=center, length=length)
    y = istft_dft(ref, synthesis_basis(w, n_fft), w, hop_length=hop, center=center,
                  length=length)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-10 * y_ref.abs().max())


@pytest.mark.parametrize(FRONT_END_NAMES, FRONT_ENDS)
def test_exportable_modules_equal_eager_modules_in_float32(n_fft, hop, win, center, pad_mode,
                                                           window):
    x = _signal(0.3, 0.1, 16001, batch=3).float().reshape(3, 1, 16001)
    eager = STFT(n_fft, hop, win, window, center=center, pad_mode=pad_mode)
    conv = STFT(n_fft, hop, win, window, center=center, pad_mode=pad_mode, exportable=True)
    spec = eager(x)
    # float32 sums of n_fft products: a few float32 ulps of the largest bin
    torch.testing.assert_close(conv(x), spec, rtol=0, atol=3e-6 * spec.abs().max())
    length = 16001 if center else None
    inverse = ISTFT(n_fft, hop, win, window, center=center)(spec, length=length)
    conv_inverse = ISTFT(n_fft, hop, win, window, center=center, exportable=True)(
        spec, length=length)
    torch.testing.assert_close(conv_inverse, inverse, rtol=0, atol=1e-5 * x.abs().max())


def test_exportable_inverse_zero_pads_past_the_last_frame_and_checks_nola():
    x = torch.randn(1, 1000)
    spec = STFT(256, 64)(x)  # 16 frames: 15 * 64 + 256 - 128 = 1088 samples
    y = ISTFT(256, 64, exportable=True)(spec, length=1200)
    assert y.shape == (1, 1200) and bool((y[:, 1088:] == 0).all())
    torch.testing.assert_close(y[:, :1000], x, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="NOLA condition"):
        ISTFT(256, 200, window="rectangular", win_length=64, exportable=True)(spec[..., :3])


def test_exportable_path_rejects_bad_input_like_the_eager_path():
    with pytest.raises(ShapeError, match=r"^stft\(\): argument 'x' expected at least 129"):
        STFT(256, 64, exportable=True)(torch.randn(2, 100))
    with pytest.raises(ValueError, match=r"^istft\(\): argument 'spec' expected finite"):
        ISTFT(256, 64, exportable=True)(torch.full((1, 129, 4), float("nan"),
                                                   dtype=torch.complex64))


def test_exportable_switches_the_front_end_and_restores_it():
    sep = Separator.srpol_system1(condition_size=8, n_fft=256, hop_length=64, stem_width=4,
                                  widths=(4,), pools=((2, 2),))
    x, c = torch.randn(2, 1, 3001), torch.randn(2, 8)
    with exportable(sep):
        assert sep.stft.exportable and sep.istft.exportable and not sep.training
        conv = sep(x, c)
    assert not sep.stft.exportable and not sep.istft.exportable and sep.training
    torch.testing.assert_close(conv, sep.eval()(x, c), rtol=0, atol=1e-5)


def test_export_signature_rejects_what_is_not_a_separator():
    with pytest.raises(TorchlassError, match=r"^export_signature\(\): argument 'separator'"):
        export_signature(torch.nn.Linear(2, 2))


def test_save_embeddings_writes_the_encoder_rows(tmp_path):
    encoder = HashedTextEncoder(dim=32)
    path = save_embeddings(encoder, ["a dog barking", "rain on a roof"], tmp_path / "q")
    assert path.name == "q.npy"
    np.testing.assert_array_equal(np.load(path), encoder(["a dog barking",
                                                          "rain on a roof"]).numpy())


@pytest.mark.parametrize("name", [
    "torchlass.stft.dft", "torchlass.export.mode", "torchlass.export.embeddings",
    pytest.param("torchlass.export.program", marks=pytest.mark.slow),
])
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, extraglobs={"torch": torch}, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --- every preset: torch.export and ONNX against eager --------------------------------------

# The presets' own STFT and U-Net layout (6 levels, frames pooled by 32), narrow widths so
# that 30 s of audio runs in a second; the baseline also at its full width, once.
SMALL = {"condition_size": 32, "stem_width": 4, "widths": (4, 4, 8, 8, 8, 8)}
PRESETS = {
    "baseline": ("baseline", SMALL),
    "srpol_system1": ("srpol_system1", SMALL),
    "complex_ratio_mask": ("complex_ratio_mask", SMALL),
    "mixit_two_sources": ("mixit", SMALL),
}
LENGTHS = (16001, 80000, 30 * 16000 + 7)  # odd, 5 s, more than 30 s


def _separator(preset: str, changes: dict) -> Separator:
    config = get_config(preset).model
    for key, value in changes.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    sep = build_separator(config)
    # Non-trivial BatchNorm statistics and FiLM, as trained weights have.
    with torch.no_grad():
        for module in sep.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2.0)
        for name, p in sep.named_parameters():
            if "film" in name:
                p.normal_(0, 0.05)
    return sep.eval()


@pytest.fixture(scope="module", params=sorted(PRESETS))
def exported(request, tmp_path_factory):
    preset, changes = PRESETS[request.param]
    sep = _separator(preset, changes)
    program = export_program(sep)
    return sep, program, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx"


def _inputs(sep: Separator, length: int, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(length)
    size = export_signature(sep).condition_size
    mixture = 0.1 * torch.randn(batch, 1, length, generator=g)
    return mixture, torch.nn.functional.normalize(torch.randn(batch, size, generator=g))


@pytest.mark.slow
def test_exported_program_equals_eager_at_any_length(exported):
    sep, program, _ = exported
    for length, batch in ((16001, 1), (80000, 3)):
        mixture, condition = _inputs(sep, length, batch)
        with torch.no_grad():
            ref = sep(mixture, condition)
            got = program.module()(mixture, condition)
        assert got.shape == ref.shape
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-5)
    assert not sep.stft.exportable  # the program did not change the module


@pytest.mark.slow
def test_onnxruntime_equals_eager_for_every_preset(exported):
    sep, program, path = exported
    export_onnx(sep, path, program=program)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
    runner = OnnxSeparator(path, threads=2)
    assert (runner.num_sources, runner.align) == (sep.num_sources, 160 * 32)
    for length in LENGTHS:
        mixture, condition = _inputs(sep, length)
        with torch.no_grad():
            ref = sep(mixture, condition)
        got = runner(mixture, condition)
        assert got.shape == ref.shape
        assert float((got - ref).abs().max()) < 1e-4
    with pytest.raises(ShapeError, match=r"^OnnxSeparator\(\): argument 'mixture'"):
        runner(*_inputs(sep, runner.min_length - 1))


@pytest.mark.slow
def test_onnxruntime_equals_eager_for_the_full_baseline(tmp_path):
    sep = _separator("baseline", {})
    path = export_onnx(sep, tmp_path / "baseline.onnx")
    runner = OnnxSeparator(path, threads=2)
    for length in (16001, 48000, 30 * 16000 + 7):
        mixture, condition = _inputs(sep, length, batch=1)
        with torch.no_grad():
            ref = sep(mixture, condition)
        assert float((runner(mixture, condition) - ref).abs().max()) < 1e-4


@pytest.mark.slow
def test_cli_export_writes_graph_program_and_embeddings(tmp_path, capsys):
    captions = tmp_path / "queries.txt"
    captions.write_text("a dog barking\n\nrain on a roof\n", encoding="utf-8")
    options = ["model.condition_size=8", "model.n_fft=256", "model.hop_length=64",
               "model.stem_width=4", "model.widths=4", "model.pools=2x2",
               "query.encoder=hashed"]
    argv = ["export", "--config", "srpol_system1", "--output", str(tmp_path / "m.onnx"),
            "--program", str(tmp_path / "m.pt2"), "--captions", str(captions),
            "--embeddings", str(tmp_path / "q.npy")]
    assert main([*argv, *(a for o in options for a in ("--set", o))]) == 0
    assert np.load(tmp_path / "q.npy").shape == (2, 8)
    program = torch.export.load(tmp_path / "m.pt2")
    runner = OnnxSeparator(tmp_path / "m.onnx")
    mixture, condition = torch.randn(2, 1, 4001), torch.randn(2, 8)
    torch.testing.assert_close(runner(mixture, condition),
                               program.module()(mixture, condition), rtol=0, atol=1e-4)
    assert main(["export", "--config", "baseline"]) == 1
    assert "nothing to write" in capsys.readouterr().err


# --- the deployment guide --------------------------------------------------------------------


@pytest.mark.slow
def test_deployment_guide_runs_and_chunked_onnx_equals_separate(capsys):
    run_page("docs/guides/deployment.md")
    lines = capsys.readouterr().out.splitlines()
    errors = {line.split(":")[0]: float(line.split(":")[1]) for line in lines if ":" in line}
    assert set(errors) == {"one call", "chunked"}
    assert all(e < 1e-4 for e in errors.values())
