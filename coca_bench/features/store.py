"""The checksummed chunk store under the feature cache: naming, atomic writes, reads verified against a checksum.

Why chunks: inputs are stored in chunks of ``chunk_size`` consecutive items, each written atomically as soon as it is
complete, so an interrupted run loses at most one chunk. A chunk holds the reason any of its items was skipped, so a
cached chunk reproduces the same skip list, and a sha256 of its contents that is checked on every read, so a damaged
chunk is recomputed rather than served.

Layout (read by :mod:`coca_bench.cache_admin`): ``<cache dir>/<kind>/<namespace[:16]>/<chunk key>.npz``, where the
namespace is the hash of everything that can change a kind's numbers and the chunk key adds the chunk's item keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from coca_bench.cache import CHUNK_SUFFIX, mark_feature_cache
from coca_bench.fileio import atomic_file, sha256_text

CACHE_FORMAT_VERSION = 2
log = logging.getLogger("coca_bench.features")

# One encoded item: its feature vector, or the reason it was skipped.
EncodedItem = tuple[int, "np.ndarray | str"]
StoredChunk = tuple[list["np.ndarray | None"], list[str]]


@dataclass
class CacheStats:
    """Counters for provenance: how much of a task came from the cache."""

    chunks_from_cache: int = 0
    chunks_encoded: int = 0
    items_encoded: int = 0
    chunks_invalid: int = 0  # present on disk but damaged (truncated, bit-flipped, no checksum): recomputed

    def as_dict(self) -> dict[str, int]:
        return {
            "chunks_from_cache": self.chunks_from_cache,
            "chunks_encoded": self.chunks_encoded,
            "items_encoded": self.items_encoded,
            "chunks_invalid": self.chunks_invalid,
        }


@dataclass
class ChunkLookup:
    """One call's items in cache chunks: what the cache held (``vectors`` / ``reasons`` filled in) and the chunk
    indices still ``missing``; the single-process and the distributed extractor both fill and store through it."""

    kind: str
    namespace: str
    chunks: list[range]
    paths: list[Path | None] = field(default_factory=list)
    vectors: list[np.ndarray | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)


def namespace_key(identity: Mapping[str, Any]) -> str:
    """The namespace of a kind's chunks: the hash of everything that can change its numbers."""
    return sha256_text(json.dumps(dict(identity), sort_keys=True, default=str))


