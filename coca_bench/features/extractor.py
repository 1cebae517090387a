"""The built-in feature kinds: what each computes from the model, on the shared paths of :class:`ExtractorBase`.

Each is registered by name with :func:`feature_kind`, which is all a new kind needs to be served on every rank.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from coca_bench.data.video import FrameSampling
from coca_bench.features.base import ExtractorBase
from coca_bench.features.kinds import GeneratedCaptions, ImageEmbeddings, VideoEmbeddings, feature_kind
from coca_bench.features.media import field
from coca_bench.fileio import sha256_text
from coca_bench.registry import Skip

_STORAGE_DTYPES = {"fp16": np.float16, "fp32": np.float32}


def _storage_dtype(storage: str) -> type[np.floating]:
    if storage not in _STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {sorted(_STORAGE_DTYPES)}, not {storage!r}.")
    return _STORAGE_DTYPES[storage]


def _caption_length(settings: Mapping[str, Any]) -> int:
    return int(settings.get("max_new_tokens", 29)) + 1  # the start token, then the new tokens


class FeatureExtractor(ExtractorBase):
    """Encodes inputs in batches with ``model`` and caches the embeddings on disk.

    ``settings`` are the run's validated settings with a resolved device; ``cache_dir=None`` disables the cache.
    """

    # ------------------------------------------------------------------ images
    @feature_kind
    def embed_images(self, samples: Sequence[Any], normalize: bool = True) -> ImageEmbeddings:
        """Contrastive embeddings ``[kept, D]`` of the images at ``sample.path``; unreadable ones become
        :class:`Skip` (fatal if strict)."""
        encode = lambda pixels, _: self._encode(self.model.encode_image, pixels, normalize=normalize)
        return self.from_images("image", {"normalize": normalize}, samples, encode)

    @feature_kind
    def image_tokens(self, samples: Sequence[Any], storage: str = "fp16") -> ImageEmbeddings:
        """Image-encoder output tokens ``[kept, T, width]`` before pooling, for probes (``vectors`` holds them).

        Stored as ``storage`` (``fp16`` halves the cache; ``fp32`` keeps every bit); the choice is part of the key
        and the task records it. A second probe run, or another hyper-parameter setting, never re-encodes.
        """
        dtype = _storage_dtype(storage)
        encode = lambda pixels, _: self._encode(self.model.image_tokens, pixels).astype(dtype)
        return self.from_images("image_tokens", {"storage": storage}, samples, encode)

    @feature_kind
    def captions(
        self, samples: Sequence[Any], generation: Mapping[str, Any], batch_size: int | None = None
    ) -> GeneratedCaptions:
        """Captions generated for the images at ``sample.path`` with the model's KV-cached ``generate``.

        Cached like embeddings: the same content keys plus every generation setting, the same skips, written in
        chunks as they finish, so an interrupted captioning run resumes where it stopped. ``batch_size`` is the
        decoding batch (as large as memory allows), independent of the encoder's ``--batch-size``.
        """
        settings, length = dict(generation), _caption_length(generation)
        generate = lambda pixels, _: self._generate(self.model.generate, pixels, length, **settings)
        result = self.from_images("caption", {"generation": settings}, samples, generate, batch_size=batch_size)
        return self._decoded(result.vectors, result.ids, result.skipped)

    # ------------------------------------------------------------------ image + text (VQA)
    @feature_kind
    def answer_scores(
        self, samples: Sequence[Any], prompts: Sequence[str], candidates: Sequence[str]
    ) -> ImageEmbeddings:
        """``vectors[i, c]`` = log p(candidate c | image i, prompt i) (:meth:`CocaModel.answer_log_likelihoods`).

        Keyed by each image's bytes and its prompt, plus the candidate list: a rerun or a resumed run scores only
        what is missing.
        """
        candidates = list(candidates)

        def score(pixels: torch.Tensor, positions: list[int]) -> np.ndarray:
            asked = [prompts[p] for p in positions]
            return self._forward(self.model.answer_log_likelihoods, pixels, asked, candidates).float().numpy()

        params = {"candidates_sha256": sha256_text("\n".join(candidates))}
        return self.from_images("answer_scores", params, samples, score, texts=prompts)

    @feature_kind
    def prompted_answers(
        self, samples: Sequence[Any], prompts: Sequence[str], generation: Mapping[str, Any]
    ) -> GeneratedCaptions:
        """Text generated after each item's own prompt (greedy VQA), cached per image bytes, prompt and settings."""
        settings, length = dict(generation), self.model.config.text.context_length

        def answer(pixels: torch.Tensor, positions: list[int]) -> np.ndarray:
            rows = [
                self._generate(self.model.generate, pixels[row : row + 1], length, prompt=prompts[p], **settings)
                for row, p in enumerate(positions)
            ]
            return np.concatenate(rows)

        result = self.from_images("prompted_answer", {"generation": settings}, samples, answer, texts=prompts)
        position = {str(field(s, "id")): i for i, s in enumerate(samples)}
        starts = {p: self._prompt_length(p) for p in set(prompts)}
        return self._decoded(
            result.vectors, result.ids, result.skipped, [starts[prompts[position[i]]] for i in result.ids]
        )

    @feature_kind
    def multimodal_tokens(self, samples: Sequence[Any], texts: Sequence[str], storage: str = "fp16") -> ImageEmbeddings:
        """Multimodal-decoder outputs ``[kept, context, width]`` for (image, text) pairs: the VQA probe's input."""
        dtype = _storage_dtype(storage)

        def encode(pixels: torch.Tensor, positions: list[int]) -> np.ndarray:
            ids = self.model.tokenizer([texts[p] for p in positions]).to(self.settings.device)
            return self._encode(self.model.multimodal_features, pixels, ids=ids).astype(dtype)

        return self.from_images("multimodal_tokens", {"storage": storage}, samples, encode, texts=texts)

    # ------------------------------------------------------------------ video
    @feature_kind
    def embed_videos(self, clips: Sequence[Any], sampling: FrameSampling) -> VideoEmbeddings:
        """Zero-shot video embeddings, as in the paper: the mean of the frames' normalised image embeddings,
        renormalised (:meth:`CocaModel.encode_video`)."""
        encode = lambda frames, _: self._encode(self.model.encode_video, frames, normalize=True)
        return self.from_videos("video", {}, clips, sampling, encode)

    @feature_kind
    def video_tokens(self, clips: Sequence[Any], sampling: FrameSampling, storage: str = "fp16") -> VideoEmbeddings:
        """Every frame's encoder tokens, spatial x temporal ``[kept, T * tokens, width]``: the video probe's input."""
        dtype = _storage_dtype(storage)
        encode = lambda frames, _: self._encode(self.model.video_tokens, frames).astype(dtype)
        return self.from_videos("video_tokens", {"storage": storage}, clips, sampling, encode)

    @feature_kind
    def video_captions(
        self,
        clips: Sequence[Any],
        sampling: FrameSampling,
        generation: Mapping[str, Any],
        pooling: str = "mean",
        batch_size: int | None = None,
    ) -> tuple[GeneratedCaptions, list[list[int]]]:
        """Captions of videos (:meth:`CocaModel.generate_video`), cached like image captions; with frame indices."""
        settings, length = dict(generation), _caption_length(generation)
        generate = lambda frames, _: self._generate(self.model.generate_video, frames, length, pooling, **settings)
        params = {"generation": settings, "pooling": pooling}
        result = self.from_videos("video_caption", params, clips, sampling, generate, batch_size)
        return self._decoded(result.vectors, result.ids, result.skipped), result.frame_indices

    # ------------------------------------------------------------------ text
    @feature_kind
    def embed_texts(self, texts: Sequence[str], normalize: bool = True) -> np.ndarray:
        """Embeddings ``[N, D]`` of ``texts`` from the unimodal text tower."""
        encode = lambda token_ids: self._encode(self.model.encode_text, token_ids, normalize=normalize)
        return self.from_texts("text", {"normalize": normalize}, texts, encode)

    # ------------------------------------------------------------------ helpers
    def _decoded(
        self, token_ids: np.ndarray, ids: list[str], skipped: list[Skip], starts: Sequence[int] | None = None
    ) -> GeneratedCaptions:
        """The generated rows decoded to text, each from ``starts[i]`` on (after its prompt) where given."""
        starts = starts if starts is not None else [0] * len(ids)
        texts = [self.model.tokenizer.decode(row[start:].tolist()) for row, start in zip(token_ids, starts)]
        return GeneratedCaptions(texts, token_ids, ids, skipped)

    def _prompt_length(self, prompt: str) -> int:
        ids = self.model.tokenizer([prompt])[0].tolist()
        return ids.index(self.model.tokenizer.eot_id)


__all__ = ["FeatureExtractor"]
