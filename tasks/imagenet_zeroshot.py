"""ImageNet zero-shot classification, CLIP protocol (prompt-ensemble class weights, top-k accuracy).

``imagenet_zeroshot`` always scores over the full label space (1,000 classes for ImageNet-1k, or every class of
``LOC_synset_mapping.txt``), however many class folders are present: a partly extracted val folder must not report
inflated accuracy. ``imagenet_subset_zeroshot`` is the ImageNet-A/-R protocol: logits restricted to the classes
present, as CLIP_benchmark does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

METRICS = (
    MetricSpec("acc1", description="top-1 accuracy"),
    MetricSpec("acc5", description="top-5 accuracy (NaN with fewer than 5 classes)"),
    MetricSpec("mean_per_class_recall", aggregation="task", description="mean over classes of the recall"),
)
PARAMS = {"split": "val", "templates": "openai", "logit_scale": 100.0}


def _templates(name: str) -> list[Callable[[str], str]]:
    from open_clip import zero_shot_metadata  # imports torch: never at module level

    sets = {
        "openai": zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES,
        "simple": zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES,
    }
    if name not in sets:
        raise ValueError(f"Task parameter templates={name!r} is not one of {sorted(sets)}.")
    return list(sets[name])


def _key_material(params: dict[str, Any]) -> dict[str, Any]:
    """The prompt strings and open_clip's class names, not their names: an upgrade that edits them reruns."""
    from coca_bench.data import imagenet_classnames

    names = "\n".join(imagenet_classnames())
    return {
        "templates": [template("{c}") for template in _templates(params["templates"])],
        "imagenet_classnames_sha256": hashlib.sha256(names.encode("utf-8")).hexdigest(),
    }


def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.classification import classification_metrics_from_samples

    return classification_metrics_from_samples(samples)


def zeroshot_classification(ctx: TaskContext, params: dict[str, Any], restrict_to_present: bool) -> TaskResult:
    import numpy as np

    from coca_bench.data import DatasetLayoutError, read_imagenet
    from coca_bench.metrics import classification as cls
    from coca_bench.metrics.embeddings import collapse_warnings

    split = read_imagenet(ctx.dataset_dir, params["split"])
    records = ctx.load(split)
    # The label space never depends on --limit: the whole split's classes, or every class of the dataset.
    scored = list(split.present_labels) if restrict_to_present else list(range(len(split.class_names)))
    templates = _templates(params["templates"])
    classnames = [split.class_names[label] for label in scored]
    texts = ctx.features.embed_texts([template(name) for name in classnames for template in templates])
    weights = cls.zero_shot_classifier(texts.reshape(len(scored), len(templates), -1))

    images = ctx.features.embed_images(records.items)
    if not images.ids:
        raise DatasetLayoutError(f"{ctx.dataset_dir / params['split']} has no readable images to classify.")
    label_of = {sample.id: sample.label for sample in records.items}
    position = {label: index for index, label in enumerate(scored)}
    labels = np.array([position[label_of[sample_id]] for sample_id in images.ids])
    logits = float(params["logit_scale"]) * images.vectors.astype(np.float64) @ weights.T.astype(np.float64)

    return TaskResult(
        samples=cls.classification_sample_records(images.ids, logits, labels, scored),
        extra_config={
            "num_classes": len(scored),
            "num_classes_present": len(split.present_labels),
            "classnames_sha256": hashlib.sha256("\n".join(classnames).encode("utf-8")).hexdigest(),
        },
        warnings=collapse_warnings({"image": images.vectors}),
    )


def _register(name: str, dataset: str, restrict_to_present: bool, description: str) -> None:
    def run(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
        return zeroshot_classification(ctx, params, restrict_to_present)

    register_task(
        name, groups=("image", "zeroshot", "classification"), dataset=dataset, metrics=METRICS, params=PARAMS,
        description=description, aggregate=_aggregate, key_material=_key_material,
    )(run)  # fmt: skip


_register("imagenet_zeroshot", "imagenet", False, "ImageNet zero-shot classification over the full label space")
_register(
    "imagenet_subset_zeroshot", "imagenet_subset", True, "ImageNet-A/-R style subset, logits restricted to its classes"
)
