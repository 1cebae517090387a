"""Zero-shot image-text retrieval, CLIP protocol: COCO Karpathy 5k test and Flickr30K Karpathy 1k test.

Every image and every caption is encoded independently and ranked by cosine similarity over the whole test set.
Ties never count in the model's favour; recall is a fraction in [0, 1]. One record per image (its best caption's
rank, the ranks of all its captions, its top 5 captions), so the bootstrap resamples images with their captions.
"""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task, variant
from coca_bench.tasklib import rank_items_with_captions, retrieval_aggregate, retrieval_metric_specs


@register_task(
    "coco_retrieval", groups=("image", "retrieval", "zeroshot"), dataset="coco",
    metrics=retrieval_metric_specs(("i2t", "t2i")), aggregate=retrieval_aggregate("i2t", "t2i"),
    view=SampleView("retrieval", rank_field="i2t_rank"),
    params={"karpathy": Param("coco", choices=("coco", "flickr30k"), help="which dataset_<name>.json"),
            "split": "test", "annotation_file": Param(None, str), "image_root": Param(None, str)},
    description="COCO Karpathy 5k test image<->text retrieval: recall@1/5/10, ranks",
)  # fmt: skip
def image_text_retrieval(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import find_karpathy
    from coca_bench.metrics.embeddings import collapse_warnings

    records = ctx.load(find_karpathy(ctx.dataset_dir, params["karpathy"], params["split"], params["annotation_file"],
                                     params["image_root"]))  # fmt: skip
    images = ctx.features.embed_images(records.items)
    captions = {record.id: record.captions for record in records.items}
    samples, texts = rank_items_with_captions(ctx, images.ids, images.vectors, captions, "i2t", "t2i")
    return TaskResult(
        samples=samples,
        extra_config={"num_images": len(images.ids), "num_captions": len(texts)},
        warnings=collapse_warnings({"image": images.vectors, "text": texts}),
    )


variant("coco_retrieval", "flickr30k_retrieval", dataset="flickr30k", params={"karpathy": "flickr30k"},
        description="Flickr30K Karpathy 1k test image<->text retrieval")  # fmt: skip
