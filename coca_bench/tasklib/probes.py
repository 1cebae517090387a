"""Frozen-feature probes: the attentive probe's training settings as task parameters, and training it on cached
encoder tokens then scoring the evaluated split (images, videos and VQA's multimodal tokens alike)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from coca_bench.params import Param
from coca_bench.probes.config import AttentiveProbeConfig  # plain data: no torch at registration

TRAINING = ("epochs", "min_steps", "lr", "weight_decay", "batch_size", "label_smoothing", "warmup_steps", "num_heads")
# What AttentiveProbeConfig accepts, as parameter ranges: a bad --param is refused before any work.
TRAINING_RANGES: dict[str, dict[str, float]] = {
    "epochs": {"minimum": 1}, "min_steps": {"minimum": 0}, "lr": {"minimum": 0.0}, "weight_decay": {"minimum": 0.0},
    "batch_size": {"minimum": 1}, "label_smoothing": {"minimum": 0.0, "maximum": 0.99}, "warmup_steps": {"minimum": 0},
    "num_heads": {"minimum": 1},
}  # fmt: skip
TRAINING_HELP = {
    "min_steps": "train at least this many optimizer steps (a split smaller than a batch gives one per epoch); each "
    "task's default was chosen on held-out folds of its training split (bench/select_probe_steps.py)",
}


def attentive_probe_params(**overrides: Any) -> dict[str, Param]:
    """The probe's training settings as parameters, from :class:`AttentiveProbeConfig` (``overrides`` change the
    defaults, e.g. the paper's Kinetics settings), plus how the cached tokens are stored."""
    defaults = dataclasses.asdict(AttentiveProbeConfig(**overrides))
    return {
        **{
            name: Param(defaults[name], help=TRAINING_HELP.get(name, ""), **TRAINING_RANGES.get(name, {}))
            for name in TRAINING
        },  # fmt: skip
        "token_storage": Param("fp16", choices=("fp16", "fp32"), help="cached encoder tokens: fp16 halves the cache"),
    }


def probe_config(params: dict[str, Any], seed: int) -> AttentiveProbeConfig:
    return AttentiveProbeConfig(**{name: params[name] for name in TRAINING}, seed=seed)


def train_and_score_attentive_probe(
    ctx: Any,
    params: dict[str, Any],
    train: Any,
    train_labels: Sequence[int],
    evaluation: Any,
    num_classes: int,
) -> Any:
    """Train a new single-query attentional pooler and softmax head on ``train.vectors`` (tokens) with
    ``train_labels``; returns the logits on ``evaluation.vectors`` and the trained probe (its loss curve)."""
    import numpy as np

    from coca_bench.probes.attentive import train_attentive_probe

    probe = train_attentive_probe(
        train.vectors, np.asarray(train_labels), num_classes, probe_config(params, ctx.seed), device=ctx.device
    )
    return probe.logits(evaluation.vectors, batch_size=ctx.batch_size, device=ctx.device), probe


__all__ = ["TRAINING", "attentive_probe_params", "probe_config", "train_and_score_attentive_probe"]
