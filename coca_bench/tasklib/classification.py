"""Classification: the metric declarations every classification task shares, CLIP's prompt templates, and
zero-shot classification over a label space (images or videos alike)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from coca_bench.metrics.resampling import resampled_by
from coca_bench.params import Param
from coca_bench.registry import MetricSpec, TaskContext

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


__all__ = [
    "CLASSIFICATION_METRICS",
    "TEMPLATES_PARAM",
    "TEMPLATE_SETS",
    "classification_aggregate",
    "imagenet_templates",
    "zero_shot_classify",
]
