"""Frozen multimodal probes (the paper's VQA / SNLI-VE / NLVR2 setup with the encoder and decoder frozen).

Each example is one or more images with one text; the image goes to the encoder and the text to the multimodal
decoder, whose outputs (cached, ``[context, width]`` per image) feed a new single-query attentional pooler and a
linear classifier trained on the train split (:func:`~coca_bench.tasklib.train_and_score_attentive_probe`).

An example with several images (NLVR2's pair) gets one decoder pass per (image, text) and their outputs are
concatenated position by position, ``[context, images x width]``: every text position carries each pair's output in
its own block of features, so the classifier sees which image said what. The paper ("NLVR2 concatenates the two
(image, text) pair embeddings") pools each pair and concatenates the pooled vectors; the shared probe has one
pooler over one token sequence, so here the pooler's attention weights are shared by the pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coca_bench.registry import TaskContext


@dataclass(frozen=True)
class MultimodalExample:
    """``images`` (one or more) and the ``text`` the decoder reads with each; ``label`` for training examples."""

    id: str
    images: tuple[Path, ...]
    text: str
    label: int = -1


@dataclass(frozen=True)
class EncodedExamples:
    """The decoder outputs of the examples whose every image could be read, ``vectors[i]`` for ``ids[i]``."""

    ids: list[str]
    vectors: Any


def encode_examples(ctx: TaskContext, examples: Sequence[MultimodalExample], storage: str) -> EncodedExamples:
    """Cached multimodal-decoder outputs per example; an example with an unreadable image is left out (its skip is
    recorded by the feature cache under the example's id)."""
    import numpy as np

    counts = {len(e.images) for e in examples}
    if len(counts) > 1:
        raise ValueError(f"every example must have the same number of images; got {sorted(counts)}.")
    texts = [e.text for e in examples]
    per_image = [
        ctx.features.multimodal_tokens([{"id": e.id, "path": e.images[k]} for e in examples], texts, storage)
        for k in range(counts.pop() if counts else 1)
    ]
    if len(per_image) == 1:
        return EncodedExamples(list(per_image[0].ids), per_image[0].vectors)
    rows = [{i: row for row, i in enumerate(tokens.ids)} for tokens in per_image]
    kept = [e.id for e in examples if all(e.id in r for r in rows)]
    vectors = np.concatenate(
        [tokens.vectors[[r[i] for i in kept]] for tokens, r in zip(per_image, rows)], axis=2
    ) if kept else np.zeros((0, 0, 0), dtype=np.float32)  # fmt: skip
    return EncodedExamples(kept, vectors)


def train_and_score_multimodal_probe(
    ctx: TaskContext,
    params: dict[str, Any],
    train: Sequence[MultimodalExample],
    evaluation: Sequence[MultimodalExample],
    num_classes: int,
) -> tuple[list[str], Any, Any]:
    """Train the probe on ``train`` (labelled) and score ``evaluation``: (evaluated ids, their logits, the probe)."""
    from coca_bench.tasklib.probes import train_and_score_attentive_probe

    storage = params["token_storage"]
    train_tokens = encode_examples(ctx, train, storage)
    label_of = {e.id: e.label for e in train}
    tokens = encode_examples(ctx, evaluation, storage)
    logits, probe = train_and_score_attentive_probe(
        ctx, params, train_tokens, [label_of[i] for i in train_tokens.ids], tokens, num_classes
    )
    return tokens.ids, logits, probe


__all__ = ["EncodedExamples", "MultimodalExample", "encode_examples", "train_and_score_multimodal_probe"]
