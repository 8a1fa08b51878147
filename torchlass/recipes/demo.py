"""``torchlass demo``: synthesise, train, evaluate and listen, on a CPU, with no download.

The demo synthesises a captioned collection of ten kinds of sound with overlapping spectra
([`torchlass.data.synthetic`][torchlass.data.synthetic]), writes held-out clips and a validation
recipe in the challenge's format, trains a small SRPOL-system-1 separator (real/imaginary input and
masks on a narrow FiLM-ResUNet, waveform L1 loss, 8 kHz) on mixtures made on the fly by
[`BatchMixer`][torchlass.data.BatchMixer], conditioned by the built-in
[`HashedTextEncoder`][torchlass.query.HashedTextEncoder], and scores the trained and the untrained
model on the held-out mixtures with the challenge protocol. It writes to ``out_dir``:
``results.json``, ``items.csv`` (per mixture), ``checkpoint.pt`` with its
``config.toml``, ``log.csv``, ``spectrograms.png``, ``audio/`` (mixture, target and
estimate of a few examples) and ``heldout/`` (the held-out clips and their recipe).

Given a CLAP model with its audio tower (``clap``), the table and ``results.json`` also
report CLAPScore ([`clap_score`][torchlass.metrics.clap_score]) of the estimates and of the
mixtures: CLAP is only the judge there, the separator keeps its hashed text encoder.
Without one, the report says that CLAPScore was not computed and why; it never shows a
value it did not compute.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from torchlass.checks import check_positive_int
from torchlass.data.audio import write_audio
from torchlass.data.dataset import TensorCaptionDataset
from torchlass.data.synthetic import SyntheticClip, synthetic_collection
from torchlass.data.validation import (
    RecipeRow,
    ValidationMixtures,
    read_validation_recipe,
    write_validation_recipe,
)
from torchlass.query import AudioEncoder, CachedTextEncoder, HashedTextEncoder, content_words
from torchlass.recipes.config import Config, apply_overrides, get_config
from torchlass.recipes.evaluate import (
    ItemScore,
    clap_columns,
    evaluate_separator,
    format_table,
    summarize,
    write_item_csv,
)
from torchlass.recipes.trainer import Trainer

__all__ = ["NO_CLAP", "DemoData", "DemoSettings", "demo_config", "demo_data", "run_demo"]

#: Why CLAPScore is absent when ``run_demo`` is given no CLAP model.
NO_CLAP = "no --clap-checkpoint given"


@dataclass(frozen=True)
class DemoSettings:
    """What the demo synthesises and how long it trains (defaults: the full demo).

    Attributes:
        steps: training steps.
        train_clips_per_kind: training clips of each of the ten kinds.
        heldout_clips_per_kind: held-out clips of each kind (one validation mixture each).
        sample_rate: in Hz.
        seconds: length of every clip.
        snr_range: SNR range of training and validation mixtures, dB (integers).
        seed: seed of everything.
        examples: mixtures written as audio and drawn in the figure.
        n_fft: DFT size in samples.
        hop_length: STFT hop in samples.
        batch_size: clips per step.
        lr: learning rate after the warm-up.
        loss: ``"sdr"``, ``"l1"`` or ``"mixit"`` (see
            [`torchlass.recipes.objectives`][torchlass.recipes.objectives]).
    """

    steps: int = 800
    train_clips_per_kind: int = 48
    heldout_clips_per_kind: int = 8
    sample_rate: int = 8000
    seconds: float = 1.0
    snr_range: tuple[int, int] = (-10, 10)
    seed: int = 0
    examples: int = 3
    n_fft: int = 256
    hop_length: int = 128
    batch_size: int = 16
    lr: float = 1e-3
    loss: str = "l1"

    @classmethod
    def quick(cls) -> DemoSettings:
        """A few dozen steps on a small collection: checks the pipeline in under a minute."""
        return cls(steps=30, train_clips_per_kind=4, heldout_clips_per_kind=1, batch_size=8)


def demo_config(settings: DemoSettings, out_dir: str | Path) -> Config:
    """The training configuration of the demo: SRPOL system 1, narrow, at 8 kHz.

    Changes from the ``srpol_system1`` preset (with the default settings): 8 kHz,
    ``n_fft`` 256, hop 128, a four-level ResUNet of widths 8 to 64, the hashed text
    encoder, 1 s segments, disjoint pairing and a 30-step linear warm-up instead of the
    baseline's 30 000-step one. The loss stays system 1's waveform L1.
    """
    return apply_overrides(get_config("srpol_system1"), [
        "name=demo",
        f"model.sample_rate={settings.sample_rate}", f"model.n_fft={settings.n_fft}",
        f"model.hop_length={settings.hop_length}",
        "model.stem_width=8", "model.widths=8,16,32,64", "model.pools=2x2,2x2,2x2,2x2",
        "query.encoder=hashed",
        f"data.segment_seconds={settings.seconds}", f"data.batch_size={settings.batch_size}",
        "data.num_workers=0", "data.pairing=disjoint",
        f"data.snr_range={settings.snr_range[0]},{settings.snr_range[1]}",
        "optim.schedule=linear_warmup", "optim.warmup_steps=30", f"optim.lr={settings.lr}",
        f"train.steps={settings.steps}", f"train.loss={settings.loss}",
        f"train.seed={settings.seed}",
        f"train.out_dir={out_dir}", "train.log_every=25", "train.val_every=0",
        "train.checkpoint_every=0",
    ])


def _validation_recipe(clips: list[SyntheticClip], settings: DemoSettings) -> list[RecipeRow]:
    """Each held-out clip as a source, with a clip of another kind as noise (and its caption,
    the negative query of a negative-query model)."""
    g = torch.Generator().manual_seed(settings.seed + 1)
    low, high = settings.snr_range
    rows = []
    for i, clip in enumerate(clips):
        others = [j for j, other in enumerate(clips) if other.kind != clip.kind]
        j = others[int(torch.randint(len(others), (1,), generator=g))]
        snr = int(torch.randint(low, high + 1, (1,), generator=g))
        rows.append(RecipeRow(f"heldout_{i:03d}", f"heldout_{j:03d}", float(snr), clip.caption,
                              clips[j].caption))
    return rows


@dataclass
class DemoData:
    """The demo's data: training clips and the held-out mixtures.

    Attributes:
        train_set: the training clips, captions and kinds.
        items: the held-out mixtures, as [`ValidationMixtures`][torchlass.data.ValidationMixtures]
            returns them (with ``noise_caption``).
    """

    train_set: TensorCaptionDataset
    items: list[dict[str, Any]]


def demo_data(settings: DemoSettings, out_dir: str | Path) -> DemoData:
    """Synthesise the demo's training and held-out clips; write the held-out ones and their
    recipe to ``out_dir/heldout`` (``heldout_NNN.wav``, ``validation.csv``) and read the
    mixtures back, as an evaluation from files would.

    Examples:
        >>> import tempfile
        >>> data = demo_data(DemoSettings.quick(), tempfile.mkdtemp())
        >>> len(data.train_set), len(data.items), sorted(data.items[0])[:3]
        (40, 10, ['caption', 'mixture', 'noise'])
    """
    length = round(settings.seconds * settings.sample_rate)
    train = synthetic_collection(settings.train_clips_per_kind, seed=2 * settings.seed + 1,
                                 sample_rate=settings.sample_rate, num_samples=length)
    heldout = synthetic_collection(settings.heldout_clips_per_kind, seed=2 * settings.seed + 2,
                                   sample_rate=settings.sample_rate, num_samples=length)
    heldout_dir = Path(out_dir) / "heldout"
    for i, clip in enumerate(heldout):
        write_audio(heldout_dir / f"heldout_{i:03d}.wav", clip.waveform, settings.sample_rate)
    write_validation_recipe(heldout_dir / "validation.csv", _validation_recipe(heldout, settings))
    validation = ValidationMixtures(read_validation_recipe(heldout_dir / "validation.csv"),
                                    heldout_dir, sample_rate=settings.sample_rate)
    train_set = TensorCaptionDataset(torch.stack([c.waveform for c in train]),
                                     [c.caption for c in train], [(c.kind,) for c in train])
    return DemoData(train_set, [validation[i] for i in range(len(validation))])


# Spectrograms of the figure: 256-sample frames (32 ms at 8 kHz), 75 % overlap, and one
# 70 dB colour range per example, from the mixture's peak down.
_FIGURE_N_FFT, _FIGURE_HOP, _FIGURE_RANGE_DB = 256, 64, 70.0


def _figure(path: Path, items: list[dict[str, Any]], estimates: list[torch.Tensor],
            sdris: list[float], sample_rate: int) -> None:
    """Mixture, target and estimate spectrograms of each example, one row each, in dB."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(items), 3, figsize=(12, 2.8 * len(items)), squeeze=False,
                             layout="constrained")
    window = torch.hann_window(_FIGURE_N_FFT)
    rows = zip(items, estimates, sdris, strict=True)
    for row, (item, estimate, sdri) in enumerate(rows):
        panels = ((f"mixture: {item['caption']!r}", item["mixture"]),
                  ("target", item["target"]), (f"estimate: SDRi {sdri:.2f} dB", estimate))
        dbs = [20 * torch.log10(torch.stft(signal.reshape(-1), _FIGURE_N_FFT, _FIGURE_HOP,
                                           window=window, return_complex=True)
                                .abs().clamp_min(1e-5))
               for _, signal in panels]
        top = float(dbs[0].max())
        for col, ((title, signal), db) in enumerate(zip(panels, dbs, strict=True)):
            ax = axes[row, col]
            image = ax.imshow(db.numpy(), origin="lower", aspect="auto",
                              vmin=top - _FIGURE_RANGE_DB, vmax=top,
                              extent=(0, signal.shape[-1] / sample_rate, 0, sample_rate / 2000))
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("time (s)")
            ax.set_ylabel("kHz")
        fig.colorbar(image, ax=axes[row, :], label="dB", fraction=0.03, pad=0.01)
    fig.savefig(path, dpi=150)
    plt.close(fig)


