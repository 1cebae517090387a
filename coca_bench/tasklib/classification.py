"""Classification: the metric declarations every classification task shares, CLIP's prompt templates, and
zero-shot classification over a label space (images or videos alike), whole for image classification sets."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from coca_bench.metrics.resampling import resampled_by
from coca_bench.params import Param
from coca_bench.registry import MetricSpec, TaskContext, TaskResult

if TYPE_CHECKING:
    from coca_bench.data.records import ClassificationSet

CLASSIFICATION_METRICS = (
    MetricSpec("acc1", description="top-1 accuracy"),
    MetricSpec("acc5", description="top-5 accuracy (NaN with fewer than 5 classes)"),
    MetricSpec("mean_per_class_recall", aggregation="task", description="mean over classes of the recall"),
)
TEMPLATE_SETS = ("openai", "simple")
TEMPLATES_PARAM = Param("openai", choices=TEMPLATE_SETS, help="open_clip's 80 OpenAI templates, or its 7 simple ones")


@resampled_by("coca_bench.metrics.classification:classification_resampler")
def classification_aggregate(samples: Sequence[dict[str, Any]], params: dict[str, Any]) -> dict[str, float]:
    """Mean per-class recall from the per-sample ``label`` and ``prediction`` (the one task-aggregated metric)."""
    from coca_bench.metrics.classification import classification_metrics_from_samples

    return classification_metrics_from_samples(samples)


def imagenet_templates(name: str) -> list[Callable[[str], str]]:
    """open_clip's ImageNet prompt sets (CLIP's), by name."""
    from coca_bench.data.imagenet import open_clip_zero_shot_metadata

    zero_shot_metadata = open_clip_zero_shot_metadata()
    sets = {
        "openai": zero_shot_metadata.OPENAI_IMAGENET_TEMPLATES,
        "simple": zero_shot_metadata.SIMPLE_IMAGENET_TEMPLATES,
    }
    return list(sets[name])


def templates_key_material(params: dict[str, Any]) -> dict[str, Any]:
    """The prompt strings of ``params["templates"]``, not their set's name: an open_clip upgrade that edits them
    reruns (a task's ``key_material``)."""
    return {"templates": [template("{c}") for template in imagenet_templates(params["templates"])]}


def zero_shot_classify(
    ctx: TaskContext,
    ids: Sequence[str],
    vectors: Any,
    labels: Sequence[int],
    classnames: Sequence[str],
    templates: Sequence[Callable[[str], str]],
    logit_scale: float,
    scored_labels: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """CLIP's zero-shot protocol: per class, the normalised mean of its normalised prompt embeddings; logits =
    ``logit_scale`` x cosine similarity. ``labels`` index ``classnames``; ``scored_labels`` (the label of each
    class name, when they are a subset of a larger label space) is what predictions and records report."""
    import numpy as np

    from coca_bench.metrics import classification as cls

    texts = ctx.features.embed_texts([template(name) for name in classnames for template in templates])
    weights = cls.zero_shot_classifier(texts.reshape(len(classnames), len(templates), -1))
    logits = float(logit_scale) * np.asarray(vectors).astype(np.float64) @ weights.T.astype(np.float64)
    return cls.classification_sample_records(list(ids), logits, np.asarray(labels), scored_labels)


def label_space_summary(class_ids: Sequence[str], classnames: Sequence[str]) -> dict[str, Any]:
    """What a result records of the classes it scored over: their number and the hashes of their ids (wnids, folder
    names) and of their prompt names, so that results over different class subsets never pass for comparable."""

    def digest(lines: Sequence[str]) -> str:
        return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    return {
        "num_classes": len(class_ids),
        "class_ids_sha256": digest(class_ids),
        "classnames_sha256": digest(classnames),
    }


def zero_shot_image_classification(
    ctx: TaskContext, records: ClassificationSet, scored_labels: Sequence[int], params: dict[str, Any]
) -> TaskResult:
    """CLIP's zero-shot protocol on loaded image records over the classes ``scored_labels`` (labels of the records'
    label space, each image's label among them), with ``params["templates"]`` and ``params["logit_scale"]``."""
    from coca_bench.data.annotations import DatasetLayoutError
    from coca_bench.metrics.embeddings import collapse_warnings

    images = ctx.features.embed_images(records.items)
    if not images.ids:
        raise DatasetLayoutError(f"{ctx.dataset_dir} ({records.split}) has no readable images to classify.")
    classnames = [records.class_names[label] for label in scored_labels]
    position = {label: index for index, label in enumerate(scored_labels)}
    label_of = {sample.id: sample.label for sample in records.items}
    labels = [position[label_of[sample_id]] for sample_id in images.ids]
    samples = zero_shot_classify(ctx, images.ids, images.vectors, labels, classnames,
                                 imagenet_templates(params["templates"]), params["logit_scale"], scored_labels)  # fmt: skip
    return TaskResult(
        samples=samples,
        extra_config={
            **label_space_summary([records.class_ids[label] for label in scored_labels], classnames),
            "num_classes_present": len(records.present_labels),
        },
        warnings=collapse_warnings({"image": images.vectors}),
    )


__all__ = [
    "CLASSIFICATION_METRICS",
    "TEMPLATES_PARAM",
    "TEMPLATE_SETS",
    "classification_aggregate",
    "imagenet_templates",
    "label_space_summary",
    "templates_key_material",
    "zero_shot_classify",
    "zero_shot_image_classification",
]
