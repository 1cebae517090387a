"""Kinetics-style video classification: zero-shot (CLIP's Kinetics prompts against the mean frame embedding) and the
paper's frozen-feature attentive probe (a new single-query pooler over all spatio-temporal tokens + softmax head), on
Kinetics-400 and, as variants, Kinetics-600 and -700 (paper Table 2).

Clips come from a Kinetics csv (``label,youtube_id,time_start,time_end,split``) in ``annotations/`` or beside the split
folder, in ``<split>/<label>/`` or flat in ``<split>/``; class names are the csv's labels. A missing clip (much of real
Kinetics is gone from YouTube) is a recorded skip, never a crash. Files on disk are taken as trimmed to
``time_start``-``time_end``; only a file whose duration shows it is the untrimmed video is sampled inside that window.
Every record carries the decoded ``frame_indices``; every result records the frames and the pooling.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import TaskContext, TaskResult, register_task, variant
from coca_bench.tasklib import attentive_probe_params, classification_aggregate
from coca_bench.tasklib.video import (
    FRAME_PARAMS,
    KINETICS_TEMPLATES,
    VIDEO_CLASSIFICATION_METRICS,
    VIDEO_CLASSIFICATION_VIEW,
    VIDEO_PROBE_DEFAULTS,
)


@register_task(
    "kinetics_zeroshot", groups=("video", "zeroshot", "classification"), dataset="kinetics",
    metrics=VIDEO_CLASSIFICATION_METRICS, params={"split": "val", "logit_scale": 100.0, **FRAME_PARAMS},
    aggregate=classification_aggregate, view=VIDEO_CLASSIFICATION_VIEW,
    key_material=lambda params: {"templates": list(KINETICS_TEMPLATES)},
    description="Kinetics zero-shot classification (CLIP's Kinetics prompts, mean frame embedding)",
)  # fmt: skip
def kinetics_zeroshot(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_kinetics
    from coca_bench.tasklib.video import zero_shot_video_classification

    records = ctx.load(read_kinetics(ctx.dataset_dir, params["split"]))
    return zero_shot_video_classification(ctx, params, records, KINETICS_TEMPLATES)


@register_task(
    "kinetics_attentive_probe", groups=("video", "probe", "classification"), dataset="kinetics",
    metrics=VIDEO_CLASSIFICATION_METRICS,
    params={"split": "val", "train_split": "train", **FRAME_PARAMS, **attentive_probe_params(**VIDEO_PROBE_DEFAULTS)},
    aggregate=classification_aggregate, view=VIDEO_CLASSIFICATION_VIEW,
    description="Kinetics frozen-feature classification: attentional pooler over spatio-temporal tokens",
)  # fmt: skip
def kinetics_attentive_probe(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_kinetics
    from coca_bench.tasklib.video import attentive_probe_video_classification

    train = read_kinetics(ctx.dataset_dir, params["train_split"])
    evaluation = read_kinetics(ctx.dataset_dir, params["split"], classes=train.class_ids)
    return attentive_probe_video_classification(ctx, params, train, evaluation)


# Kinetics-600 and -700: the same csv format and protocols, each in its own dataset folder (paper Table 2).
K600_ZERO_SHOT = "Kinetics-600 zero-shot classification (CLIP's Kinetics prompts, mean frame embedding)"
K700_ZERO_SHOT = "Kinetics-700 zero-shot classification (CLIP's Kinetics prompts, mean frame embedding)"
K600_PROBE = "Kinetics-600 frozen-feature classification: attentional pooler over spatio-temporal tokens"
K700_PROBE = "Kinetics-700 frozen-feature classification: attentional pooler over spatio-temporal tokens"
variant("kinetics_zeroshot", "kinetics600_zeroshot", dataset="kinetics600", description=K600_ZERO_SHOT)
variant("kinetics_zeroshot", "kinetics700_zeroshot", dataset="kinetics700", description=K700_ZERO_SHOT)
variant("kinetics_attentive_probe", "kinetics600_attentive_probe", dataset="kinetics600", description=K600_PROBE)
variant("kinetics_attentive_probe", "kinetics700_attentive_probe", dataset="kinetics700", description=K700_PROBE)
