"""What every feature kind shares: dispatch by name, content keys, batching, strict/skip, padding, the cached path.

The model code and library versions are part of every key (:func:`feature_code_fingerprint`), so an upgrade or an
edit of the network never serves features it did not compute; ``--force`` (``settings.force``) recomputes and
rewrites every chunk a task touches. Skipped items are also gathered in :attr:`ExtractorBase.skipped`, so the runner
records them whatever the task does with the returned lists.

The device is deliberately not part of the key: CPU and GPU features differ only by float rounding, and sharing the
cache across machines is the point of content addressing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from coca_bench import fingerprints
from coca_bench.data.video import FrameSampling
from coca_bench.features.kinds import FEATURE_KINDS, FeatureExtractionError, ImageEmbeddings, VideoEmbeddings
from coca_bench.features.media import (
    BatchEncoder,
    FrameReader,
    ImageReader,
    MediaReader,
    content_keys,
    field,
    frame_plans,
    read_and_encode,
)
from coca_bench.features.store import CACHE_FORMAT_VERSION, ChunkLookup, ChunkStore, EncodedItem, namespace_key, stack
from coca_bench.fileio import sha256_text
from coca_bench.registry import Skip
from coca_bench.settings import RunSettings

DEFAULT_CHUNK_SIZE = 512
ItemEncoder = Callable[[list[int]], Iterator[EncodedItem]]


class ExtractorBase:
    """Encodes inputs in batches with ``model`` and caches the results in a :class:`ChunkStore`.

    ``settings`` are the run's validated settings with a resolved device; ``cache_dir=None`` disables the cache.
    The kinds themselves are registered with :func:`feature_kind` (see :class:`FeatureExtractor`).
    """

    def __init__(
        self, model: Any, cache_dir: str | Path | None, settings: RunSettings, chunk_size: int = DEFAULT_CHUNK_SIZE
    ):
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.settings = settings
        self.store = ChunkStore(self.cache_dir, chunk_size, force=settings.force)
        self.chunk_size = chunk_size
        self.stats = self.store.stats
        self.skipped: list[Skip] = []  # every skip since the runner last cleared it (one task)
        self._kind: Callable[..., Any] | None = None  # the kind being computed, for its code's part in the key

    def compute(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Run the feature kind registered as ``name``: the one door every kind goes through (see :mod:`.kinds`)."""
        try:
            kind = FEATURE_KINDS[name]
        except KeyError:
            raise FeatureExtractionError(f"No feature kind {name!r}; registered: {sorted(FEATURE_KINDS)}.") from None
        outer, self._kind = self._kind, kind
        try:
            return kind(self, *args, **kwargs)
        finally:
            self._kind = outer

    # ------------------------------------------------------------------ shared paths, for the kinds
    def from_images(
        self,
        kind: str,
        params: Mapping[str, Any],
        samples: Sequence[Any],
        encode: BatchEncoder,
        batch_size: int | None = None,
        texts: Sequence[str] | None = None,
    ) -> ImageEmbeddings:
        """Whatever ``encode(pixels, positions)`` computes from the images at ``sample.path``, cached.

        ``positions`` are the batch's items, so per-item inputs (a VQA question) can go with each image; ``texts``
        then join each image's bytes in its item key.
        """
        paths = [str(field(s, "path")) for s in samples]
        keys = content_keys(paths, texts)
        reader = ImageReader(self.model.preprocess)
        _, vectors, ids, skipped = self._media(
            kind, params, samples, keys, reader, encode, batch_size or self.settings.batch_size
        )
        return ImageEmbeddings(vectors, ids, skipped)

    def from_videos(
        self,
        kind: str,
        params: Mapping[str, Any],
        clips: Sequence[Any],
        sampling: FrameSampling,
        encode: BatchEncoder,
        batch_size: int | None = None,
    ) -> VideoEmbeddings:
        """The video path beside the image path: the same content keys (each file's bytes plus the frames it uses),
        chunked atomic writes and skip semantics; decoding in DataLoader workers, ``B x T`` frames per forward."""
        plans = frame_plans(clips, sampling)
        keys = content_keys([str(field(c, "path")) for c in clips], plans)
        reader = FrameReader(self.model.preprocess, plans, sampling.backend)
        batch_size = batch_size or max(1, self.settings.batch_size // sampling.num_frames)
        failed = [plan if isinstance(plan, str) else "" for plan in plans]
        kept, vectors, ids, skipped = self._media(
            kind, {**params, **sampling.as_dict()}, clips, keys, reader, encode, batch_size, failed
        )
        return VideoEmbeddings(vectors, ids, skipped, [list(plans[i]) for i in kept])

    def from_texts(
        self, kind: str, params: Mapping[str, Any], texts: Sequence[str], encode: Callable[[torch.Tensor], np.ndarray]
    ) -> np.ndarray:
        """``encode(token_ids)`` of every text, ``[N, ...]``, cached by each text's own hash.

        Batches are sorted by length: the text tower computes a batch only up to its longest prompt
        (``CoCa.encode_text``); sorted within each cache chunk, so that chunks still complete one after another.
        """
        texts = [str(t) for t in texts]

        def encode_missing(positions: list[int]) -> Iterator[EncodedItem]:
            step, pad = self.settings.batch_size, getattr(self.model.tokenizer, "pad_id", 0)
            chunks: dict[int, list[int]] = {}
            for p in positions:
                chunks.setdefault(p // self.chunk_size, []).append(p)
            for chunk in chunks.values():
                token_ids = self.model.tokenizer([texts[p] for p in chunk])
                order = torch.argsort((token_ids != pad).sum(dim=1), stable=True).tolist()
                for start in range(0, len(order), step):
                    rows = order[start : start + step]
                    yield from zip([chunk[r] for r in rows], encode(token_ids[rows]))

        vectors, _ = self.cached(kind, params, [sha256_text(t) for t in texts], encode_missing)
        return stack(vectors)

    def _media(
        self,
        kind: str,
        params: Mapping[str, Any],
        samples: Sequence[Any],
        item_keys: list[str],
        reader: MediaReader,
        encode: BatchEncoder,
        batch_size: int,
        failed: Sequence[str] = (),
    ) -> tuple[list[int], np.ndarray, list[str], list[Skip]]:
        """One cached path for everything computed from media files: read in workers, encode in batches, skip what
        cannot be read (``failed[i]``: known before reading), or raise it under ``--strict``, even from the cache.

        Returns the kept positions, their stacked results and ids, and the skips.
        """
        ids = [str(field(s, "id")) for s in samples]
        paths = [str(field(s, "path")) for s in samples]

        def encode_missing(positions: list[int]) -> Iterator[EncodedItem]:
            readable = []
            for p in positions:
                if failed and failed[p]:
                    yield p, failed[p]
                else:
                    readable.append(p)
            items = [(p, paths[p]) for p in readable]
            yield from read_and_encode(items, reader, encode, batch_size, self.settings.num_workers)

        params = {**params, "preprocess": self.model.preprocess_fingerprint}
        vectors, reasons = self.cached(kind, params, item_keys, encode_missing)
        skipped = [Skip(sample_id, reason) for sample_id, reason in zip(ids, reasons) if reason]
        self.skipped.extend(s for s in skipped if s not in self.skipped)
        if skipped and self.settings.strict:
            first = next(i for i, r in enumerate(reasons) if r)
            raise FeatureExtractionError(
                f"Cannot read {reader.what} {paths[first]} (sample {ids[first]!r}): {reasons[first]}; "
                "fix or remove the file, or run without --strict to record it as skipped."
            )
        kept = [i for i, r in enumerate(reasons) if not r]
        return kept, stack([vectors[i] for i in kept]), [ids[i] for i in kept], skipped

    # ------------------------------------------------------------------ forward passes
    def _forward(
        self, function: Callable[..., torch.Tensor], inputs: torch.Tensor, /, *args: Any, **kwargs: Any
    ) -> torch.Tensor:
        """``function(inputs, ...)`` on the run's device, without gradients, at the run's precision; on the CPU."""
        with torch.no_grad(), self.model.autocast(self.settings.precision):
            return function(inputs.to(self.settings.device), *args, **kwargs).cpu()

    def _encode(
        self, function: Callable[..., torch.Tensor], inputs: torch.Tensor, /, *args: Any, **kwargs: Any
    ) -> np.ndarray:
        """Features as float32, refused (never cached) when not finite."""
        vectors = self._forward(function, inputs, *args, **kwargs).float().numpy()
        if not np.isfinite(vectors).all():
            precision = self.settings.precision
            advice = (
                "rerun with --precision fp32"
                if precision != "fp32"
                else f"check checkpoint {getattr(self.model, 'name', '?')!r}: its weights may hold NaN or infinite values"
            )
            raise FeatureExtractionError(
                f"The model produced NaN or infinite features at precision {precision}; {advice}."
            )
        return vectors

    def _generate(
        self, function: Callable[..., torch.Tensor], inputs: torch.Tensor, length: int, /, *args: Any, **kwargs: Any
    ) -> np.ndarray:
        """Generated token ids padded to ``length`` columns: chunks hold rows of one width."""
        ids = self._forward(function, inputs, *args, **kwargs)
        padded = torch.full((ids.shape[0], length), self.model.tokenizer.pad_id, dtype=torch.int64)
        padded[:, : ids.shape[1]] = ids
        return padded.numpy()

    # ------------------------------------------------------------------ the cache
    def cached(
        self, kind: str, params: Mapping[str, Any], item_keys: list[str], encode: ItemEncoder
    ) -> tuple[list[np.ndarray | None], list[str]]:
        """Per-item vectors (None where skipped) and skip reasons ("" where kept), from cache or ``encode``.

        ``encode(positions)`` must yield every requested position exactly once, in any order
        within a batch; chunks are written as soon as all their items have arrived.
        """
        lookup = self._lookup(kind, params, item_keys)
        vectors, reasons, chunks, missing = lookup.vectors, lookup.reasons, lookup.chunks, lookup.missing
        if not missing:
            return vectors, reasons

        positions = [p for index in missing for p in chunks[index]]
        pending = {index: len(chunks[index]) for index in missing}
        chunk_of = {p: index for index in missing for p in chunks[index]}
        progress = self._progress_bar(len(positions), kind)
        for position, result in encode(positions):
            if isinstance(result, str):
                reasons[position] = result
            else:
                vectors[position] = result
            progress.update(1)
            index = chunk_of[position]
            pending[index] -= 1
            if pending[index] == 0:
                self.store.save(lookup, index, item_keys)
        progress.close()
        unfinished = [i for i, n in pending.items() if n]
        if unfinished:
            raise RuntimeError(f"Feature encoding of {kind} returned fewer items than requested (chunks {unfinished}).")
        return vectors, reasons

    def _lookup(self, kind: str, params: Mapping[str, Any], item_keys: list[str]) -> ChunkLookup:
        """The chunks of ``item_keys`` in this kind's namespace, filled from the cache where it holds them."""
        identity = {
            "format": CACHE_FORMAT_VERSION,
            "kind": kind,
            "model": self.model.fingerprint,
            "code": fingerprints.feature_code_fingerprint(),
            "precision": self.settings.precision,
            "params": dict(params),
        }
        origin = Path(self._kind.__code__.co_filename).resolve() if self._kind is not None else None
        if origin is not None and fingerprints.PACKAGE_ROOT not in origin.parents:  # a plugin's kind: its code too
            identity["kind_code"] = fingerprints.source_fingerprint(fingerprints.code_closure([origin]))
        return self.store.lookup(kind, namespace_key(identity), item_keys)

    def _progress_bar(self, total: int, kind: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"encode {kind}s", unit=kind, disable=not self.settings.progress, leave=False)


__all__ = ["DEFAULT_CHUNK_SIZE", "ExtractorBase"]
