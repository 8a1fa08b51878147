"""LAION-CLAP's text tower as a torchlass text encoder, from a local checkpoint.

The DCASE 2024 baseline conditions its separator on the 512-d, L2-normalised text
embedding of LAION-CLAP (``HTSAT-base`` audio tower, RoBERTa text tower, no fusion,
checkpoint ``music_speech_audioset_epoch_15_esc_89.98.pt``; docs/baseline.md#query-encoder). This
adapter
loads such a checkpoint from a file the user gives and never downloads one. ``laion_clap``
is an optional dependency (``pip install "torchlass[clap]"``) imported only when the
adapter is built; note that ``laion_clap`` itself fetches the ``roberta-base`` tokenizer
from the Hugging Face hub unless it is already in the local cache.
[`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder] runs the same tower on
``transformers`` alone, from a local tokenizer folder.

Token count: ``laion_clap``'s own tokenizer pads and truncates captions to 77 tokens, but
the baseline's ``clap_encoder.py`` (the embeddings its separator was trained on) uses 512.
The adapter therefore tokenises with ``max_length=512`` by default; pass 77 for LAION's.
The two differ only for captions longer than 75 tokens.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path

import torch

from torchlass.checks import check_positive_int
from torchlass.errors import TorchlassError
from torchlass.query.protocol import check_captions

__all__ = ["ClapTextEncoder"]


class ClapTextEncoder:
    """Embed captions with LAION-CLAP's text tower, loaded from a local checkpoint.

    The model is put in eval mode (the baseline's training ran it in train mode, with
    dropout; docs/baseline.md#query-encoder, not reproduced). A single caption is embedded as a
    batch of
    two and the first row kept, as the baseline does.

    Args:
        checkpoint: path of a LAION-CLAP checkpoint (``.pt``).
        amodel: audio tower name the checkpoint was trained with (``"HTSAT-base"`` for
            the baseline's checkpoint).
        enable_fusion: whether the checkpoint uses feature fusion (False for the baseline).
        max_length: tokens per caption (padded and truncated to it): 512 as the baseline's
            ``clap_encoder.py``, 77 as ``laion_clap``'s own tokenizer.
        device: where the text tower runs.

    Shape:
        Output: ``(len(captions), 512)``, float32, rows of unit L2 norm, on the CPU.

    Raises:
        FileNotFoundError: if ``checkpoint`` does not exist.
        TorchlassError: if ``laion_clap`` is not installed.
    """

    dim = 512

    def __init__(self, checkpoint: str | Path, *, amodel: str = "HTSAT-base",
                 enable_fusion: bool = False, max_length: int = 512,
                 device: str | torch.device = "cpu") -> None:
        path = Path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"ClapTextEncoder(): argument 'checkpoint' expected an existing file, "
                f"got {str(path)!r}"
            )
        try:
            laion_clap = importlib.import_module("laion_clap")
        except ImportError as err:
            raise TorchlassError(
                "ClapTextEncoder() needs the optional dependency laion-clap: "
                "pip install 'torchlass[clap]'"
            ) from err
        self.max_length = check_positive_int(max_length, "ClapTextEncoder", "max_length")
        self.device = torch.device(device)
        self.model = laion_clap.CLAP_Module(enable_fusion=enable_fusion, amodel=amodel,
                                            device=self.device)
        self.model.load_ckpt(ckpt=str(path), verbose=False)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def _tokenize(self, captions: list[str]) -> dict[str, torch.Tensor]:
        out = self.model.tokenize(captions, padding="max_length", truncation=True,
                                  max_length=self.max_length, return_tensors="pt")
        return {k: v.squeeze(0) for k, v in out.items()}  # as laion_clap's own tokenizer

    @torch.no_grad()
    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        """Embed ``captions``; see the class docstring."""
        captions = check_captions(captions, "ClapTextEncoder")
        batch = captions * 2 if len(captions) == 1 else captions
        out = self.model.get_text_embedding(batch, tokenizer=self._tokenize, use_tensor=True)
        return out[: len(captions)].detach().to("cpu", torch.float32)
