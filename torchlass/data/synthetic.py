"""A procedurally generated, captioned sound collection that needs no download.

Ten kinds of sound (barking, a siren, bird chirps, an engine, rain, a bell, knocking, a
whistle, clapping and a hummed voice) are synthesised from a few lines of DSP each, with
random pitch, timing and level per clip. Their spectra overlap on purpose (most of them
put energy between 300 Hz and 3.5 kHz, rain and clapping are broadband), so no fixed filter
separates one kind from another: a separator has to use the caption. Each kind has several
caption phrasings. Everything is seeded, so the same seed gives the same clips on every
machine. The collection feeds ``torchlass demo``, the tests and quick experiments; it is
not a benchmark of real-world separation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from torchlass.checks import check_choice, check_positive_int
from torchlass.errors import ValueRangeError

__all__ = ["SYNTHETIC_CAPTIONS", "SyntheticClip", "synthesize", "synthetic_collection"]

#: Caption phrasings per kind of sound; the first word of each key is its class name.
SYNTHETIC_CAPTIONS: dict[str, tuple[str, ...]] = {
    "dog": ("a dog barking", "dog barks several times", "the sound of a barking dog",
            "a small dog yapping"),
    "siren": ("a siren wailing", "an ambulance siren goes past", "police siren sounding",
              "the wail of an emergency siren"),
    "bird": ("birds chirping", "a bird is singing", "chirping of small birds",
             "birdsong with quick chirps"),
    "engine": ("an engine idling", "a motor running at low speed", "the rumble of an engine",
               "a diesel engine humming"),
    "rain": ("rain falling", "heavy rain pouring down", "the patter of rain drops",
             "raindrops hitting the ground"),
    "bell": ("a bell ringing", "church bell chimes", "someone strikes a metal bell",
             "the ringing of a bell"),
    "knock": ("knocking on a door", "someone knocks on wood", "a knock at the door",
              "rapid knocking sounds"),
    "whistle": ("a person whistling", "someone whistles a tune", "a high whistle",
                "whistling melody"),
    "clap": ("people clapping", "applause from a crowd", "hands clapping",
             "an audience applauding"),
    "voice": ("a man humming", "a person humming a melody", "humming voice",
              "someone hums softly"),
}


@dataclass(frozen=True)
class SyntheticClip:
    """One synthesised clip.

    Attributes:
        waveform: float32 tensor of shape ``(1, time)`` (mono), peak below 1.
        kind: the kind of sound, a key of `SYNTHETIC_CAPTIONS`.
        caption: one of the kind's phrasings.
        seed: the seed the clip was generated from.
    """

    waveform: torch.Tensor
    kind: str
    caption: str
    seed: int


def _phase(freq: np.ndarray, sample_rate: int) -> np.ndarray:
    return 2 * np.pi * np.cumsum(freq) / sample_rate


def _harmonics(f0: np.ndarray, sample_rate: int, amps: np.ndarray) -> np.ndarray:
    """Sum of harmonics k*f0 with amplitudes ``amps[k-1]``, faded out towards Nyquist."""
    phase = _phase(f0, sample_rate)
    out = np.zeros_like(f0)
    for k, a in enumerate(amps, start=1):
        # A smooth fade (not a cut) so a gliding partial does not click as it nears Nyquist.
        fade = np.clip((0.45 * sample_rate - k * f0) / (0.05 * sample_rate), 0.0, 1.0)
        out += a * fade * np.sin(k * phase)
    return out


def _band_noise(rng: np.random.Generator, n: int, sample_rate: int, low: float,
                high: float, tilt: float = 0.0) -> np.ndarray:
    """White noise band-limited to [low, high] Hz (smooth edges), spectrum tilted by f^tilt."""
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / sample_rate)
    gain = 1 / (1 + np.exp(-(f - low) / (0.05 * low + 20))) / (
        1 + np.exp((f - high) / (0.05 * high + 20)))
    gain *= np.maximum(f, 50.0) ** tilt
    return np.fft.irfft(spec * gain, n)


def _onsets(rng: np.random.Generator, n: int, sample_rate: int, rate_hz: float,
            min_gap_s: float) -> np.ndarray:
    """Random event onsets (samples): a Poisson process with a minimum gap.

    The first onset falls in the first half of the clip, so no clip is silent.
    """
    duration = n / sample_rate
    times, t = [], rng.uniform(0, min(1 / rate_hz, 0.5 * duration))
    while t < duration:
        times.append(t)
        t += min_gap_s + rng.exponential(1 / rate_hz)
    return (np.asarray(times) * sample_rate).astype(int)


def _place(n: int, onsets: np.ndarray, make: Callable[[], np.ndarray]) -> np.ndarray:
    out = np.zeros(n)
    for start in onsets:
        event = make()
        stop = min(n, start + len(event))
        out[start:stop] += event[: stop - start]
    return out


def _dog(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    def bark() -> np.ndarray:
        m = int(sr * rng.uniform(0.08, 0.18))
        t = np.arange(m) / sr
        f0 = rng.uniform(350, 650) * (1 - 0.35 * t / t[-1])
        amps = np.array([1.0, 0.9, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2])
        env = np.sin(np.pi * np.arange(m) / m) ** 0.5 * np.exp(-6 * t)
        return env * (_harmonics(f0, sr, amps) + 0.3 * rng.standard_normal(m))
    return _place(n, _onsets(rng, n, sr, 2.5, 0.2), bark)


def _siren(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    centre, depth = rng.uniform(800, 1100), rng.uniform(200, 350)
    f0 = centre + depth * np.sin(2 * np.pi * rng.uniform(0.8, 1.6) * t + rng.uniform(0, 6.3))
    return _harmonics(f0, sr, np.array([1.0, 0.5, 0.3]))


def _bird(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    def chirp() -> np.ndarray:
        m = int(sr * rng.uniform(0.04, 0.09))
        u = np.linspace(0, 1, m)
        f = rng.uniform(1800, 2600) + rng.choice([-1, 1]) * rng.uniform(400, 900) * u
        return np.sin(np.pi * u) ** 2 * np.sin(_phase(f, sr))
    return _place(n, _onsets(rng, n, sr, 7.0, 0.06), chirp)


def _engine(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = rng.uniform(55, 110) * (1 + 0.03 * np.sin(2 * np.pi * rng.uniform(0.3, 1) * t))
    amps = 1 / np.arange(1, 40) ** 0.7
    buzz = _harmonics(f0, sr, amps)
    return buzz * (1 + 0.4 * np.sin(2 * np.pi * rng.uniform(8, 15) * t))


def _rain(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    bed = _band_noise(rng, n, sr, 400, 0.45 * sr, tilt=-0.3)
    bed /= np.std(bed) + 1e-12

    def drop() -> np.ndarray:
        m = int(sr * 0.015)
        return rng.uniform(2, 6) * np.exp(-np.arange(m) / (0.002 * sr)) * rng.standard_normal(m)
    return 0.6 * bed + _place(n, _onsets(rng, n, sr, 25.0, 0.005), drop)


def _bell(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    base = rng.uniform(450, 900)

    def strike() -> np.ndarray:
        m = int(sr * 0.8)
        t = np.arange(m) / sr
        ratios, decays = np.array([1.0, 2.76, 5.40, 8.93]), np.array([3.0, 5.0, 9.0, 14.0])
        parts = [np.exp(-d * t) * np.sin(2 * np.pi * base * r * t) / (i + 1)
                 for i, (r, d) in enumerate(zip(ratios, decays, strict=True))
                 if base * r < 0.45 * sr]
        return np.sum(parts, axis=0)
    return _place(n, _onsets(rng, n, sr, 1.5, 0.35), strike)


def _knock(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    freq = rng.uniform(180, 380)

    def knock() -> np.ndarray:
        m = int(sr * 0.06)
        t = np.arange(m) / sr
        body = np.sin(2 * np.pi * freq * t) + 0.5 * np.sin(2 * np.pi * 2.3 * freq * t)
        return np.exp(-t / 0.012) * (body + 0.5 * rng.standard_normal(m))
    return _place(n, _onsets(rng, n, sr, 5.0, 0.1), knock)


def _whistle(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    notes = rng.uniform(1100, 2200, size=8)
    note = notes[np.minimum((t * rng.uniform(3, 6)).astype(int), 7)]
    f0 = note * (1 + 0.01 * np.sin(2 * np.pi * 6 * t))
    gate = 0.5 + 0.5 * np.tanh(4 * np.sin(2 * np.pi * rng.uniform(0.8, 1.5) * t))
    return gate * np.sin(_phase(f0, sr))


def _clap(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    def clap() -> np.ndarray:
        m = int(sr * 0.03)
        return np.exp(-np.arange(m) / (0.004 * sr)) * rng.standard_normal(m)
    claps = _place(n, _onsets(rng, n, sr, 30.0, 0.01), clap)
    spec = np.fft.rfft(claps)
    f = np.fft.rfftfreq(n, 1 / sr)
    return np.fft.irfft(spec * np.exp(-(((f - 1500) / 1200) ** 2)), n)


def _voice(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    f0 = rng.uniform(100, 200) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    k = np.arange(1, 30)
    formant = rng.uniform(300, 700)
    amps = np.exp(-(((k * f0.mean() - formant) / 400) ** 2)) + 0.05
    syllables = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(2, 4) * t + rng.uniform(0, 6.3))
    return syllables * _harmonics(f0, sr, amps)


_GENERATORS: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "dog": _dog, "siren": _siren, "bird": _bird, "engine": _engine, "rain": _rain,
    "bell": _bell, "knock": _knock, "whistle": _whistle, "clap": _clap, "voice": _voice,
}


def synthesize(kind: str, *, seed: int, sample_rate: int = 16000,
               num_samples: int = 16000) -> SyntheticClip:
    """Synthesise one clip of a kind of sound, with a caption drawn from its phrasings.

    The clip's RMS level is drawn uniformly between -30 and -18 dBFS and its peak is kept
    below 0.9.

    Args:
        kind: one of the keys of `SYNTHETIC_CAPTIONS`.
        seed: seed of the clip (same seed, same clip and caption on every machine).
        sample_rate: in Hz, at least 8000.
        num_samples: length of the clip in samples.

    Returns:
        A [`SyntheticClip`][torchlass.data.SyntheticClip].

    Shape:
        ``waveform``: ``(1, num_samples)``.

    Raises:
        ValueRangeError: for an unknown kind or a sample rate under 8000 Hz.

    Examples:
        >>> clip = synthesize("dog", seed=3, sample_rate=8000, num_samples=8000)
        >>> clip.waveform.shape, clip.kind
        (torch.Size([1, 8000]), 'dog')
    """
    check_choice(kind, "synthesize", "kind", list(_GENERATORS))
    check_positive_int(num_samples, "synthesize", "num_samples")
    if check_positive_int(sample_rate, "synthesize", "sample_rate") < 8000:
        raise ValueRangeError(
            f"synthesize(): argument 'sample_rate' expected at least 8000 Hz, got {sample_rate}"
        )
    rng = np.random.default_rng([seed, list(_GENERATORS).index(kind)])
    audio = _GENERATORS[kind](rng, num_samples, sample_rate)
    rms_db = rng.uniform(-30, -18)
    audio *= 10 ** (rms_db / 20) / (np.sqrt(np.mean(audio**2)) + 1e-12)
    peak = np.max(np.abs(audio))
    if peak > 0.9:
        audio *= 0.9 / peak
    caption = SYNTHETIC_CAPTIONS[kind][int(rng.integers(len(SYNTHETIC_CAPTIONS[kind])))]
    waveform = torch.from_numpy(audio.astype(np.float32)).unsqueeze(0)
    return SyntheticClip(waveform=waveform, kind=kind, caption=caption, seed=seed)


def synthetic_collection(clips_per_kind: int, *, seed: int = 0, sample_rate: int = 16000,
                         num_samples: int = 16000,
                         kinds: tuple[str, ...] | None = None) -> list[SyntheticClip]:
    """Synthesise ``clips_per_kind`` clips of every kind (kind-major order).

    Use different ``seed`` values for training and held-out collections: clip ``i`` of a
    collection with seed ``s`` is generated from seed ``s * 1_000_003 + i``, so two
    collections with different seeds share no clip.

    Args:
        clips_per_kind: number of clips of each kind.
        seed: collection seed.
        sample_rate: in Hz.
        num_samples: length of every clip in samples.
        kinds: the kinds to include (default: all ten).

    Returns:
        A list of [`SyntheticClip`][torchlass.data.SyntheticClip], ``clips_per_kind`` per kind.

    Examples:
        >>> clips = synthetic_collection(2, seed=1, sample_rate=8000, num_samples=4000)
        >>> len(clips), clips[0].kind, clips[-1].kind
        (20, 'dog', 'voice')
    """
    check_positive_int(clips_per_kind, "synthetic_collection", "clips_per_kind")
    chosen = tuple(_GENERATORS) if kinds is None else kinds
    return [
        synthesize(kind, seed=seed * 1_000_003 + i, sample_rate=sample_rate,
                   num_samples=num_samples)
        for kind in chosen for i in range(clips_per_kind)
    ]
