"""Batched encoding of images and texts through one content-addressed feature cache.

Why one cache: zero-shot, linear probe and retrieval over the same images should encode
each image once per checkpoint, and an interrupted run should lose at most one chunk.

Why content addressing: a cache entry's name is the hash of everything that can change
its numbers (model fingerprint, preprocess fingerprint, precision, feature kind and
parameters, and the sha256 of every input file's bytes or of every text), so a stale
entry can never be found; it simply has another name. Inputs are stored in chunks of
``chunk_size`` consecutive items, each written atomically as soon as it is complete,
together with the reason any of its items was skipped, so a cached chunk reproduces the
same skip list, and with a sha256 of its contents that is checked on every read, so a
damaged chunk is recomputed rather than served.

The model code and library versions are part of every key (:func:`feature_code_fingerprint`), so an upgrade or an
edit of the network never serves features it did not compute; ``--force`` (``settings.force``) recomputes and
rewrites every chunk a task touches. Skipped items are also gathered in :attr:`FeatureExtractor.skipped`, so the
runner records them whatever the task does with the returned lists.

The device is deliberately not part of the key: CPU and GPU features differ only by
float rounding, and sharing the cache across machines is the point of content addressing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from coca_bench.cache import CHUNK_SUFFIX, mark_feature_cache
from coca_bench.data import UnreadableMediaError, load_image
from coca_bench.data.video import FrameSampling
from coca_bench.errors import CocaBenchError
from coca_bench.fileio import atomic_file, sha256_file, sha256_text
from coca_bench.fingerprints import feature_code_fingerprint
from coca_bench.registry import Skip
from coca_bench.settings import RunSettings

CACHE_FORMAT_VERSION = 2
log = logging.getLogger("coca_bench.features")
DEFAULT_CHUNK_SIZE = 512
_STORAGE_DTYPES = {"fp16": np.float16, "fp32": np.float32}

# One encoded item: its feature vector, or the reason it was skipped.
EncodedItem = tuple[int, "np.ndarray | str"]


class FeatureExtractionError(CocaBenchError, ValueError):
    """An input could not be encoded and the run asked for --strict, or the model produced invalid features."""


class ImageEmbeddings(NamedTuple):
    """Embeddings of the images that could be read, their sample ids, and the samples skipped."""

    vectors: np.ndarray  # [kept, D] float32, in input order
    ids: list[str]
    skipped: list[Skip]


class GeneratedCaptions(NamedTuple):
    """Decoded captions and their token ids (start token first, padding after the end token), per kept image."""

    texts: list[str]
    token_ids: np.ndarray  # [kept, max_new_tokens + 1] int64
    ids: list[str]
    skipped: list[Skip]


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
    paths: list[Path | None]
    vectors: list[np.ndarray | None]
    reasons: list[str]
    missing: list[int]


def file_content_key(path: str | Path) -> str:
    """sha256 of the file's bytes; a file that cannot be opened gets a key naming its path,
    so its skip is cached yet a file that later appears there is encoded afresh."""
    try:
        return sha256_file(path)
    except OSError as exc:
        return "unopenable:" + sha256_text(f"{Path(path).resolve()}|{type(exc).__name__}")


def _field(sample: Any, name: str) -> Any:
    return sample[name] if isinstance(sample, Mapping) else getattr(sample, name)


class _ImageFiles(Dataset):
    """Loads and preprocesses images; a failure is returned as a reason string, never raised,
    so that one bad file in a worker process cannot kill the whole loader."""

    def __init__(self, paths: Sequence[str], preprocess: Callable[[Any], torch.Tensor]):
        self.paths = list(paths)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        try:
            return index, self.preprocess(load_image(self.paths[index])), ""
        except UnreadableMediaError as exc:  # the reason, not the path: a cached skip may stand for a copy elsewhere
            return index, None, f"unreadable image: {exc.reason}"


def _collate_images(batch: list[tuple[int, torch.Tensor | None, str]]):
    ok = [(i, px) for i, px, _ in batch if px is not None]
    failed = [(i, reason) for i, px, reason in batch if px is None]
    pixels = torch.stack([px for _, px in ok]) if ok else None
    return [i for i, _ in ok], pixels, failed


class _VideoFiles(Dataset):
    """Decodes the planned frames of each clip and preprocesses them exactly like images, in DataLoader workers; a
    failure is returned as a reason string, so a bad file costs one sample and never a worker."""

    def __init__(self, paths: Sequence[str], plans: Sequence[list[int]], preprocess: Callable, backend: str):
        self.paths, self.plans, self.preprocess, self.backend = list(paths), list(plans), preprocess, backend

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor | None, str]:
        from PIL import Image

        from coca_bench.data import read_frames

        try:
            frames = read_frames(self.paths[index], self.plans[index], backend=self.backend)
        except UnreadableMediaError as exc:
            return index, None, f"unreadable video: {exc.reason}"
        return index, torch.stack([self.preprocess(Image.fromarray(frame)) for frame in frames]), ""


class VideoEmbeddings(NamedTuple):
    """What was computed for the readable clips, their ids, the skipped ones, and the frames each one used."""

    vectors: np.ndarray
    ids: list[str]
    skipped: list[Skip]
    frame_indices: list[list[int]]


class FeatureExtractor:
    """Encodes inputs in batches with ``model`` and caches the embeddings on disk.

    ``settings`` are the run's validated settings with a resolved device; ``cache_dir=None`` disables the cache.
    """

    def __init__(
        self,
        model: Any,
        cache_dir: str | Path | None,
        settings: RunSettings,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ):
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1; got {chunk_size}.")
        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.settings = settings
        self.chunk_size = chunk_size
        self.stats = CacheStats()
        self.skipped: list[Skip] = []  # every skip since the runner last cleared it (one task)
        self._refreshed: set[Path | None] = set()  # chunks written by this extractor (--force recomputes each once)

    # ------------------------------------------------------------------ public API
    def embed_images(self, samples: Sequence[Any], normalize: bool = True) -> ImageEmbeddings:
        """Contrastive embeddings ``[kept, D]`` of the images at ``sample.path``; unreadable ones become
        :class:`Skip` (fatal if strict)."""
        encode = lambda pixels, _: self._encode_batch(self.model.encode_image, pixels, normalize=normalize)  # noqa: E731
        return self._images("image", {"normalize": normalize}, samples, encode)

    def image_tokens(self, samples: Sequence[Any], storage: str = "fp16") -> ImageEmbeddings:
        """Image-encoder output tokens ``[kept, T, width]`` before pooling, for probes (``vectors`` holds them).

        Stored as ``storage`` (``fp16`` halves the cache; ``fp32`` keeps every bit); the choice is part of the key
        and the task records it. A second probe run, or another hyper-parameter setting, never re-encodes.
        """
        if storage not in _STORAGE_DTYPES:
            raise ValueError(f"storage must be one of {sorted(_STORAGE_DTYPES)}, not {storage!r}.")
        dtype = _STORAGE_DTYPES[storage]
        encode = lambda pixels, _: self._encode_batch(self.model.image_tokens, pixels).astype(dtype)  # noqa: E731
        return self._images("image_tokens", {"storage": storage}, samples, encode)

    # ------------------------------------------------------------------ image + text (VQA)
    def answer_scores(
        self, samples: Sequence[Any], prompts: Sequence[str], candidates: Sequence[str]
    ) -> ImageEmbeddings:
        """``vectors[i, c]`` = log p(candidate c | image i, prompt i) (:meth:`CocaModel.answer_log_likelihoods`).

        Keyed by each image's bytes and its prompt, plus the candidate list: a rerun or a resumed run scores only
        what is missing.
        """
        candidates = list(candidates)

        def score(pixels: torch.Tensor, positions: list[int]) -> np.ndarray:
            with torch.no_grad(), self.model.autocast(self.settings.precision):
                out = self.model.answer_log_likelihoods(
                    pixels.to(self.settings.device), [prompts[p] for p in positions], candidates
                )
            return out.float().cpu().numpy()

        params = {"candidates_sha256": sha256_text("\n".join(candidates))}
        return self._images("answer_scores", params, samples, score, texts=prompts)

    def prompted_answers(
        self, samples: Sequence[Any], prompts: Sequence[str], generation: Mapping[str, Any]
    ) -> GeneratedCaptions:
        """Text generated after each item's own prompt (greedy VQA), cached per image bytes, prompt and settings."""
        settings = dict(generation)
        tokenizer = self.model.tokenizer
        length = self.model.config.text.context_length

        def answer(pixels: torch.Tensor, positions: list[int]) -> np.ndarray:
            rows = torch.full((len(positions), length), tokenizer.pad_id, dtype=torch.int64)
            for row, position in enumerate(positions):
                with torch.no_grad(), self.model.autocast(self.settings.precision):
                    ids = self.model.generate(pixels[row : row + 1].to(self.settings.device), prompt=prompts[position],
                                              **settings).cpu()  # fmt: skip
                rows[row, : ids.shape[1]] = ids[0]
            return rows.numpy()

        result = self._images("prompted_answer", {"generation": settings}, samples, answer, texts=prompts)
        prompt_lengths = {p: self._prompt_length(p) for p in set(prompts)}
        position = {str(_field(s, "id")): i for i, s in enumerate(samples)}
        texts = [
            tokenizer.decode(row[prompt_lengths[prompts[position[i]]] :].tolist())
            for i, row in zip(result.ids, result.vectors)
        ]
        return GeneratedCaptions(texts, result.vectors, result.ids, result.skipped)

    def multimodal_tokens(self, samples: Sequence[Any], texts: Sequence[str], storage: str = "fp16") -> ImageEmbeddings:
        """Multimodal-decoder outputs ``[kept, context, width]`` for (image, text) pairs: the VQA probe's input."""
        dtype = _STORAGE_DTYPES[storage]

        def encode(pixels: torch.Tensor, positions: list[int]) -> np.ndarray:
            ids = self.model.tokenizer([texts[p] for p in positions])
            return self._encode_batch(self.model.multimodal_features, pixels, ids=ids.to(self.settings.device)).astype(
                dtype
            )

        return self._images("multimodal_tokens", {"storage": storage}, samples, encode, texts=texts)

    def _prompt_length(self, prompt: str) -> int:
        ids = self.model.tokenizer([prompt])[0].tolist()
        return ids.index(self.model.tokenizer.eot_id)

    def captions(
        self, samples: Sequence[Any], generation: Mapping[str, Any], batch_size: int | None = None
    ) -> GeneratedCaptions:
        """Captions generated for the images at ``sample.path`` with the model's KV-cached ``generate``.

        Cached like embeddings: the same content keys plus every generation setting, the same skips, written in
        chunks as they finish, so an interrupted captioning run resumes where it stopped. ``batch_size`` is the
        decoding batch (as large as memory allows), independent of the encoder's ``--batch-size``.
        """
        settings = dict(generation)
        length = int(settings.get("max_new_tokens", 29)) + 1  # the start token, then the new tokens

        def generate(pixels: torch.Tensor, _: list[int]) -> np.ndarray:
            with torch.no_grad(), self.model.autocast(self.settings.precision):
                ids = self.model.generate(pixels.to(self.settings.device), **settings).cpu()
            padded = torch.full((ids.shape[0], length), self.model.tokenizer.pad_id, dtype=torch.int64)
            padded[:, : ids.shape[1]] = ids
            return padded.numpy()

        result = self._images("caption", {"generation": settings}, samples, generate, batch_size=batch_size)
        texts = [self.model.tokenizer.decode(row.tolist()) for row in result.vectors]
        return GeneratedCaptions(texts, result.vectors, result.ids, result.skipped)

    # ------------------------------------------------------------------ video
    def embed_videos(self, clips: Sequence[Any], sampling: FrameSampling) -> VideoEmbeddings:
        """Zero-shot video embeddings, as in the paper: the mean of the frames' normalised image embeddings,
        renormalised (:meth:`CocaModel.encode_video`)."""
        encode = lambda frames, _: self._encode_batch(self.model.encode_video, frames, normalize=True)  # noqa: E731
        return self._videos("video", {}, clips, sampling, encode)

    def video_tokens(self, clips: Sequence[Any], sampling: FrameSampling, storage: str = "fp16") -> VideoEmbeddings:
        """Every frame's encoder tokens, spatial x temporal ``[kept, T * tokens, width]``: the video probe's input."""
        dtype = _STORAGE_DTYPES[storage]
        encode = lambda frames, _: self._encode_batch(self.model.video_tokens, frames).astype(dtype)  # noqa: E731
        return self._videos("video_tokens", {"storage": storage}, clips, sampling, encode)

    def video_captions(
        self, clips: Sequence[Any], sampling: FrameSampling, generation: Mapping[str, Any], pooling: str = "mean",
        batch_size: int | None = None,
    ) -> tuple[GeneratedCaptions, list[list[int]]]:  # fmt: skip
        """Captions of videos (:meth:`CocaModel.generate_video`), cached like image captions; with frame indices."""
        settings = dict(generation)
        length = int(settings.get("max_new_tokens", 29)) + 1

        def generate(frames: torch.Tensor, _: list[int]) -> np.ndarray:
            with torch.no_grad(), self.model.autocast(self.settings.precision):
                ids = self.model.generate_video(frames.to(self.settings.device), pooling, **settings).cpu()
            padded = torch.full((ids.shape[0], length), self.model.tokenizer.pad_id, dtype=torch.int64)
            padded[:, : ids.shape[1]] = ids
            return padded.numpy()

        params = {"generation": settings, "pooling": pooling}
        result = self._videos("video_caption", params, clips, sampling, generate, batch_size)
        texts = [self.model.tokenizer.decode(row.tolist()) for row in result.vectors]
        return GeneratedCaptions(texts, result.vectors, result.ids, result.skipped), result.frame_indices

    def _frame_plans(self, clips: Sequence[Any], sampling: FrameSampling) -> list[list[int] | str]:
        """The frame indices of each clip from its container header (no decoding), or why it cannot be read."""
        from coca_bench.data import UnreadableMediaError
        from coca_bench.data.video import clip_frame_indices, video_metadata

        def plan(clip: Any) -> list[int] | str:
            start, end = getattr(clip, "time_start", 0), getattr(clip, "time_end", 0)
            try:
                length, fps = video_metadata(_field(clip, "path"), sampling.backend)
            except UnreadableMediaError as exc:
                return f"unreadable video: {exc.reason}"
            window = (float(start), float(end)) if end > start else None
            return clip_frame_indices(length, fps, sampling.num_frames, sampling.mode, window)  # type: ignore[arg-type]

        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(plan, clips))

    def _videos(
        self,
        kind: str,
        params: Mapping[str, Any],
        clips: Sequence[Any],
        sampling: FrameSampling,
        encode_frames: Callable[[torch.Tensor, list[int]], np.ndarray],
        batch_size: int | None = None,
    ) -> VideoEmbeddings:
        """The video path beside the image path: the same content keys (each file's bytes plus the frames it uses),
        chunked atomic writes and skip semantics; decoding in DataLoader workers, ``B x T`` frames per forward."""
        ids = [str(_field(c, "id")) for c in clips]
        paths = [str(_field(c, "path")) for c in clips]
        plans = self._frame_plans(clips, sampling)
        with ThreadPoolExecutor(max_workers=4) as pool:
            file_keys = list(pool.map(file_content_key, paths))
        item_keys = [sha256_text(f"{key}|{plan}") for key, plan in zip(file_keys, plans)]

        def encode(positions: list[int]) -> Iterator[EncodedItem]:
            readable = [p for p in positions if not isinstance(plans[p], str)]
            yield from ((p, plans[p]) for p in positions if isinstance(plans[p], str))  # type: ignore[misc]
            loader = DataLoader(
                _VideoFiles(
                    [paths[p] for p in readable], [plans[p] for p in readable], self.model.preprocess, sampling.backend
                ),  # fmt: skip
                batch_size=batch_size or max(1, self.settings.batch_size // sampling.num_frames),
                num_workers=self.settings.num_workers,
                collate_fn=_collate_images,
                shuffle=False,
            )
            for ok_indices, frames, failed in loader:
                for index, reason in failed:
                    yield readable[index], reason
                if frames is not None:
                    batch = [readable[i] for i in ok_indices]
                    yield from zip(batch, encode_frames(frames, batch))

        vectors, reasons = self._cached(kind, {**params, **sampling.as_dict(), "preprocess": self.model.preprocess_fingerprint},
                                        item_keys, encode)  # fmt: skip
        skipped = [Skip(clip_id, reason) for clip_id, reason in zip(ids, reasons) if reason]
        self.skipped.extend(s for s in skipped if s not in self.skipped)
        if skipped and self.settings.strict:
            first = next(i for i, r in enumerate(reasons) if r)
            raise FeatureExtractionError(
                f"Cannot read video {paths[first]} (sample {ids[first]!r}): {reasons[first]}; "
                "fix or remove the file, or run without --strict to record it as skipped."
            )
        kept = [i for i, r in enumerate(reasons) if not r]
        return VideoEmbeddings(
            _stack([vectors[i] for i in kept]),
            [ids[i] for i in kept],
            skipped,
            [list(plans[i]) for i in kept],  # type: ignore[arg-type]
        )

    def _images(
        self,
        kind: str,
        params: Mapping[str, Any],
        samples: Sequence[Any],
        encode_pixels: Callable[[torch.Tensor, list[int]], np.ndarray],
        batch_size: int | None = None,
        texts: Sequence[str] | None = None,
    ) -> ImageEmbeddings:
        """One cached path for everything computed from images: load in workers, encode in batches, skip failures.

        ``encode_pixels(pixels, positions)`` gets the positions of the batch's items, so per-item inputs (a VQA
        question) can go with each image; ``texts`` then join each image's bytes in its item key.
        """
        ids = [str(_field(s, "id")) for s in samples]
        paths = [str(_field(s, "path")) for s in samples]
        with ThreadPoolExecutor(max_workers=4) as pool:  # hashing releases the GIL; IO overlaps
            item_keys = list(pool.map(file_content_key, paths))
        if texts is not None:
            item_keys = [sha256_text(f"{key}|{text}") for key, text in zip(item_keys, texts)]

        def encode(positions: list[int]) -> Iterator[EncodedItem]:
            loader = DataLoader(
                _ImageFiles([paths[p] for p in positions], self.model.preprocess),
                batch_size=batch_size or self.settings.batch_size,
                num_workers=self.settings.num_workers,
                collate_fn=_collate_images,
                shuffle=False,
            )
            for ok_indices, pixels, failed in loader:
                for index, reason in failed:
                    yield positions[index], reason
                if pixels is not None:
                    batch = [positions[i] for i in ok_indices]
                    yield from zip(batch, encode_pixels(pixels, batch))

        params = {**params, "preprocess": self.model.preprocess_fingerprint}
        vectors, reasons = self._cached(kind, params, item_keys, encode)
        skipped = [Skip(sample_id, reason) for sample_id, reason in zip(ids, reasons) if reason]
        self.skipped.extend(s for s in skipped if s not in self.skipped)
        if skipped and self.settings.strict:
            first = next(i for i, r in enumerate(reasons) if r)
            raise FeatureExtractionError(
                f"Cannot read image {paths[first]} (sample {ids[first]!r}): {reasons[first]}; "
                "fix or remove the file, or run without --strict to record it as skipped."
            )
        kept = [i for i, r in enumerate(reasons) if not r]
        return ImageEmbeddings(_stack([vectors[i] for i in kept]), [ids[i] for i in kept], skipped)

    def embed_texts(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """Embeddings ``[N, D]`` of ``texts`` from the unimodal text tower."""
        texts = [str(t) for t in texts]

        def encode(positions: list[int]) -> Iterator[EncodedItem]:
            # length-sorted batches: the text tower computes a batch only up to its longest prompt
            # (CoCa.encode_text); sorted within each cache chunk, so that chunks still complete one after another
            step, pad = self.settings.batch_size, getattr(self.model.tokenizer, "pad_id", 0)
            chunks: dict[int, list[int]] = {}
            for p in positions:
                chunks.setdefault(p // self.chunk_size, []).append(p)
            for chunk in chunks.values():
                token_ids = self.model.tokenizer([texts[p] for p in chunk])
                order = torch.argsort((token_ids != pad).sum(dim=1), stable=True).tolist()
                for start in range(0, len(order), step):
                    rows = order[start : start + step]
                    vectors = self._encode_batch(self.model.encode_text, token_ids[rows], normalize=normalize)
                    yield from zip([chunk[r] for r in rows], vectors)

        vectors, _ = self._cached("text", {"normalize": normalize}, [sha256_text(t) for t in texts], encode)
        return _stack(vectors)

    # ------------------------------------------------------------------ internals
    def _encode_batch(self, encoder: Callable[..., torch.Tensor], inputs: torch.Tensor, **kwargs: Any) -> np.ndarray:
        precision = self.settings.precision
        with torch.no_grad(), self.model.autocast(precision):
            out = encoder(inputs.to(self.settings.device), **kwargs)
        vectors = out.float().cpu().numpy()
        if not np.isfinite(vectors).all():
            raise FeatureExtractionError(
                f"The model produced NaN or infinite features at precision {precision}; rerun with --precision fp32."
            )
        return vectors

    def _namespace(self, kind: str, params: Mapping[str, Any]) -> str:
        identity = {
            "format": CACHE_FORMAT_VERSION,
            "kind": kind,
            "model": self.model.fingerprint,
            "code": feature_code_fingerprint(),
            "precision": self.settings.precision,
            "params": dict(params),
        }
        return sha256_text(json.dumps(identity, sort_keys=True, default=str))

    def _cached(
        self,
        kind: str,
        params: Mapping[str, Any],
        item_keys: list[str],
        encode: Callable[[list[int]], Iterator[EncodedItem]],
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
                self._store_chunk(lookup, index, item_keys)
        progress.close()
        unfinished = [i for i, n in pending.items() if n]
        if unfinished:
            raise RuntimeError(f"Feature encoding of {kind} returned fewer items than requested (chunks {unfinished}).")
        return vectors, reasons

    def _lookup(self, kind: str, params: Mapping[str, Any], item_keys: list[str]) -> ChunkLookup:
        """Split ``item_keys`` into chunks and fill in every chunk the cache holds (``--force``: none, once per run)."""
        namespace = self._namespace(kind, params)
        chunks = [range(s, min(s + self.chunk_size, len(item_keys))) for s in range(0, len(item_keys), self.chunk_size)]
        lookup = ChunkLookup(kind, namespace, chunks, [], [None] * len(item_keys), [""] * len(item_keys), [])
        for index, chunk in enumerate(chunks):
            keys = [item_keys[i] for i in chunk]
            path = self._chunk_path(kind, namespace, keys)
            lookup.paths.append(path)
            stale = self.settings.force and path not in self._refreshed  # --force: recompute once per run
            stored = None if stale else self._read_chunk(path, keys)
            if stored is None:
                lookup.missing.append(index)
                continue
            self.stats.chunks_from_cache += 1
            for position, vector, reason in zip(chunk, *stored):
                lookup.vectors[position], lookup.reasons[position] = vector, reason
        return lookup

    def _store_chunk(self, lookup: ChunkLookup, index: int, item_keys: list[str]) -> None:
        """Write chunk ``index`` of ``lookup`` once all its items are in."""
        chunk, path = lookup.chunks[index], lookup.paths[index]
        keys = [item_keys[i] for i in chunk]
        mark_feature_cache(self.cache_dir)  # `cache prune` deletes only inside a folder that carries the marker
        self._write_chunk(path, keys, [lookup.vectors[i] for i in chunk], [lookup.reasons[i] for i in chunk])
        self._refreshed.add(path)
        self.stats.chunks_encoded += 1
        self.stats.items_encoded += len(chunk)

    def _chunk_path(self, kind: str, namespace: str, keys: list[str]) -> Path | None:
        if self.cache_dir is None:
            return None
        chunk_key = sha256_text(namespace + "\n" + "\n".join(keys))
        return self.cache_dir / kind / namespace[:16] / f"{chunk_key}{CHUNK_SUFFIX}"

    def _read_chunk(self, path: Path | None, keys: list[str]) -> tuple[list[np.ndarray | None], list[str]] | None:
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

    @staticmethod
    def _write_chunk(path: Path | None, keys: list[str], vectors: list[np.ndarray | None], reasons: list[str]) -> None:
        if path is None:
            return
        kept = [v for v in vectors if v is not None]
        features = np.stack(kept) if kept else np.zeros((0, 0), dtype=np.float32)  # fp32, or fp16 tokens as asked
        checksum = chunk_checksum(keys, reasons, features)
        with atomic_file(path, "wb") as handle:  # readers see the whole chunk or none of it
            np.savez(
                handle,
                item_keys=np.array(keys),
                skip_reasons=np.array(reasons, dtype=str),
                features=features,
                checksum=np.array(checksum),
            )

    def _progress_bar(self, total: int, kind: str):
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=f"encode {kind}s", unit=kind, disable=not self.settings.progress, leave=False)


def chunk_checksum(keys: Sequence[str], reasons: Sequence[str], features: np.ndarray) -> str:
    """sha256 over a chunk's item keys, skip reasons and feature bytes (with dtype and shape), stored in the chunk."""
    digest = hashlib.sha256()
    header = [list(map(str, keys)), list(map(str, reasons)), features.dtype.str, list(features.shape)]
    digest.update(json.dumps(header).encode("utf-8"))
    digest.update(np.ascontiguousarray(features).tobytes())
    return digest.hexdigest()


def _load_verified_chunk(path: Path, keys: list[str]) -> tuple[tuple[list[np.ndarray | None], list[str]] | None, str]:
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


def _stack(vectors: Sequence[np.ndarray | None]) -> np.ndarray:
    kept = [v for v in vectors if v is not None]
    return np.stack(kept) if kept else np.zeros((0, 0), dtype=np.float32)