def run_demo(out_dir: str | Path, *, settings: DemoSettings | None = None,
             progress: bool = True, echo: Callable[[str], None] = print,
             clap: AudioEncoder | None = None, clap_convention: str = "cos",
             no_clap_reason: str = NO_CLAP) -> dict[str, Any]:
    """Run the demo (see the module docstring) and return what ``results.json`` holds.

    Args:
        out_dir: output folder (created).
        settings: what to synthesise and how long to train (default: the full demo).
        progress: show progress bars.
        echo: where progress lines and the table go.
        clap: a CLAP model with its audio and text towers, to report CLAPScore.
        clap_convention: ``"cos"`` (default), ``"hessel"`` or ``"percent"`` (see
            [`clap_similarity`][torchlass.metrics.clap_similarity]).
        no_clap_reason: what the report says when ``clap`` is None.

    Returns:
        ``{"trained": {"sdr", "sdri", "si_sdr"}, "untrained": {...}, ...}`` (dB, means
        over the held-out mixtures), plus the settings and the wall time, and
        ``"clapscore"``: ``{"convention", "trained": {...}, "untrained": {...}}`` with the
        means of [`clap_columns`][torchlass.recipes.evaluate.clap_columns], or
        ``{"computed": False, "reason": ...}`` without ``clap``.
    """
    settings = settings or DemoSettings()
    for name in ("steps", "train_clips_per_kind", "heldout_clips_per_kind", "batch_size"):
        check_positive_int(getattr(settings, name), "run_demo", f"settings.{name}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), time.process_time()

    echo(f"[1/4] synthesising {10 * settings.train_clips_per_kind} training and "
         f"{10 * settings.heldout_clips_per_kind} held-out clips (10 kinds of sound)")
    data = demo_data(settings, out)
    items, train_set = data.items, data.train_set
    config = demo_config(settings, out)
    encoder = CachedTextEncoder(HashedTextEncoder(dim=config.model.condition_size))
    trainer = Trainer(config, train_set=train_set, encoder=encoder, device="cpu",
                      progress=progress)
    (out / "log.csv").unlink(missing_ok=True)
    echo("[2/4] scoring the untrained model on the held-out mixtures")

    def evaluate() -> list[ItemScore]:
        return evaluate_separator(trainer.model, items, encoder, batch_size=16, clap=clap,
                                  sample_rate=settings.sample_rate,
                                  clap_convention=clap_convention)

    untrained = summarize(evaluate())

    echo(f"[3/4] training {settings.steps} steps (SRPOL system 1, "
         f"{sum(p.numel() for p in trainer.model.parameters()):,} parameters)")
    trainer.fit()
    trainer.close()

    echo("[4/4] scoring the trained model; writing audio and figures")
    scores = evaluate()
    trained = summarize(scores)
    write_item_csv(out / "items.csv", scores)
    picks = range(0, len(items), max(1, len(items) // settings.examples))[: settings.examples]
    chosen = [items[i] for i in picks]
    estimates = _write_examples(trainer.model, chosen, encoder, out / "audio", settings)
    sdris = [cast(float, scores[i].sdri) for i in picks]  # every demo mixture has a target
    _figure(out / "spectrograms.png", chosen, estimates, sdris, settings.sample_rate)

    def means(table: dict[str, dict[str, float]]) -> dict[str, float]:
        return {k: round(float(table["all"][k]), 3) for k in ("sdr", "sdri", "si_sdr")}

    clap_keys = clap_columns(clap_convention)
    results = {
        "trained": means(trained),
        "untrained": means(untrained),
        "clapscore": ({"computed": False, "reason": no_clap_reason} if clap is None else
                      {"convention": clap_convention,
                       **{name: {k: round(float(table["all"][k]), 4) for k in clap_keys}
                          for name, table in (("trained", trained),
                                              ("untrained", untrained))}}),
        "mixtures": len(items),
        "steps": settings.steps,
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "settings": dataclasses.asdict(settings),
    }
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    echo("")
    echo(format_table({"untrained": untrained, "trained": trained}))
    if clap is None:
        echo(f"CLAPScore: not computed ({no_clap_reason})")
    echo("")
    echo(f"done in {results['seconds']:.0f} s; results, audio, figure and checkpoint in {out}")
    return results


@torch.no_grad()
def _write_examples(model: torch.nn.Module, chosen: list[dict[str, Any]],
                    encoder: CachedTextEncoder, folder: Path,
                    settings: DemoSettings) -> list[torch.Tensor]:
    """Separate the ``chosen`` mixtures, write their audio and return the estimates."""
    model.eval()
    estimates = []
    for k, item in enumerate(chosen):
        estimate = model(item["mixture"][None], encoder([item["caption"]]))[0, 0]
        estimates.append(estimate)
        stem = "_".join(content_words(item["caption"])[:3])
        for name, signal in (("mixture", item["mixture"]), ("target", item["target"]),
                             ("estimate", estimate)):
            write_audio(folder / f"example{k}_{stem}_{name}.wav", signal, settings.sample_rate)
    return estimates
