"""Every bad-input path of torchlass.stft, with the message asserted."""

from __future__ import annotations

import pytest
import torch

from torchlass.errors import DTypeError, NonFiniteError, ShapeError, TorchlassError, ValueRangeError
from torchlass.stft import (
    ISTFT,
    STFT,
    from_asteroid,
    from_real_imag_channels,
    istft,
    magnitude_phase,
    make_window,
    real_imag_channels,
    stft,
    to_asteroid,
)

X = torch.randn(2, 400)
SPEC = stft(X, n_fft=64, hop_length=16)  # (2, 33, 26)
OPTS = {"n_fft": 64, "hop_length": 16}


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_fft": 64, "hop_length": 65}, ValueRangeError,
     r"stft\(\): argument 'hop_length' expected a value <= n_fft = 64 .*got 65"),
    ({"n_fft": 64, "hop_length": 16, "win_length": 65}, ValueRangeError,
     r"stft\(\): argument 'win_length' expected a value <= n_fft = 64, got 65"),
    ({"n_fft": 0, "hop_length": 1}, ValueRangeError,
     r"stft\(\): argument 'n_fft' expected an int >= 1, got 0"),
    ({"n_fft": 64.0, "hop_length": 16}, DTypeError,
     r"stft\(\): argument 'n_fft' expected an int, got float"),
    ({"n_fft": 64, "hop_length": True}, DTypeError,
     r"stft\(\): argument 'hop_length' expected an int, got bool"),
    ({"n_fft": 64, "hop_length": 16, "window": "kaiser"}, ValueRangeError,
     r"stft\(\): argument 'window' expected one of 'hann', 'hamming', 'blackman', "
     r"'rectangular', got 'kaiser'"),
    ({"n_fft": 64, "hop_length": 16, "window": torch.ones(63)}, ShapeError,
     r"stft\(\): argument 'window' expected a 1-d tensor of win_length = 64 samples, "
     r"got shape \(63,\)"),
    ({"n_fft": 64, "hop_length": 16, "window": torch.ones(1, 64)}, ShapeError,
     r"got shape \(1, 64\)"),
    ({"n_fft": 64, "hop_length": 16, "window": [1.0] * 64}, DTypeError,
     r"stft\(\): argument 'window' expected a window name or a torch.Tensor, got list"),
    ({"n_fft": 64, "hop_length": 16, "window": torch.ones(64, dtype=torch.int64)}, DTypeError,
     r"stft\(\): argument 'window' expected a floating-point tensor, got dtype torch.int64"),
    ({"n_fft": 64, "hop_length": 16, "pad_mode": "zeros"}, ValueRangeError,
     r"stft\(\): argument 'pad_mode' expected one of 'reflect', 'constant', 'replicate', "
     r"'circular', got 'zeros'"),
])
def test_stft_option_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        stft(X, **kwargs)


@pytest.mark.parametrize(("x", "error", "match"), [
    (torch.ones(2, 400, dtype=torch.int16), DTypeError,
     r"stft\(\): argument 'x' expected a floating-point tensor, got dtype torch.int16"),
    (torch.ones(400, dtype=torch.bool), DTypeError, r"got dtype torch.bool"),
    (torch.ones(400, dtype=torch.complex64), DTypeError,
     r"stft\(\): argument 'x' expected a real floating-point tensor, got dtype torch.complex64"),
    (torch.tensor(1.0), ShapeError,
     r"stft\(\): argument 'x' expected at least 1 dimension\(s\) \(\.\.\., time\), got shape \(\)"),
    ([0.0] * 400, DTypeError, r"stft\(\): argument 'x' expected a torch.Tensor, got list"),
    (torch.ones(0), ShapeError,
     r"stft\(\): argument 'x' expected at least 33 samples along dim -1 \(reflect padding of "
     r"n_fft // 2 = 32 samples needs more samples\), got 0"),
])
def test_stft_input_errors(x, error, match):
    with pytest.raises(error, match=match):
        stft(x, **OPTS)


