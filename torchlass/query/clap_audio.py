"""CLAP's audio tower (HTSAT) on ``transformers``, built from the weights in a checkpoint.

LAION-CLAP (Wu et al., ICASSP 2023) embeds a clip with HTSAT (Chen et al., ICASSP 2022):
the log-mel front-end of [`clap_mel`][torchlass.query.clap_mel], ``bn0`` over the mel bins,
the mel map folded into a 256 x 256 image, a Swin transformer, the mean of its last tokens,
then ``audio_projection`` (Linear -> ReLU -> Linear) and L2 normalisation to 512 values: the
space its text tower embeds captions into. AudioSep's and the DCASE 2024 baseline's
checkpoints keep the whole CLAP model, so the same file that gives the separator and the
text tower gives the audio tower (``query_encoder.model.audio_branch.*`` and
``query_encoder.model.audio_projection.*``); a LAION-CLAP ``.pt`` has it under
``audio_branch.*`` (``module.`` prefixed after data-parallel training).
[`load_clap_audio_encoder`][torchlass.query.load_clap_audio_encoder] rebuilds it on
``transformers``' ``ClapAudioModel`` (see [`htsat`][torchlass.query.htsat] for the names and
checks) -- no ``laion_clap``, no ``torchlibrosa``, no download.

The input rule ([`clap_audio_windows`][torchlass.query.clap_audio_windows]) is LAION's
``get_audio_embedding_from_data`` with ``repeatpad`` for clips of at most 10 s. For longer
clips LAION embeds one *random* 10-s crop (``rand_trunc``); here the embedding must not
depend on a draw, so the clip is cut into consecutive 10-s windows (the last one ending at
the clip's end: every sample is seen and no window is padded, as LAION never padded a long
clip), each window is embedded, and the mean of the unit embeddings is renormalised. Each
window is a crop the tower was trained on, and the mean is the direction of the expected
crop embedding over the clip. (AudioSep's own, unused, audio-query path differs slightly:
it resamples with ``torchaudio``'s sinc filter and skips the int16 round trip.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from torchlass.checks import check_finite, check_positive_int, check_real_floating, check_tensor
from torchlass.errors import ShapeError
from torchlass.query.clap_checkpoint import clap_state, read_tower, tower_prefixes
from torchlass.query.clap_mel import CLAP_CLIP_SAMPLES, CLAP_SAMPLE_RATE, clap_log_mel

__all__ = ["ClapAudioTower", "clap_audio_windows", "has_clap_audio_tower",
           "load_clap_audio_encoder", "read_audio_tower_state"]

_FN = "load_clap_audio_encoder"
_ANCHOR = "audio_branch.patch_embed.proj.weight"  # HTSAT only: a PANN tower has no patches
_INT16 = 32767.0  # LAION's float32_to_int16 scale (not 32768)


def clap_audio_windows(audio: torch.Tensor, sample_rate: int, *,
                       fn: str = "clap_audio_windows") -> torch.Tensor:
    """CLAP's input rule: mono, 48 kHz, int16-quantised, cut or repeat-padded to 10-s windows.

    1. Channels are averaged; the audio is resampled to 48 kHz with
       [`resample`][torchlass.data.audio.resample] (polyphase, ``resample_poly``).
    2. LAION's int16 round trip: ``trunc(32767 clip(x, -1, 1)) / 32767``.
    3. A clip of at most ``L = 480000`` samples (10 s) is repeated ``L // time`` times and
       zero-padded to ``L`` (LAION's ``repeatpad``): one window.
    4. A longer clip gives ``ceil(time / L)`` windows starting at ``0, L, 2 L, ...``, the
       last one moved back to end at the clip's end.

    Args:
        audio: float audio at ``sample_rate`` Hz (any floating dtype, any device).
        sample_rate: in Hz.
        fn: the public function named in error messages.

    Returns:
        float32 windows at 48 kHz, on the CPU.

    Shape:
        ``audio``: ``(n, time)`` or ``(n, channels, time)``; output: ``(n, windows,
        480000)``.

    Raises:
        DTypeError: ``audio`` is not a real floating-point tensor, or ``sample_rate`` not
            an int.
        ShapeError: ``audio`` is not 2-d or 3-d, or holds no clip, channel or sample.
        NonFiniteError: ``audio`` holds NaN or Inf.
        ValueRangeError: ``sample_rate < 1``.

    Examples:
        >>> clap_audio_windows(torch.zeros(2, 1, 16000), 16000).shape
        torch.Size([2, 1, 480000])
        >>> clap_audio_windows(torch.zeros(1, 1_000_000), 48000).shape
        torch.Size([1, 3, 480000])
    """
    check_tensor(audio, fn, "audio")
    check_real_floating(audio, fn, "audio")
    if audio.dim() not in (2, 3) or 0 in audio.shape:
        raise ShapeError(f"{fn}(): argument 'audio' expected a non-empty (n, time) or (n, "
                         f"channels, time) tensor, got shape {tuple(audio.shape)}")
    check_finite(audio, fn, "audio")
    check_positive_int(sample_rate, fn, "sample_rate")
    from torchlass.data.audio import resample

    x = audio.detach().to("cpu", torch.float64)
    x = x.mean(1) if x.dim() == 3 else x
    x = resample(x, sample_rate, CLAP_SAMPLE_RATE).float()
    x = torch.trunc(x.clamp(-1.0, 1.0) * _INT16) / _INT16
    time, length = x.shape[-1], CLAP_CLIP_SAMPLES
    if time <= length:
        x = x.repeat(1, length // time)
        return F.pad(x, (0, length - x.shape[-1]))[:, None]
    starts = [*range(0, time - length, length), time - length]
    return torch.stack([x[:, s:s + length] for s in starts], dim=1)


def read_audio_tower_state(source: str | os.PathLike | Mapping) -> dict:
    """Find CLAP's HTSAT audio tower in a checkpoint and return its tensors.

    Args:
        source: path of an AudioSep/DCASE Lightning checkpoint or a LAION-CLAP ``.pt``
            (read by [`read_checkpoint`][torchlass.checkpoints.read_checkpoint], tensors
            only), or such a checkpoint already loaded.

    Returns:
        The tower's tensors keyed ``audio_branch.*`` and ``audio_projection.*``.

    Raises:
        CheckpointError: if the file is missing or cannot be read safely, or holds no (or
            several) HTSAT audio towers.
    """
    tower, _ = read_tower(source, anchor=_ANCHOR, what="CLAP HTSAT audio tower", fn=_FN,
                          branches=("audio_branch.", "audio_projection."))
    return tower


def has_clap_audio_tower(checkpoint: Mapping) -> bool:
    """Whether a loaded checkpoint holds exactly one CLAP HTSAT audio tower."""
    return len(tower_prefixes(clap_state(checkpoint, _FN), _ANCHOR)) == 1


class ClapAudioTower(nn.Module):
    """LAION-CLAP's audio embedding: log-mel -> HTSAT -> projection -> L2 normalisation.

    Built by [`load_clap_audio_encoder`][torchlass.query.load_clap_audio_encoder]; follows
    the [`AudioEncoder`][torchlass.query.AudioEncoder] protocol. Calling it and
    ``embed_audio`` are the same.

    Args:
        htsat: a ``transformers.ClapAudioModel`` with LAION's weights.
        projection: ``Linear(features, dim) -> ReLU -> Linear(dim, dim)``.
        filterbank: the Slaney mel filter bank, ``(513, mels)`` (kept as a buffer).
        batch_size: 10-s windows per forward pass.

    Shape:
        ``audio``: ``(n, time)`` or ``(n, channels, time)`` at ``sample_rate`` Hz; output:
        ``(n, dim)``, float32, rows of unit L2 norm, on the CPU.
    """

    sample_rate = CLAP_SAMPLE_RATE
    filterbank: torch.Tensor

    def __init__(self, htsat: nn.Module, projection: nn.Sequential, filterbank: torch.Tensor,
                 *, batch_size: int = 8) -> None:
        super().__init__()
        self.htsat = htsat
        self.projection = projection
        self.register_buffer("filterbank", filterbank.float())
        self.batch_size = batch_size
        self.dim = [m for m in projection if isinstance(m, nn.Linear)][-1].out_features

    def embed_windows(self, windows: torch.Tensor) -> torch.Tensor:
        """Unit embeddings of prepared 48-kHz windows, ``(m, 480000)`` -> ``(m, dim)``."""
        rows = []
        for start in range(0, windows.shape[0], self.batch_size):
            chunk = windows[start:start + self.batch_size].to(self.filterbank.device)
            mel = clap_log_mel(chunk, self.filterbank)[:, None]  # (b, 1, frames, mels)
            pooled = self.htsat(input_features=mel).pooler_output
            rows.append(F.normalize(self.projection(pooled), dim=-1))
        return torch.cat(rows)

    @torch.no_grad()
    def forward(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """Embed ``audio`` at ``sample_rate`` Hz; see the class docstring.

        Raises:
            DTypeError, ShapeError, NonFiniteError, ValueRangeError: bad ``audio`` or
                ``sample_rate``, as in
                [`clap_audio_windows`][torchlass.query.clap_audio_windows].
        """
        windows = clap_audio_windows(audio, sample_rate, fn="ClapAudioTower")
        n, count, length = windows.shape
        unit = self.embed_windows(windows.reshape(n * count, length)).reshape(n, count, -1)
        return F.normalize(unit.mean(1), dim=-1).to("cpu", torch.float32)

    def embed_audio(self, audio: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """The [`AudioEncoder`][torchlass.query.AudioEncoder] call: the same as ``self(...)``."""
        return self(audio, sample_rate)


def load_clap_audio_encoder(checkpoint: str | os.PathLike | Mapping, *, spec_size: int = 256,
                            batch_size: int = 8, device: str | torch.device = "cpu"
                            ) -> ClapAudioTower:
    """Build CLAP's audio tower from a checkpoint's weights.

    Sizes (patch embedding, stages, blocks, heads, window, MLP width, mel bins, embedding
    size) come from the weight shapes; loading is strict, and the stored front-end and
    window buffers are checked against the formulas (see [`htsat`][torchlass.query.htsat]).

    Args:
        checkpoint: an AudioSep / DCASE 2024 baseline Lightning checkpoint (the tower under
            ``query_encoder.model.``) or a LAION-CLAP ``.pt`` (HTSAT, without feature
            fusion), as a path or a loaded dict.
        spec_size: HTSAT's spectrogram image side (256 in every LAION configuration).
        batch_size: 10-s windows per forward pass.
        device: where the tower runs.

    Returns:
        A [`ClapAudioTower`][torchlass.query.ClapAudioTower] in eval mode.

    Raises:
        CheckpointError: if the checkpoint is missing or unreadable (see
            [`read_checkpoint`][torchlass.checkpoints.read_checkpoint]), holds no HTSAT
            tower, a weight is missing, unexpected or mis-shaped, or a stored front-end or
            window buffer differs from LAION-CLAP's.
        DTypeError, ValueRangeError: ``spec_size`` or ``batch_size`` is not a positive int.
    """
    from torchlass.query.clap_text import import_transformers
    from torchlass.query.htsat import build_htsat

    spec_size = check_positive_int(spec_size, _FN, "spec_size")
    batch_size = check_positive_int(batch_size, _FN, "batch_size")
    state = read_audio_tower_state(checkpoint)
    import_transformers(_FN)
    htsat, projection, filterbank = build_htsat(state, spec_size=spec_size)
    tower = ClapAudioTower(htsat, projection, filterbank, batch_size=batch_size)
    tower.requires_grad_(False)
    return tower.to(device).eval()
