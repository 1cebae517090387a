"""The task library: what the built-in tasks share, public for plugins.

A task file composes these pieces: metric declarations with their aggregates (classification, retrieval,
captioning), parameter declarations (templates, frame sampling, generation, probe training), and whole protocols
(zero-shot classification over a label space and prompt templates, retrieval over items with captions, captioning
scored with the COCO metrics). Nothing here imports torch at module level, so ``--tasks list`` stays instant.
"""

from coca_bench.tasklib.captioning import (
    CAPTION_METRICS,
    GENERATION_PARAMS,
    NOCAPS_DOMAIN_METRICS,
    caption_aggregate,
    caption_metric_specs,
    generation_settings,
    score_captions,
)
from coca_bench.tasklib.classification import (
    CLASSIFICATION_METRICS,
    TEMPLATES_PARAM,
    classification_aggregate,
    imagenet_templates,
    zero_shot_classify,
)
from coca_bench.tasklib.multimodal import MultimodalExample, train_and_score_multimodal_probe
from coca_bench.tasklib.probes import attentive_probe_params, probe_config, train_and_score_attentive_probe
from coca_bench.tasklib.retrieval import rank_items_with_captions, retrieval_aggregate, retrieval_metric_specs
from coca_bench.tasklib.video import FRAME_PARAMS, frame_sampling

__all__ = [
    "CAPTION_METRICS",
    "CLASSIFICATION_METRICS",
    "FRAME_PARAMS",
    "GENERATION_PARAMS",
    "MultimodalExample",
    "NOCAPS_DOMAIN_METRICS",
    "TEMPLATES_PARAM",
    "attentive_probe_params",
    "caption_aggregate",
    "caption_metric_specs",
    "classification_aggregate",
    "frame_sampling",
    "generation_settings",
    "imagenet_templates",
    "probe_config",
    "rank_items_with_captions",
    "retrieval_aggregate",
    "retrieval_metric_specs",
    "score_captions",
    "train_and_score_attentive_probe",
    "train_and_score_multimodal_probe",
    "zero_shot_classify",
]
