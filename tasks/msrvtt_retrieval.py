"""MSR-VTT text-video retrieval, zero-shot, as CoCa does it: the mean of 16 uniformly sampled frames' embeddings.

Each frame goes through the shared image encoder on its own (no temporal fusion); a video's embedding is the mean
of its frames' L2-normalised embeddings, renormalised. Splits: ``1k-A`` (``MSRVTT_JSFUSION_test.csv``, 1,000 videos,
one caption each: the common split) and ``full`` (the 2,990 test videos of ``MSRVTT_data.json``, 20 captions each:
the split the CoCa paper reports). Ranking is the image retrieval task's (ties count against the model); one record
per video with ``v2t_rank``, ``t2v_ranks`` of its captions and the ``frame_indices`` it was encoded from.
"""

from __future__ import annotations

from typing import Any

from coca_bench.params import Param
from coca_bench.registry import SampleView, TaskContext, TaskResult, register_task
from coca_bench.tasklib import (
    FRAME_PARAMS,
    frame_sampling,
    rank_items_with_captions,
    retrieval_aggregate,
    retrieval_metric_specs,
)


@register_task(
    "msrvtt_retrieval", groups=("video", "retrieval", "zeroshot"), dataset="msrvtt",
    metrics=retrieval_metric_specs(("t2v", "v2t")), aggregate=retrieval_aggregate("v2t", "t2v"),
    view=SampleView("retrieval", video=True, rank_field="v2t_rank"),
    params={"split": Param("1k-A", choices=("1k-A", "full")), **FRAME_PARAMS},
    description="MSR-VTT text<->video retrieval (mean-pooled frame embeddings): recall@1/5/10, ranks",
)  # fmt: skip
def msrvtt_retrieval(ctx: TaskContext, params: dict[str, Any]) -> TaskResult:
    from coca_bench.data import read_msrvtt
    from coca_bench.metrics.embeddings import collapse_warnings

    records = ctx.load(read_msrvtt(ctx.dataset_dir, params["split"]))
    sampling = frame_sampling(params)
    videos = ctx.features.embed_videos(records.items, sampling)
    captions = {record.id: record.captions for record in records.items}
    samples, texts = rank_items_with_captions(ctx, videos.ids, videos.vectors, captions, "v2t", "t2v")
    for sample, frames in zip(samples, videos.frame_indices):
        sample["frame_indices"] = frames
    return TaskResult(
        samples=samples,
        extra_config={
            "frames": sampling.as_dict(),
            "pooling": "mean of normalised frame embeddings, renormalised",
            "num_videos": len(videos.ids),
            "num_captions": len(texts),
        },  # fmt: skip
        warnings=collapse_warnings({"video": videos.vectors, "text": texts}),
    )
