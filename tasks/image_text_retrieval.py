"""Zero-shot image-text retrieval, CLIP protocol: COCO Karpathy 5k test and Flickr30K Karpathy 1k test.

Every image and every caption is encoded independently and ranked by cosine similarity over the whole test set.
Ties never count in the model's favour; recall is a fraction in [0, 1]. One record per image (its best caption's
rank, the ranks of all its captions, its top 5 captions), so the bootstrap resamples images with their captions.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

KS = (1, 5, 10)
DIRECTIONS = ("i2t", "t2i")
METRICS = tuple(
    [MetricSpec(f"{d}_recall@{k}", aggregation="task") for d in DIRECTIONS for k in KS]
    + [MetricSpec(f"{d}_{stat}_rank", higher_is_better=False, aggregation="task") for d in DIRECTIONS
       for stat in ("median", "mean")]
)  # fmt: skip
PARAMS = {"split": "test", "annotation_file": None, "image_root": None}


def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.retrieval import retrieval_metrics_from_samples

    return retrieval_metrics_from_samples(samples, ks=KS, names=DIRECTIONS)


def image_text_retrieval(ctx: TaskContext, params: dict[str, Any], name: str) -> TaskResult:
    import numpy as np

    from coca_bench.data import find_karpathy
    from coca_bench.metrics.embeddings import collapse_warnings
    from coca_bench.metrics.retrieval import rank_retrieval, retrieval_sample_records

    records = ctx.load(
        find_karpathy(ctx.dataset_dir, name, params["split"], params["annotation_file"], params["image_root"])
    )

    images = ctx.features.embed_images(records.items)
    kept = {record.id: record for record in records.items}
    captions = [(index, text) for index, image_id in enumerate(images.ids) for text in kept[image_id].captions]
    owner = np.array([index for index, _ in captions], dtype=np.int64)
    texts = ctx.features.embed_texts([text for _, text in captions])
    ranks = rank_retrieval(images.vectors, texts, owner, top_k=5)
    rows = retrieval_sample_records(ranks, owner)
    samples = [
        {"id": image_id, "i2t_rank": row["i2t_rank"], "t2i_ranks": row["t2i_ranks"], "top5_texts": row["top_texts"]}
        for image_id, row in zip(images.ids, rows)
    ]
    return TaskResult(
        samples=samples,
        extra_config={"num_images": len(images.ids), "num_captions": len(captions)},
        warnings=collapse_warnings({"image": images.vectors, "text": texts}),
    )


def _register(task: str, dataset: str, name: str, description: str) -> None:
    def run(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
        return image_text_retrieval(ctx, params, name)

    register_task(
        task, groups=("image", "retrieval", "zeroshot"), dataset=dataset, metrics=METRICS, params=PARAMS,
        description=description, aggregate=_aggregate,
    )(run)  # fmt: skip


_register(
    "coco_retrieval",
    "coco",
    "coco",
    "COCO Karpathy 5k test image<->text retrieval: recall@1/5/10, ranks",
)
_register(
    "flickr30k_retrieval",
    "flickr30k",
    "flickr30k",
    "Flickr30K Karpathy 1k test image<->text retrieval",
)
