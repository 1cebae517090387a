"""ImageNet zero-shot classification, CLIP protocol (prompt-ensemble class weights, top-k accuracy).

``imagenet_subset_zeroshot`` is the same protocol on an ImageNet-A/-R style folder holding
some of the classes: logits are restricted to the classes present, as CLIP_benchmark does.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

METRICS = (
    MetricSpec("acc1", description="top-1 accuracy"),
    MetricSpec("acc5", description="top-5 accuracy (NaN with fewer than 5 classes)"),
    MetricSpec("mean_per_class_recall", description="mean over classes of the recall (balanced accuracy)"),
)
PARAMS = {"split": "val", "templates": "openai", "logit_scale": 100.0}


def _templates(name: str) -> list[Callable[[str], str]]:
    from open_clip import zero_shot_metadata  # imports torch: never at module level

    sets = {"openai": zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES, "simple": zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES}
    if name not in sets:
        raise ValueError(f"Task parameter templates={name!r} is not one of {sorted(sets)}.")
    return list(sets[name])


def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.classification import classification_metrics_from_samples

    return classification_metrics_from_samples(samples)


def zeroshot_classification(ctx: TaskContext, params: dict[str, Any], dataset: str) -> TaskResult:
    import numpy as np

    from coca_bench.data import DatasetLayoutError, read_imagenet
    from coca_bench.metrics import classification as cls

    records = read_imagenet(ctx.data_root / dataset, params["split"]).head(ctx.limit)
    present = list(records.present_labels)  # of the whole split, so --limit never shrinks the label space
    templates = _templates(params["templates"])
    classnames = [records.class_names[label] for label in present]
    texts = ctx.features.text_features([template(name) for name in classnames for template in templates])
    weights = cls.zero_shot_classifier(texts.reshape(len(present), len(templates), -1))

    images = ctx.features.image_features(records.items)
    if not images.kept_ids:
        raise DatasetLayoutError(f"{ctx.data_root / dataset / params['split']} has no readable images to classify.")
    label_of = {sample.id: sample.label for sample in records.items}
    position = {label: index for index, label in enumerate(present)}
    labels = np.array([position[label_of[sample_id]] for sample_id in images.kept_ids])
    logits = float(params["logit_scale"]) * images.features.astype(np.float64) @ weights.T.astype(np.float64)

    metrics = cls.topk_accuracy(logits, labels, ks=(1, 5))
    preds = logits.argmax(axis=1)
    metrics["mean_per_class_recall"] = cls.mean_per_class_recall(preds, labels)
    hits = {f"acc{k}": cls.topk_hits(logits, labels, k) for k in (1, 5) if k <= len(present)}
    samples = [
        {"id": sample_id, "label": present[labels[i]], "pred": present[preds[i]], **{m: int(h[i]) for m, h in hits.items()}}
        for i, sample_id in enumerate(images.kept_ids)
    ]
    return TaskResult(
        metrics=metrics,
        samples=samples,
        split=records.split,
        annotation_files=list(records.annotation_files),
        skipped=images.skipped,
        extra_config={
            "templates": [template("{c}") for template in templates],
            "num_classes": len(present),
            "classnames_sha256": hashlib.sha256("\n".join(classnames).encode("utf-8")).hexdigest(),
        },
    )


def _register(name: str, dataset: str, description: str) -> None:
    def run(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
        return zeroshot_classification(ctx, params, dataset)

    register_task(
        name, groups=("image", "zeroshot", "classification"), dataset=dataset, metrics=METRICS,
        params=PARAMS, description=description, aggregate=_aggregate,
    )(run)


_register("imagenet_zeroshot", "imagenet", "ImageNet zero-shot classification (CLIP prompt ensemble): acc1, acc5")
_register("imagenet_subset_zeroshot", "imagenet_subset", "ImageNet-A/-R style subset, logits restricted to its classes")
