"""Mixing a batch of clips into training mixtures, as the DCASE 2024 baseline trains.

The baseline (docs/baseline.md#training-mixtures) pairs item ``n`` of a batch with item ``(n + 1)
mod B`` as its
interferer, matches the interferer's energy to the target's (gain limited to ±34 dB),
scales it to a target-to-interferer SNR drawn from ``[-10, 10]`` dB (integers), adds it,
and when the mixture's peak exceeds 1 scales target and mixture by ``0.9 / peak``. It
reseeds Python's ``random`` with the batch index every step, so the SNR sequence repeats
every epoch (docs/baseline.md#training-mixtures). Here the draws come from one seeded
`torch.Generator` owned by [`BatchMixer`][torchlass.data.BatchMixer], whose state is saved with a
training checkpoint. The optional ``"disjoint"`` pairing picks, for each item, an interferer that
shares no label (class name or caption content word) with it, as the challenge's
validation set is built. With ``negative_query_prob > 0`` the mixer also draws, per item,
whether the model is told what to leave out: the interferer's caption as a negative query
(CLAPSep's training; [`QueryCondition`][torchlass.nn.QueryCondition]). Everything runs on the
batch's device; the random draws are made on the CPU, so a seed gives the same mixtures on a
CPU and on a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from torchlass.checks import check_choice, check_ndim, check_real_floating, check_same_shape
from torchlass.errors import ShapeError, ValueRangeError

__all__ = [
    "BatchMixer",
    "Mixture",
    "disjoint_partners",
    "draw_negative_queries",
    "draw_snr",
    "match_energy",
    "mix_at_snr",
    "next_partners",
]


class Mixture(NamedTuple):
    """A batch of mixtures with the (possibly rescaled) parts that add up to them.

    Attributes:
        mixture: ``target + interferer``.
        target: the target after clip protection.
        interferer: the scaled interferer after clip protection.
        snr_db: the target-to-interferer SNR of each item in dB, shape ``(batch,)``.
        partner: index in the batch of each item's interferer, int64 ``(batch,)``
            ([`BatchMixer`][torchlass.data.BatchMixer]; ``None`` where the interferer is
            not a batch item, as in [`mix_at_snr`][torchlass.data.mix_at_snr]).
        use_negative: whether each item gets its interferer's caption as a negative
            query, bool ``(batch,)`` (``None`` from [`mix_at_snr`][torchlass.data.mix_at_snr]).
    """

    mixture: torch.Tensor
    target: torch.Tensor
    interferer: torch.Tensor
    snr_db: torch.Tensor
    partner: torch.Tensor | None = None
    use_negative: torch.Tensor | None = None


def match_energy(x: torch.Tensor, reference: torch.Tensor, *, max_gain: float = 50.0,
                 eps: float = 1e-10) -> torch.Tensor:
    """Scale ``x`` to the mean power of ``reference``, with a limited gain.

    ``x / clamp(sqrt(mean(x^2) / max(mean(reference^2), eps)), 1/max_gain, max_gain)``, the
    baseline's ``rescale`` (``max_gain=50``: ±34 dB). Means run over all dimensions but the
    first (per item). A silent ``x`` stays silent.

    Args:
        x: signals to scale.
        reference: signals whose power ``x`` should match.
        max_gain: largest gain and inverse of the smallest (linear amplitude).
        eps: floor on the reference's mean power.

    Returns:
        ``x`` scaled, same shape and dtype.

    Shape:
        x, reference, output: ``(batch, ...)``.

    Raises:
        ShapeError: if the shapes differ.

    Examples:
        >>> x = torch.ones(1, 1, 4)
        >>> match_energy(x, 2 * x)
        tensor([[[2., 2., 2., 2.]]])
    """
    check_real_floating(x, "match_energy", "x")
    check_real_floating(reference, "match_energy", "reference")
    check_same_shape("match_energy", x=x, reference=reference)
    dims = tuple(range(1, x.dim()))
    acc = torch.promote_types(x.dtype, torch.float32)  # float32 at least, even for half types
    ratio = x.to(acc).pow(2).mean(dims) / reference.to(acc).pow(2).mean(dims).clamp_min(eps)
    gain = ratio.sqrt().clamp(1.0 / max_gain, max_gain).reciprocal()
    return x * gain.reshape(-1, *([1] * (x.dim() - 1))).to(x.dtype)


def _clip_protect(mixture: torch.Tensor, *parts: torch.Tensor,
                  limit: float = 1.0, headroom: float = 0.9) -> list[torch.Tensor]:
    dims = tuple(range(1, mixture.dim()))
    peak = mixture.abs().amax(dims, keepdim=True)
    scale = torch.where(peak > limit, headroom / peak.clamp_min(1e-30), torch.ones_like(peak))
    return [mixture * scale, *(p * scale for p in parts)]


def draw_snr(batch: int, *, snr_range: tuple[float, float] = (-10.0, 10.0),
             integer: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``batch`` SNRs in dB, uniformly from ``snr_range`` (both ends included if ``integer``).

    ``integer=True`` draws whole dB values, as the baseline's ``random.randint(-10, 10)``.

    Args:
        batch: number of draws.
        snr_range: ``(low, high)`` in dB.
        integer: draw integers (the ends must then be integers).
        generator: CPU generator for reproducible draws.

    Returns:
        Float32 SNRs on the CPU, shape ``(batch,)``.

    Raises:
        ValueRangeError: if ``low > high``, or ``integer`` with non-integer ends.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> s = draw_snr(1000, snr_range=(-2, 2), generator=g)
        >>> sorted(set(s.tolist()))
        [-2.0, -1.0, 0.0, 1.0, 2.0]
    """
    low, high = snr_range
    if low > high:
        raise ValueRangeError(
            f"draw_snr(): argument 'snr_range' expected low <= high, got ({low}, {high})"
        )
    if integer:
        if low != int(low) or high != int(high):
            raise ValueRangeError(
                "draw_snr(): argument 'snr_range' expected integer ends with integer=True, "
                f"got ({low}, {high})"
            )
        return torch.randint(int(low), int(high) + 1, (batch,), generator=generator).float()
    return low + (high - low) * torch.rand(batch, generator=generator)


