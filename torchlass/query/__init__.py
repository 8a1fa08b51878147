"""Queries: the encoder protocols, a built-in hashed encoder, CLAP's towers, a cache.

A separator is conditioned on an embedding of the caption.
[`TextEncoder`][torchlass.query.TextEncoder] is the protocol (a ``dim`` and a call on a list of
captions); [`HashedTextEncoder`][torchlass.query.HashedTextEncoder] is a deterministic stand-in that
needs no download (tests, the demo); [`ClapTextEncoder`][torchlass.query.ClapTextEncoder] loads
LAION-CLAP's text tower through ``laion_clap``;
[`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder] builds the same tower on
``transformers`` from the weights inside an AudioSep/DCASE checkpoint or a LAION-CLAP ``.pt``;
[`load_clap_audio_encoder`][torchlass.query.load_clap_audio_encoder] builds CLAP's audio tower
(HTSAT) from the same file and [`load_clap_encoder`][torchlass.query.load_clap_encoder] both
(captions and example clips in one space);
[`CachedTextEncoder`][torchlass.query.CachedTextEncoder] embeds each distinct caption once.
"""

from torchlass.query.cache import CachedTextEncoder
from torchlass.query.clap import ClapTextEncoder
from torchlass.query.clap_audio import ClapAudioTower, clap_audio_windows, load_clap_audio_encoder
from torchlass.query.clap_encoder import ClapEncoder, load_clap_encoder
from torchlass.query.clap_text import ClapTextTower, load_clap_text_encoder
from torchlass.query.hashed import HashedTextEncoder, content_words
from torchlass.query.protocol import (
    AudioEncoder,
    AudioQuery,
    Query,
    TextEncoder,
    check_captions,
    check_queries,
    embed_audio,
    embed_captions,
    embed_queries,
    embeds_audio,
    query_name,
)

__all__ = [
    "AudioEncoder",
    "AudioQuery",
    "CachedTextEncoder",
    "ClapAudioTower",
    "ClapEncoder",
    "ClapTextEncoder",
    "ClapTextTower",
    "HashedTextEncoder",
    "Query",
    "TextEncoder",
    "check_captions",
    "check_queries",
    "clap_audio_windows",
    "content_words",
    "embed_audio",
    "embed_captions",
    "embed_queries",
    "embeds_audio",
    "load_clap_audio_encoder",
    "load_clap_encoder",
    "load_clap_text_encoder",
    "query_name",
]
