"""The public functions hand their work to the fused kernels, and only when they should.

On a GPU :func:`torchlass.kernels.is_available` decides; here it is patched (through the
module attribute every call site reads) to say yes or no for any tensor, and the kernels
run under Triton's interpreter on the CPU (see ``kernel_interpreter``). Every call site is
checked both ways: with dispatch on, the public function reaches its fused kernel (a spy
counts the calls) and returns the values and gradients of its eager path. The other
direction: CPU tensors, ``TORCHLASS_KERNELS=0`` and a window that needs a gradient keep the
eager path, and under ``torch.compile`` the check traces into one graph with the eager code.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable

import pytest
import torch
from helpers import randn
from kernel_interpreter import DEVICE, import_kernels

kernels = import_kernels()

from torchlass.losses import mixit_loss  # noqa: E402
from torchlass.masks import (  # noqa: E402
    ComplexRatioMaskHead,
    MagPhaseMaskHead,
    RealImagMaskHead,
    apply_complex_ratio_mask,
    apply_mag_phase_mask,
    apply_real_imag_mask,
)
from torchlass.metrics import si_sdr, si_sdri, snr  # noqa: E402
from torchlass.stft import ISTFT, istft, magnitude_phase  # noqa: E402

FUSED = ("fused_apply_complex_ratio_mask", "fused_apply_mag_phase_mask",
         "fused_apply_real_imag_mask", "fused_istft", "fused_magnitude_phase",
         "fused_mixture_gram", "fused_si_sdr", "fused_snr")
N_FFT, HOP = 16, 4  # 9 bins; 9 frames cover 48 samples, 32 of them output when centred

Case = tuple[Callable[..., object], list[torch.Tensor]]


def _randn(*shape: int, dtype: torch.dtype = torch.float32, grad: bool = True
           ) -> torch.Tensor:
    return randn(*shape, dtype=dtype, device=DEVICE).requires_grad_(grad)


def _spec(*shape: int) -> torch.Tensor:
    return _randn(*shape, dtype=torch.complex64)


def _mask(fn: Callable[..., torch.Tensor], planes: int) -> Case:
    # spec broadcast against 3 sources, as a separator applies it
    return fn, [_spec(2, 1, 1, 9, 5), *(_randn(2, 3, 1, 9, 5) for _ in range(planes))]


def _head(head_type: type[torch.nn.Module]) -> Case:
    head = head_type(num_sources=2)
    return head, [_randn(2, 2 * head.planes, 9, 5), _spec(2, 1, 9, 5)]


def _istft(center: bool, length: int | None, window: str) -> Case:
    w = torch.hann_window(N_FFT, device=DEVICE) if window == "hann" else \
        torch.hamming_window(N_FFT, device=DEVICE)

    def fn(spec: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
        return istft(spec, n_fft=N_FFT, hop_length=HOP, window=window, center=center,
                     length=length)

    return fn, [_spec(2, 9, 9), w]


def _signals(fn: Callable[..., object], count: int = 2) -> Case:
    target = _randn(2, 3, 50, grad=False)
    inputs = [(target + 0.3 * torch.randn_like(target)).requires_grad_(True), target]
    if count == 3:
        inputs.append(target + torch.randn_like(target))
    return fn, inputs


def _mixit() -> Case:
    sources = _randn(2, 4, 60, grad=False)
    mixtures = torch.stack([sources[:, 0::2].sum(1), sources[:, 1::2].sum(1)], dim=1)
    estimates = (sources + 0.2 * torch.randn_like(sources)).requires_grad_(True)
    return (lambda e, x: mixit_loss(e, x, return_assignment=True)), [estimates, mixtures]


# name -> (fused function it must reach, number of calls, inputs)
CASES: dict[str, tuple[str, int, Callable[[], Case]]] = {
    "apply_mag_phase_mask": ("fused_apply_mag_phase_mask", 1,
                             lambda: _mask(apply_mag_phase_mask, 3)),
    "apply_real_imag_mask": ("fused_apply_real_imag_mask", 1,
                             lambda: _mask(apply_real_imag_mask, 2)),
    "apply_complex_ratio_mask": ("fused_apply_complex_ratio_mask", 1,
                                 lambda: _mask(apply_complex_ratio_mask, 2)),
    "MagPhaseMaskHead": ("fused_apply_mag_phase_mask", 1, lambda: _head(MagPhaseMaskHead)),
    "RealImagMaskHead": ("fused_apply_real_imag_mask", 1, lambda: _head(RealImagMaskHead)),
    "ComplexRatioMaskHead": ("fused_apply_complex_ratio_mask", 1,
                             lambda: _head(ComplexRatioMaskHead)),
    "magnitude_phase": ("fused_magnitude_phase", 1,
                        lambda: (magnitude_phase, [_spec(2, 1, 9, 5)])),
    "istft": ("fused_istft", 1, lambda: _istft(True, None, "hann")),
    "istft-shorter": ("fused_istft", 1, lambda: _istft(True, 21, "hann")),
    "istft-zero-padded": ("fused_istft", 1, lambda: _istft(True, 45, "hann")),
    "istft-not-centred": ("fused_istft", 1, lambda: _istft(False, None, "hamming")),
    "ISTFT": ("fused_istft", 1, lambda: (
        lambda spec, w: ISTFT(N_FFT, HOP, window=w)(spec, length=30),
        [_spec(3, 9, 9), torch.hann_window(N_FFT, device=DEVICE)])),
    "si_sdr": ("fused_si_sdr", 1, lambda: _signals(si_sdr)),
    "si_sdr-zero-mean": ("fused_si_sdr", 1,
                         lambda: _signals(lambda x, s: si_sdr(x, s, zero_mean=True))),
    "si_sdri": ("fused_si_sdr", 2, lambda: _signals(si_sdri, 3)),
    "snr": ("fused_snr", 1, lambda: _signals(snr)),
    "snr-zero-mean": ("fused_snr", 1, lambda: _signals(lambda x, s: snr(x, s, zero_mean=True))),
    "mixit_loss": ("fused_mixture_gram", 1, _mixit),
}


@pytest.fixture
def calls(monkeypatch) -> Counter:
    """Count the calls of every fused function (each still runs)."""
    counter: Counter = Counter()

    def spy(name: str) -> Callable[..., object]:
        fused = getattr(kernels, name)

        def counted(*args, **kwargs):
            counter[name] += 1
            return fused(*args, **kwargs)

        return counted

    for name in FUSED:
        monkeypatch.setattr(kernels, name, spy(name))
    return counter


def _dispatch(monkeypatch, on: bool) -> None:
    monkeypatch.setattr(kernels, "is_available",
                        lambda *ts: on and bool(ts) and all(isinstance(t, torch.Tensor)
                                                            for t in ts))


def _outputs(out: object) -> list[torch.Tensor]:
    """Every tensor a public function returned, in order."""
    return [out] if isinstance(out, torch.Tensor) else list(out)  # type: ignore[call-overload]


def _run(fn: Callable[..., object], inputs: list[torch.Tensor]
         ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Outputs of ``fn`` on fresh copies of ``inputs`` and the gradients of a fixed projection."""
    leaves = [t.detach().clone().requires_grad_(t.requires_grad) for t in inputs]
    outs = _outputs(fn(*leaves))
    g = torch.Generator(device=DEVICE).manual_seed(1)
    projection = sum(
        (torch.view_as_real(o) if o.is_complex() else o).mul(torch.randn(
            (torch.view_as_real(o) if o.is_complex() else o).shape, generator=g,
            device=DEVICE, dtype=torch.float32)).sum()
        for o in outs if o.requires_grad
    )
    wrt = [t for t in leaves if t.requires_grad]
    grads = list(torch.autograd.grad(projection, wrt)) if wrt else []
    return [o.detach() for o in outs], grads