def draw_negative_queries(batch: int, prob: float, *,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw, for each of ``batch`` items, whether it gets a negative query (probability ``prob``).

    ``rand < prob`` per item; ``prob = 0`` draws nothing (the generator is not advanced, so a
    mixer without negative queries makes the same mixtures as before they existed) and
    ``prob = 1`` gives every item one.

    Args:
        batch: number of items.
        prob: probability of a negative query, in ``[0, 1]``.
        generator: CPU generator for reproducible draws.

    Returns:
        Bool on the CPU, shape ``(batch,)``.

    Raises:
        ValueRangeError: if ``prob`` is not a number in ``[0, 1]``.

    Examples:
        >>> draw_negative_queries(3, 1.0).tolist(), draw_negative_queries(3, 0.0).tolist()
        ([True, True, True], [False, False, False])
    """
    if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0.0 <= prob <= 1.0:
        raise ValueRangeError(f"draw_negative_queries(): argument 'prob' expected a number in "
                              f"[0, 1], got {prob!r}")
    if prob == 0.0:
        return torch.zeros(batch, dtype=torch.bool)
    return torch.rand(batch, generator=generator) < prob


def next_partners(batch: int) -> torch.Tensor:
    """The baseline's pairing: item ``n``'s interferer is item ``(n + 1) mod batch``.

    Examples:
        >>> next_partners(4)
        tensor([1, 2, 3, 0])
    """
    return torch.arange(1, batch + 1) % batch


def disjoint_partners(labels: Sequence[Sequence[str]], *,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Pick each item's interferer among the items that share none of its labels.

    Labels are whatever decides "the same kind of sound": class names, tags or the content
    words of the caption ([`torchlass.query.content_words`][torchlass.query.content_words]). For
    item ``n`` the candidates are scanned in the cyclic order ``n + k, n + k + 1, ...`` from a
    random offset ``k`` (so a batch sorted by class is still paired at random), and the first with
    no common label is taken. If no item of the batch qualifies, the candidate sharing the
    fewest labels is taken instead (the batch is too uniform for strict pairing; larger
    batches avoid it).

    Args:
        labels: one collection of labels per item.
        generator: CPU generator for the random offset.

    Returns:
        Interferer index of each item (never the item itself), int64, shape ``(batch,)``.

    Raises:
        ShapeError: with fewer than two items.

    Examples:
        >>> disjoint_partners([{"dog"}, {"dog"}, {"rain"}]).tolist()[:2]
        [2, 2]
    """
    batch = len(labels)
    if batch < 2:
        raise ShapeError(
            f"disjoint_partners(): argument 'labels' expected at least 2 items, got {batch}"
        )
    sets = [frozenset(item) for item in labels]
    offset = int(torch.randint(1, batch, (1,), generator=generator))
    partners = []
    for n in range(batch):
        order = [(n + offset + k) % batch for k in range(batch)]
        shared = [(len(sets[n] & sets[m]), k) for k, m in enumerate(order) if m != n]
        partners.append(order[min(shared)[1]])  # fewest shared labels, then cyclic order
    return torch.tensor(partners, dtype=torch.long)


class BatchMixer:
    """Turn a batch of clean clips into mixtures, reproducibly from a seed.

    ``mixer(sources, labels)`` pairs items (``"next"``: the baseline's ``(n + 1) mod B``;
    ``"disjoint"``: [`disjoint_partners`][torchlass.data.disjoint_partners]), draws one SNR per item
    with [`draw_snr`][torchlass.data.draw_snr], energy-matches each interferer to its target with
    [`match_energy`][torchlass.data.match_energy], scales it to the SNR, adds it, and applies the
    baseline's clip protection (``0.9 / peak`` when the peak exceeds 1). The target-to-interferer
    SNR is exact unless the ±34 dB gain limit is reached. Each item's interferer index is
    ``partner`` in the result; with ``negative_query_prob > 0``, ``use_negative`` says which
    items get the interferer's caption as a negative query
    ([`draw_negative_queries`][torchlass.data.draw_negative_queries]), drawn from a generator
    of their own (seeded ``seed + 1``) so that the mixtures do not depend on the probability.
    The generators' states are part of
    [`state_dict`][torchlass.data.mixing.BatchMixer.state_dict], so a resumed training run draws the
    same mixtures.

    Args:
        snr_range: ``(low, high)`` target-to-interferer SNR in dB.
        integer_snr: draw whole dB values, as the baseline.
        pairing: ``"next"`` or ``"disjoint"``.
        seed: seed of the mixer's generator (the negative-query draws use ``seed + 1``).
        negative_query_prob: probability that an item gets its interferer's caption as a
            negative query, in ``[0, 1]`` (0: never; no draw is made).

    Shape:
        - sources: ``(batch, channels, time)``
        - outputs ([`Mixture`][torchlass.data.Mixture]): ``(batch, channels, time)``, ``snr_db``
        ``(batch,)``

    Examples:
        >>> mixer = BatchMixer(seed=0)
        >>> out = mixer(torch.randn(4, 1, 100))
        >>> out.mixture.shape, out.snr_db.shape
        (torch.Size([4, 1, 100]), torch.Size([4]))
    """

    def __init__(self, *, snr_range: tuple[float, float] = (-10.0, 10.0),
                 integer_snr: bool = True, pairing: str = "next", seed: int = 0,
                 negative_query_prob: float = 0.0) -> None:
        self.snr_range = (float(snr_range[0]), float(snr_range[1]))
        self.integer_snr = integer_snr
        self.pairing = check_choice(pairing, "BatchMixer", "pairing", ("next", "disjoint"))
        draw_snr(1, snr_range=self.snr_range, integer=integer_snr)  # validate the range
        try:
            draw_negative_queries(1, negative_query_prob)  # validate the probability
        except ValueRangeError as err:
            raise ValueRangeError(str(err).replace("draw_negative_queries(): argument 'prob'",
                                                   "BatchMixer(): argument "
                                                   "'negative_query_prob'")) from None
        self.negative_query_prob = float(negative_query_prob)
        self.generator = torch.Generator().manual_seed(seed)
        self.negative_generator = torch.Generator().manual_seed(seed + 1)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The generators' states (for exact resumption)."""
        return {"generator": self.generator.get_state(),
                "negative_generator": self.negative_generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore the generators' states saved by
        [`state_dict`][torchlass.data.mixing.BatchMixer.state_dict] (a state saved before
        negative queries existed leaves the negative-query generator as seeded)."""
        self.generator.set_state(state["generator"])
        if "negative_generator" in state:
            self.negative_generator.set_state(state["negative_generator"])

    def __call__(self, sources: torch.Tensor,
                 labels: Sequence[Sequence[str]] | None = None) -> Mixture:
        """Mix ``sources`` (see the class docstring); ``labels`` are needed for ``"disjoint"``."""
        check_real_floating(sources, "BatchMixer", "sources")
        check_ndim(sources, "BatchMixer", "sources", ndim=3, layout="(batch, channels, time)")
        batch = sources.shape[0]
        if batch < 2:
            raise ShapeError(
                "BatchMixer(): argument 'sources' expected a batch of at least 2 clips "
                f"(interferers come from the batch), got shape {tuple(sources.shape)}"
            )
        if self.pairing == "disjoint":
            if labels is None or len(labels) != batch:
                got = "None" if labels is None else f"{len(labels)} items"
                raise ShapeError(
                    f"BatchMixer(): argument 'labels' expected {batch} items with "
                    f"pairing='disjoint', got {got}"
                )
            partners = disjoint_partners(labels, generator=self.generator)
        else:
            partners = next_partners(batch)
        snr = draw_snr(batch, snr_range=self.snr_range, integer=self.integer_snr,
                       generator=self.generator)
        use_negative = draw_negative_queries(batch, self.negative_query_prob,
                                             generator=self.negative_generator)
        partners = partners.to(sources.device)
        interferer = match_energy(sources[partners], sources)
        gain = torch.pow(10.0, -snr.double() / 20).to(device=sources.device, dtype=sources.dtype)
        interferer = interferer * gain[:, None, None]
        mixture, target, interferer = _clip_protect(sources + interferer, sources, interferer)
        return Mixture(mixture, target, interferer, snr.to(sources.device), partners,
                       use_negative.to(sources.device))


def mix_at_snr(source: torch.Tensor, noise: torch.Tensor, snr_db: float | torch.Tensor
               ) -> Mixture:
    """Mix as the challenge's validation protocol does (docs/baseline.md#evaluation).

    ``noise <- noise * sqrt(mean(s^2) / 10^(snr/10) / mean(noise^2))``, ``x = s + noise``;
    if ``max|x| > 1``, ``s`` and ``x`` (and the noise) are scaled by ``0.9 / max|x|``.
    Means run over all dimensions but the first.

    Args:
        source: target signals.
        noise: interferers, same shape.
        snr_db: target-to-noise SNR in dB, a number or a ``(batch,)`` tensor.

    Returns:
        A [`Mixture`][torchlass.data.Mixture].

    Shape:
        source, noise, outputs: ``(batch, ...)``; ``snr_db``: ``()`` or ``(batch,)``.

    Raises:
        ValueRangeError: if a noise signal is silent (its level cannot be set).
        ShapeError: if the shapes differ.

    Examples:
        >>> s, n = torch.ones(1, 8) * 0.1, torch.ones(1, 8)
        >>> out = mix_at_snr(s, n, 0.0)
        >>> torch.allclose(out.interferer, s)
        True
    """
    check_real_floating(source, "mix_at_snr", "source")
    check_real_floating(noise, "mix_at_snr", "noise")
    check_same_shape("mix_at_snr", source=source, noise=noise)
    dims = tuple(range(1, source.dim()))
    snr = torch.as_tensor(snr_db, dtype=torch.float64, device=source.device).reshape(-1)
    snr = snr.expand(source.shape[0])
    noise_power = noise.double().pow(2).mean(dims)
    if bool((noise_power == 0).any()):
        raise ValueRangeError(
            "mix_at_snr(): argument 'noise' expected non-silent signals, got "
            f"{int((noise_power == 0).sum())} silent item(s)"
        )
    gain = (source.double().pow(2).mean(dims) / 10 ** (snr / 10) / noise_power).sqrt()
    scaled = noise * gain.reshape(-1, *([1] * len(dims))).to(noise.dtype)
    mixture, target, interferer = _clip_protect(source + scaled, source, scaled)
    return Mixture(mixture, target, interferer, snr.float())
