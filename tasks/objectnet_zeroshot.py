"""ObjectNet zero-shot classification, scored as CLIP_benchmark scores it (the protocol of open_clip's table).

What is followed, from CLIP_benchmark ``clip_benchmark/datasets/objectnet.py`` (wise-ft's reader) and
``datasets/builder.py``: the classes are the 113 ObjectNet labels that ``objectnet_to_imagenet_1k.json`` maps to
ImageNet-1k, in sorted folder order; the logits span those 113 only, and images of the other 200 ObjectNet classes
are not scored. Each class is prompted by its ObjectNet label in lower case ("alarm clock", "mixing / salad bowl"),
not by the ImageNet names it maps to ("analog clock; digital clock"), with the 80 OpenAI ImageNet templates
(CLIP_benchmark has no ObjectNet template set and falls back to ImageNet's). Images are used whole: wise-ft crops 2
pixels off every side (ObjectNet images carry a 1-pixel red border) before preprocessing, but CLIP_benchmark's copy
of the reader dropped that crop, so open_clip's published numbers were computed without it.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task
from coca_bench.tasklib import CLASSIFICATION_METRICS, TEMPLATES_PARAM, classification_aggregate
from coca_bench.tasklib.classification import templates_key_material


@register_task(
    "objectnet_zeroshot", groups=("image", "zeroshot", "classification", "imagenet_robustness"), dataset="objectnet",
    metrics=CLASSIFICATION_METRICS, aggregate=classification_aggregate, key_material=templates_key_material,
    view=SampleView("classification"), params={"templates": TEMPLATES_PARAM, "logit_scale": 100.0},
)  # fmt: skip
def objectnet_zeroshot(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    """ObjectNet zero-shot classification over its 113 ImageNet-mapped classes"""
    from coca_bench.data.objectnet import read_objectnet
    from coca_bench.tasklib.classification import zero_shot_image_classification

    records = ctx.load(read_objectnet(ctx.dataset_dir))
    return zero_shot_image_classification(ctx, records, range(len(records.class_ids)), params)
