"""The training loop: mixing on the fly, AdamW, schedules, validation, exact resumption.

[`Trainer`][torchlass.recipes.Trainer] runs what a [`Config`][torchlass.recipes.Config] describes:
each step takes the step's clean clips ([`StepBatchSampler`][torchlass.recipes.StepBatchSampler]),
mixes the global batch with [`BatchMixer`][torchlass.data.BatchMixer] on the training device, embeds
the captions (cached) and, with ``data.negative_query_prob``, the interferers' captions as
negative queries, runs the separator (optionally under bf16 autocast), applies the loss,
clips the gradient norm, steps AdamW (AMSGrad, lr 1e-3, no weight decay by default) and
the schedule. Every ``val_every`` steps it scores the validation recipe; every
``checkpoint_every`` steps it writes a checkpoint holding the model, optimiser, scheduler,
step, mixer and RNG states, from which [`Trainer.resume`][torchlass.recipes.trainer.Trainer.resume]
continues bit for bit. Under ``torchrun`` it wraps the model in DistributedDataParallel
(SyncBatchNorm on GPUs; on CPUs BatchNorm statistics stay per process, since SyncBatchNorm needs
GPUs).
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from torchlass.checks import check_choice
from torchlass.data.dataset import collate_captioned
from torchlass.data.mixing import BatchMixer, Mixture
from torchlass.errors import CheckpointError, NonFiniteError, ValueRangeError
from torchlass.query.protocol import TextEncoder, embed_captions
from torchlass.recipes.config import Config, config_from_dict, config_to_dict, config_to_toml
from torchlass.recipes.distributed import (
    DistInfo,
    gather_batch,
    gather_captions,
    init_distributed,
)
from torchlass.recipes.evaluate import evaluate_separator, summarize
from torchlass.recipes.objectives import separation_loss
from torchlass.recipes.sampler import StepBatchSampler
from torchlass.recipes.schedule import build_scheduler

__all__ = ["CHECKPOINT_FORMAT", "SizedItems", "Trainer", "checkpoint_kind", "load_checkpoint",
           "load_model_weights", "load_weights_into"]

CHECKPOINT_FORMAT = "torchlass-train-v2"  # v2: RNG states as tensors (weights_only loads)
_TRAINING_ENTRIES = {"config": Mapping, "step": int, "model": Mapping, "optimizer": Mapping,
                     "scheduler": Mapping, "mixer": Mapping, "rng": Mapping}
_SHOWN_KEYS = 8  # keys quoted in an error message
_LOG_FIELDS = ("step", "loss", "lr", "grad_norm", "seconds", "val_sdr", "val_sdri",
               "val_si_sdr")


class SizedItems(Protocol):
    """Validation items: a length and indexing (a list of dicts, a torch ``Dataset``)."""

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...


def _where(source: object) -> str:
    return repr(str(source)) if isinstance(source, str | os.PathLike) else "the mapping given"


def _keys(data: Mapping[str, Any]) -> str:
    shown = ", ".join(repr(str(k)) for k in list(data)[:_SHOWN_KEYS]) or "none"
    return shown + (f" (+{len(data) - _SHOWN_KEYS} more)" if len(data) > _SHOWN_KEYS else "")


def checkpoint_kind(data: Mapping[str, Any], *, where: str = "the checkpoint",
                    fn: str = "checkpoint_kind") -> str:
    """Tell a training checkpoint, a pretrained folder and the DCASE/AudioSep layout apart.

    Args:
        data: a checkpoint read by [`read_checkpoint`][torchlass.checkpoints.read_checkpoint].
        where: how the messages name the checkpoint (its path).
        fn: the function the messages name.

    Returns:
        ``"training"`` (a [`Trainer`][torchlass.recipes.trainer.Trainer] checkpoint with every entry
        [`Trainer.load_state_dict`][torchlass.recipes.trainer.Trainer.load_state_dict] needs),
        ``"pretrained"`` (a [`save_pretrained`][torchlass.pretrained.save_pretrained] folder,
        as [`read_checkpoint`][torchlass.checkpoints.read_checkpoint] returns it) or
        ``"dcase2024_baseline"`` (a ``state_dict`` entry or ``ss_model.*``/``base.*`` keys;
        [`load_audiosep`][torchlass.checkpoints.load_audiosep] checks the layout).

    Raises:
        CheckpointError: for another format or layout, or a training checkpoint with an
            entry missing or of the wrong type.

    Examples:
        >>> checkpoint_kind({"state_dict": {}})
        'dcase2024_baseline'
    """
    from torchlass.checkpoints import PREFIX
    from torchlass.pretrained import FORMAT as PRETRAINED

    if data.get("format") == PRETRAINED:
        return "pretrained"
    if "format" in data:
        if data["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{fn}(): {where} expected format {CHECKPOINT_FORMAT!r} "
                                  f"(a torchlass training checkpoint), got {data['format']!r}")
        wrong = [f"{key!r} ({'missing' if key not in data else type(data[key]).__name__})"
                 for key, kind in _TRAINING_ENTRIES.items()
                 if not isinstance(data.get(key), kind)]
        if wrong:
            raise CheckpointError(f"{fn}(): {where} is a torchlass training checkpoint with "
                                  f"entries missing or of the wrong type: {', '.join(wrong)}")
        return "training"
    if "state_dict" in data or any(str(k).startswith((PREFIX, "base.")) for k in data):
        return "dcase2024_baseline"
    raise CheckpointError(f"{fn}(): {where} expected a torchlass training checkpoint (format "
                          f"{CHECKPOINT_FORMAT!r}) or the DCASE 2024 baseline's (keys "
                          f"'state_dict', 'ss_model.*' or 'base.*'), got keys {_keys(data)}")


def load_checkpoint(source: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Read a checkpoint written by [`Trainer`][torchlass.recipes.trainer.Trainer] (on the CPU).

    Read safely by [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]: the file
    holds tensors and plain containers only (the RNG states included).

    Raises:
        CheckpointError: in one line naming the file and the reason: unreadable (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), or not a
            torchlass training checkpoint (see
            [`checkpoint_kind`][torchlass.recipes.trainer.checkpoint_kind]).
    """
    from torchlass.checkpoints import read_checkpoint

    data = read_checkpoint(source, map_location="cpu")
    if checkpoint_kind(data, where=_where(source), fn="load_checkpoint") != "training":
        raise CheckpointError(f"load_checkpoint(): {_where(source)} expected a torchlass "
                              f"training checkpoint (format {CHECKPOINT_FORMAT!r}) to resume, "
                              "got a model without a training state (fine-tune from it with "
                              "train.init_from)")
    return dict(data)


