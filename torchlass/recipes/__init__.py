"""Recipes: configurations, the training loop, evaluation and the demo, built from the parts.

[`config`][torchlass.recipes.config] holds the named configurations (the DCASE 2024 baseline,
SRPOL's systems, MixIT, the SDR-based loss, the complex ratio mask) and their CLI
overrides; [`build_train_set`][torchlass.recipes.datasets.build_train_set] and
[`build_validation_set`][torchlass.recipes.datasets.build_validation_set] read the data
they name; [`Trainer`][torchlass.recipes.Trainer] trains one;
[`evaluate_separator`][torchlass.recipes.evaluate_separator] and
[`summarize`][torchlass.recipes.summarize] compute the challenge's table;
[`run_demo`][torchlass.recipes.demo.run_demo] is ``torchlass demo``. Each piece can be used from a
user's own loop.
"""

from torchlass.recipes.config import (
    PRESETS,
    Config,
    DataConfig,
    ModelConfig,
    OptimConfig,
    QueryConfig,
    TrainConfig,
    apply_overrides,
    config_from_dict,
    config_to_dict,
    config_to_toml,
    get_config,
    load_config,
)
from torchlass.recipes.datasets import LIST_FORMATS, build_train_set, build_validation_set
from torchlass.recipes.distributed import (
    DistInfo,
    gather_batch,
    gather_captions,
    init_distributed,
)
from torchlass.recipes.evaluate import (
    ItemScore,
    evaluate_separator,
    format_table,
    snr_bucket,
    summarize,
    write_item_csv,
)
from torchlass.recipes.model import ARCHITECTURES, build_separator, build_text_encoder
from torchlass.recipes.objectives import LOSSES, separation_loss
from torchlass.recipes.sampler import StepBatchSampler
from torchlass.recipes.schedule import (
    SCHEDULES,
    baseline_warmup,
    build_scheduler,
    constant,
    linear_warmup,
)
from torchlass.recipes.trainer import (
    CHECKPOINT_FORMAT,
    Trainer,
    checkpoint_kind,
    load_checkpoint,
    load_model_weights,
)

__all__ = [
    "ARCHITECTURES",
    "CHECKPOINT_FORMAT",
    "LIST_FORMATS",
    "LOSSES",
    "PRESETS",
    "SCHEDULES",
    "Config",
    "DataConfig",
    "DistInfo",
    "ItemScore",
    "ModelConfig",
    "OptimConfig",
    "QueryConfig",
    "StepBatchSampler",
    "TrainConfig",
    "Trainer",
    "apply_overrides",
    "baseline_warmup",
    "build_scheduler",
    "build_separator",
    "build_text_encoder",
    "build_train_set",
    "build_validation_set",
    "checkpoint_kind",
    "config_from_dict",
    "config_to_dict",
    "config_to_toml",
    "constant",
    "evaluate_separator",
    "format_table",
    "gather_batch",
    "gather_captions",
    "get_config",
    "init_distributed",
    "linear_warmup",
    "load_checkpoint",
    "load_config",
    "load_model_weights",
    "separation_loss",
    "snr_bucket",
    "summarize",
    "write_item_csv",
]