@pytest.mark.parametrize(("length", "center", "pad_mode", "match"), [
    (32, True, "reflect", r"expected at least 33 samples .*reflect padding .*got 32 \(shape"),
    (31, True, "circular", r"expected at least 32 samples .*circular padding .*got 31"),
    (0, True, "constant", r"expected at least 1 samples .*must not be empty\), got 0"),
    (0, True, "replicate", r"expected at least 1 samples .*got 0"),
    (63, False, "reflect", r"expected at least 64 samples .*center=False needs one full frame "
                           r"of n_fft = 64 samples\), got 63"),
])
def test_stft_too_short(length, center, pad_mode, match):
    with pytest.raises(ShapeError, match=r"stft\(\): argument 'x' " + match):
        stft(torch.ones(3, length), center=center, pad_mode=pad_mode, **OPTS)
    # one sample more is accepted
    stft(torch.ones(3, length + 1), center=center, pad_mode=pad_mode, **OPTS)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite(bad):
    x = X.clone()
    x[1, 7] = bad
    with pytest.raises(NonFiniteError, match=r"stft\(\): argument 'x' expected finite values, "
                                             r"got 1 NaN/Inf element\(s\) in a tensor of shape "
                                             r"\(2, 400\)"):
        stft(x, **OPTS)
    assert not torch.isfinite(stft(x, check_finite=False, **OPTS)).all()
    spec = SPEC.clone()
    spec[0, 3, 4] = complex(bad, 0.0)
    with pytest.raises(NonFiniteError, match=r"istft\(\): argument 'spec' expected finite"):
        istft(spec, **OPTS)
    with pytest.raises(NonFiniteError, match=r"stft\(\): argument 'x'"):
        STFT(64, 16)(x)
    with pytest.raises(NonFiniteError, match=r"istft\(\): argument 'spec'"):
        ISTFT(64, 16)(spec)
    istft(spec, check_finite=False, **OPTS)  # the check can be switched off


@pytest.mark.parametrize(("spec", "kwargs", "error", "match"), [
    (X, OPTS, DTypeError,
     r"istft\(\): argument 'spec' expected a complex tensor, got dtype torch.float32"),
    (SPEC[0, 0], OPTS, ShapeError,
     r"istft\(\): argument 'spec' expected at least 2 dimension\(s\) \(\.\.\., freq, frames\), "
     r"got shape \(26,\)"),
    (SPEC, {"n_fft": 62, "hop_length": 16}, ShapeError,
     r"istft\(\): argument 'spec' expected n_fft // 2 \+ 1 = 32 frequency bins along dim -2, "
     r"got 33 \(shape \(2, 33, 26\)\)"),
    (SPEC[..., :0], OPTS, ShapeError,
     r"istft\(\): argument 'spec' expected at least 1 samples along dim -1 \(at least one "
     r"frame\), got 0"),
    (SPEC, {"n_fft": 64, "hop_length": 80}, ValueRangeError,
     r"istft\(\): argument 'hop_length' expected a value <= n_fft = 64"),
    (SPEC, {**OPTS, "length": 0}, ValueRangeError,
     r"istft\(\): argument 'length' expected an int >= 1, got 0"),
    (SPEC, {**OPTS, "length": 10.5}, DTypeError,
     r"istft\(\): argument 'length' expected an int, got float"),
    (SPEC, {**OPTS, "window": torch.ones(32)}, ShapeError,
     r"istft\(\): argument 'window' expected a 1-d tensor of win_length = 64 samples"),
])
def test_istft_errors(spec, kwargs, error, match):
    with pytest.raises(error, match=match):
        istft(spec, **kwargs)


@pytest.mark.parametrize(("kwargs", "detail"), [
    # periodic Hann is 0 at its first sample: without centring the first output sample
    # is covered by that zero only.
    ({"n_fft": 64, "hop_length": 16, "center": False}, r"hop_length = 16, win_length = 64, "
                                                       r"center = False, minimum envelope 0"),
    # a 24-sample window hopped by 40: gaps between frames.
    ({"n_fft": 64, "hop_length": 40, "win_length": 24}, r"hop_length = 40, win_length = 24"),
    # a window with an interior zero at every multiple of the hop.
    ({"n_fft": 8, "hop_length": 4, "window": torch.tensor([1.0, 1, 1, 0, 1, 1, 1, 0])},
     r"hop_length = 4, win_length = 8"),
])
def test_istft_rejects_nola_violations(kwargs, detail):
    x = torch.randn(2, 300)
    window = kwargs.get("window", "hann")
    spec = stft(x, **{**kwargs, "window": window})
    with pytest.raises(ValueRangeError, match=r"istft\(\): arguments 'window' and 'hop_length' "
                                              r"expected a pair .*NOLA condition\), got "
                                              + detail):
        istft(spec, **kwargs)
    with pytest.raises(ValueRangeError, match="NOLA"):
        ISTFT(**{k: v for k, v in kwargs.items() if k != "window"}, window=window)(spec)


