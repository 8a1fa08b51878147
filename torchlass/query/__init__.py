"""Text queries: the encoder protocol, a built-in hashed encoder, a CLAP adapter, a cache.

A separator is conditioned on an embedding of the caption.
[`TextEncoder`][torchlass.query.TextEncoder] is the protocol (a ``dim`` and a call on a list of
captions); [`HashedTextEncoder`][torchlass.query.HashedTextEncoder] is a deterministic stand-in that
needs no download (tests, the demo); [`ClapTextEncoder`][torchlass.query.ClapTextEncoder] loads
LAION-CLAP's text tower through ``laion_clap``;
[`load_clap_text_encoder`][torchlass.query.load_clap_text_encoder] builds the same tower on
``transformers`` from the weights inside an AudioSep/DCASE checkpoint or a LAION-CLAP ``.pt``;
[`CachedTextEncoder`][torchlass.query.CachedTextEncoder] embeds each distinct caption once.
"""

from torchlass.query.cache import CachedTextEncoder
from torchlass.query.clap import ClapTextEncoder
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
    "ClapTextEncoder",
    "ClapTextTower",
    "HashedTextEncoder",
    "Query",
    "TextEncoder",
    "check_captions",
    "check_queries",
    "content_words",
    "embed_audio",
    "embed_captions",
    "embed_queries",
    "embeds_audio",
    "load_clap_text_encoder",
    "query_name",
]
