"""Moments in Time video classification (paper Table 2): zero-shot (CLIP's Kinetics prompts against the mean frame
embedding; class names such as ``adult+female+singing`` become words) and the paper's frozen-feature attentive probe,
the Kinetics protocols on the Moments reader. Splits are the dataset's folders, ``validation`` and ``training``."""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import TaskContext, TaskResult, register_task
from coca_bench.tasklib import attentive_probe_params, classification_aggregate
from coca_bench.tasklib.video import (
    FRAME_PARAMS,
    KINETICS_TEMPLATES,
    VIDEO_CLASSIFICATION_METRICS,
    VIDEO_CLASSIFICATION_VIEW,
    VIDEO_PROBE_DEFAULTS,
)

SPLITS = ("validation", "training")  # coca_bench.data.moments.MOMENTS_SPLIT_FILES (not imported: listing stays fast)
# The paper's frozen-feature settings (CoCa App. A, Table 9) for Moments in Time are Kinetics' without label smoothing.
PROBE_DEFAULTS = {**VIDEO_PROBE_DEFAULTS, "label_smoothing": 0.0}


@register_task(
    "moments_zeroshot", groups=("video", "zeroshot", "classification"), dataset="moments",
    metrics=VIDEO_CLASSIFICATION_METRICS, aggregate=classification_aggregate, view=VIDEO_CLASSIFICATION_VIEW,
    params={"split": Param("validation", choices=SPLITS), "logit_scale": 100.0, **FRAME_PARAMS},
    key_material=lambda params: {"templates": list(KINETICS_TEMPLATES)},
    description="Moments in Time zero-shot classification (CLIP's Kinetics prompts, mean frame embedding)",
)  # fmt: skip
def moments_zeroshot(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data.moments import read_moments
    from coca_bench.tasklib.video import zero_shot_video_classification

    records = ctx.load(read_moments(ctx.dataset_dir, params["split"]))
    return zero_shot_video_classification(ctx, params, records, KINETICS_TEMPLATES)


@register_task(
    "moments_attentive_probe", groups=("video", "probe", "classification"), dataset="moments",
    metrics=VIDEO_CLASSIFICATION_METRICS, aggregate=classification_aggregate, view=VIDEO_CLASSIFICATION_VIEW,
    params={"split": Param("validation", choices=SPLITS), "train_split": Param("training", choices=SPLITS),
            **FRAME_PARAMS, **attentive_probe_params(**PROBE_DEFAULTS)},
    description="Moments in Time frozen-feature classification: attentional pooler over spatio-temporal tokens",
)  # fmt: skip
def moments_attentive_probe(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data.moments import read_moments
    from coca_bench.tasklib.video import attentive_probe_video_classification

    train = read_moments(ctx.dataset_dir, params["train_split"])
    evaluation = read_moments(ctx.dataset_dir, params["split"])
    return attentive_probe_video_classification(ctx, params, train, evaluation)