def load_weights_into(model: torch.nn.Module, weights: Mapping[str, Any], *, where: str,
                      fn: str) -> None:
    """``model.load_state_dict(weights)`` (strict), a mismatch as a one-line CheckpointError."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise CheckpointError(f"{fn}(): the weights in {where} do not fit the model: "
                              + " ".join(str(err).split())) from None


def load_model_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load weights for fine-tuning: a Trainer checkpoint, a pretrained folder or AudioSep's.

    A torchlass training checkpoint's ``model`` entry, or a pretrained folder's separator,
    is loaded strictly. The official Lightning checkpoint or a bare ResUNet30 state_dict
    goes through [`load_audiosep`][torchlass.checkpoints.load_audiosep] (16 or 32 kHz),
    whose separator's weights are then loaded strictly, so ``model`` must have the
    baseline's architecture.

    Raises:
        CheckpointError: in one line, if the file cannot be read (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), is of neither
            kind, or its weights do not fit ``model``.
    """
    from torchlass.checkpoints import load_audiosep, read_checkpoint

    data = read_checkpoint(path, map_location="cpu")
    where = _where(path)
    kind = checkpoint_kind(data, where=where, fn="load_model_weights")
    if kind == "training":
        weights = data["model"]
    elif kind == "pretrained":
        weights = data["separator"].state_dict()
    else:
        weights = load_audiosep(data).state_dict()
    load_weights_into(model, weights, where=where, fn="load_model_weights")


