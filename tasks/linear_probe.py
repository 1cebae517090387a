"""Frozen-encoder linear probe: logistic regression on the contrastive image embeddings (CLIP's protocol, on a CPU).

Features are the frozen image encoder's L2-normalised contrastive embeddings from the feature cache, so the
zero-shot task's validation images are never encoded twice. scikit-learn's L-BFGS multinomial logistic regression;
the inverse regularisation C is swept over a log grid on a validation split (a seeded, stratified hold-out of train
when the dataset has none), then refit on train + validation. ``--limit`` limits the evaluated split, never the
training data. ``shots=N`` keeps N seeded training images per class. An evaluation split that shares any file with
the training split is refused.
"""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task, variant
from coca_bench.tasklib import CLASSIFICATION_METRICS, classification_aggregate


@register_task(
    "imagenet_linear_probe", groups=("image", "probe", "classification"), dataset="imagenet",
    metrics=CLASSIFICATION_METRICS, aggregate=classification_aggregate, view=SampleView("classification"),
    params={"layout": Param("imagenet", choices=("imagenet", "folder"), help="wnid folders, or any class names"),
            "train_split": "train", "eval_split": "val", "shots": Param(None, int, minimum=1), "c_grid": Param(None, list),
            "val_fraction": Param(0.2, minimum=0.0, maximum=1.0), "max_iter": Param(1000, minimum=1)},
    description="ImageNet linear probe on frozen contrastive embeddings (logistic regression, C swept on val)",
)  # fmt: skip
def linear_probe(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    import numpy as np

    from coca_bench.data import read_train_eval_splits
    from coca_bench.data.splits import require_disjoint_splits
    from coca_bench.metrics.classification import classification_sample_records
    from coca_bench.probes.linear import DEFAULT_C_GRID, few_shot_indices, fit_linear_probe

    train, evaluation = read_train_eval_splits(
        ctx.dataset_dir, params["train_split"], params["eval_split"], params["layout"]
    )
    require_disjoint_splits(train, evaluation)
    train, evaluation = ctx.load(train, evaluated=False), ctx.load(evaluation)
    train_images = ctx.features.embed_images(train.items)
    label_of = {s.id: s.label for s in (*train.items, *evaluation.items)}
    x, y = train_images.vectors, np.array([label_of[i] for i in train_images.ids])
    if params["shots"] is not None:
        keep = few_shot_indices(y, int(params["shots"]), ctx.seed)
        x, y = x[keep], y[keep]
    grid = tuple(params["c_grid"]) if params["c_grid"] is not None else DEFAULT_C_GRID
    probe = fit_linear_probe(
        x, y, c_grid=grid, val_fraction=params["val_fraction"], seed=ctx.seed, max_iter=params["max_iter"],
        num_classes=len(train.class_names),
    )  # fmt: skip
    images = ctx.features.embed_images(evaluation.items)
    labels = np.array([label_of[i] for i in images.ids])
    return TaskResult(
        samples=classification_sample_records(images.ids, probe.logits(images.vectors), labels),
        extra_config={
            "chosen_c": probe.c,
            "c_grid": list(probe.c_grid),
            "val_accuracy": list(probe.val_accuracy),
            "train_size": probe.train_size,
            "val_size": probe.val_size,
            "converged": probe.converged,
            "num_classes": len(train.class_names),
            "eval_split": evaluation.split,
            "limit_applies_to": "the evaluated split only",
        },  # fmt: skip
    )


variant(
    "imagenet_linear_probe", "linear_probe",
    params={"dataset": Param("imagenet", str, help="the folder under --data-root"), "layout": "folder",
            "eval_split": "auto"},
    description="linear probe on any ImageFolder dataset (--param dataset=NAME: <data-root>/NAME/{train,val|test}/)",
)  # fmt: skip