class ChunkStore:
    """Chunks of ``chunk_size`` items under ``cache_dir`` (None: nothing is stored, everything is a miss).

    ``force`` (``--force``) serves no stored chunk, yet a chunk this store wrote is served again, so a second task of
    the same run reuses what the run computed.
    """

    def __init__(self, cache_dir: Path | None, chunk_size: int, force: bool = False) -> None:
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1; got {chunk_size}.")
        self.cache_dir, self.chunk_size, self.force = cache_dir, chunk_size, force
        self.stats = CacheStats()
        self._refreshed: set[Path | None] = set()  # chunks written by this store (--force recomputes each once)

    def lookup(self, kind: str, namespace: str, item_keys: list[str]) -> ChunkLookup:
        """Split ``item_keys`` into chunks and fill in every chunk the cache holds."""
        size = self.chunk_size
        chunks = [range(s, min(s + size, len(item_keys))) for s in range(0, len(item_keys), size)]
        lookup = ChunkLookup(kind, namespace, chunks, [], [None] * len(item_keys), [""] * len(item_keys), [])
        for index, chunk in enumerate(chunks):
            keys = [item_keys[i] for i in chunk]
            path = self._path(kind, namespace, keys)
            lookup.paths.append(path)
            stale = self.force and path not in self._refreshed  # --force: recompute once per run
            stored = None if stale else self._read(path, keys)
            if stored is None:
                lookup.missing.append(index)
                continue
            self.stats.chunks_from_cache += 1
            for position, vector, reason in zip(chunk, *stored):
                lookup.vectors[position], lookup.reasons[position] = vector, reason
        return lookup

    def save(self, lookup: ChunkLookup, index: int, item_keys: list[str]) -> None:
        """Write chunk ``index`` of ``lookup`` once all its items are in."""
        chunk, path = lookup.chunks[index], lookup.paths[index]
        mark_feature_cache(self.cache_dir)  # `cache prune` deletes only inside a folder that carries the marker
        keys = [item_keys[i] for i in chunk]
        _write_chunk(path, keys, [lookup.vectors[i] for i in chunk], [lookup.reasons[i] for i in chunk])
        self._refreshed.add(path)
        self.stats.chunks_encoded += 1
        self.stats.items_encoded += len(chunk)

    def _path(self, kind: str, namespace: str, keys: list[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        chunk_key = sha256_text(namespace + "\n" + "\n".join(keys))
        return self.cache_dir / kind / namespace[:16] / f"{chunk_key}{CHUNK_SUFFIX}"

    def _read(self, path: Path | None, keys: list[str]) -> StoredChunk | None:
        """The chunk's per-item vectors and reasons, or None if absent or unusable (then it is re-encoded).

        A file that exists but fails its checksum (a torn write on a filesystem without atomic rename, a truncated
        copy, a flipped bit) is counted in ``stats.chunks_invalid`` and logged, never served.
        """
        if path is None or not path.is_file():
            return None
        stored, problem = _load_verified_chunk(path, keys)
        if stored is None:
            self.stats.chunks_invalid += 1
            log.warning("feature cache chunk %s is unusable (%s); recomputing it.", path, problem)
        else:  # its mtime says when it was last used: `cache prune --older-than` keeps what runs still read
            with contextlib.suppress(OSError):  # a read-only shared cache only loses that hint
                os.utime(path)
        return stored


def stack(vectors: Sequence[np.ndarray | None]) -> np.ndarray:
    """The kept vectors as one array (``[0, 0]`` float32 when none is kept)."""
    kept = [v for v in vectors if v is not None]
    return np.stack(kept) if kept else np.zeros((0, 0), dtype=np.float32)


def chunk_checksum(keys: Sequence[str], reasons: Sequence[str], features: np.ndarray) -> str:
    """sha256 over a chunk's item keys, skip reasons and feature bytes (with dtype and shape), stored in the chunk."""
    digest = hashlib.sha256()
    header = [list(map(str, keys)), list(map(str, reasons)), features.dtype.str, list(features.shape)]
    digest.update(json.dumps(header).encode("utf-8"))
    digest.update(np.ascontiguousarray(features).tobytes())
    return digest.hexdigest()


def _write_chunk(path: Path | None, keys: list[str], vectors: list[np.ndarray | None], reasons: list[str]) -> None:
    if path is None:
        return
    features = stack(vectors)  # fp32, or fp16 tokens as asked
    with atomic_file(path, "wb") as handle:  # readers see the whole chunk or none of it
        np.savez(
            handle,
            item_keys=np.array(keys),
            skip_reasons=np.array(reasons, dtype=str),
            features=features,
            checksum=np.array(chunk_checksum(keys, reasons, features)),
        )


def _load_verified_chunk(path: Path, keys: list[str]) -> tuple[StoredChunk | None, str]:
    """(vectors, reasons) of a chunk whose checksum matches, else (None, what is wrong with it)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            if "checksum" not in stored.files:
                return None, "no checksum (written by an older version)"
            stored_keys, reasons, features = stored["item_keys"], stored["skip_reasons"], stored["features"]
            checksum = str(stored["checksum"])
    except Exception as exc:  # truncated or garbled zip, bad CRC, bad header: a miss, never an error
        return None, f"cannot be read: {type(exc).__name__}"
    stored_keys, reasons = [str(k) for k in stored_keys], [str(r) for r in reasons]
    if checksum != chunk_checksum(stored_keys, reasons, features):
        return None, "checksum mismatch"
    if stored_keys != keys or features.shape[0] != sum(not r for r in reasons):
        return None, "its items do not match its name"
    rows = iter(features)
    return ([None if r else next(rows) for r in reasons], reasons), ""


__all__ = [
    "CACHE_FORMAT_VERSION",
    "CacheStats",
    "ChunkLookup",
    "ChunkStore",
    "EncodedItem",
    "chunk_checksum",
    "namespace_key",
    "stack",
]
