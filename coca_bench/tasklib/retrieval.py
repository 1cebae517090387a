"""Retrieval between media (images or videos) and their captions, CLIP's protocol: every item and caption encoded
on its own, ranked by cosine similarity over the whole set, ties counted against the model."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from coca_bench.metrics.resampling import resampled_by
from coca_bench.registry import MetricSpec, TaskContext

KS = (1, 5, 10)


def retrieval_metric_specs(directions: tuple[str, str]) -> tuple[MetricSpec, ...]:
    """recall@1/5/10 and the median and mean rank in both directions (``("i2t", "t2i")``, ``("t2v", "v2t")``)."""
    return tuple(
        [MetricSpec(f"{d}_recall@{k}", aggregation="task") for d in directions for k in KS]
        + [MetricSpec(f"{d}_{stat}_rank", higher_is_better=False, aggregation="task") for d in directions
           for stat in ("median", "mean")]
    )  # fmt: skip


def retrieval_aggregate(
    media_to_text: str, text_to_media: str
) -> Callable[[Sequence[Mapping[str, Any]], dict[str, Any]], dict[str, float]]:
    """The aggregate over records holding ``<media_to_text>_rank`` (an item's best caption) and
    ``<text_to_media>_ranks`` (each of its captions' rank of the item)."""

    rank_fields = (f"{media_to_text}_rank", f"{text_to_media}_ranks")
    names = (media_to_text, text_to_media)

    @resampled_by("coca_bench.metrics.retrieval:retrieval_resampler", ks=KS, names=names, rank_fields=rank_fields)
    def aggregate(samples: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> dict[str, float]:
        from coca_bench.metrics.retrieval import retrieval_metrics_from_samples

        return retrieval_metrics_from_samples(samples, ks=KS, names=names, rank_fields=rank_fields)

    return aggregate


def rank_items_with_captions(
    ctx: TaskContext,
    ids: Sequence[str],
    vectors: Any,
    captions_of: Mapping[str, Sequence[str]],
    media_to_text: str,
    text_to_media: str,
) -> tuple[list[dict[str, Any]], Any]:
    """One record per encoded item (its best caption's rank, its captions' ranks, its top 5 captions) and the
    caption embeddings, one row per caption in item order (for collapse warnings and counts)."""
    import numpy as np

    from coca_bench.metrics.retrieval import rank_retrieval, retrieval_sample_records

    captions = [(index, text) for index, item_id in enumerate(ids) for text in captions_of[item_id]]
    owner = np.array([index for index, _ in captions], dtype=np.int64)
    texts = ctx.features.embed_texts([text for _, text in captions])
    rows = retrieval_sample_records(rank_retrieval(vectors, texts, owner, top_k=5), owner)
    samples = [
        {"id": item_id, f"{media_to_text}_rank": row["i2t_rank"], f"{text_to_media}_ranks": row["t2i_ranks"],
         "top5_texts": row["top_texts"]}
        for item_id, row in zip(ids, rows)
    ]  # fmt: skip
    return samples, texts


__all__ = ["KS", "rank_items_with_captions", "retrieval_aggregate", "retrieval_metric_specs"]