@pytest.mark.parametrize("case", list(CASES))
def test_public_function_reaches_its_kernel_with_the_eager_result(case, monkeypatch, calls,
                                                                  tol):
    fused, expected_calls, make = CASES[case]
    fn, inputs = make()
    _dispatch(monkeypatch, on=False)
    eager_out, eager_grads = _run(fn, inputs)
    assert not calls
    _dispatch(monkeypatch, on=True)
    fused_out, fused_grads = _run(fn, inputs)
    assert calls == {fused: expected_calls}
    assert eager_grads, "every case checks a gradient"
    for got, want in zip(fused_out + fused_grads, eager_out + eager_grads, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        if got.is_floating_point() or got.is_complex():
            torch.testing.assert_close(got, want, **tol(torch.float32))
        else:
            assert torch.equal(got, want)


def test_istft_keeps_the_eager_path_for_a_window_that_needs_a_gradient(monkeypatch, calls):
    spec = _spec(2, 9, 9)
    window = torch.hann_window(N_FFT, device=DEVICE).requires_grad_(True)
    _dispatch(monkeypatch, on=True)
    y = istft(spec, n_fft=N_FFT, hop_length=HOP, window=window)
    (grad,) = torch.autograd.grad(y.square().sum(), window)
    assert not calls
    assert torch.isfinite(grad).all()


class _FakeCuda(torch.Tensor):
    """A CPU tensor that claims to live on a GPU, to exercise the real ``is_available``."""

    @property
    def is_cuda(self) -> bool:  # type: ignore[override]
        return True


class _Dispatched(Exception):
    pass


@pytest.fixture
def stubs(monkeypatch) -> None:
    """Replace every fused function by one that raises ``_Dispatched``."""
    for name in FUSED:
        def stub(*args, _name=name, **kwargs):
            raise _Dispatched(_name)

        monkeypatch.setattr(kernels, name, stub)


@pytest.mark.parametrize("case", list(CASES))
def test_cpu_tensors_and_the_switch_keep_the_eager_path(case, monkeypatch, stubs):
    fused, _, make = CASES[case]
    fn, inputs = make()
    monkeypatch.delenv(kernels.ENV_SWITCH, raising=False)
    fn(*[t.detach().cpu() for t in inputs])  # CPU tensors: never the kernels
    fake = [t.detach().cpu().as_subclass(_FakeCuda) for t in inputs]
    with pytest.raises(_Dispatched, match=fused):  # the real predicate says yes ...
        fn(*fake)
    monkeypatch.setenv(kernels.ENV_SWITCH, "0")
    fn(*fake)  # ... unless switched off


# without the finiteness check, which reads a value (a graph break of its own)
UNCHECKED = {"si_sdr": functools.partial(si_sdr, check_finite=False),
             "snr": functools.partial(snr, check_finite=False)}


@pytest.mark.parametrize("case", ["apply_mag_phase_mask", "apply_real_imag_mask",
                                  "apply_complex_ratio_mask", "magnitude_phase", *UNCHECKED])
def test_public_functions_trace_to_one_graph(case, monkeypatch):
    """The dispatch check costs no graph break (inside a trace it says no: eager code)."""
    fn, inputs = CASES[case][2]()
    fn = UNCHECKED.get(case, fn)
    inputs = [t.detach() for t in inputs]
    monkeypatch.delenv(kernels.ENV_SWITCH, raising=False)
    compiled = torch.compile(fn, fullgraph=True, backend="eager")
    for got, want in zip(_outputs(compiled(*inputs)), _outputs(fn(*inputs)), strict=True):
        torch.testing.assert_close(got, want)