def test_nola_checks_only_the_requested_output():
    # With a length inside the covered region the zero-envelope tail is never used.
    x = torch.randn(200)
    spec = stft(x, n_fft=32, hop_length=8, win_length=20, window="blackman")  # 26 frames
    y = istft(spec, n_fft=32, hop_length=8, win_length=20, window="blackman", length=200)
    torch.testing.assert_close(y, x, atol=1e-5, rtol=0)
    with pytest.raises(ValueRangeError, match="NOLA"):  # the tail past the last window's zeros
        istft(spec, n_fft=32, hop_length=8, win_length=20, window="blackman", length=215)


def test_module_constructor_errors():
    with pytest.raises(ValueRangeError, match=r"STFT\(\): argument 'hop_length' expected a value"):
        STFT(64, 128)
    with pytest.raises(ValueRangeError, match=r"ISTFT\(\): argument 'window' expected one of"):
        ISTFT(64, 16, window="triangle")
    with pytest.raises(ShapeError, match=r"STFT\(\): argument 'window' expected a 1-d tensor "
                                         r"of win_length = 32 samples, got shape \(64,\)"):
        STFT(64, 16, win_length=32, window=torch.ones(64))
    with pytest.raises(ValueRangeError, match=r"STFT\(\): argument 'pad_mode'"):
        STFT(64, 16, pad_mode="symmetric")


def test_make_window_errors():
    with pytest.raises(ValueRangeError, match=r"make_window\(\): argument 'name' expected one of"):
        make_window("gauss", 8)
    with pytest.raises(ValueRangeError, match=r"make_window\(\): argument 'win_length' expected "
                                              r"an int >= 1, got 0"):
        make_window("hann", 0)


def test_feature_errors():
    with pytest.raises(DTypeError, match=r"magnitude_phase\(\): argument 'spec' expected a "
                                         r"complex tensor, got dtype torch.float32"):
        magnitude_phase(X)
    for eps in (0.0, -1e-10, "1e-10", True):
        with pytest.raises(ValueRangeError, match=r"magnitude_phase\(\): argument 'eps' expected "
                                                  r"a positive float, got"):
            magnitude_phase(SPEC, eps=eps)
    with pytest.raises(DTypeError, match=r"real_imag_channels\(\): argument 'spec' expected a "
                                         r"complex tensor"):
        real_imag_channels(X[None])
    with pytest.raises(ShapeError, match=r"real_imag_channels\(\): argument 'spec' expected at "
                                         r"least 3 dimension\(s\) \(\.\.\., channels, freq, "
                                         r"frames\), got shape \(33, 26\)"):
        real_imag_channels(SPEC[0])
    with pytest.raises(ShapeError, match=r"from_real_imag_channels\(\): argument 'x' expected an "
                                         r"even number of channels along dim -3 .*got 3 "
                                         r"\(shape \(1, 3, 4, 5\)\)"):
        from_real_imag_channels(torch.ones(1, 3, 4, 5))
    with pytest.raises(DTypeError, match=r"from_real_imag_channels\(\): argument 'x' expected a "
                                         r"real floating-point tensor, got dtype torch.complex64"):
        from_real_imag_channels(SPEC[None])
    with pytest.raises(ShapeError, match=r"from_real_imag_channels\(\): argument 'x' expected at "
                                         r"least 3 dimension"):
        from_real_imag_channels(torch.ones(4, 5))


def test_asteroid_adapter_errors():
    with pytest.raises(DTypeError, match=r"to_asteroid\(\): argument 'spec' expected a complex "
                                         r"tensor, got dtype torch.float32"):
        to_asteroid(X)
    with pytest.raises(ShapeError, match=r"to_asteroid\(\): argument 'spec' expected at least 2 "
                                         r"dimension\(s\) \(\.\.\., freq, frames\)"):
        to_asteroid(SPEC[0, 0])
    with pytest.raises(ShapeError, match=r"from_asteroid\(\): argument 'x' expected an even size "
                                         r"along dim -2 .*got 33 \(shape \(2, 33, 26\)\)"):
        from_asteroid(SPEC.real)
    with pytest.raises(DTypeError, match=r"from_asteroid\(\): argument 'x' expected a "
                                         r"floating-point tensor, got dtype torch.int64"):
        from_asteroid(torch.ones(2, 4, 3, dtype=torch.int64))


def test_errors_are_torchlass_and_builtin_types():
    with pytest.raises(TorchlassError):
        stft(torch.ones(3, dtype=torch.int32), **OPTS)
    with pytest.raises(TypeError):
        stft(torch.ones(3, dtype=torch.int32), **OPTS)
    with pytest.raises(ValueError):
        stft(X, n_fft=16, hop_length=17)
