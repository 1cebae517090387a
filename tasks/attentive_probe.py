"""The CoCa paper's frozen-encoder protocol: a new single-query attentional pooler + softmax head on encoder tokens.

The image encoder stays frozen; its output tokens (before any pooling) come from the feature cache (fp16 storage by
default, recorded), so a second run or another hyper-parameter setting never re-encodes. Training is seeded and
deterministic on a CPU. The paper's settings and where the defaults deviate are in
:class:`coca_bench.probes.attentive.AttentiveProbeConfig`; every setting is a task parameter.
"""

from __future__ import annotations

from typing import Any

from coca_bench.metrics.resampling import resampled_by
from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

METRICS = (
    MetricSpec("acc1", description="top-1 accuracy"),
    MetricSpec("acc5", description="top-5 accuracy (NaN with fewer than 5 classes)"),
    MetricSpec("mean_per_class_recall", aggregation="task", description="mean over classes of the recall"),
)
TRAINING = ("epochs", "lr", "weight_decay", "batch_size", "label_smoothing", "warmup_steps", "num_heads")


def _params() -> dict[str, Any]:
    from dataclasses import asdict

    from coca_bench.probes.config import AttentiveProbeConfig  # plain data: no torch at registration

    defaults = asdict(AttentiveProbeConfig())
    return {"train_split": "train", "eval_split": "val", "token_storage": "fp16", **{k: defaults[k] for k in TRAINING}}


@resampled_by("coca_bench.metrics.classification:classification_resampler")
def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.classification import classification_metrics_from_samples

    return classification_metrics_from_samples(samples)


def imagenet_attentive_probe(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    import numpy as np

    from coca_bench.data import read_train_eval_splits
    from coca_bench.data.splits import require_disjoint_splits
    from coca_bench.metrics.classification import classification_sample_records
    from coca_bench.probes.attentive import train_attentive_probe
    from coca_bench.probes.config import AttentiveProbeConfig

    train, evaluation = read_train_eval_splits(ctx.dataset_dir, params["train_split"], params["eval_split"], "imagenet")
    require_disjoint_splits(train, evaluation)
    train, evaluation = ctx.load(train, evaluated=False), ctx.load(evaluation)
    label_of = {s.id: s.label for s in (*train.items, *evaluation.items)}
    train_tokens = ctx.features.image_tokens(train.items, storage=params["token_storage"])
    config = AttentiveProbeConfig(**{k: params[k] for k in TRAINING}, seed=ctx.seed)
    probe = train_attentive_probe(
        train_tokens.vectors, np.array([label_of[i] for i in train_tokens.ids]), len(train.class_names), config,
        device=ctx.device,
    )  # fmt: skip
    tokens = ctx.features.image_tokens(evaluation.items, storage=params["token_storage"])
    logits = probe.logits(tokens.vectors, batch_size=ctx.batch_size, device=ctx.device)
    labels = np.array([label_of[i] for i in tokens.ids])
    return TaskResult(
        samples=classification_sample_records(tokens.ids, logits, labels),
        extra_config={
            "num_classes": len(train.class_names),
            "train_size": len(train_tokens.ids),
            "tokens_per_image": int(tokens.vectors.shape[1]),
            "final_train_loss": probe.train_loss[-1],
            "limit_applies_to": "the evaluated split only",
        },  # fmt: skip
    )


register_task(
    "imagenet_attentive_probe", groups=("image", "probe", "classification"), dataset="imagenet", metrics=METRICS,
    params=_params(), aggregate=_aggregate,
    description="ImageNet attentive probe: a trained single-query pooler + softmax head on frozen encoder tokens",
)(imagenet_attentive_probe)  # fmt: skip
