"""Helpers shared by the test files: float64 numpy views, seeded test data, batch checks.

Tests compare torchlass with references written in float64 numpy, so :func:`np64` is the
one way to hand a tensor to numpy. :func:`randn`, :func:`random_spec` and :func:`pair`
make seeded data for example-based tests (hypothesis tests draw theirs from
``strategies``). :func:`assert_batch_equals_items` is the batch-consistency property:
a batched call equals the same call on each item. :func:`np_challenge_mix` is the
challenge evaluator's mixing in float64 numpy; :func:`write_noise_wav` writes test audio.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch


def np64(x: torch.Tensor) -> np.ndarray:
    """``x`` as a float64 (or complex128) numpy array, detached and on the CPU."""
    x = x.detach().cpu()
    return (x.to(torch.complex128) if x.is_complex() else x.double()).numpy()


def randn(*shape: int, dtype: torch.dtype = torch.float64, seed: int | None = None,
          scale: float = 1.0, device: str | torch.device = "cpu") -> torch.Tensor:
    """Standard normal values times ``scale``; from ``seed`` if given, else the global RNG.

    Complex dtypes get independent real and imaginary parts of variance 1/2 each.
    """
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return scale * torch.randn(*shape, dtype=dtype, generator=generator).to(device)


def random_spec(*shape: int, dtype: torch.dtype = torch.complex128, seed: int = 0,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """A complex spectrum with unit-variance real and imaginary parts, from ``seed``."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    parts = randn(2, *shape, dtype=real, seed=seed)
    return torch.complex(parts[0], parts[1]).to(device=device, dtype=dtype)


def pair(shape: tuple[int, ...], seed: int = 0, noise: float = 0.5,
         dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``(estimate, target)``: a normal target and the target plus ``noise`` times normal.

    Drawn in float64 then cast, so every dtype sees the same values.
    """
    g = torch.Generator().manual_seed(seed)
    target = torch.randn(shape, generator=g, dtype=torch.float64)
    estimate = target + noise * torch.randn(shape, generator=g, dtype=torch.float64)
    return estimate.to(dtype), target.to(dtype)


def assert_batch_equals_items(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor,
                              rtol: float | None = None, atol: float | None = None) -> None:
    """``fn(*inputs)[i] == fn(*(x[i] for x in inputs))`` for every item ``i`` of dim 0."""
    full = fn(*inputs)
    for i in range(inputs[0].shape[0]):
        torch.testing.assert_close(full[i], fn(*(x[i] for x in inputs)), rtol=rtol, atol=atol)


def np_challenge_mix(source: np.ndarray, noise: np.ndarray, snr_db: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """``(mixture, source)`` as the challenge's evaluator mixes one row, in float64.

    The noise is scaled to ``snr_db`` below the source's power and added; when the
    mixture's peak exceeds 1, mixture and source are scaled by ``0.9 / peak``
    (docs/baseline.md#evaluation).
    """
    noise = noise * np.sqrt(np.mean(source**2) / 10 ** (snr_db / 10) / np.mean(noise**2))
    mixture = source + noise
    peak = np.max(np.abs(mixture))
    if peak > 1:
        source, mixture = 0.9 * source / peak, 0.9 * mixture / peak
    return mixture, source


def write_noise_wav(path: str | Path, seconds: float = 1.0, rate: int = 16000,
                    channels: int = 1, seed: int = 0, level: float = 0.1) -> np.ndarray:
    """Write ``level`` times normal noise as a float WAV; returns the ``(time, channels)`` data."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    data = (level * rng.standard_normal((round(seconds * rate), channels))).astype(np.float32)
    sf.write(path, data, rate, subtype="FLOAT")
    return data


def run_two_gloo_processes(worker: str, tmp_path) -> None:
    """Run the Python source ``worker`` as two DDP processes (gloo, one thread each) with
    ``torch.distributed.run``; fail the test with the end of its stderr if it fails."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = tmp_path / "worker.py"
    script.write_text(worker)
    env = {k: v for k, v in os.environ.items()
           if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(script)], capture_output=True, text=True, timeout=240, env=env, cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
