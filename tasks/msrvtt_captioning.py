"""MSR-VTT video captioning: the multimodal decoder attends to the sampled frames' decoder image tokens pooled over
time (``pooling=mean``, the default; ``concat`` lays the frames end to end), scored like image captioning with each
clip's references (the 20 of ``MSRVTT_data.json``). Generation defaults are open_clip's, as for image captioning.
"""

from __future__ import annotations

from typing import Any

from coca_bench.registry import MetricSpec, TaskContext, TaskResult, register_task

METRICS = tuple(
    MetricSpec(name, aggregation="mean" if name == "ROUGE_L" else "task")
    for name in ("Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
)
GENERATION = {"strategy": "beam", "num_beams": 6, "num_beam_groups": 3, "beam_score": "logits", "max_new_tokens": 29,
              "min_new_tokens": 4, "decode_dtype": "fp32"}  # fmt: skip
PARAMS = {"split": "full", "num_frames": 16, "sampling": "uniform", "backend": "decord", "pooling": "mean",
          "caption_batch_size": 4, "spice": None, **GENERATION}  # fmt: skip


def _aggregate(samples: Any, params: dict[str, Any]) -> dict[str, float]:
    from coca_bench.metrics.captioning import caption_metrics_from_samples

    return caption_metrics_from_samples(samples)


def msrvtt_captioning(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_msrvtt
    from coca_bench.features import FrameSampling
    from coca_bench.metrics.captioning import caption_sample_records

    records = ctx.load(read_msrvtt(ctx.dataset_dir, params["split"]))
    sampling = FrameSampling(params["num_frames"], params["sampling"], params["backend"])
    generation = {key: params[key] for key in GENERATION}
    generated, frame_indices = ctx.features.video_captions(
        records.items, sampling, generation, params["pooling"], batch_size=params["caption_batch_size"]
    )
    references = {clip.id: list(clip.captions) for clip in records.items}
    metrics, samples, not_computed = caption_sample_records(
        dict(zip(generated.ids, generated.texts)), {i: references[i] for i in generated.ids}, spice=params["spice"]
    )
    for sample, frames in zip(samples, frame_indices):
        sample["frame_indices"] = frames
    return TaskResult(
        metrics=metrics,
        samples=samples,
        not_computed=not_computed,
        extra_config={"generation": generation, "frames": sampling.as_dict(), "pooling": params["pooling"]},
    )


register_task(
    "msrvtt_captioning", groups=("video", "captioning"), dataset="msrvtt", metrics=METRICS, params=PARAMS,
    aggregate=_aggregate,
    description="MSR-VTT video captioning (frame tokens pooled over time): the COCO caption metrics",
)(msrvtt_captioning)  # fmt: skip
