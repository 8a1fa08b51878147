"""Block-wise pieces of whole-file operations, so memory is bounded by a block, not a file.

[`BlockResampler`][torchlass.inference.BlockResampler] returns any stretch ``[m0, m1)`` of
``scipy.signal.resample_poly(x, up, down)`` computed from a short stretch of ``x``: the
polyphase filter reaches only ``10 * max(up, down) / up`` input samples each side, and a
stretch that starts on a multiple of ``down`` input samples lands on the whole signal's
output grid. Joined stretches therefore equal the whole-file result: there is no seam.
[`ForwardReader`][torchlass.inference.ForwardReader] serves stretches of a sound file (or of any
growing signal) in increasing order, zero outside the signal, keeping only what later requests can
still ask for.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["BlockResampler", "ForwardReader"]


class BlockResampler:
    """Stretches of ``resample_poly(x, up, down)`` (zero-padded edges) from stretches of ``x``.

    Args:
        orig_rate: rate of ``x`` in Hz.
        new_rate: rate of the result in Hz.

    Examples:
        >>> import numpy as np
        >>> from scipy.signal import resample_poly
        >>> x = np.random.default_rng(0).standard_normal(1000)
        >>> r = BlockResampler(44100, 16000)
        >>> n0, n1 = r.input_span(100, 200)
        >>> part = r(x[max(n0, 0):n1], n0, 100, 200)  # here n0 >= 0
        >>> bool(np.allclose(part, resample_poly(x, 160, 441)[100:200]))
        True
    """

    def __init__(self, orig_rate: int, new_rate: int) -> None:
        from scipy.signal import firwin

        g = math.gcd(orig_rate, new_rate)
        self.up, self.down = new_rate // g, orig_rate // g
        max_rate = max(self.up, self.down)
        half_len = 10 * max_rate  # resample_poly's default filter, designed once
        self.filter = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0))
        self.context = -(-half_len // self.up) + 1  # input samples the filter reaches

    def output_length(self, length: int) -> int:
        """Samples ``resample_poly`` returns for ``length`` input samples."""
        return -(-length * self.up // self.down)

    def input_span(self, m0: int, m1: int) -> tuple[int, int]:
        """Input samples ``[n0, n1)`` (may reach outside the signal) that output ``[m0, m1)`` needs.

        ``n0`` is a multiple of ``down``, so the stretch's output grid is the whole signal's.
        """
        n0 = (m0 * self.down // self.up - self.context) // self.down * self.down
        return n0, -(-m1 * self.down // self.up) + self.context

    def last_output(self, available: int) -> int:
        """End of the longest output stretch computable from input samples ``[.., available)``."""
        return max(0, (available - self.context) * self.up // self.down)

    def __call__(self, x: np.ndarray, n0: int, m0: int, m1: int) -> np.ndarray:
        """Output ``[m0, m1)`` from ``x`` = input ``[n0, n0 + x.shape[-1])`` (a span's start).

        Shape:
            ``(..., n)`` -> ``(..., m1 - m0)``, float64.
        """
        from scipy.signal import resample_poly

        y = resample_poly(np.asarray(x, dtype=np.float64), self.up, self.down, axis=-1,
                          window=self.filter)
        offset = n0 * self.up // self.down
        return y[..., m0 - offset:m1 - offset]


class ForwardReader:
    """Stretches ``[n0, n1)`` of a multichannel signal taken in order, zero outside it.

    The signal comes from ``read`` (pulled on demand) or from
    [`feed`][torchlass.inference.stream.ForwardReader.feed] (pushed). Requests must not start before
    the start of an earlier one: what lies before is dropped, so memory holds one request and what
    was read or fed ahead of it.

    Args:
        channels: channels of the signal.
        length: frames in the signal.
        read: ``read(n)`` returns the next ``n`` frames as ``(frames, channels)``, e.g.
            ``soundfile.SoundFile.read`` with ``always_2d=True``; None: use
            [`feed`][torchlass.inference.stream.ForwardReader.feed].
    """

    def __init__(self, channels: int, length: int,
                 read: Callable[[int], np.ndarray] | None = None) -> None:
        self._read = read
        self.length = length
        self._buffer = np.zeros((channels, 0), dtype=np.float32)
        self._start = 0  # signal position of self._buffer[:, 0]

    @property
    def end(self) -> int:
        """Frames read or fed so far."""
        return self._start + self._buffer.shape[1]

    def feed(self, block: np.ndarray) -> None:
        """Append the next frames, ``(channels, frames)``."""
        self._buffer = np.concatenate([self._buffer, np.asarray(block, np.float32)], axis=1)

    def get(self, n0: int, n1: int) -> np.ndarray:
        """Frames ``[n0, n1)`` as ``(channels, n1 - n0)`` float32, zeros outside the signal.

        Raises:
            ValueError: if ``n0`` is before an earlier request's start.
            EOFError: if the signal ends before its announced ``length``.
        """
        lo, hi = min(max(n0, 0), self.length), min(max(n1, 0), self.length)
        if lo < self._start:
            raise ValueError(f"ForwardReader.get(): frame {lo} was already dropped "
                             f"(requests must not go back before {self._start})")
        if hi > self.end and self._read is not None:
            self.feed(np.asarray(self._read(hi - self.end)).T)
        if hi > self.end:
            raise EOFError(f"the signal ended after {self.end} of {self.length} frames")
        self._buffer = self._buffer[:, lo - self._start:]
        self._start = lo
        out = np.zeros((self._buffer.shape[0], n1 - n0), dtype=np.float32)
        out[:, lo - n0:hi - n0] = self._buffer[:, :hi - lo]
        return out
