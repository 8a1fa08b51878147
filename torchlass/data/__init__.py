"""Data for LASS training and evaluation: caption lists, audio, mixing, validation recipes.

Caption lists in the DCASE JSON, Clotho and AudioCaps formats
([`captions`][torchlass.data.captions]); audio reading, resampling and cropping
([`audio`][torchlass.data.audio]); datasets and their collate function
([`dataset`][torchlass.data.dataset]); the baseline's on-the-fly mixing
([`mixing`][torchlass.data.mixing]); the challenge's validation recipe
([`validation`][torchlass.data.validation]); real recordings to score without references
([`recordings`][torchlass.data.recordings]); and a synthetic captioned sound collection that needs
no download ([`synthetic`][torchlass.data.synthetic]). Each part works on its own.
"""

from torchlass.data.audio import (
    AudioFileError,
    audio_info,
    fit_length,
    read_audio,
    resample,
    write_audio,
)
from torchlass.data.captions import (
    CaptionedAudio,
    MissingAudioWarning,
    read_audiocaps_csv,
    read_clotho_csv,
    read_dcase_json,
)
from torchlass.data.dataset import (
    CaptionedAudioDataset,
    ShortAudioWarning,
    TensorCaptionDataset,
    collate_captioned,
)
from torchlass.data.mixing import (
    BatchMixer,
    Mixture,
    disjoint_partners,
    draw_negative_queries,
    draw_snr,
    match_energy,
    mix_at_snr,
    next_partners,
)
from torchlass.data.recordings import RecordedMixtures, read_mixture_captions
from torchlass.data.synthetic import (
    SYNTHETIC_CAPTIONS,
    SyntheticClip,
    synthesize,
    synthetic_collection,
)
from torchlass.data.validation import (
    RecipeRow,
    ValidationMixtures,
    read_validation_recipe,
    write_validation_recipe,
)

__all__ = [
    "SYNTHETIC_CAPTIONS",
    "AudioFileError",
    "BatchMixer",
    "CaptionedAudio",
    "CaptionedAudioDataset",
    "MissingAudioWarning",
    "Mixture",
    "RecipeRow",
    "RecordedMixtures",
    "ShortAudioWarning",
    "SyntheticClip",
    "TensorCaptionDataset",
    "ValidationMixtures",
    "audio_info",
    "collate_captioned",
    "disjoint_partners",
    "draw_negative_queries",
    "draw_snr",
    "fit_length",
    "match_energy",
    "mix_at_snr",
    "next_partners",
    "read_audio",
    "read_audiocaps_csv",
    "read_clotho_csv",
    "read_dcase_json",
    "read_mixture_captions",
    "read_validation_recipe",
    "resample",
    "synthesize",
    "synthetic_collection",
    "write_audio",
    "write_validation_recipe",
]
