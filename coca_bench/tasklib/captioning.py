"""Captioning: the COCO caption metrics as declarations, the generation parameters every captioning task takes,
and scoring generated captions against references with pycocoevalcap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from coca_bench.metrics.captioning import METRIC_NAMES, NOCAPS_DOMAIN_METRICS
from coca_bench.metrics.resampling import resampled_by
from coca_bench.params import Param
from coca_bench.registry import MetricSpec, TaskResult

# open_clip's defaults, so numbers compare with CLIP_benchmark's captioning: beam search with 6 beams in 3 groups,
# raw-logit beam scores, seq_len=30 and min_seq_len=5 as open_clip counts them (29 and 4 new tokens).
GENERATION_PARAMS: dict[str, Param] = {
    "strategy": Param("beam", choices=("greedy", "beam", "top_k", "top_p")),
    "num_beams": Param(6, minimum=1),
    "num_beam_groups": Param(3, minimum=1),
    "beam_score": Param("logits", choices=("logits", "logprobs"), help="open_clip scores beams by raw logits"),
    "max_new_tokens": Param(29, minimum=1),
    "min_new_tokens": Param(4, minimum=0),
    "length_penalty": Param(1.0),
    "repetition_penalty": Param(1.0, minimum=0.0),
    "top_k": Param(50, minimum=1),
    "top_p": Param(0.9, minimum=0.0, maximum=1.0),
    "temperature": Param(1.0, minimum=0.0),
    "decode_dtype": Param("fp32", choices=("fp32", "bf16"), help="bf16: faster, not open_clip's exact tokens"),
}
CAPTION_METRICS = METRIC_NAMES


def caption_metric_specs(extra: Sequence[str] = ()) -> tuple[MetricSpec, ...]:
    """BLEU-1..4, METEOR, ROUGE-L, CIDEr, SPICE (and ``extra``, e.g. NoCaps' per-domain CIDEr). ROUGE-L is
    pycocoevalcap's mean of per-image scores; the others are corpus scores, recomputed by the aggregate."""
    return tuple(
        MetricSpec(name, aggregation="mean" if name == "ROUGE_L" else "task") for name in (*METRIC_NAMES, *extra)
    )


@resampled_by("coca_bench.metrics.captioning:caption_resampler")
def caption_aggregate(samples: Sequence[Mapping[str, Any]], params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.captioning import caption_metrics_from_samples

    return caption_metrics_from_samples(samples)


def generation_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The generation parameters among a task's parameters (what the caption cache and the record key on)."""
    return {key: params[key] for key in GENERATION_PARAMS}


def score_captions(
    generated: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    params: Mapping[str, Any],
    domains: Mapping[str, str | None] | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> TaskResult:
    """pycocoevalcap's metrics over ``generated`` captions, per-sample records the aggregate can recompute from."""
    from coca_bench.metrics.captioning import caption_sample_records

    metrics, samples, not_computed = caption_sample_records(
        dict(generated), {i: list(references[i]) for i in generated}, domains=domains, spice=params["spice"]
    )
    return TaskResult(
        metrics=metrics,
        samples=samples,
        not_computed=not_computed,
        extra_config={"generation": generation_settings(params), **(extra_config or {})},
    )


__all__ = [
    "CAPTION_METRICS",
    "GENERATION_PARAMS",
    "NOCAPS_DOMAIN_METRICS",
    "caption_aggregate",
    "caption_metric_specs",
    "generation_settings",
    "score_captions",
]
