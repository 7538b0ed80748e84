"""Text and image encoders behind one protocol (`Encoder`), with an on-disk embedding cache.

Build one from a spec string with `make_encoder("minilm", "text")`; encode with
`encode_cached(encoder, items, EmbeddingCache(dir))` to compute each distinct item once.
Heavy models are imported lazily: the core never imports torch.
"""

from dupsearch.encoders.base import (
    IMAGE_ENCODERS,
    TEXT_ENCODERS,
    EmbeddingCache,
    Encoder,
    MissingDependencyError,
    content_key,
    default_cache_dir,
    encode_cached,
    l2_normalize,
    load_encoder,
    make_encoder,
    parse_spec,
    require,
    spec_name,
)

__all__ = ["Encoder", "EmbeddingCache", "MissingDependencyError", "TEXT_ENCODERS", "IMAGE_ENCODERS",
           "content_key", "default_cache_dir", "encode_cached", "l2_normalize", "load_encoder",
           "make_encoder", "parse_spec", "require", "spec_name"]
