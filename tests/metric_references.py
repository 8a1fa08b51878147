"""Independent float64 numpy references for the metric and loss tests.

Each function is written from the formula in the issue / the challenge evaluator, one
signal at a time, with plain loops where that is clearer; nothing here imports
torchlass.
"""

from __future__ import annotations

import itertools

import numpy as np

F32_EPS = float(np.finfo(np.float32).eps)


def challenge_sdr(est: np.ndarray, ref: np.ndarray) -> float:
    """The DCASE 2024 evaluator's SDR on one clip."""
    num = max(np.mean(ref**2), 1e-10)
    den = max(np.mean((est - ref) ** 2), 1e-10)
    return float(10 * np.log10(num / den))


def snr(est: np.ndarray, ref: np.ndarray, eps: float, zero_mean: bool = False) -> float:
    if zero_mean:
        est, ref = est - est.mean(), ref - ref.mean()
    return float(10 * np.log10((np.sum(ref**2) + eps) / (np.sum((ref - est) ** 2) + eps)))


def si_sdr(est: np.ndarray, ref: np.ndarray, eps: float, zero_mean: bool = False) -> float:
    if zero_mean:
        est, ref = est - est.mean(), ref - ref.mean()
    alpha = (eps + np.dot(est, ref)) / (np.dot(ref, ref) + eps)
    proj = alpha * ref
    return float(10 * np.log10((eps + np.sum(proj**2)) / (eps + np.sum((est - proj) ** 2))))


def snr_loss(est: np.ndarray, ref: np.ndarray, eps: float, tau: float = 0.0,
             zero_mean: bool = False) -> float:
    if zero_mean:
        est, ref = est - est.mean(), ref - ref.mean()
    power = np.sum(ref**2)
    return float(10 * np.log10(np.sum((ref - est) ** 2) + tau * power + eps)
                 - 10 * np.log10(power + eps))


def si_sdr_loss(est: np.ndarray, ref: np.ndarray, eps: float, tau: float = 0.0,
                zero_mean: bool = True) -> float:
    if zero_mean:
        est, ref = est - est.mean(), ref - ref.mean()
    alpha = (eps + np.dot(est, ref)) / (np.dot(ref, ref) + eps)
    proj = alpha * ref
    power = np.sum(proj**2)
    return float(10 * np.log10(np.sum((proj - est) ** 2) + tau * power + eps)
                 - 10 * np.log10(power + eps))


def rows(fn, *arrays: np.ndarray, **kwargs) -> np.ndarray:
    """Apply a one-signal reference to every signal of ``(..., time)`` arrays."""
    lead = arrays[0].shape[:-1]
    flat = [a.reshape(-1, a.shape[-1]) for a in arrays]
    out = [fn(*(f[i] for f in flat), **kwargs) for i in range(flat[0].shape[0])]
    return np.array(out, dtype=np.float64).reshape(lead)


def mixit_brute_force(estimates: np.ndarray, mixtures: np.ndarray, eps: float,
                      tau: float, pair_loss=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-example best loss and first best assignment over itertools.product order."""
    batch, num_est, _ = estimates.shape
    num_mix = mixtures.shape[1]
    best_loss = np.empty(batch)
    best_assign = np.empty((batch, num_est), dtype=np.int64)
    for b in range(batch):
        best = None
        for assign in itertools.product(range(num_mix), repeat=num_est):
            total = 0.0
            for n in range(num_mix):
                remix = sum((estimates[b, m] for m in range(num_est) if assign[m] == n),
                            np.zeros_like(mixtures[b, n]))
                if pair_loss is None:
                    total += snr_loss(remix, mixtures[b, n], eps, tau)
                else:
                    total += pair_loss(remix, mixtures[b, n])
            if best is None or total < best:
                best, best_assign[b] = total, assign
        best_loss[b] = best
    return best_loss, best_assign


def pit_brute_force(estimates: np.ndarray, targets: np.ndarray, pair_loss
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Per-example best mean pair loss and first best permutation (perm[j] = estimate)."""
    batch, sources, _ = estimates.shape
    best_loss = np.empty(batch)
    best_perm = np.empty((batch, sources), dtype=np.int64)
    for b in range(batch):
        pair = np.array([[pair_loss(estimates[b, i], targets[b, j]) for j in range(sources)]
                         for i in range(sources)])
        best = None
        for perm in itertools.permutations(range(sources)):
            total = np.mean([pair[perm[j], j] for j in range(sources)])
            if best is None or total < best:
                best, best_perm[b] = total, perm
        best_loss[b] = best
    return best_loss, best_perm