# The RNG states are stored as tensors and plain values so that checkpoints load with
# weights_only=True. numpy's legacy global generator is saved because user code
# (augmentations) may draw from it.
def _rng_state() -> dict[str, Any]:
    name, key, pos, has_gauss, gauss = cast(
        tuple[str, np.ndarray, int, int, float], np.random.get_state())  # noqa: NPY002
    version, words, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": name, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)},
        "python": {"version": version, "state": torch.tensor(words, dtype=torch.int64),
                   "gauss_next": gauss_next},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state((npy["name"], npy["key"].numpy().astype(np.uint32),  # noqa: NPY002
                         npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"].tolist()), py["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _check_negative_queries(config: Config, model: torch.nn.Module) -> None:
    """``data.negative_query_prob`` in ``[0, 1]``, and above 0 only for a model taking one."""
    prob = config.data.negative_query_prob
    if isinstance(prob, bool) or not isinstance(prob, int | float) or not 0 <= prob <= 1:
        raise ValueRangeError(f"Trainer(): argument 'config' expected "
                              f"data.negative_query_prob in [0, 1], got {prob!r}")
    if prob > 0 and not getattr(model, "takes_negative", False):
        raise ValueRangeError(
            f"Trainer(): argument 'config' expected data.negative_query_prob = 0 for a model "
            f"without negative-query conditioning (model.architecture = "
            f"{config.model.architecture!r}; 'srpol_negative_query' takes one), got {prob!r}")


class Trainer:
    """Train a separator as ``config`` describes (see the module docstring).

    Args:
        config: the configuration.
        train_set: dataset of clean captioned clips (items ``{"waveform": (1, time),
            "caption", "labels"}``), e.g.
            [`CaptionedAudioDataset`][torchlass.data.CaptionedAudioDataset].
        separator: the model (default: [`build_separator`][torchlass.recipes.build_separator] of
            ``config.model``, initialised from ``config.train.seed``).
        encoder: the text encoder (default:
            [`build_text_encoder`][torchlass.recipes.build_text_encoder]).
        validation_set: validation items for
            [`evaluate_separator`][torchlass.recipes.evaluate_separator] (default: none; no
            validation).
        device: where to train (default: CUDA if available; ``cuda:LOCAL_RANK`` under
            ``torchrun``).
        progress: show a tqdm progress bar (main process only).
        on_log: called with every log row (a dict) on the main process.

    Examples:
        >>> import torch
        >>> from torchlass.data import TensorCaptionDataset
        >>> from torchlass.recipes import apply_overrides, get_config
        >>> cfg = apply_overrides(get_config("srpol_system1"), [
        ...     "model.n_fft=256", "model.hop_length=128", "model.stem_width=4",
        ...     "model.widths=4,8", "model.pools=2x2,2x2", "query.encoder=hashed",
        ...     "data.batch_size=2", "data.num_workers=0", "train.steps=2", "train.out_dir=",
        ...     "optim.warmup_steps=1"])
        >>> data = TensorCaptionDataset(0.1 * torch.randn(4, 1, 2000), ["a dog", "rain"] * 2)
        >>> trainer = Trainer(cfg, train_set=data, progress=False)
        >>> _ = trainer.fit()
        >>> trainer.step
        2
    """

    def __init__(self, config: Config, *, train_set: Dataset[Any],
                 separator: torch.nn.Module | None = None,
                 encoder: TextEncoder | None = None,
                 validation_set: SizedItems | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 on_log: Callable[[dict[str, Any]], None] | None = None) -> None:
        from torchlass.recipes.model import build_separator, build_text_encoder

        check_choice(config.train.precision, "Trainer", "train.precision", ("fp32", "bf16"))
        self.config = config
        self.dist: DistInfo = init_distributed(device)
        self.device = self.dist.device
        torch.manual_seed(config.train.seed)
        model = separator if separator is not None else build_separator(config.model)
        _check_negative_queries(config, model)
        if config.train.init_from:
            load_model_weights(model, config.train.init_from)
        self.model = model.to(self.device)
        self.encoder = encoder if encoder is not None else build_text_encoder(
            config.query, dim=config.model.condition_size)
        self.train_set = train_set
        self.validation_set = validation_set
        self.progress = progress
        self.on_log = on_log
        self.step = 0
        self.wrapped: torch.nn.Module = self.model
        if self.dist.world_size > 1:
            if self.device.type == "cuda":
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None)
        opt = config.optim
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=opt.lr,
                                           betas=(opt.betas[0], opt.betas[1]), eps=opt.eps,
                                           weight_decay=opt.weight_decay, amsgrad=opt.amsgrad)
        self.scheduler = build_scheduler(self.optimizer, opt.schedule,
                                         warmup_steps=opt.warmup_steps)
        data = config.data
        self.mixer = BatchMixer(snr_range=(data.snr_range[0], data.snr_range[1]),
                                integer_snr=data.integer_snr,
                                pairing=data.pairing, seed=config.train.seed,
                                negative_query_prob=data.negative_query_prob)
        self.out_dir = Path(config.train.out_dir) if config.train.out_dir else None
        self._tensorboard: Any = None

    # -- one step -------------------------------------------------------------------------

    def mix(self, batch: dict[str, Any]) -> Mixture:
        """Mix this process's slice of the global batch (same result for any world size).

        ``partner`` indexes the global batch.
        """
        return self._mix(batch)[0]

    def _mix(self, batch: dict[str, Any]) -> tuple[Mixture, list[str] | None]:
        """The mixtures and, with negative queries, each item's interferer caption."""
        waveform = batch["waveform"].to(self.device, non_blocking=True)
        labels = batch["labels"] if self.mixer.pairing == "disjoint" else None
        everything, all_labels = gather_batch(waveform, labels, self.dist)
        mixed = self.mixer(everything, all_labels)
        size = waveform.shape[0]
        mine = slice(self.dist.rank * size, (self.dist.rank + 1) * size)
        # BatchMixer sets every field (partner and use_negative included).
        mixed = Mixture(*(cast(torch.Tensor, t)[mine] for t in mixed))
        if self.mixer.negative_query_prob == 0:
            return mixed, None
        captions = gather_captions(batch["caption"], self.dist)
        partner = cast(torch.Tensor, mixed.partner)
        return mixed, [captions[int(p)] for p in partner.tolist()]

    def negative_condition(self, mixed: Mixture, captions: list[str]) -> torch.Tensor:
        """The negative queries of a mixed batch: each interferer's caption embedded where
        ``mixed.use_negative``, a row of zeros (no negative query) elsewhere.

        Shape:
            output: ``(batch, dim)``.
        """
        embedded = embed_captions(self.encoder, captions, device=self.device)
        use = cast(torch.Tensor, mixed.use_negative).to(embedded.device)[:, None]
        return torch.where(use, embedded, torch.zeros_like(embedded))

    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One optimisation step on a collated batch.

        Returns:
            ``loss``, ``lr`` (the step's learning rate) and ``grad_norm``: the global L2
            norm of the gradient before clipping, computed whether or not
            ``optim.grad_clip_norm`` clips it.

        Raises:
            NonFiniteError: if the gradient norm is NaN or infinite (the parameters are
                left as they were).
        """
        cfg = self.config
        mixed, negative_captions = self._mix(batch)
        condition = embed_captions(self.encoder, batch["caption"], device=self.device)
        queries = [condition]
        if negative_captions is not None:
            queries.append(self.negative_condition(mixed, negative_captions))
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16,
                                  enabled=cfg.train.precision == "bf16")
        with autocast:
            estimate = self.wrapped(mixed.mixture, *queries)
        loss = separation_loss(cfg.train.loss, estimate.float(), mixed,
                               sdr_lambda=cfg.train.sdr_lambda,
                               mixit_snr_max=cfg.train.mixit_snr_max)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in self.model.parameters() if p.grad is not None]
        # The norm before clipping is logged with or without clipping (never a placeholder);
        # computed once, as clip_grad_norm_ would, then used to clip.
        norm = torch.nn.utils.get_total_norm([cast(torch.Tensor, p.grad) for p in params])
        grad_norm = float(norm)
        if not math.isfinite(grad_norm):
            raise NonFiniteError(
                f"Trainer.train_step(): the gradient norm is {grad_norm} at step "
                f"{self.step + 1} (loss {float(loss.detach()):.6g}); the parameters were not "
                "updated: lower optim.lr or train in train.precision=fp32")
        if cfg.optim.grad_clip_norm > 0:
            torch.nn.utils.clip_grads_with_norm_(params, cfg.optim.grad_clip_norm, norm)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        return {"loss": float(loss.detach()), "lr": lr, "grad_norm": grad_norm}

    # -- the loop -------------------------------------------------------------------------

    def loader(self) -> DataLoader[Any]:
        """A loader yielding the batches of steps ``self.step, self.step + 1, ...``."""
        sampler = StepBatchSampler(len(self.train_set), self.config.data.batch_size,  # type: ignore[arg-type]
                                   world_size=self.dist.world_size, rank=self.dist.rank,
                                   seed=self.config.train.seed, start_step=self.step)
        workers = self.config.data.num_workers
        return DataLoader(self.train_set, batch_sampler=sampler, num_workers=workers,
                          collate_fn=collate_captioned,
                          pin_memory=self.device.type == "cuda",
                          persistent_workers=False)

    def fit(self, steps: int | None = None) -> list[dict[str, Any]]:
        """Train until ``steps`` (default: ``config.train.steps``) steps have been taken.

        With an output folder, its ``config.toml`` is (re)written first, so
        ``torchlass train --config out_dir/config.toml --resume out_dir/checkpoint.pt``
        continues the run.

        Returns:
            The log rows of this call (every ``log_every`` steps and at validations).
        """
        cfg = self.config.train
        total = cfg.steps if steps is None else steps
        rows: list[dict[str, Any]] = []
        if self.step >= total:
            return rows
        if self.out_dir is not None and self.dist.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            (self.out_dir / "config.toml").write_text(config_to_toml(self.config),
                                                      encoding="utf-8")
        bar = None
        if self.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=self.step, desc="train", unit="step")
        self.wrapped.train()
        started, losses = time.perf_counter(), []
        batches = iter(self.loader())
        try:
            while self.step < total:
                stats = self.train_step(next(batches))
                losses.append(stats["loss"])
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{stats['loss']:.3f}", lr=f"{stats['lr']:.1e}")
                validate = cfg.val_every > 0 and self.step % cfg.val_every == 0
                if self.step % max(cfg.log_every, 1) == 0 or validate or self.step == total:
                    row = {"step": self.step, "loss": sum(losses) / len(losses),
                           "lr": stats["lr"], "grad_norm": stats["grad_norm"],
                           "seconds": time.perf_counter() - started}
                    losses = []
                    if validate and self.validation_set is not None:
                        row.update({f"val_{k}": v for k, v in self.validate().items()
                                    if k != "count"})
                    rows.append(row)
                    self._log(row)
                if (cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0
                        and self.out_dir is not None):
                    self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
        if self.out_dir is not None:
            self.save_checkpoint(self.out_dir / "checkpoint.pt")
        return rows

    def validate(self) -> dict[str, float]:
        """Mean SDR, SDRi and SI-SDR (dB) on the validation set (main process only)."""
        if self.validation_set is None:
            return {}
        limit = self.config.data.validation_limit
        total = len(self.validation_set)
        count = min(limit, total) if limit > 0 else total
        items = [self.validation_set[i] for i in range(count)]
        result: dict[str, float] = {}
        if self.dist.is_main:
            scores = evaluate_separator(self.model, items, self.encoder, device=self.device)
            result = summarize(scores)["all"]
        if self.dist.world_size > 1:
            torch.distributed.barrier()
        return result

    def _log(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        if self.on_log is not None:
            self.on_log(row)
        if self.out_dir is None:
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        log = self.out_dir / "log.csv"
        new = not log.exists()
        with log.open("a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=_LOG_FIELDS, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)
        if self._tensorboard is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self._tensorboard = False
            else:
                self._tensorboard = SummaryWriter(str(self.out_dir / "tensorboard"))
        if self._tensorboard:
            for key, value in row.items():
                if key != "step" and isinstance(value, float) and math.isfinite(value):
                    self._tensorboard.add_scalar(key, value, row["step"])

    # -- checkpoints ----------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: model, optimiser, scheduler, step, RNGs."""
        return {
            "format": CHECKPOINT_FORMAT,
            "config": config_to_dict(self.config),
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "mixer": self.mixer.state_dict(),
            "rng": _rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore [`state_dict`][torchlass.recipes.trainer.Trainer.state_dict]'s output (the
        configuration is not changed)."""
        load_weights_into(self.model, state["model"], where="the checkpoint",
                          fn="Trainer.load_state_dict")
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.mixer.load_state_dict(state["mixer"])
        _set_rng_state(state["rng"])
        self.step = int(state["step"])

    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        """Write a checkpoint (main process only; returns its path there, else None).

        By default ``out_dir/checkpoint_step{N}.pt`` and ``out_dir/checkpoint.pt`` (the
        latest; [`fit`][torchlass.recipes.trainer.Trainer.fit] also writes it when it ends). Written
        to a temporary file first, then renamed, so an interrupted write never leaves a broken
        checkpoint.
        """
        target = Path(path) if path is not None else None
        if target is None and self.out_dir is None:
            raise CheckpointError("Trainer.save_checkpoint(): argument 'path' expected a path "
                                  "when config.train.out_dir is empty, got None")
        written = None
        if self.dist.is_main:
            state = self.state_dict()
            paths = [target] if target is not None else [
                self.out_dir / f"checkpoint_step{self.step}.pt",  # type: ignore[operator]
                self.out_dir / "checkpoint.pt"]  # type: ignore[operator]
            for file in paths:
                file.parent.mkdir(parents=True, exist_ok=True)
                tmp = file.with_suffix(file.suffix + ".tmp")
                torch.save(state, tmp)
                tmp.replace(file)
            written = paths[0]
        if self.dist.world_size > 1:
            torch.distributed.barrier()
        return written

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint written by
        [`save_checkpoint`][torchlass.recipes.trainer.Trainer.save_checkpoint]."""
        self.load_state_dict(load_checkpoint(path))

    @classmethod
    def config_of(cls, path: str | Path) -> Config:
        """The configuration stored in a checkpoint."""
        return config_from_dict(load_checkpoint(path)["config"])

    def close(self) -> None:
        """Flush the TensorBoard writer, if any."""
        if self._tensorboard:
            with contextlib.suppress(Exception):
                self._tensorboard.close()
