"""MSR-VTT video captioning: the multimodal decoder attends to the sampled frames' decoder image tokens pooled over
time (``pooling=mean``, the default; ``concat`` lays the frames end to end), scored like image captioning with each
clip's references (the 20 of ``MSRVTT_data.json``). Generation defaults are open_clip's, as for image captioning,
and every generation parameter of the image captioning tasks is one here too.
"""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task
from coca_bench.tasklib import (
    FRAME_PARAMS,
    GENERATION_PARAMS,
    caption_aggregate,
    caption_metric_specs,
    frame_sampling,
    generation_settings,
    score_captions,
)


@register_task(
    "msrvtt_captioning", groups=("video", "captioning"), dataset="msrvtt", metrics=caption_metric_specs(),
    aggregate=caption_aggregate, view=SampleView("caption", video=True),
    params={"split": Param("full", choices=("1k-A", "full")), **FRAME_PARAMS,
            "pooling": Param("mean", choices=("mean", "concat")), "caption_batch_size": 4,
            "spice": Param(None, bool), **GENERATION_PARAMS},
    description="MSR-VTT video captioning (frame tokens pooled over time): the COCO caption metrics",
)  # fmt: skip
def msrvtt_captioning(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_msrvtt

    records = ctx.load(read_msrvtt(ctx.dataset_dir, params["split"]))
    sampling = frame_sampling(params)
    generated, frame_indices = ctx.features.video_captions(
        records.items, sampling, generation_settings(params), params["pooling"], batch_size=params["caption_batch_size"]
    )
    references = {clip.id: clip.captions for clip in records.items}
    result = score_captions(
        dict(zip(generated.ids, generated.texts)), {i: references[i] for i in generated.ids}, params,
        extra_config={"frames": sampling.as_dict(), "pooling": params["pooling"]},
    )  # fmt: skip
    for sample, frames in zip(result.samples, frame_indices):
        sample["frame_indices"] = frames
    return result
