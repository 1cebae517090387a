"""The CoCa paper's frozen-encoder protocol: a new single-query attentional pooler + softmax head on encoder tokens.

The image encoder stays frozen; its output tokens (before any pooling) come from the feature cache (fp16 storage by
default, recorded), so a second run or another hyper-parameter setting never re-encodes. Training is seeded and
deterministic on a CPU. The paper's settings and where the defaults deviate are in
:class:`coca_bench.probes.config.AttentiveProbeConfig`; every setting is a task parameter.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task
from coca_bench.tasklib import CLASSIFICATION_METRICS, attentive_probe_params, classification_aggregate


@register_task(
    "imagenet_attentive_probe", groups=("image", "probe", "classification"), dataset="imagenet",
    metrics=CLASSIFICATION_METRICS, aggregate=classification_aggregate, view=SampleView("classification"),
    params={"train_split": "train", "eval_split": "val", **attentive_probe_params()},
    description="ImageNet attentive probe: a trained single-query pooler + softmax head on frozen encoder tokens",
)  # fmt: skip
def imagenet_attentive_probe(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_train_eval_splits
    from coca_bench.data.splits import require_disjoint_splits
    from coca_bench.metrics.classification import classification_sample_records
    from coca_bench.tasklib import train_and_score_attentive_probe

    train, evaluation = read_train_eval_splits(ctx.dataset_dir, params["train_split"], params["eval_split"], "imagenet")
    require_disjoint_splits(train, evaluation)
    train, evaluation = ctx.load(train, evaluated=False), ctx.load(evaluation)
    label_of = {s.id: s.label for s in (*train.items, *evaluation.items)}
    train_tokens = ctx.features.image_tokens(train.items, storage=params["token_storage"])
    tokens = ctx.features.image_tokens(evaluation.items, storage=params["token_storage"])
    logits, probe = train_and_score_attentive_probe(
        ctx, params, train_tokens, [label_of[i] for i in train_tokens.ids], tokens, len(train.class_names)
    )
    return TaskResult(
        samples=classification_sample_records(tokens.ids, logits, [label_of[i] for i in tokens.ids]),
        extra_config={
            "num_classes": len(train.class_names),
            "train_size": probe.train_size,
            "optimizer_steps": probe.steps,
            "tokens_per_image": int(tokens.vectors.shape[1]),
            "final_train_loss": probe.train_loss[-1],
            "limit_applies_to": "the evaluated split only",
        },  # fmt: skip
    )
