"""ImageNet zero-shot classification, CLIP protocol (prompt-ensemble class weights, top-k accuracy).

``label_space="full"`` scores over every class of the label space (1,000 for ImageNet-1k, or every class of
``LOC_synset_mapping.txt``), however many class folders are present: a partly extracted val folder must not report
inflated accuracy. ``label_space="present"`` restricts the logits to the classes present, as CLIP_benchmark does for
ImageNet-A/-R: ``imagenet_subset_zeroshot`` is that variant. Class folders may be wnids or label indices
(ImageNet-V2's ``0``..``999``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task, variant
from coca_bench.tasklib import CLASSIFICATION_METRICS, TEMPLATES_PARAM, classification_aggregate, imagenet_templates


def _key_material(params: dict[str, Any]) -> dict[str, Any]:
    """The prompt strings, not their set's name: an open_clip upgrade that edits them reruns."""
    return {"templates": [template("{c}") for template in imagenet_templates(params["templates"])]}


@register_task(
    "imagenet_zeroshot", groups=("image", "zeroshot", "classification"), dataset="imagenet",
    metrics=CLASSIFICATION_METRICS, aggregate=classification_aggregate, key_material=_key_material,
    view=SampleView("classification"),
    params={"split": "val", "templates": TEMPLATES_PARAM, "logit_scale": 100.0,
            "label_space": Param("full", choices=("full", "present"), help="score every class, or those present")},
)  # fmt: skip
def imagenet_zeroshot(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    """ImageNet zero-shot classification over the full label space"""
    from coca_bench.data import DatasetLayoutError, read_imagenet
    from coca_bench.metrics.embeddings import collapse_warnings
    from coca_bench.tasklib import zero_shot_classify

    split = read_imagenet(ctx.dataset_dir, params["split"])
    records = ctx.load(split)
    # The label space never depends on --limit: the whole split's classes, or every class of the dataset.
    full = params["label_space"] == "full"
    scored = list(range(len(split.class_names))) if full else list(split.present_labels)
    classnames = [split.class_names[label] for label in scored]
    images = ctx.features.embed_images(records.items)
    if not images.ids:
        raise DatasetLayoutError(f"{ctx.dataset_dir / params['split']} has no readable images to classify.")
    label_of = {sample.id: sample.label for sample in records.items}
    position = {label: index for index, label in enumerate(scored)}
    labels = [position[label_of[sample_id]] for sample_id in images.ids]
    templates = imagenet_templates(params["templates"])
    samples = zero_shot_classify(ctx, images.ids, images.vectors, labels, classnames, templates,
                                 params["logit_scale"], scored)  # fmt: skip
    return TaskResult(
        samples=samples,
        extra_config={
            "num_classes": len(scored),
            "num_classes_present": len(split.present_labels),
            "classnames_sha256": hashlib.sha256("\n".join(classnames).encode("utf-8")).hexdigest(),
        },
        warnings=collapse_warnings({"image": images.vectors}),
    )


variant("imagenet_zeroshot", "imagenet_subset_zeroshot", dataset="imagenet_subset", params={"label_space": "present"},
        description="ImageNet-A/-R style subset, logits restricted to its classes")  # fmt: skip
