"""Batched encoding of images and texts through one content-addressed feature cache.

Why one cache: zero-shot, linear probe and retrieval over the same images should encode
each image once per checkpoint, and an interrupted run should lose at most one chunk.

Why content addressing: a cache entry's name is the hash of everything that can change
its numbers (model fingerprint, preprocess fingerprint, precision, feature kind and
parameters, and the sha256 of every input file's bytes or of every text), so a stale
entry can never be found; it simply has another name.

The package splits along its reasons to change: :mod:`.store` (the checksummed chunk files),
:mod:`.media` (reading images and video frames), :mod:`.kinds` (the registry of feature kinds
and what they return), :mod:`.base` (the path every kind shares: batching, strict/skip,
padding, the cache) and :mod:`.extractor` (the built-in kinds).
"""

from coca_bench.data.video import FrameSampling
from coca_bench.features.base import DEFAULT_CHUNK_SIZE, ExtractorBase
from coca_bench.features.extractor import FeatureExtractor
from coca_bench.features.kinds import (
    FEATURE_KINDS,
    FeatureExtractionError,
    FeatureKindError,
    GeneratedCaptions,
    ImageEmbeddings,
    VideoEmbeddings,
    feature_kind,
)
from coca_bench.features.media import file_content_key
from coca_bench.features.store import (
    CACHE_FORMAT_VERSION,
    CacheStats,
    ChunkLookup,
    ChunkStore,
    EncodedItem,
    chunk_checksum,
)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "DEFAULT_CHUNK_SIZE",
    "FEATURE_KINDS",
    "CacheStats",
    "ChunkLookup",
    "ChunkStore",
    "EncodedItem",
    "ExtractorBase",
    "FeatureExtractionError",
    "FeatureExtractor",
    "FeatureKindError",
    "FrameSampling",
    "GeneratedCaptions",
    "ImageEmbeddings",
    "VideoEmbeddings",
    "chunk_checksum",
    "feature_kind",
    "file_content_key",
]
