"""Build the separator and the text encoder a configuration describes.

[`build_separator`][torchlass.recipes.build_separator] maps
[`ModelConfig`][torchlass.recipes.ModelConfig] onto the
[`torchlass.Separator`][torchlass.separator.Separator] constructors (the DCASE 2024 baseline, SRPOL
system 1, the true complex ratio mask, system 1 with a negative query) with the configured STFT
and ResUNet widths;
[`build_text_encoder`][torchlass.recipes.build_text_encoder] gives the configured query encoder
behind a [`CachedTextEncoder`][torchlass.query.CachedTextEncoder].
"""

from __future__ import annotations

from typing import Any

from torchlass.checks import check_choice
from torchlass.errors import ValueRangeError
from torchlass.query import CachedTextEncoder, ClapTextEncoder, HashedTextEncoder
from torchlass.recipes.config import ModelConfig, QueryConfig
from torchlass.separator import Separator

__all__ = ["ARCHITECTURES", "build_separator", "build_text_encoder"]

#: Names accepted by ``ModelConfig.architecture``: the [`Separator`][torchlass.separator.Separator]
#: constructor each one calls.
ARCHITECTURES = ("dcase2024_baseline", "srpol_system1", "complex_ratio_mask",
                 "srpol_negative_query")


def build_separator(config: ModelConfig) -> Separator:
    """A freshly initialised [`Separator`][torchlass.separator.Separator] for ``config``.

    Args:
        config: the model section of a training configuration.

    Returns:
        The separator (train mode, on the CPU).

    Raises:
        ValueRangeError: for an unknown architecture, or a mask bound given to the
            baseline (its magnitude/phase mask has none).

    Examples:
        >>> from torchlass.recipes import get_config
        >>> cfg = get_config("srpol_system1").model
        >>> cfg.widths, cfg.pools, cfg.stem_width = (4, 8), ((2, 2), (2, 2)), 4
        >>> type(build_separator(cfg).head).__name__
        'RealImagMaskHead'
    """
    check_choice(config.architecture, "build_separator", "architecture", ARCHITECTURES)
    options: dict[str, Any] = {
        "num_sources": config.num_sources, "condition_size": config.condition_size,
        "n_fft": config.n_fft, "hop_length": config.hop_length,
        "sample_rate": config.sample_rate, "stem_width": config.stem_width,
        "widths": tuple(config.widths), "pools": tuple(tuple(p) for p in config.pools),
        "film_scale": config.film_scale,
    }
    if config.mask_bound:
        if config.architecture == "dcase2024_baseline":
            raise ValueRangeError(
                "build_separator(): argument 'mask_bound' expected '' for the "
                f"dcase2024_baseline architecture, got {config.mask_bound!r}"
            )
        options["bound"] = config.mask_bound
    return getattr(Separator, config.architecture)(**options)


def build_text_encoder(config: QueryConfig, *, dim: int = 512) -> CachedTextEncoder:
    """The configured text encoder, wrapped in a
    [`CachedTextEncoder`][torchlass.query.CachedTextEncoder].

    Args:
        config: the query section of a training configuration.
        dim: embedding size for the hashed encoder (CLAP's is 512).

    Returns:
        The cached encoder.

    Raises:
        ValueRangeError: for an unknown encoder name.
        FileNotFoundError: if the CLAP checkpoint does not exist.
    """
    check_choice(config.encoder, "build_text_encoder", "encoder", ("clap", "hashed"))
    if config.encoder == "hashed":
        return CachedTextEncoder(HashedTextEncoder(dim=dim))
    return CachedTextEncoder(ClapTextEncoder(config.clap_checkpoint, amodel=config.clap_amodel))
